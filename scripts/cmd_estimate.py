"""spikeforge estimate: latency, area and energy of a model on an R x C core, before any vendor tool."""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type

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
        type=arg_type("fmax"),
        default=None,
        metavar="MHZ",
        help="clock for microseconds (default: routed ECP5 Fmax, else 100 MHz)",
    )
    parser.add_argument("--images", type=arg_type("images"), default=None, metavar="N",
                        help="use the first N test images")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="dataset files (mnist, cifar)")
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="where to write estimate.json and estimate.md"
    )
    add_force(parser)


def add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="write into an earlier output of another spikeforge command in --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spikeforge.api import estimate
    from spikeforge.outputs import claim_dir
    from spikeforge.sim.estimate import area_summary

    out = claim_dir(Path(args.out) if args.out else Path(args.model) / "estimate", "estimate", force=args.force,
                    inputs=[args.model, args.data_dir])
    rep = estimate(args.model, rows=args.rows, cols=args.cols, weight_bits=args.weight_bits,
                   skip_window=args.skip_window, target=args.target, fast=args.fast, fmax=args.fmax,
                   images=args.images, data_dir=args.data_dir, out=out)
    lat, en, area = rep["latency"], rep["energy"], area_summary(rep["area"])
    cfg = rep["config"]
    print(
        f"{cfg['rows']}x{cfg['cols']} core, {lat['images']} images: {lat['cycles']['mean']:.0f} cycles mean "
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
    print(f"wrote {out / 'estimate.json'} and {out / 'estimate.md'}")
    return 0
