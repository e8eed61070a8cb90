"""FuseSoC CAPI2 core description of a generated design, so the IP drops into an existing HDL flow."""

from __future__ import annotations

from pathlib import Path

from spikeforge import __version__, atomic_write_text


def write_fusesoc_core(rtl: Path, manifest: dict) -> Path:
    """Write `<top>.core` into the design folder `rtl` (manifest: its core.json content)."""
    top = manifest["top"]
    cfg = manifest["config"]
    text = f"""CAPI=2:
name: spikeforge:snn:{top}:{__version__}
description: spikeforge accumulate-only SNN core, {cfg['rows']}x{cfg['cols']} PEs, {cfg['weight_bits']}-bit weights

filesets:
  rtl:
    files:
      - {manifest['verilog']}
    file_type: verilogSource

targets:
  default:
    filesets: [rtl]
    toplevel: {top}
  lint:
    default_tool: verilator
    filesets: [rtl]
    tools:
      verilator:
        mode: lint-only
    toplevel: {top}
"""
    path = rtl / f"{top}.core"
    atomic_write_text(path, text)
    return path
