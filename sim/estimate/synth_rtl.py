"""Synthesis of a generated design folder (or a FuseSoC work root) for one ECP5 part.

`spikeforge synth DIR --part 25k` and the FuseSoC `synth` target of a generated core call
`synthesize_rtl`: Yosys `synth_ecp5` on the design's Verilog and `nextpnr-ecp5` place and route
on the given part, out of context (no I/O buffers: the IP is meant to sit inside a larger
design, and its ports outnumber any package's pins), through the YoWASP tools and spikeforge's
synthesis cache (sim/estimate/synth.py).

Why not edalize's yosys/trellis backend: it runs Yosys as `yosys -p 'tcl edalize_yosys_template.tcl'`,
and YoWASP's Yosys is built without Tcl ("ERROR: No such command: tcl"), so that flow needs a
native Yosys. The FuseSoC target therefore runs this command as a post_build hook.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from spikeforge.sim.estimate.synth import ECP5_PACKAGE, SynthError, synthesize

# nextpnr-ecp5's device switches (--25k, --um5g-85k, ...).
ECP5_PARTS = ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k", "um5g-25k", "um5g-45k", "um5g-85k")
DEFAULT_PART = "25k"


def check_part(part: str) -> str:
    if part not in ECP5_PARTS:
        raise SynthError(f"--part {part!r} is not an ECP5 part nextpnr knows; use one of {', '.join(ECP5_PARTS)}")
    return part


def design_from_folder(folder: str | os.PathLike) -> tuple[list[Path], str]:
    """(Verilog files, top) of a `spikeforge generate` folder, from its core.json."""
    folder = Path(folder)
    manifest_path = folder / "core.json"
    if not manifest_path.is_file():
        raise SynthError(f"{folder} has no core.json; give a folder written by `spikeforge generate`")
    try:
        manifest = json.loads(manifest_path.read_text())
        verilog, top = folder / str(manifest["verilog"]), str(manifest["top"])
    except (ValueError, KeyError, TypeError):
        raise SynthError(f"{manifest_path}: not a spikeforge core manifest (needs 'verilog' and 'top'); "
                         "regenerate the folder with `spikeforge generate`") from None
    if not verilog.is_file():
        raise SynthError(f"{verilog} (named by {manifest_path}) does not exist; regenerate the folder")
    return [verilog], top


def design_from_edam(work_root: str | os.PathLike = ".") -> tuple[list[Path], str, dict[str, Any]]:
    """(Verilog files, top, parameter values) from the one *.eda.yml in a FuseSoC work root."""
    root = Path(work_root)
    found = sorted(root.glob("*.eda.yml"))
    if len(found) != 1:
        raise SynthError(f"{root.resolve()} holds {len(found)} *.eda.yml files, not one; run this as the "
                         "FuseSoC hook (fusesoc run --target=synth ...) or give the design folder instead")
    try:
        import yaml
    except ImportError:
        raise SynthError("reading FuseSoC's EDAM file needs PyYAML; fix: pip install pyyaml") from None
    try:
        edam = yaml.safe_load(found[0].read_text())
        files = [root / f["name"] for f in edam.get("files", [])
                 if str(f.get("file_type", "")).startswith(("verilogSource", "systemVerilogSource"))]
        top = str(edam["toplevel"])
        params = {k: v.get("default") for k, v in (edam.get("parameters") or {}).items() if isinstance(v, dict)}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError):
        raise SynthError(f"{found[0]}: not an EDAM file FuseSoC wrote (files, toplevel)") from None
    if not files:
        raise SynthError(f"{found[0]} lists no Verilog file")
    return files, top, params


def synthesize_rtl(files: list[Path], top: str, part: str = DEFAULT_PART, package: str = ECP5_PACKAGE,
                   freq_mhz: float = 100.0, seed: int = 1, out_of_context: bool = True) -> dict:
    """synth_ecp5 + nextpnr-ecp5 of the Verilog `files` (top `top`) on `part`; the cached result."""
    check_part(part)
    text = "\n".join(Path(f).read_text() for f in files)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    result = synthesize(text, top, "ecp5", f"rtl:{digest}:{package}", route=True, freq_mhz=freq_mhz, seed=seed,
                        device=part, out_of_context=out_of_context, package=package)
    if not result.get("routed"):
        raise SynthError(f"nextpnr-ecp5 did not route {top} on {part}: {result.get('fit', 'see the log')}")
    return result
