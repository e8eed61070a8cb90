"""spikeforge verify: prove the generated RTL bit- and cycle-exact against the golden models.

Random tile vectors for the array shape and, with --model, N test images of the model's dataset
run through the generated Verilog under cocotb (Verilator or Icarus). Every output beat's
values, spikes and cycle are compared with the golden models; the exit status is 0 only when
every check is bit-exact and cycle-exact (and every predicted class equals the golden model's).
"""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type

HELP = "simulate the generated RTL (cocotb) and check it bit- and cycle-exact against the golden model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=None, metavar="R",
                        help="PE array rows (default: the model artifact's core, else 8)")
    parser.add_argument("--cols", type=int, default=None, metavar="C",
                        help="PE array columns (default: the model artifact's core, else 8)")
    parser.add_argument("--model", metavar="ARTIFACT", default=None, help="artifact directory to run")
    parser.add_argument("--samples", type=arg_type("samples"), default=None, metavar="N",
                        help="test images of the model's dataset to simulate (default 20; needs --model)")
    parser.add_argument("--vectors", type=arg_type("vectors"), default=None, metavar="V",
                        help="random tile commands (default 64)")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default verilator)")
    parser.add_argument("--seed", type=arg_type("seed"), default=0, metavar="S", help="stimulus seed (default 0)")
    parser.add_argument("--stalls", action="store_true",
                        help="also rerun everything with random stalls on every stream (results only)")
    parser.add_argument("--out", metavar="DIR", default=None, help="where to write the report (default out/verify)")
    parser.add_argument("--force", action="store_true",
                        help="write into an earlier output of another spikeforge command in --out")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from spikeforge.api import verify
    from spikeforge.outputs import claim_dir

    out = claim_dir(Path(args.out) if args.out else Path("out") / "verify", "verify", force=args.force,
                    inputs=[args.model])
    result = verify(model=args.model, rows=args.rows, cols=args.cols, samples=args.samples,
                    vectors=args.vectors, sim=args.sim, seed=args.seed, stalls=args.stalls,
                    out=out)
    _print_table(result.checks, args.sim, result.config)
    for name, r in result.checks:
        if r.mismatch is not None:
            print(f"MISMATCH ({name}): {r.mismatch.message()}", file=sys.stderr)
    print(f"report: {result.path}")
    return 0 if result.ok else 1


def _print_table(reports, sim: str, cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    def mark(flag: bool) -> str:
        return "[green]yes[/green]" if flag else "[red]NO[/red]"

    table = Table(title=f"spikeforge verify ({sim}, {cfg.top_name}, digest {cfg.digest()})")
    for col in ("check", "shape", "vectors", "images", "bit-exact", "cycle-exact", "classes equal", "sim cycles/s"):
        table.add_column(col, justify="left" if col == "check" else "right")
    for name, r in reports:
        stalled = "stalls" in name
        table.add_row(
            name, r.shape, str(r.vectors), str(r.images) if r.images else "-", mark(r.bit_exact),
            "n/a (stalls)" if stalled and r.mismatch is None else mark(r.cycle_exact),
            (mark(r.predictions_equal) if r.images else "-"), f"{r.cycles_per_second:,.0f}",
        )
    console = Console()
    if not console.is_terminal:  # a log's default width (80) would cut the headers ("bit-ex…")
        console = Console(width=200)
    console.print(table)
