"""spikeforge doctor: which tools spikeforge will use, their versions, and the fix for anything missing."""

from __future__ import annotations

import argparse
import json
import sys

HELP = ("check what every command needs (packages, package data, Verilator, a C++ compiler, make, perl, "
        "Icarus, Yosys, nextpnr, cocotb) and print the fix for anything missing")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--deep", action="store_true",
                        help="also run the YoWASP tools once (slow the first time: they compile, ~40 s each)")
    parser.add_argument("--env", action="store_true",
                        help='print `export` lines of the tool environment (PATH, VERILATOR_ROOT, ...) for '
                             'other tools such as FuseSoC: eval "$(spikeforge doctor --env)"')


def report(deep: bool = False) -> dict[str, object]:
    """The doctor's findings as a JSON-able dict: ok, tools, environment, cache."""
    from spikeforge import __version__, cache, toolchain

    # Report the environment commands actually run with, not the caller's shell.
    env = toolchain.configure_environment()
    tools = toolchain.find_all(deep=deep)
    root = cache.cache_root()
    return {
        "ok": all(t.ok for t in tools.values() if t.required),
        "spikeforge": __version__,
        "tools": {name: t.to_dict() for name, t in tools.items()},
        "environment": {k: env.get(k) for k in toolchain.ENV_KEYS},
        "cache": {"path": str(root), "bytes": cache.folder_size(root),
                  "override": cache.BUILD_ENV},
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
            print(f"  {'':<4}  {'':<15} needed by: {t['needed_by']}")
    cache: dict[str, object] = rep["cache"]  # type: ignore[assignment]
    print(f"  build cache: {cache['path']} ({int(cache['bytes']) / 2**20:.0f} MiB; "
          f"set {cache['override']} to move it)")
    failed = [(n, t) for n, t in tools.items() if t["required"] and not t["ok"]]
    if failed:
        fixes = list(dict.fromkeys(str(t["fix"]) for _, t in failed))
        apt = [f.removeprefix("apt-get install ") for f in fixes if f.startswith("apt-get install ")]
        if len(apt) > 1:  # one install line for all the system packages
            rest = [f for f in fixes if not f.startswith("apt-get install ")]
            fixes = [f"apt-get install {' '.join(dict.fromkeys(apt))}", *rest]
        fixes = "; ".join(fixes)
        print(f"not ready: {', '.join(n for n, _ in failed)}; fix: {fixes}", file=sys.stderr)
    else:
        print("ready")


def run(args: argparse.Namespace) -> int:
    if args.env:
        from spikeforge import toolchain

        sys.stdout.write(toolchain.shell_exports())
        return 0
    rep = report(deep=args.deep)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        _print_table(rep)
    return 0 if rep["ok"] else 1
