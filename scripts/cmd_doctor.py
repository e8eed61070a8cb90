"""spikeforge doctor: which tools spikeforge will use, their versions, and the fix for anything missing."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "check packages, Verilator, Icarus, Yosys, nextpnr and cocotb; print the fix for anything missing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--deep", action="store_true",
                        help="also run the YoWASP tools once (slow the first time: they compile, ~40 s each)")


def report(deep: bool = False) -> dict[str, object]:
    """The doctor's findings as a JSON-able dict: ok, tools, environment."""
    from spikeforge import __version__, toolchain

    # Report the environment commands actually run with, not the caller's shell.
    env = toolchain.configure_environment()
    tools = toolchain.find_all(deep=deep)
    return {
        "ok": all(t.ok for t in tools.values() if t.required),
        "spikeforge": __version__,
        "tools": {name: t.to_dict() for name, t in tools.items()},
        "environment": {k: env.get(k) for k in ("PATH", "VERILATOR_ROOT", "YOSYS")},
    }


def _print_table(rep: dict[str, object]) -> None:
    tools: dict[str, dict[str, object]] = rep["tools"]  # type: ignore[assignment]
    print(f"spikeforge {rep['spikeforge']}")
    for name, t in tools.items():
        status = "ok" if t["ok"] else ("FAIL" if t["required"] else "warn")
        version = t["version"] or ("-" if t["ok"] else "missing")
        source = "" if t["source"] == "missing" else str(t["source"])
        where = f"{source}: {t['path']}" if t["path"] else source
        print(f"  {status:<4}  {name:<15} {str(version):<12} {where}")
        if t["note"]:
            print(f"  {'':<4}  {'':<15} {t['note']}")
        if not t["ok"]:
            extra = "" if t["required"] else " (optional: the tests that need it are skipped)"
            print(f"  {'':<4}  {'':<15} {t['problem']}; fix: {t['fix']}{extra}")
    failed = [n for n, t in tools.items() if t["required"] and not t["ok"]]
    if failed:
        print(f"not ready: {', '.join(failed)} (run the fixes above)", file=sys.stderr)
    else:
        print("ready")


def run(args: argparse.Namespace) -> int:
    rep = report(deep=args.deep)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        _print_table(rep)
    return 0 if rep["ok"] else 1
