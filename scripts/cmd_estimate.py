"""spikeforge estimate: latency, area and energy of a model on an R x C core, before any vendor tool."""

from __future__ import annotations

import argparse

HELP = "estimate latency, area and energy of a model on an R x C core"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="ARTIFACT", help="artifact directory")
    parser.add_argument("--rows", type=int, required=True, metavar="R", help="PE array rows")
    parser.add_argument("--cols", type=int, required=True, metavar="C", help="PE array columns")
    parser.add_argument(
        "--weight-bits",
        type=int,
        default=None,
        metavar="B",
        help="hardware weight width (default: what the model needs)",
    )
    parser.add_argument(
        "--skip-window", type=int, default=32, metavar="W", help="zero-skip window (default 32)"
    )
    parser.add_argument(
        "--target", choices=("ecp5", "ice40", "asic"), default="ecp5", help="cost model target (default ecp5)"
    )
    parser.add_argument("--fast", action="store_true", help="analytic area estimate only (no synthesis)")
    parser.add_argument(
        "--fmax",
        type=float,
        default=None,
        metavar="MHZ",
        help="clock for microseconds (default: routed ECP5 Fmax, else 100 MHz)",
    )
    parser.add_argument("--images", type=int, default=None, metavar="N", help="use the first N test images")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="dataset files (mnist, cifar)")
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="where to write estimate.json and estimate.md"
    )


def load_model_and_data(path: str, data_dir: str | None = None, images: int | None = None):
    """(IntegerNetwork, manifest, x_test, y_test) of an artifact, on its manifest's dataset."""
    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import load_artifact

    net, manifest = load_artifact(path)
    name = manifest.get("dataset", {}).get("name")
    ds = load_dataset(name, data_dir)
    x, y = ds.x_test, ds.y_test
    if images is not None:
        x, y = x[:images], y[:images]
    return net, manifest, x, y


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spikeforge.hw.config import ConfigError
    from spikeforge.sim.estimate import area_summary, config_for_network, estimate, write_reports

    if args.images is not None and args.images < 1:
        raise ConfigError(f"--images {args.images} must be >= 1")
    net, manifest, x, y = load_model_and_data(args.model, args.data_dir, args.images)
    cfg = config_for_network(net, args.rows, args.cols, args.weight_bits, args.skip_window)
    rep = estimate(net, cfg, x, labels=y, target=args.target, fast=args.fast, fmax_mhz=args.fmax)
    rep["model"] = {
        "path": str(Path(args.model).resolve()),
        "dataset": manifest.get("dataset", {}).get("name"),
    }
    out = Path(args.out) if args.out else Path(args.model) / "estimate"
    jpath, mpath = write_reports(rep, out)
    lat, en, area = rep["latency"], rep["energy"], area_summary(rep["area"])
    print(
        f"{cfg.rows}x{cfg.cols} core, {lat['images']} images: {lat['cycles']['mean']:.0f} cycles mean "
        f"({lat['cycles']['p99']:.0f} p99), {lat['latency_us']['mean']:.2f} us at {lat['fmax_mhz']:.1f} MHz, "
        f"{lat['speedup_vs_dense']:.2f}x faster than dense"
    )
    what = ", ".join(f"{k} {v:.0f}" for k, v in area.items() if isinstance(v, int | float))
    print(f"area ({area['source']}, {args.target}): {what}")
    print(
        f"energy: {en['snn']['total_pj'] / 1000:.3f} nJ/inference "
        f"({en['snn']['pj_per_synop']:.3f} pJ/SynOp), "
        f"int8 DNN {en['dnn_int8']['total_pj'] / 1000:.3f} nJ"
    )
    print(f"wrote {jpath} and {mpath}")
    return 0
