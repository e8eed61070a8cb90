"""Verilog generation: a CoreConfig (and optionally an integer network) -> a directory of files.

Writes `<top>.v`, `core.json` (the parameters, the ports and the files), the FuseSoC core with
its lint waivers and smoke testbench (hw/fusesoc.py) and, for a model, the memory init files
($readmemh) and the memory layout. The weights of a model are also baked into the Verilog
as memory initial values, so the design simulates and synthesises as is; the write port loads
other models at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
from amaranth.hdl import Const, Value
from amaranth.lib import wiring

from spikeforge import SpikeforgeError
from spikeforge.hw.config import PROTOCOL_FAULTS, CoreConfig
from spikeforge.hw.core import SpikeforgeCore

# Amaranth's output is width-correct by construction but not lint-clean under -Wall. The narrow
# waivers (one rule and one message shape each, with the reason) live in this Verilator config.
LINT_WAIVERS = Path(__file__).with_name("lint_waivers.vlt")


class GenerateError(SpikeforgeError):
    pass


def core_component(cfg: CoreConfig, weights: np.ndarray | None = None,
                   thresholds: np.ndarray | None = None, network=None, neuron=None) -> wiring.Component:
    """The core for cfg, with the memories initialised from weights[R*C, depth] / thresholds[C, depth];
    a multi-step `network` (or `neuron`, a sim.cycle.NeuronMemories) also initialises the neuron
    unit's scales and offsets.

    A test-only protocol fault (cfg.fault in PROTOCOL_FAULTS) wraps it in hw/faults.py's wrapper."""
    w_init = [list(map(int, row)) for row in weights] if weights is not None else None
    t_init = [list(map(int, row)) for row in thresholds] if thresholds is not None else None
    images = None
    if network is not None and network.multistep is not None:
        from spikeforge.hw.layout import neuron_images, plan_layout

        images = neuron_images(network, plan_layout(network, cfg))
    elif neuron is not None:
        images = (neuron.scales, neuron.offsets)
    n_init = None if images is None else {
        name: [list(map(int, r)) for r in image] for name, image in zip(("scales", "offsets"), images, strict=True)}
    core = SpikeforgeCore(cfg, w_init, t_init, n_init)
    if cfg.fault in PROTOCOL_FAULTS:
        from spikeforge.hw.faults import StalledOutputFault

        return StalledOutputFault(core)
    return core


def top_ports(component: wiring.Component) -> list[tuple[str, Value, None]]:
    """The component's signature members that are wires, named as Amaranth flattens them.

    A constant member (the `ready` of the always-ready `load` stream) has no wire: Amaranth's
    `verilog.convert` refuses a Const port (amaranth-lang/amaranth#1574), so it is left out
    here, and the direction of each port is inferred from its drivers."""
    ports = []
    for path, _member, value in component.signature.flatten(component):
        value = Value.cast(value)
        if not isinstance(value, Const):
            ports.append(("__".join(map(str, path)), value, None))
    return ports


def verilog_of(component: wiring.Component, name: str) -> str:
    from amaranth.back import verilog

    return verilog.convert(component, name=name, ports=top_ports(component), emit_src=False)


def verilog_text(cfg: CoreConfig, weights: np.ndarray | None = None, thresholds: np.ndarray | None = None,
                 network=None) -> str:
    return verilog_of(core_component(cfg, weights, thresholds, network), cfg.top_name)


def port_list(component: wiring.Component) -> list[dict]:
    """Ports of the top module, from the component's metadata (`amaranth.lib.wiring.ComponentMetadata`),
    less the constant members that have no wire (top_ports)."""
    wires = {name for name, _, _ in top_ports(component)}
    ports = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]

    def walk(members: dict) -> None:
        for member in members.values():
            if member["type"] == "port":
                if member["name"] in wires:
                    ports.append({"name": member["name"], "dir": member["dir"], "width": member["width"]})
            else:
                walk(member["members"])

    walk(component.metadata.as_json()["interface"]["members"])
    return ports


def resolve_config(rows: int, cols: int, network=None, **given: int | None) -> CoreConfig:
    """The CoreConfig `generate` builds: with a network, the smallest config that runs it
    (hw.layout.config_for_network) with `given` widths and depths on top; without, CoreConfig's
    defaults with `given` on top. `given`: weight_bits, acc_bits, skip_window, weight_depth,
    threshold_depth, max_inputs (None = not given)."""
    given = {k: v for k, v in given.items() if v is not None}
    if network is not None:
        from spikeforge.hw.layout import config_for_network

        cfg = config_for_network(network, rows, cols, weight_bits=given.get("weight_bits"),
                                 acc_bits=given.get("acc_bits"), skip_window=given.get("skip_window", 32))
        return cfg.replace(**{k: v for k, v in given.items() if k not in ("weight_bits", "acc_bits", "skip_window")})
    if "acc_bits" in given:
        given.setdefault("threshold_bits", given["acc_bits"])
    return CoreConfig(rows=rows, cols=cols, **given)


def generate(cfg: CoreConfig, out_dir: str | os.PathLike, network=None, force: bool = False) -> dict:
    """Write the design for cfg (and a model) atomically into out_dir: the Verilog, core.json,
    the memory init files and the FuseSoC `.core`; return the manifest (core.json's content).
    out_dir must be new, empty or an earlier generate output (`force`: any spikeforge output)."""
    from spikeforge.hw.fusesoc import write_fusesoc_files
    from spikeforge.hw.layout import memory_images, plan_layout, write_memory_files

    out = Path(out_dir)
    weights = thresholds = None
    layout_info = None
    if network is not None:
        network.validate()
        layout = plan_layout(network, cfg)
        weights, thresholds = memory_images(network, layout)
        layout_info = {
            "weight_words": layout.weight_words,
            "threshold_words": layout.threshold_words,
            "tiles": [t.__dict__ for t in layout.tiles],
        }
    core = core_component(cfg, weights, thresholds, network)
    text = verilog_of(core, cfg.top_name)
    manifest = {
        "schema": "spikeforge-core",
        "schema_version": 1,
        "top": cfg.top_name,
        "verilog": f"{cfg.top_name}.v",
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "ports": port_list(core),
        "layout": layout_info,
        "timing_contract": "docs/ARCHITECTURE.md#timing-contract",
    }
    from spikeforge.outputs import staged_dir

    with staged_dir(out, "generate", force=force) as staging:
        (staging / manifest["verilog"]).write_text(text)
        if network is not None:
            write_memory_files(network, cfg, staging / "mem")
        manifest["files"] = {"verilog": manifest["verilog"],
                             **write_fusesoc_files(staging, manifest, text, network)}
        (staging / "core.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def lint(verilog_path: str | os.PathLike, top: str) -> subprocess.CompletedProcess:
    """`verilator --lint-only -Wall` with the documented waivers; raises GenerateError on failure."""
    from spikeforge.toolchain import configure_environment, require

    require("verilator")
    env = configure_environment()
    cmd = ["verilator", "--lint-only", "-Wall", str(LINT_WAIVERS), "--top-module", top, str(verilog_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        first = next((line for line in proc.stderr.splitlines() if line.startswith("%")), proc.stderr[:200])
        raise GenerateError(f"verilator lint failed for {verilog_path}: {first}")
    return proc
