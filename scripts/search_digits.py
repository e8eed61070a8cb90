"""The digits co-design search against the committed sweep (docs/results/sweep-digits.md).

    python -m spikeforge.scripts.search_digits [--out out/search-digits] [--trials 40] [--seeds 4]
                                               [--doc docs/results/search-digits.md]

1. `spikeforge search` on digits (accuracy, latency, LUT4; accuracy >= 0.97), at most 40 trials.
2. The sweep's Pareto points on accuracy vs latency and accuracy vs LUT4 (its committed CSV), and
   for each the search point that matches or beats it (accuracy >=, cost <=), point by point.
3. Every point in a claim is retrained with `--seeds` further training seeds (1..S; the search
   chose on seed 0, so those are the unbiased figures) and its accuracy reported as mean and sd;
   the sweep's points are retrained the same way (Hoyer MLP 64-128-10, 8-bit, its lambda).
4. Markdown + JSON + PNG. Every figure comes from the runs; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from spikeforge import atomic_write_text
from spikeforge.pareto import dominates, pareto_mask
from spikeforge.search import SearchOptions, evaluate, hidden_widths, plan, run_search
from spikeforge.search_space import SPACE

PLANES = (("latency", "latency_us", "us"), ("LUT4", "lut4", "LUT4"))
SWEEP_CSV = Path(__file__).resolve().parents[1] / "docs" / "results" / "sweep-digits" / "sweep.csv"


def sweep_points() -> list[dict]:
    rows = []
    for r in csv.DictReader(SWEEP_CSV.open()):
        lam = float(Path(r["model"]).name.removeprefix("lambda"))
        rows.append({"label": f"sweep lambda{lam:g} {r['rows']}x{r['cols']}", "accuracy": float(r["accuracy"]),
                     "latency_us": float(r["latency_us"]), "lut4": float(r["lut4"]),
                     "params": {"lam": lam, "hidden_width": 128, "hidden_layers": 1, "weight_bits": 8,
                                "input_bits": 8, "rows": int(r["rows"]), "cols": int(r["cols"]), "skip_window": 32}})
    return rows


def front(points: list[dict], key: str) -> list[dict]:
    mask = pareto_mask([(-p["accuracy"], p[key]) for p in points])
    return sorted((p for p, m in zip(points, mask, strict=True) if m), key=lambda p: p[key])


def seeds_of(p, params: dict, seeds: int, folder: Path) -> dict:
    """Accuracy (mean, sd) and hardware figures of `params` retrained with seeds 1..seeds."""
    runs = []
    for s in range(1, seeds + 1):
        q = dataclasses.replace(p, opts=dataclasses.replace(p.opts, seed=s))
        target = folder / f"seed{s}"
        cached = target / "figures.json"
        if cached.is_file():
            runs.append(json.loads(cached.read_text()))
            continue
        fig = evaluate(q, params, target)
        atomic_write_text(cached, json.dumps(fig) + "\n")
        runs.append(fig)
    acc = [r["accuracy"] for r in runs]
    return {"seeds": list(range(1, seeds + 1)), "accuracy": acc, "accuracy_mean": statistics.mean(acc),
            "accuracy_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "latency_us_mean": statistics.mean(r["latency_us"] for r in runs),
            "lut4_mean": statistics.mean(r["lut4"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/search-digits")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=4, help="further training seeds per claimed point")
    ap.add_argument("--verify-top", type=int, default=3)
    ap.add_argument("--doc", default="docs/results/search-digits.md")
    args = ap.parse_args(argv)
    out = Path(args.out)
    opts = SearchOptions(out=str(out / "search"), dataset="digits", arch="mlp", trials=args.trials,
                         objectives="accuracy,latency,luts", constraints=("accuracy>=0.97",),
                         verify_top=args.verify_top, seed=0)
    cmd = (f"spikeforge search --dataset digits --arch mlp --trials {args.trials} --objectives accuracy,latency,luts "
           f"--constraint 'accuracy>=0.97' --verify-top {args.verify_top} --out {opts.out}")
    result = run_search(opts, log=lambda t: print(t, flush=True))
    p = plan(opts)
    trials = list(csv.DictReader((out / "search" / "trials.csv").open()))
    found = [{"label": f"trial {r['trial']}", "trial": int(r["trial"]), "accuracy": float(r["accuracy"]),
              "latency_us": float(r["latency_us"]), "lut4": float(r["lut4"]), "feasible": r["feasible"] == "True",
              "params": {d.name: (float(r[d.name]) if d.log_range else int(r[d.name])) for d in SPACE}}
             for r in trials]
    sweep = sweep_points()
    report: dict = {"command": cmd, "script": "python -m spikeforge.scripts.search_digits", "trials": args.trials,
                    "states": result["states"], "verified": result["verified"], "planes": {}}
    seeded: dict[str, dict] = {}

    def seeded_of(point: dict) -> dict:
        if point["label"] not in seeded:
            folder = out / "seeds" / point["label"].replace(" ", "-")
            seeded[point["label"]] = seeds_of(p, point["params"], args.seeds, folder)
        return seeded[point["label"]]

    for name, key, unit in PLANES:
        sweep_front = front(sweep, key)
        floor = min(s["accuracy"] for s in sweep_front) - 0.01
        candidates = [f for f in front(found, key) if f["accuracy"] >= floor]  # retrained with the seeds
        rows = []
        for s in sweep_front:
            ss = seeded_of(s)
            row = {"sweep": s["label"], "sweep_accuracy": s["accuracy"], "sweep_cost": s[key], "sweep_seeds": ss,
                   "match": None, "match_mean": None}
            beaters = [f for f in found if f["accuracy"] >= s["accuracy"] and f[key] <= s[key]]
            if beaters:  # on the search's own figures (seed 0)
                best = min(beaters, key=lambda f: (f[key], -f["accuracy"]))
                row.update(match=best["label"], match_accuracy=best["accuracy"], match_cost=best[key],
                           match_params=best["params"])
            cost = "latency_us_mean" if key == "latency_us" else "lut4_mean"
            means = [f for f in candidates if seeded_of(f)["accuracy_mean"] >= ss["accuracy_mean"]
                     and seeded_of(f)[cost] <= ss[cost]]
            if means:  # on means over the further seeds, for both sides
                best = min(means, key=lambda f: (seeded_of(f)[cost], -seeded_of(f)["accuracy_mean"]))
                row.update(match_mean=best["label"], match_mean_params=best["params"], match_mean_seeds=seeded_of(best),
                           match_mean_cost=seeded_of(best)[cost], sweep_mean_cost=ss[cost])
            rows.append(row)
        undominated = [f["label"] for f in found
                       if not any(dominates((-s["accuracy"], s[key]), (-f["accuracy"], f[key])) for s in sweep)]
        report["planes"][name] = {"key": key, "unit": unit, "rows": rows, "undominated_by_sweep": undominated,
                                  "search_front": front(found, key),
                                  "candidates": {f["label"]: seeded_of(f) for f in candidates}}
    atomic_write_text(out / "search-digits.json", json.dumps({**report, "seeded": seeded}, indent=2) + "\n")
    doc = Path(args.doc)
    plot(sweep, found, report, doc.with_suffix(".png"))
    atomic_write_text(doc, markdown(report, seeded, args, doc.with_suffix(".png").name))
    ok = all(r["match"] for plane in report["planes"].values() for r in plane["rows"])
    ok_mean = all(r["match_mean"] for plane in report["planes"].values() for r in plane["rows"])
    print(f"wrote {doc} and {doc.with_suffix('.png')}; every sweep front point matched on seed 0: {ok}, "
          f"on seed means: {ok_mean}")
    return 0 if ok and ok_mean else 1


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def markdown(report: dict, seeded: dict, args, png: str) -> str:
    lines = ["# Co-design search on digits against the committed sweep", "",
             "Made by (one command; it reruns the search, the seed runs and this page):", "", "```",
             f"python -m spikeforge.scripts.search_digits --trials {args.trials} --seeds {args.seeds}", "```", "",
             f"which runs `{report['command']}` and then retrains every claimed point with training seeds "
             f"1..{args.seeds}. The search chose on seed 0, so seed 0 figures are biased upward; the "
             f"seed columns are the unbiased ones. Study states: {report['states']}.", "",
             f"![search vs sweep]({png})", ""]
    for name, plane in report["planes"].items():
        unit = plane["unit"]
        lines += [f"## Accuracy vs {name}, point by point", "",
                  f"Sweep Pareto points (committed CSV) and the search point that matches or beats each: on the "
                  f"search's own figures (seed 0; accuracy >=, {unit} <=), and on means over training seeds "
                  f"1..{args.seeds} for both sides (mean accuracy >=, mean {unit} <=).", "",
                  f"| sweep point | acc. seed 0 | acc. seeds 1..{args.seeds} | {unit} | search point (seed 0) | "
                  f"params | acc. | {unit} | search point (seed means) | acc. seeds 1..{args.seeds} | {unit} |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in plane["rows"]:
            ss = r["sweep_seeds"]
            cells = [r["sweep"], _pct(r["sweep_accuracy"]),
                     f"{_pct(ss['accuracy_mean'])} ± {100 * ss['accuracy_sd']:.2f}", f"{r['sweep_cost']:.4g}"]
            if r["match"]:
                cells += [r["match"], _params(r["match_params"]), _pct(r["match_accuracy"]), f"{r['match_cost']:.4g}"]
            else:
                cells += ["none", "", "", ""]
            if r["match_mean"]:
                ms = r["match_mean_seeds"]
                cells += [f"{r['match_mean']} ({_params(r['match_mean_params'])})",
                          f"{_pct(ms['accuracy_mean'])} ± {100 * ms['accuracy_sd']:.2f}", f"{r['match_mean_cost']:.4g}"]
            else:
                cells += ["none", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Search points that no sweep point dominates on accuracy vs {name} (seed 0): "
                  f"{len(plane['undominated_by_sweep'])} ({', '.join(plane['undominated_by_sweep'][:12])}).", ""]
    if report["verified"]:
        lines += ["## RTL check of the top Pareto points", "", "| trial | result | samples | Verilog |",
                  "|---|---|---|---|"]
        lines += [f"| {v['trial']} | {v['message']} | {v.get('samples', '')} | {v.get('verilog', '')} |"
                  for v in report["verified"]]
        lines.append("")
    return "\n".join(lines)


def _params(prm: dict) -> str:
    return (f"{prm['rows']}x{prm['cols']} w{prm['weight_bits']} in{prm['input_bits']} h{hidden_widths(prm)} "
            f"lam {prm['lam']:.1e} skip {prm['skip_window']}")


def plot(sweep: list[dict], found: list[dict], report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, (name, plane) in zip(axes, report["planes"].items(), strict=True):
        key = plane["key"]
        ax.scatter([s[key] for s in sweep], [100 * s["accuracy"] for s in sweep], c="0.6", s=16, label="sweep")
        sf = front(sweep, key)
        ax.plot([s[key] for s in sf], [100 * s["accuracy"] for s in sf], "k--", lw=1, label="sweep front")
        ax.scatter([f[key] for f in found], [100 * f["accuracy"] for f in found], s=16, alpha=0.6,
                   label="search trials")
        ax.set_ylim(max(80.0, min(100 * f["accuracy"] for f in found) - 1), 100)
        ff = plane["search_front"]
        ax.plot([f[key] for f in ff], [100 * f["accuracy"] for f in ff], "r-", lw=1.2, marker="o", ms=5,
                label="search front")
        ax.set_xscale("log")
        ax.set_xlabel(f"{name} ({plane['unit']})")
        ax.set_ylabel("integer accuracy, test set (%), seed 0")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
