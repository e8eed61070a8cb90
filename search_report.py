"""The results of a search: the Pareto front as CSV, JSON and PNG, and its top points in RTL.

`write_results` reads every trial of the study from its storage (whichever machine ran it),
keeps the COMPLETE trials that meet the constraints, marks the Pareto front over the objectives,
writes OUT/trials.csv, OUT/pareto.csv, OUT/pareto.json and OUT/pareto.png, then generates and
RTL-verifies the first `verify_top` front points (highest accuracy first) on a sample of test
images, as the flow's generate and verify stages do. A point that ran on another machine is
rebuilt here from its parameters (training is seeded), and its accuracy is checked against the
recorded one before its RTL is trusted.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from spikeforge import SpikeforgeError, atomic_write_text
from spikeforge.pareto import pareto_mask
from spikeforge.search_space import FIGURES, OBJECTIVES, SPACE

RESULTS_SCHEMA = "spikeforge-search-results"


def trial_rows(p, study) -> list[dict[str, Any]]:
    """One row per COMPLETE trial: parameters, figures, feasibility and the Pareto flag."""
    from optuna.trial import TrialState

    from spikeforge.search import hidden_widths

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        row: dict[str, Any] = {"trial": t.number, **{d.name: t.params.get(d.name) for d in SPACE}}
        row["hidden"] = ",".join(map(str, hidden_widths(t.params)))
        row.update({k: t.user_attrs.get(k) for k in FIGURES})
        row["feasible"] = all(v <= 0 for v in t.constraints.values())  # what the trial recorded
        row["worker"] = t.user_attrs.get("worker")
        row["retry_of"] = t.system_attrs.get("failed_trial")
        rows.append(row)
    feasible = [r for r in rows if r["feasible"]]
    costs = [tuple(_cost(r, o) for o in p.objectives) for r in feasible]
    for r, flag in zip(feasible, pareto_mask(costs), strict=True):
        r["pareto"] = flag
    for r in rows:
        r.setdefault("pareto", False)
    return rows


def _cost(row: dict[str, Any], objective: str) -> float:
    direction, figure, _ = OBJECTIVES[objective]
    return -float(row[figure]) if direction == "maximize" else float(row[figure])


def front_order(p, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The front, best first objective first (ties: the next objectives)."""
    front = [r for r in rows if r["pareto"]]
    return sorted(front, key=lambda r: (tuple(_cost(r, o) for o in p.objectives), r["trial"]))


