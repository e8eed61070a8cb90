"""spikeforge bench: throughput of the golden core model, the Python simulator and Verilator."""

from __future__ import annotations

import argparse

HELP = "benchmark the golden core model, the simulator and the Verilator build"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--which", choices=("core", "sim", "verilator", "all"), default="all",
                        help="what to benchmark (default all)")


def run(args: argparse.Namespace) -> int:
    from spikeforge.scripts.cli import NotAvailableError

    raise NotAvailableError("spikeforge bench is not available yet: the models it measures have not landed")
