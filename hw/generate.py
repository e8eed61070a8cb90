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
from amaranth.hdl import Shape

from spikeforge import SpikeforgeError
from spikeforge.hw.config import CoreConfig
from spikeforge.hw.core import SpikeforgeCore

# Amaranth's output is width-correct by construction but not lint-clean under -Wall. The narrow
# waivers (one rule and one message shape each, with the reason) live in this Verilator config.
LINT_WAIVERS = Path(__file__).with_name("lint_waivers.vlt")


class GenerateError(SpikeforgeError):
    pass


def verilog_text(cfg: CoreConfig, weights: np.ndarray | None = None, thresholds: np.ndarray | None = None) -> str:
    from amaranth.back import verilog

    w_init = [list(map(int, row)) for row in weights] if weights is not None else None
    t_init = [list(map(int, row)) for row in thresholds] if thresholds is not None else None
    core = SpikeforgeCore(cfg, w_init, t_init)
    return verilog.convert(core, name=cfg.top_name, emit_src=False)


def port_list(cfg: CoreConfig) -> list[dict]:
    """Ports of the top module as Amaranth names them (flattened streams)."""
    core = SpikeforgeCore(cfg)
    core._MustUse__silence = True  # only its signature is needed here
    ports = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for path, member, _ in core.signature.flatten(core):
        name = "__".join(str(p) for p in path)
        ports.append({
            "name": name,
            "dir": "in" if member.flow.name == "In" else "out",
            "width": Shape.cast(member.shape).width,
        })
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
    text = verilog_text(cfg, weights, thresholds)
    manifest = {
        "schema": "spikeforge-core",
        "schema_version": 1,
        "top": cfg.top_name,
        "verilog": f"{cfg.top_name}.v",
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "ports": port_list(cfg),
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
