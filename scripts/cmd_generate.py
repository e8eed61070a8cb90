"""spikeforge generate: Verilog for an R x C accumulate-only, zero-skipping systolic core.

Also writes core.json, the memory init files of a model, and a FuseSoC core (hw/fusesoc.py) with
the lint waivers and a self-checking smoke testbench.
"""

from __future__ import annotations

import argparse

HELP = "generate Verilog for an R x C accumulate-only systolic core"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, required=True, metavar="R", help="PE array rows")
    parser.add_argument("--cols", type=int, required=True, metavar="C", help="PE array columns")
    parser.add_argument("--weight-bits", type=int, default=None, metavar="N",
                        help="signed weight width (default: CoreConfig's, or the model's)")
    parser.add_argument("--acc-bits", type=int, default=None, metavar="N",
                        help="signed accumulator width (default: CoreConfig's, or the model's worst case)")
    parser.add_argument("--skip-window", type=int, default=None, metavar="W",
                        help="spike-mask bits scanned per beat by the zero-skipper (default: 32)")
    parser.add_argument("--weight-depth", type=int, default=None, metavar="N",
                        help="words per PE weight memory (default: CoreConfig's, or what the model needs)")
    parser.add_argument("--threshold-depth", type=int, default=None, metavar="N",
                        help="words per column threshold memory")
    parser.add_argument("--max-inputs", type=int, default=None, metavar="N", help="largest layer fan-in")
    parser.add_argument("--model", metavar="ARTIFACT", default=None,
                        help="artifact directory whose weights/thresholds initialise the memories")
    parser.add_argument("--no-lint", action="store_true", help="skip `verilator --lint-only -Wall`")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier output of another spikeforge command in --out")


def run(args: argparse.Namespace) -> int:
    from spikeforge.api import generate

    result = generate(
        args.out, rows=args.rows, cols=args.cols, model=args.model, weight_bits=args.weight_bits,
        acc_bits=args.acc_bits, skip_window=args.skip_window, weight_depth=args.weight_depth,
        threshold_depth=args.threshold_depth, max_inputs=args.max_inputs, lint=not args.no_lint,
        force=args.force,
    )
    cfg = result.config
    lint_note = "lint skipped" if result.lint is None else f"verilator --lint-only -Wall: {result.lint}"
    print(f"wrote {result.verilog} (top {result.top}, {cfg.rows}x{cfg.cols} PEs, "
          f"{cfg.weight_bits}-bit weights, {cfg.acc_bits}-bit accumulators); {lint_note}")
    core = result.directory / result.manifest["files"]["fusesoc_core"]
    print(f"FuseSoC core: {core} (targets lint, sim, synth; see docs/FUSESOC.md)")
    return 0
