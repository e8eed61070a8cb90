"""The `spikeforge` command line: one argparse parser, one module per subcommand.

Each subcommand lives in `spikeforge.scripts.cmd_<name>` and defines `HELP`, `add_arguments(parser)`
and `run(args) -> int` (and optionally `DESCRIPTION`, the longer text of its --help). Those
modules must import fast (heavy imports go inside `run`), because building the parser imports
all of them. Errors become one line on stderr:

    SpikeforgeError      -> "spikeforge <cmd>: error: <message>", exit 2
    KeyboardInterrupt    -> exit 130
    anything else        -> "spikeforge <cmd>: internal error: ...", exit 70 (SPIKEFORGE_DEBUG=1 re-raises)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import types
from collections.abc import Sequence
from typing import NoReturn

from spikeforge import SpikeforgeError, __version__

SUBCOMMANDS = ("train", "quantize", "generate", "verify", "estimate", "synth", "sweep", "search", "flow", "bench",
               "doctor")

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE from sysexits.h
EXIT_INTERRUPTED = 130


class NotAvailableError(SpikeforgeError):
    """A subcommand whose implementation has not landed yet."""


def _missing_module(name: str, exc: BaseException) -> types.ModuleType:
    """Stand-in for a subcommand module that cannot be imported, so the other subcommands still work.

    A module that does not exist yet becomes a clear "not available" error; one that exists but
    fails to import re-raises that failure when run (an internal error, with a traceback on
    SPIKEFORGE_DEBUG=1) rather than hiding it.
    """
    mod = types.ModuleType(f"spikeforge.scripts.cmd_{name}")
    absent = isinstance(exc, ModuleNotFoundError) and exc.name == mod.__name__
    mod.HELP = f"(not available yet: {mod.__name__} is missing)" if absent else "(failed to import)"

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        # main() accepts whatever was typed after a stand-in, so the user sees the real reason
        # rather than a usage error about options the real module would have defined.
        parser.set_defaults(_stand_in=True)

    def run(args: argparse.Namespace) -> int:
        if absent:
            raise NotAvailableError(f"spikeforge {name} is not available yet: {mod.__name__} has not landed")
        raise exc

    mod.add_arguments, mod.run = add_arguments, run
    return mod


def load_command(name: str) -> types.ModuleType:
    """The module for subcommand `name` (or a stand-in when it cannot be imported)."""
    try:
        return importlib.import_module(f"spikeforge.scripts.cmd_{name}")
    except Exception as exc:  # noqa: BLE001 - any import failure must leave the rest of the CLI usable
        return _missing_module(name, exc)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (field and fix) with exit 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="spikeforge",
        description="Co-design ultra-low-latency spiking neural networks and the accumulate-only "
                    "hardware that runs them.",
    )
    parser.add_argument("--version", action="version", version=f"spikeforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        mod = load_command(name)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `spikeforge` console script; returns the exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(argv) if argv is not None else None)
        if extra and not getattr(args, "_stand_in", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:
        if exc.code == EXIT_USER_ERROR:  # a usage error, already printed as one line
            return EXIT_USER_ERROR
        raise  # --help, --version
    cmd = args.command
    try:
        return int(args._run(args) or 0)
    except SpikeforgeError as e:
        print(f"spikeforge {cmd}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"spikeforge {cmd}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if os.environ.get("SPIKEFORGE_DEBUG", "") not in ("", "0"):
            raise
        print(f"spikeforge {cmd}: internal error: {type(e).__name__}: {_one_line(e)} "
              "(set SPIKEFORGE_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
