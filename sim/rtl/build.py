"""Builds of the generated RTL for cocotb: Verilog from hw/, compiled once per design.

`build(cfg, sim, kind)` compiles (or reuses) the core, or one of its blocks, for Verilator or
Icarus, into `<build root>/<sim>/<config digest>[-kind]-<sources>[-net...][-waves]/`, the build
root being the user's cache (spikeforge.cache: $SPIKEFORGE_BUILD_DIR, else
$XDG_CACHE_HOME/spikeforge/cocotb). <sources> hashes the hw/ sources, amaranth's version and the
build recipe, so two spikeforge versions (or checkouts) never share a folder and editing the RTL
builds anew. A file lock makes parallel processes (pytest workers, two commands) build each design
once, and a shared lock keeps a simulation from running in a folder that another process is
replacing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.cache import cache_dir, prune_stale, touch
from spikeforge.cache import file_lock as _locked
from spikeforge.hw.config import CoreConfig
from spikeforge.hw.generate import LINT_WAIVERS
from spikeforge.integer_network import IntegerNetwork
from spikeforge.progress import activity

SIMULATORS = ("verilator", "icarus")
BUILD_RECIPE = 2  # bump when the way a design is built changes (flags, source transformations)
BLOCKS = ("core", "pe", "scanner", "threshold")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_DIR = Path(__file__).resolve().parent / "benches"
HW_DIR = PACKAGE_ROOT / "hw"
TIMESCALE = ("1ns", "1ps")
# The hw/ modules the generated Verilog depends on (synthesis scripts etc. are left out).
RTL_SOURCES = ("lint_waivers.vlt", "config.py", "core.py", "faults.py", "generate.py", "neuron.py", "pe.py",
               "scanner.py", "step_loop.py", "threshold.py", "tokens.py")


class RtlError(SpikeforgeError):
    """The simulation itself failed (build error, crash, no result); the message names the log."""


# ---------------------------------------------------------------------------------------------
# tools and builds


def require_simulator(sim: str) -> None:
    """Raise ToolError (one line, with the fix) when `sim` cannot be used here."""
    from spikeforge.toolchain import configure_environment, require

    if sim not in SIMULATORS:
        raise RtlError(f"--sim {sim!r} is unknown; use one of {', '.join(SIMULATORS)}")
    configure_environment()
    if sim == "verilator":
        for tool in ("verilator", "cxx", "make", "perl"):
            require(tool)
    else:
        require("icarus")
    if not BENCH_DIR.is_dir():
        raise RtlError(f"the cocotb testbench folder {BENCH_DIR} is missing from the installed spikeforge; "
                       "fix: pip install --force-reinstall spikeforge (or reinstall from your checkout)")


def build_root() -> Path:
    """Where the simulations are built: the "cocotb" cache of spikeforge.cache (SPIKEFORGE_BUILD_DIR moves it)."""
    return cache_dir("cocotb")


def _source_hash() -> str:
    """Hash of everything that shapes the Verilog besides the config: hw/ and amaranth's version."""
    import amaranth
    import cocotb

    # A Verilator build links to this environment's cocotb libraries by absolute path (rpath), so a
    # build made by another venv (e.g. a deleted one) must not be reused: its binary cannot load.
    h = hashlib.sha256(f"{amaranth.__version__}:{BUILD_RECIPE}:{Path(cocotb.__file__).resolve().parent}".encode())
    for path in sorted(HW_DIR / name for name in RTL_SOURCES):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def block_verilog(kind: str, cfg: CoreConfig, network: IntegerNetwork | None = None) -> tuple[str, str]:
    """(top module name, Verilog text) of the core or one of its blocks for `cfg`."""
    from spikeforge.hw.generate import verilog_of

    if kind == "core":
        from spikeforge.hw.generate import verilog_text

        weights = thresholds = None
        if network is not None:
            from spikeforge.hw.layout import memory_images, plan_layout

            weights, thresholds = memory_images(network, plan_layout(network, cfg))
        return cfg.top_name, verilog_text(cfg, weights, thresholds, network)
    if kind == "pe":
        from spikeforge.hw.pe import ProcessingElement

        component = ProcessingElement(cfg)
    elif kind == "scanner":
        from spikeforge.hw.scanner import ZeroSkipScanner

        component = ZeroSkipScanner(cfg)
    elif kind == "threshold":
        from spikeforge.hw.threshold import ThresholdUnit

        component = ThresholdUnit(cfg)
    else:
        raise RtlError(f"block {kind!r} is unknown; use one of {', '.join(BLOCKS)}")
    # Module names end in _block: none of the blocks has a port of that name.
    top = f"sf_{kind}_block"
    return top, verilog_of(component, top)