def _csv(rows: list[dict[str, Any]]) -> str:
    fields = ["trial", *[d.name for d in SPACE], "hidden", *FIGURES, "feasible", "pareto", "worker", "retry_of"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def state_counts(study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def write_results(p, study, log=print) -> dict[str, Any]:
    """Write the result files (and verify the top points); the content of pareto.json."""
    from spikeforge.search_storage import redact

    rows = trial_rows(p, study)
    front = front_order(p, rows)
    remove_leftovers(p, study)
    result: dict[str, Any] = {
        "schema": RESULTS_SCHEMA, "schema_version": 1, "study": p.study_name, "storage": redact(p.storage_url),
        "options": p.identity(), "trials_wanted": p.opts.trials, "states": state_counts(study),
        "complete": len(rows), "feasible": sum(r["feasible"] for r in rows), "front": front, "verified": [],
    }
    atomic_write_text(p.out / "trials.csv", _csv(rows))
    atomic_write_text(p.out / "pareto.csv", _csv(front))
    _write_json(p, result)
    if rows:
        plot_front(p, rows, p.out / "pareto.png")
    log(f"{len(rows)} complete trials ({result['states']}), {result['feasible']} feasible, {len(front)} on the "
        f"Pareto front; wrote {p.out / 'pareto.csv'}, pareto.json, pareto.png, trials.csv")
    for r in front[: p.opts.verify_top]:
        record = verify_point(p, study, r, log)
        result["verified"].append(record)
        _write_json(p, result)
    bad = [v for v in result["verified"] if not v["ok"]]
    if bad:
        raise SpikeforgeError(f"RTL verification failed for trial {bad[0]['trial']}: {bad[0]['message']} "
                              f"(details in {p.out / 'pareto.json'})")
    return result


def remove_leftovers(p, study) -> None:
    """Temp folders of trials that ended without renaming theirs into place (a killed worker):
    only those of trials that are no longer RUNNING, and only names this search gives them. Also
    the renamed folder of a trial that then FAILED (a worker killed between the rename and telling
    the study): its figures are in no trial, so nothing refers to it."""
    import re
    import shutil

    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    if p.trials_dir.is_dir():
        for entry in p.trials_dir.iterdir():
            m = re.fullmatch(r"\.(\d{5})\.tmp-\w+", entry.name)
            if m and entry.is_dir() and states.get(int(m.group(1))) != "RUNNING":
                shutil.rmtree(entry, ignore_errors=True)
            elif re.fullmatch(r"\d{5}", entry.name) and entry.is_dir() and states.get(int(entry.name)) == "FAIL":
                shutil.rmtree(entry, ignore_errors=True)


def _write_json(p, result: dict[str, Any]) -> None:
    from spikeforge.sim.estimate import json_default

    atomic_write_text(p.out / "pareto.json", json.dumps(result, indent=2, default=json_default) + "\n")


def verify_point(p, study, row: dict[str, Any], log=print) -> dict[str, Any]:
    """Generate the core of one front point and run a sample of test images through its RTL,
    bit- and cycle-exact against the golden model (the flow's generate + verify stages)."""
    import numpy as np

    from spikeforge import api
    from spikeforge.hw.layout import config_for_network
    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import load_artifact
    from spikeforge.search import evaluate
    from spikeforge.sim import rtl

    number = row["trial"]
    folder = p.trials_dir / f"{number:05d}"
    record: dict[str, Any] = {"trial": number, "ok": False, "rebuilt": False}
    if not (folder / "artifact").is_dir():  # it ran on another machine: rebuild it here, then compare
        log(f"verify trial {number}: rebuilding its artifact here from its parameters")
        params = {d.name: row[d.name] for d in SPACE}
        again = evaluate(p, params, folder)
        record.update(rebuilt=True, rebuilt_accuracy=again["accuracy"])
        if again["accuracy"] != row["accuracy"]:
            record["message"] = (f"the rebuilt model's accuracy {again['accuracy']} differs from the recorded "
                                 f"{row['accuracy']} (training is not bit-reproducible across these machines)")
            return record
    net, manifest = load_artifact(folder / "artifact")
    cfg = config_for_network(net, int(row["rows"]), int(row["cols"]), int(row["weight_bits"]),
                             int(row["skip_window"]))
    vdir = p.out / "verify" / f"{number:05d}"
    log(f"verify trial {number}: generate {cfg.rows}x{cfg.cols} core, {p.opts.samples} images in {p.opts.sim}")
    gen = api.generate(vdir / "rtl", rows=cfg.rows, cols=cfg.cols, model=folder / "artifact",
                       weight_bits=cfg.weight_bits, skip_window=cfg.skip_window)
    if gen.config != cfg:
        record["message"] = f"generate built config {gen.config.digest()}, the search estimated {cfg.digest()}"
        return record
    rtl.require_simulator(p.opts.sim)
    ds = load_dataset(manifest["dataset"]["name"], p.opts.data_dir)
    rng = np.random.default_rng(p.opts.seed)
    pick = np.sort(rng.choice(len(ds.x_test), size=min(p.opts.samples, len(ds.x_test)), replace=False))
    report = rtl.check_network(cfg, net, ds.x_test[pick], sim=p.opts.sim, seed=p.opts.seed, baked=True)
    data = report.to_dict()
    data["image_indices"] = pick.tolist()
    from spikeforge.sim.estimate import json_default

    atomic_write_text(vdir / "verify.json", json.dumps(data, indent=2, default=json_default) + "\n")
    record.update(ok=bool(report.ok), config_digest=cfg.digest(), lint=gen.lint, samples=len(pick),
                  verilog=os.path.relpath(gen.verilog, p.out), verify_json=os.path.relpath(vdir / "verify.json", p.out),
                  message="bit- and cycle-exact" if report.ok else
                  (report.mismatch.message() if report.mismatch else "mismatch"))
    log(f"verify trial {number}: {'ok' if report.ok else 'FAILED'} ({record['message']})")
    return record


def plot_front(p, rows: list[dict[str, Any]], path: Path) -> None:
    """The first objective against each other one: every complete trial (x: violates a constraint),
    the front ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first, others = p.objectives[0], p.objectives[1:] or p.objectives[:1]
    fig, axes = plt.subplots(1, len(others), figsize=(5 * len(others), 4.2), squeeze=False)
    fy = OBJECTIVES[first][1]
    for ax, other in zip(axes[0], others, strict=True):
        fx = OBJECTIVES[other][1]
        ok = [r for r in rows if r["feasible"]]
        bad = [r for r in rows if not r["feasible"]]
        ax.scatter([r[fx] for r in ok], [r[fy] for r in ok], s=18, alpha=0.6, label="trials")
        if bad:
            ax.scatter([r[fx] for r in bad], [r[fy] for r in bad], s=14, marker="x", alpha=0.5,
                       label="violate constraints")
        front = [r for r in ok if r["pareto"]]
        ax.scatter([r[fx] for r in front], [r[fy] for r in front], s=90, facecolors="none", edgecolors="k",
                   label=f"Pareto front ({', '.join(p.objectives)})")
        for r in front:
            ax.annotate(f"{r['rows']}x{r['cols']}/w{r['weight_bits']}/i{r['input_bits']}", (r[fx], r[fy]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
        if OBJECTIVES[other][0] == "minimize" and min(r[fx] for r in rows) > 0:
            ax.set_xscale("log")
        ax.set_xlabel(f"{other} ({fx})")
        ax.set_ylabel(f"{first} ({fy})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"spikeforge search: study {p.study_name}", fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
