"""spikeforge bench: the measured figures of the core, the golden model and the Verilator build.

Each benchmark is a script in scripts/ that can also be run on its own:
- core: cycles against spike density (256 x 64 layer, 8x8 array) and golden-model inferences/s
  (`python -m spikeforge.scripts.bench_core`);
- verilator: simulated cycles/s of an 8x8 core and the whole-network check's wall time
  (`python -m spikeforge.scripts.bench_verilator`).
"""

from __future__ import annotations

import argparse

HELP = "benchmark the core's cycles vs spike density, the golden model and the Verilator build"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--which", choices=("core", "verilator", "all"), default="all",
                        help="what to benchmark (default all)")
    parser.add_argument("--model", default=None, metavar="ARTIFACT",
                        help="artifact for the whole-network timing (verilator)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    rc = 0
    if args.which in ("core", "all"):
        from spikeforge.scripts import bench_core

        rc |= bench_core.main(["--seed", str(args.seed)])
    if args.which in ("verilator", "all"):
        from spikeforge.scripts import bench_verilator

        argv = ["--seed", str(args.seed)] + (["--model", args.model] if args.model else [])
        rc |= bench_verilator.main(argv)
    return rc
