"""cocotb side of the spikeforge regression: job I/O, reset, memory load, the port adapter of the stream harness.

This module runs inside the HDL simulator (imported by cocotb). The host side
(`spikeforge.sim.rtl`) writes a job file, names it in SPIKEFORGE_JOB, and reads back the
result file named in SPIKEFORGE_RESULT. The bench only drives and records; every comparison with
the golden model happens on the host, so a mismatch report never depends on simulator logging.

Cycle numbering (the same as sim/rtl/amaranth_sim.py and the golden model): `rst` is high for two
rising edges; the first cycle in which `rst` is low is cycle 0 of the first backend call when
nothing has to be loaded. Every backend call (a list of commands run back to back) counts its
cycles from the cycle in which it presents its first command, with the core idle; memory writes
through the `load` port happen before that, between calls. A beat "leaves the core" in the cycle
in which out.valid and out.ready are both high, sampled just before the rising edge ending it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.core import LOAD_THRESHOLD, LOAD_WEIGHT, load_layout
from spikeforge.sim.cycle import Command
from spikeforge.sim.driver import TileOutcome
from spikeforge.sim.rtl.streams import CoreHarness, ProtocolViolation, StallSchedule, pack_fields

CLOCK_NS = 10


def read_job() -> dict:
    return json.loads(Path(os.environ["SPIKEFORGE_JOB"]).read_text())


def write_result(result: dict) -> None:
    """Atomic: the host treats a missing result file as a crashed simulation."""
    path = Path(os.environ["SPIKEFORGE_RESULT"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


def outcome_to_json(outcome: TileOutcome) -> dict:
    return {
        "accept_cycle": outcome.accept_cycle,
        "beats": [[b.row, int(b.last), [int(s) for s in b.spikes], list(b.values), b.cycle] for b in outcome.beats],
    }


def violation_to_json(violation: ProtocolViolation) -> dict:
    return dict(violation.__dict__)


class Value:
    """A write-through cache of one input port: skip VPI writes of unchanged values (speed)."""

    __slots__ = ("handle", "last")

    def __init__(self, handle) -> None:
        self.handle = handle
        self.last = None

    def set(self, value: int) -> None:
        if value != self.last:
            self.handle.value = value
            self.last = value


class CocotbPorts:
    """The `Ports` of sim/rtl/streams.py on a cocotb DUT: writes are cached (an input reads
    back what was written), reads of the DUT's outputs refuse X/Z."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.inputs: dict[str, Value] = {}
        self.cycle = 0

    def set(self, name: str, value: int) -> None:
        port = self.inputs.get(name)
        if port is None:
            port = self.inputs[name] = Value(getattr(self.dut, name))
        port.set(value)

    def get(self, name: str) -> int:
        port = self.inputs.get(name)
        if port is not None and port.last is not None:
            return port.last
        value = getattr(self.dut, name).value
        if not value.is_resolvable:
            raise RuntimeError(f"{name} is {value} in cycle {self.cycle}")
        # A one-bit port reads as a Logic (int() works), a wider one as a LogicArray.
        return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class CoreBench:
    """Loads and runs one SpikeforgeCore: the stream logic is sim/rtl/streams.py's CoreHarness,
    stepped here exactly as sim/rtl/amaranth_sim.py steps it."""

    def __init__(self, dut, cfg: CoreConfig) -> None:
        self.dut = dut
        self.cfg = cfg
        self.ports = CocotbPorts(dut)
        self.load_layout = load_layout(cfg)
        # What the memories hold now: a load writes only the words that change.
        self.weights = np.zeros((cfg.pes, cfg.weight_depth), dtype=np.int64)
        self.thresholds = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
        self.cycles_simulated = 0
        self.violations: list[ProtocolViolation] = []  # of the last run_commands

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        self.dut.rst.value = 1
        for name in ("cmd__valid", "spikes__valid", "load__valid", "out__ready", "cmd__payload", "spikes__payload",
                     "load__payload"):
            self.ports.set(name, 0)
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0  # the cycle starting now is cycle 0

    async def load(self, weights: np.ndarray, thresholds: np.ndarray) -> int:
        """Write the words of weights[R*C, depth] / thresholds[C, depth] that differ from the
        memories' current contents, one per cycle (the load stream is always ready). Returns the
        number of words written."""
        writes = []
        for target, new, old in ((LOAD_WEIGHT, weights, self.weights), (LOAD_THRESHOLD, thresholds, self.thresholds)):
            new = np.asarray(new, dtype=np.int64)
            for sel, addr in zip(*np.nonzero(new != old), strict=True):
                writes.append({"target": target, "select": int(sel), "addr": int(addr), "data": int(new[sel, addr])})
            old[...] = new
        for word in writes:
            self.ports.set("load__payload", pack_fields(self.load_layout, word, check=False))
            self.ports.set("load__valid", 1)
            await RisingEdge(self.dut.clk)
        self.ports.set("load__valid", 0)
        self.cycles_simulated += len(writes)
        return len(writes)

    async def run_commands(self, commands: list[tuple[Command, list[int]]], stall_seed: int | None = None,
                           patience: int = 100_000) -> list[TileOutcome]:
        """Commands back to back (with stall_seed, the StallSchedule's stalls on every stream).
        The monitors' findings are left in `self.violations` for the host to report."""
        harness = CoreHarness(self.cfg, commands, StallSchedule(stall_seed), patience)
        clk = self.dut.clk
        while not harness.finished:
            self.ports.cycle = harness.cycle
            harness.drive(self.ports)
            await ReadOnly()
            harness.sample(self.ports)
            await RisingEdge(clk)
        harness.quiet(self.ports)
        self.cycles_simulated += harness.cycle
        self.violations = harness.violations
        return harness.outcomes


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