def icarus_compatible(text: str) -> str:
    """Yosys's Verilog made to settle at time 0 under Icarus.

    Yosys writes Amaranth's combinational processes as `always @*` and puts a dummy read of a
    trigger register (initialised to 0) in each, relying on that initialiser to wake them at
    time 0. Icarus 11 runs initialisers before any process waits, so a process whose inputs do
    not change after reset (the FSM's `cmd.ready`, `idle`) would show X until they do. Here the
    trigger starts as X and an `initial` block sets it to 0 after a `#0`, once every process
    waits: each combinational process then runs once at time 0.

    (Rewriting them as `always_comb` instead makes Icarus widen constant bit selects to the
    whole vector, and the core-v2 netlist then spins at one simulation time.)
    """
    pattern = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;$", re.M)
    text, found = pattern.subn(lambda m: f"{m.group(1)}reg {m.group(2)} ;\n"
                                         f"{m.group(1)}initial begin #0 {m.group(2)}  = 1'b0; end", text)
    if found == 0 and "always @*" in text:
        raise RtlError("the Verilog has no yosys time-0 trigger register to rewrite for Icarus; "
                       "this yosys writes combinational processes differently: report it with its version")
    return text


@dataclass(frozen=True)
class Build:
    sim: str
    kind: str
    top: str
    directory: Path
    waves: bool
    cfg: CoreConfig
    seconds: float  # how long the build took (also when this call reused it from the cache)
    cached: bool = False  # True when this call reused an earlier build


def _network_hash(network: IntegerNetwork) -> str:
    h = hashlib.sha256()
    for layer in network.layers:
        for name in ("weight", "threshold", "mode"):
            arr = getattr(layer, name, None)
            if arr is not None:
                h.update(np.ascontiguousarray(np.asarray(arr, dtype=np.int64)).tobytes())
        h.update(repr((layer.kind, getattr(layer, "in_shape", None))).encode())
    for neuron in network.multistep.neurons if network.multistep is not None else ():
        for arr in (neuron.scale, neuron.offset):
            h.update(np.ascontiguousarray(np.asarray(arr, dtype=np.int64)).tobytes())
    return h.hexdigest()[:12]


def build(cfg: CoreConfig, sim: str = "verilator", kind: str = "core", waves: bool = False,
          network: IntegerNetwork | None = None) -> Build:
    """Compile (or reuse) the simulation of `kind` for cfg. `network` bakes its weights into the
    Verilog's memory init (the `generate --model` path); otherwise memories start at zero and the
    bench loads them through the `load` port."""
    from cocotb_tools.runner import get_runner

    require_simulator(sim)
    sources = _source_hash()
    name = cfg.digest() + ("" if kind == "core" else f"-{kind}") + f"-{sources[:10]}"
    if network is not None:
        name += f"-net{_network_hash(network)}"
    if waves:
        name += f"-waves-{wave_format(sim)}"
    directory = build_root() / sim / name
    stamp = directory / "built.json"
    want = {"config": cfg.to_dict(), "kind": kind, "sim": sim, "waves": waves, "sources": sources,
            "recipe": BUILD_RECIPE}
    with _locked(directory.with_name(name + ".lock")):
        if stamp.is_file():
            try:
                saved = json.loads(stamp.read_text())
                if saved.get("key") == want:
                    touch(stamp)  # last use, for prune_stale
                    return Build(sim, kind, saved["top"], directory, waves, cfg, float(saved.get("seconds", 0.0)),
                                 cached=True)
            except (OSError, ValueError, KeyError):
                pass
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        start = time.perf_counter()
        top, text = block_verilog(kind, cfg, network)
        if sim == "icarus":
            text = icarus_compatible(text)
        source = directory / f"{top}.v"
        source.write_text(text)
        runner = get_runner(sim)
        log = directory / "build.log"
        # The same narrow waivers as `spikeforge generate`'s lint (Amaranth's width idioms); any
        # other Verilator warning stops the build.
        build_args = [str(LINT_WAIVERS)] if sim == "verilator" else []
        if sim == "verilator" and waves and wave_format(sim) == "fst":
            build_args.append("--trace-fst")
        try:
            with activity(f"building {top} for {sim}"):
                runner.build(sources=[source], hdl_toplevel=top, build_dir=directory, always=True, waves=waves,
                             build_args=build_args, timescale=TIMESCALE, log_file=log)
        except (RuntimeError, SystemExit, OSError, ValueError) as exc:
            raise RtlError(f"{sim} build of {top} failed ({exc}); see {log}") from None
        seconds = time.perf_counter() - start
        tmp = stamp.with_name(".built.json.tmp")
        tmp.write_text(json.dumps({"key": want, "top": top, "seconds": seconds}, indent=1))
        os.replace(tmp, stamp)
    prune_stale(directory.parent, lambda d: d / "built.json", lambda d: d.with_name(d.name + ".lock"))
    return Build(sim, kind, top, directory, waves, cfg, seconds)


def wave_format(sim: str) -> str:
    """FST where it can be written: Icarus always; Verilator 5.048's FST writer needs the lz4
    headers (liblz4-dev), without them it writes VCD."""
    if sim == "icarus":
        return "fst"
    includes = [Path("/usr/include"), Path("/usr/local/include")]
    includes += [Path(p) for p in os.environ.get("CPATH", "").split(os.pathsep) if p]
    return "fst" if any((d / "lz4.h").is_file() for d in includes) else "vcd"


def waves_path(run_dir: Path) -> Path:
    for ext in ("fst", "vcd"):
        if (run_dir / f"waves.{ext}").is_file():
            return run_dir / f"waves.{ext}"
    return run_dir / "waves.fst"

