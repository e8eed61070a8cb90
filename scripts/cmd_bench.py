"""spikeforge bench: the measured figures of the core, the golden model and the Verilator build.

Each benchmark is a script in scripts/ that can also be run on its own:
- core: cycles against spike density (256 x 64 layer, 8x8 array) and golden-model inferences/s
  (`python -m spikeforge.scripts.bench_core`);
- verilator: simulated cycles/s of an 8x8 core and the whole-network check's wall time
  (`python -m spikeforge.scripts.bench_verilator`);
- peers: cycles vs the SynOps/PE bound, energy vs the dense and the zero-skipping int8 DNN, latency
  vs the published FPGA SNN accelerators, on one model (`python -m spikeforge.scripts.bench_peers`).
`--json` prints the figures as one JSON object instead of the text; `--out DIR` also writes them
to DIR/bench.json. Figures are medians; compare them only on a quiet machine.
"""

from __future__ import annotations

import argparse

HELP = "benchmark the core's cycles vs spike density, the golden model, the Verilator build and the peers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--which", choices=("core", "verilator", "peers", "all"), default="all",
                        help="what to benchmark (default all)")
    parser.add_argument("--model", default=None, metavar="ARTIFACT",
                        help="artifact for the whole-network timing (verilator) and the peers ratios "
                        "(default: the default digits model, trained here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    parser.add_argument("--out", default=None, metavar="DIR", help="also write the figures to DIR/bench.json")


def run(args: argparse.Namespace) -> int:
    import json
    import platform
    from pathlib import Path

    from spikeforge import __version__, atomic_write_text

    result: dict = {"schema": "spikeforge-bench", "schema_version": 1, "spikeforge": __version__,
                    "python": platform.python_version(), "seed": args.seed}
    if args.which in ("core", "all"):
        from spikeforge.scripts import bench_core

        result["core"] = bench_core.measure(seed=args.seed)
        if not args.json:
            bench_core.print_report(result["core"])
    if args.which in ("verilator", "all"):
        from spikeforge.scripts import bench_verilator

        result["verilator"] = bench_verilator.measure(model=args.model, seed=args.seed)
        if not args.json:
            bench_verilator.print_report(result["verilator"])
    if args.which in ("peers", "all"):
        from spikeforge.scripts import bench_peers

        result["peers"] = bench_peers.measure(model=args.model, seed=args.seed)
        if not args.json:
            bench_peers.print_report(result["peers"])
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        print(text, end="")
    if args.out:
        path = Path(args.out) / "bench.json"
        atomic_write_text(path, text)
        if not args.json:
            print(f"figures: {path}")
    return 0
