"""spikeforge sweep: estimate many (rows, cols, weight bits, model) points and report the Pareto front."""

from __future__ import annotations

import argparse
import os
from typing import Any

from spikeforge.arguments import arg_type


def _int_list(text: str) -> list[int]:
    """'4,8,16' -> [4, 8, 16]; argparse turns the ValueError into a one-line usage error."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        msg = f"{text!r} is not a comma-separated list of integers, e.g. 4,8,16"
        raise argparse.ArgumentTypeError(msg) from None
    if not values:
        raise argparse.ArgumentTypeError("empty list; give e.g. 4,8,16")
    return values


HELP = "sweep array size and weight width over models and report the latency/area/energy trade-off"

CSV_FIELDS = (
    "model",
    "rows",
    "cols",
    "weight_bits",
    "acc_bits",
    "steps",
    "membrane_bits",
    "feasible",
    "reason",
    "accuracy",
    "cycles_mean",
    "cycles_p99",
    "dense_cycles_mean",
    "speedup_vs_dense",
    "latency_us",
    "fmax_mhz",
    "lut4",
    "ff",
    "ebr",
    "dpr16x4",
    "ge_logic",
    "area_source",
    "energy_nj",
    "pj_per_synop",
    "dnn_energy_nj",
    "pareto",
    "pareto_acc_energy",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=_int_list, required=True, metavar="LIST", help="e.g. 4,8,16")
    parser.add_argument("--cols", type=_int_list, required=True, metavar="LIST", help="e.g. 4,8,16")
    parser.add_argument("--weight-bits", type=_int_list, required=True, metavar="LIST", help="e.g. 4,8")
    parser.add_argument(
        "--model",
        action="extend",
        nargs="+",
        required=True,
        metavar="ARTIFACT",
        help="artifact directories (repeat --model or list several)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="parallel workers (default: all cores)",
    )
    parser.add_argument("--fast", action="store_true", help="analytic area model instead of synthesis")
    parser.add_argument("--target", choices=("ecp5", "ice40", "asic"), default="ecp5", help="area target")
    parser.add_argument(
        "--fmax",
        type=arg_type("fmax"),
        default=None,
        metavar="MHZ",
        help="clock for microseconds (default: routed Fmax, else 100 MHz)",
    )
    parser.add_argument("--images", type=arg_type("images"), default=None, metavar="N",
                        help="use the first N test images")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="dataset files (mnist, cifar)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--force", action="store_true",
                        help="write into an earlier output of another spikeforge command in --out")


_CACHE: dict[tuple, Any] = {}


def _load(path: str, data_dir: str | None, images: int | None):
    key = (path, data_dir, images)
    if key not in _CACHE:
        from spikeforge.sim.estimate import load_model_and_data

        _CACHE[key] = load_model_and_data(path, data_dir, images)
    return _CACHE[key]


def evaluate_point(point: dict[str, Any]) -> dict[str, Any]:
    """One sweep point (runs in a worker process): a CSV row; infeasible configs get a reason."""
    from spikeforge import SpikeforgeError
    from spikeforge.hw.layout import config_for_network
    from spikeforge.sim.estimate import area_summary, estimate

    net, _, x, y = _load(point["model"], point["data_dir"], point["images"])
    row: dict[str, Any] = {
        "model": point["model"],
        "rows": point["rows"],
        "cols": point["cols"],
        "weight_bits": point["weight_bits"],
        "feasible": False,
        "reason": "",
    }
    try:
        cfg = config_for_network(net, point["rows"], point["cols"], point["weight_bits"])
    except SpikeforgeError as exc:
        row["reason"] = str(exc)
        return row
    rep = estimate(net, cfg, x, labels=y, target=point["target"], fast=point["fast"], fmax_mhz=point["fmax"])
    lat, en = rep["latency"], rep["energy"]
    area = area_summary(rep["area"])
    fast = rep["area"]["fast"]
    row.update(
        feasible=True,
        acc_bits=cfg.acc_bits,
        # multi-step SNNs (BNTT, converted) next to one-step ones: the steps the core runs per image
        steps=net.multistep.exit_step if net.multistep is not None else 1,
        membrane_bits=cfg.membrane_bits,
        accuracy=rep["accuracy"],
        cycles_mean=lat["cycles"]["mean"],
        cycles_p99=lat["cycles"]["p99"],
        dense_cycles_mean=lat["dense_cycles"]["mean"],
        speedup_vs_dense=lat["speedup_vs_dense"],
        latency_us=lat["latency_us"]["mean"],
        fmax_mhz=lat["fmax_mhz"],
        lut4=area.get("lut4", fast["lut4"]),
        ff=area.get("ff", fast["ff"]),
        ebr=area.get("ebr", fast["ebr"]),
        dpr16x4=area.get("dpr16x4", fast["dpr16x4"]),
        ge_logic=area.get("ge_logic", fast["ge_logic"]),
        area_source=area["source"],
        energy_nj=en["snn"]["total_pj"] / 1000,
        pj_per_synop=en["snn"]["pj_per_synop"],
        dnn_energy_nj=en["dnn_int8"]["total_pj"] / 1000,
    )
    return row


def _plot(rows: list[dict[str, Any]], out, area_key: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ok = [r for r in rows if r["feasible"]]
    specs = (
        ("pareto_latency_area.png", area_key, "latency_us", "pareto", f"{area_key}", "latency (us, mean)"),
        (
            "pareto_accuracy_energy.png",
            "energy_nj",
            "accuracy",
            "pareto_acc_energy",
            "energy per inference (nJ)",
            "accuracy (integer, test set)",
        ),
    )
    for name, xk, yk, pk, xl, yl in specs:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for model in sorted({r["model"] for r in ok}):
            pts = [r for r in ok if r["model"] == model]
            ax.scatter(
                [r[xk] for r in pts],
                [r[yk] for r in pts],
                label=os.path.basename(model.rstrip("/")),
                alpha=0.7,
            )
        front = sorted((r for r in ok if r[pk]), key=lambda r: r[xk])
        ax.plot([r[xk] for r in front], [r[yk] for r in front], "k--", lw=1, label="Pareto front")
        ax.scatter([r[xk] for r in front], [r[yk] for r in front], facecolors="none", edgecolors="k", s=120)
        for r in front:
            ax.annotate(
                f"{r['rows']}x{r['cols']}/w{r['weight_bits']}",
                (r[xk], r[yk]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / name
        tmp = out / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        os.replace(tmp, path)
        written.append(str(path))
    return written


def run(args: argparse.Namespace) -> int:
    import csv
    import io
    import json
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from spikeforge import atomic_write_text
    from spikeforge.hw.config import ConfigError
    from spikeforge.pareto import pareto_mask
    from spikeforge.progress import Progress

    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs} must be >= 1")
    for name, values in (("--rows", args.rows), ("--cols", args.cols), ("--weight-bits", args.weight_bits)):
        if any(v < 1 for v in values):
            raise ConfigError(f"{name} values must be >= 1, got {values}")
    models = [str(Path(m)) for m in args.model]
    for m in models:  # fail fast, in the parent, on a bad artifact or dataset
        _load(m, args.data_dir, args.images)
    points = [
        {
            "model": m,
            "rows": r,
            "cols": c,
            "weight_bits": wb,
            "fast": args.fast,
            "target": args.target,
            "fmax": args.fmax,
            "data_dir": args.data_dir,
            "images": args.images,
        }
        for m in models
        for r in args.rows
        for c in args.cols
        for wb in args.weight_bits
    ]
    from spikeforge.outputs import claim_dir

    out = claim_dir(args.out, "sweep", force=args.force, inputs=[*models, args.data_dir])
    rows: list[dict[str, Any]] = [{} for _ in points]
    columns = [TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("sweep", total=len(points))
        if args.jobs == 1:
            for i, p in enumerate(points):
                rows[i] = evaluate_point(p)
                progress.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = {pool.submit(evaluate_point, p): i for i, p in enumerate(points)}
                for fut in as_completed(futures):
                    rows[futures[fut]] = fut.result()
                    progress.advance(task)
    ok = [r for r in rows if r["feasible"]]
    area_key = "ge_logic" if args.target == "asic" else "lut4"
    for r in rows:
        r.setdefault("pareto", False)
        r.setdefault("pareto_acc_energy", False)
    for r, flag in zip(ok, pareto_mask([(r["latency_us"], r[area_key]) for r in ok]), strict=True):
        r["pareto"] = flag
    acc = [(-(r["accuracy"] or 0.0), r["energy_nj"]) for r in ok]
    for r, flag in zip(ok, pareto_mask(acc), strict=True):
        r["pareto_acc_energy"] = flag
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "sweep.csv", buf.getvalue())
    atomic_write_text(
        out / "sweep.json",
        json.dumps(
            {"schema": "spikeforge-sweep", "schema_version": 1, "area_key": area_key, "points": rows},
            indent=2,
        )
        + "\n",
    )
    plots = _plot(rows, out, area_key) if ok else []
    front = [r for r in ok if r["pareto"]]
    print(
        f"{len(ok)}/{len(rows)} feasible points; Pareto (latency vs {area_key}): "
        + ", ".join(f"{Path(r['model']).name}:{r['rows']}x{r['cols']}/w{r['weight_bits']}" for r in front)
    )
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.json'}" + (f", {', '.join(plots)}" if plots else ""))
    return 0
