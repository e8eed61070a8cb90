"""cocotb side of the spikeforge regression: job I/O, reset, memory load, stream driver.

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
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.core import LOAD_THRESHOLD, LOAD_WEIGHT, command_layout, load_layout, output_layout
from spikeforge.hw.neuron import LOAD_OFFSET, LOAD_SCALE
from spikeforge.sim.cycle import Command, OutputBeat
from spikeforge.sim.driver import TileOutcome

CLOCK_NS = 10


def read_job() -> dict:
    return json.loads(Path(os.environ["SPIKEFORGE_JOB"]).read_text())


def write_result(result: dict) -> None:
    """Atomic: the host treats a missing result file as a crashed simulation."""
    path = Path(os.environ["SPIKEFORGE_RESULT"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


def field_slices(layout) -> dict[str, tuple[int, int]]:
    """name -> (offset, width) of an amaranth StructLayout (LSB-first, declaration order)."""
    return {name: (field.offset, field.width) for name, field in layout}


def outcome_to_json(outcome: TileOutcome) -> dict:
    return {
        "accept_cycle": outcome.accept_cycle,
        "beats": [[b.row, int(b.last), [int(s) for s in b.spikes], list(b.values), b.cycle] for b in outcome.beats],
    }


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


class CoreBench:
    """Drives one SpikeforgeCore's flattened stream ports exactly like sim/rtl/amaranth_sim.py."""

    def __init__(self, dut, cfg: CoreConfig) -> None:
        self.dut = dut
        self.cfg = cfg
        self.cmd_fields = field_slices(command_layout(cfg))
        out = field_slices(output_layout(cfg))
        self.row_slice, self.last_slice, self.spike_slice = out["row"], out["last"], out["spikes"]
        self.values_offset = out["values"][0]
        self.value_bits = cfg.value_bits
        self.cmd_payload = Value(dut.cmd__payload)
        self.cmd_valid = Value(dut.cmd__valid)
        self.spk_payload = Value(dut.spikes__payload)
        self.spk_valid = Value(dut.spikes__valid)
        self.out_ready = Value(dut.out__ready)
        self.load_valid = Value(dut.load__valid)
        self.load_payload = Value(dut.load__payload)
        self.load_fields = field_slices(load_layout(cfg))
        # What the memories hold now: a load writes only the words that change.
        self.weights = np.zeros((cfg.pes, cfg.weight_depth), dtype=np.int64)
        self.thresholds = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
        self.scales = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)  # multi-step cores
        self.offsets = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
        self.cycles_simulated = 0

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        self.dut.rst.value = 1
        for port in (self.cmd_valid, self.spk_valid, self.load_valid, self.out_ready):
            port.set(0)
        self.cmd_payload.set(0)
        self.spk_payload.set(0)
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0  # the cycle starting now is cycle 0

    def pack_command(self, cmd: Command) -> int:
        word = 0
        for name, (offset, width) in self.cmd_fields.items():
            value = int(getattr(cmd, name))
            assert 0 <= value < 1 << width, f"command field {name}={value} does not fit {width} bits"
            word |= value << offset
        return word

    def unpack_beat(self, word: int, cycle: int) -> OutputBeat:
        def bits(sl: tuple[int, int]) -> int:
            return (word >> sl[0]) & ((1 << sl[1]) - 1)

        cols, vb = self.cfg.cols, self.value_bits
        spikes = bits(self.spike_slice)
        values = []
        for c in range(cols):
            v = (word >> (self.values_offset + c * vb)) & ((1 << vb) - 1)
            values.append(v - (1 << vb) if v >> (vb - 1) else v)
        return OutputBeat(bits(self.row_slice), bool(bits(self.last_slice)),
                          tuple(bool(spikes >> c & 1) for c in range(cols)), tuple(values), cycle)

    @staticmethod
    def bit(handle, cycle: int) -> bool:
        value = handle.value
        if not value.is_resolvable:
            raise RuntimeError(f"{getattr(handle, '_name', handle)} is {value} in cycle {cycle}")
        return bool(int(value))

    async def load(self, weights: np.ndarray, thresholds: np.ndarray, scales: np.ndarray | None = None,
                   offsets: np.ndarray | None = None) -> int:
        """Write the words of weights[R*C, depth] / thresholds[C, depth] (and a multi-step core's
        scales / offsets [C, depth]) that differ from the memories' current contents, one per
        cycle. Returns the number of words written."""
        dut = self.dut
        writes = []
        memories = [(LOAD_WEIGHT, weights, self.weights), (LOAD_THRESHOLD, thresholds, self.thresholds)]
        if scales is not None and self.cfg.scale_bits:
            memories.append((LOAD_SCALE, scales, self.scales))
        if offsets is not None:
            memories.append((LOAD_OFFSET, offsets, self.offsets))
        for target, new, old in memories:
            new = np.asarray(new, dtype=np.int64)
            for sel, addr in zip(*np.nonzero(new != old), strict=True):
                writes.append((target, int(sel), int(addr), int(new[sel, addr])))
            old[...] = new
        for target, sel, addr, data in writes:
            word = 0
            for name, value in (("target", target), ("select", sel), ("addr", addr), ("data", data)):
                offset, width = self.load_fields[name]
                word |= (value & ((1 << width) - 1)) << offset
            self.load_payload.set(word)
            self.load_valid.set(1)
            await RisingEdge(dut.clk)
        self.load_valid.set(0)
        self.cycles_simulated += len(writes)
        return len(writes)

    async def run_commands(self, commands: list[tuple[Command, list[int]]], stall_seed: int | None = None,
                           stall_prob: float = 0.3, patience: int = 100_000) -> list[TileOutcome]:
        """Commands back to back; with stall_seed, drop valid/ready at random.

        The random draws happen in the same order as sim/rtl/amaranth_sim.py's testbench, so a seed
        gives the same stall pattern in both simulators. A handshake signal that is X, or
        `patience` cycles without any transfer, stops the run with an error instead of hanging.
        """
        dut = self.dut
        clk = dut.clk
        rng = random.Random(stall_seed)
        stalls = stall_seed is not None
        results: list[TileOutcome] = []
        cycle = 0
        cmd_i = 0
        beat_i = 0
        scanning = False
        pending: list[int] = []
        done = 0
        n = len(commands)
        progress = 0
        while done < n:
            if cycle - progress > patience:
                raise RuntimeError(f"no transfer for {patience} cycles (cycle {cycle}, {done} of {n} commands done)")
            present_cmd = cmd_i < n and not scanning and not (stalls and rng.random() < stall_prob)
            if present_cmd:
                self.cmd_payload.set(self.pack_command(commands[cmd_i][0]))
            self.cmd_valid.set(int(present_cmd))
            present_beat = beat_i < len(pending) and not (stalls and rng.random() < stall_prob)
            if present_beat:
                self.spk_payload.set(pending[beat_i])
            self.spk_valid.set(int(present_beat))
            ready = not (stalls and rng.random() < stall_prob)
            self.out_ready.set(int(ready))

            await ReadOnly()
            cmd_fire = present_cmd and self.bit(dut.cmd__ready, cycle)
            beat_fire = present_beat and self.bit(dut.spikes__ready, cycle)
            out_fire = ready and self.bit(dut.out__valid, cycle)
            if cmd_fire or beat_fire or out_fire:
                progress = cycle
            if out_fire:
                beat = self.unpack_beat(dut.out__payload.value.to_unsigned(), cycle)
                if done >= len(results):
                    raise RuntimeError(f"output beat in cycle {cycle} before any command was accepted")
                results[done].beats.append(beat)
                if beat.last:
                    done += 1
            await RisingEdge(clk)
            if cmd_fire:
                results.append(TileOutcome(cycle, []))
                scanning = True
                pending = commands[cmd_i][1]
                beat_i = 0
                cmd_i += 1
                if not pending:
                    scanning = False
            if beat_fire:
                beat_i += 1
                if beat_i == len(pending):
                    scanning = False
            cycle += 1
        # Leave the inputs quiet so the next call (or load) starts from an idle core.
        self.cmd_valid.set(0)
        self.spk_valid.set(0)
        self.out_ready.set(0)
        self.cycles_simulated += cycle
        return results


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
