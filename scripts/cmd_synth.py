"""spikeforge synth: Yosys + nextpnr for one ECP5 part on a generated design (or a FuseSoC work root).

    spikeforge synth out/flow/generate/rtl --part 45k
    spikeforge synth --fusesoc            # the FuseSoC `synth` target's post_build hook

Synthesizes the design's Verilog with `synth_ecp5` and places and routes it out of context
(no I/O buffers) on the part with nextpnr-ecp5, through the YoWASP tools; prints LUT4, FF, EBR and
Fmax and writes them as JSON (--out, or synth.json in the FuseSoC work root). Cached like every
spikeforge synthesis run.
"""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type

HELP = "synthesize a generated design for one ECP5 part (Yosys + nextpnr, out of context) and report area and Fmax"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("design", nargs="?", metavar="DIR", help="folder written by `spikeforge generate`")
    parser.add_argument("--fusesoc", action="store_true",
                        help="run in a FuseSoC work root: take the files, top and --part from its *.eda.yml")
    parser.add_argument("--part", default=None, metavar="PART",
                        help="ECP5 part as nextpnr names it: 12k, 25k, 45k, 85k, um-25k, ... (default 25k)")
    parser.add_argument("--package", default=None, metavar="PKG", help="package (default CABGA381)")
    parser.add_argument("--freq", type=arg_type("freq"), default=100.0, metavar="MHZ", help="clock target for nextpnr")
    parser.add_argument("--seed", type=arg_type("seed"), default=1, help="nextpnr placement seed (default 1)")
    parser.add_argument("--out", default=None, metavar="FILE", help="write the result as JSON here")


def _earlier_report(path) -> bool:
    """An existing --out may be replaced only when it is an earlier `spikeforge synth` report."""
    import json

    try:
        if path.stat().st_size > 1 << 20:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and {"device", "lut4", "ff"} <= set(data)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from spikeforge import atomic_write_text
    from spikeforge.outputs import claim_file
    from spikeforge.sim.estimate.synth import ECP5_PACKAGE, SynthError
    from spikeforge.sim.estimate.synth_rtl import (
        DEFAULT_PART,
        design_from_edam,
        design_from_folder,
        synthesize_rtl,
    )

    if args.fusesoc == (args.design is not None):
        raise SynthError("give either a design folder DIR or --fusesoc (inside a FuseSoC work root)")
    params: dict = {}
    out = Path(args.out or "synth.json") if args.fusesoc else Path(args.out) if args.out else None
    if out is not None:  # before any work: a path we must not write is refused first
        out = claim_file(out, "synthesis report", looks_ours=_earlier_report)
    if args.fusesoc:
        files, top, params = design_from_edam(".")
    else:
        files, top = design_from_folder(args.design)
    part = str(args.part or params.get("part") or DEFAULT_PART)
    package = str(args.package or params.get("package") or ECP5_PACKAGE)
    print(f"synthesizing {top} for ECP5 {part} {package} (Yosys synth_ecp5, nextpnr-ecp5 out of context)",
          flush=True)
    r = synthesize_rtl(files, top, part, package, freq_mhz=args.freq, seed=args.seed)
    fmax = f"{r['fmax_mhz']:.1f} MHz" if r.get("fmax_mhz") else "n/a"
    print(f"{top} on {r['device']}: {r['lut4']:,} LUT4, {r['ff']:,} FF, {r['ebr']} EBR, {r['dpr16x4']} DPR16X4, "
          f"Fmax {fmax} (target {args.freq:g} MHz){' [cached]' if r.get('cached') else ''}")
    if out is not None:
        atomic_write_text(out, json.dumps(r, indent=2, sort_keys=True) + "\n")
        print(f"report: {out}")
    return 0
