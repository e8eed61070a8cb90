"""Run commands on the generated core in Amaranth's simulator (Python, no external tools).

Used by the block/array tests and as a `verify --sim amaranth` backend. The cocotb/Verilator
regression drives the same streams the same way (sim/rtl/benches/).
"""

from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.core import SpikeforgeCore, command_layout
from spikeforge.sim.cycle import Command, NeuronMemories, OutputBeat
from spikeforge.sim.driver import TileOutcome


def build_core(cfg: CoreConfig, weights: np.ndarray | None, thresholds: np.ndarray | None,
               neuron: NeuronMemories | None = None) -> SpikeforgeCore:
    w_init = [list(map(int, row)) for row in weights] if weights is not None else None
    t_init = [list(map(int, row)) for row in thresholds] if thresholds is not None else None
    n_init = None
    if neuron is not None:
        n_init = {"scales": [list(map(int, row)) for row in neuron.scales],
                  "offsets": [list(map(int, row)) for row in neuron.offsets]}
    return SpikeforgeCore(cfg, w_init, t_init, n_init)


def simulate_commands(
    cfg: CoreConfig,
    weights: np.ndarray | None,
    thresholds: np.ndarray | None,
    commands: list[tuple[Command, list[int]]],
    stall_seed: int | None = None,
    stall_prob: float = 0.3,
    max_cycles: int = 10_000_000,
    vcd_path: str | None = None,
    neuron: NeuronMemories | None = None,
) -> list[TileOutcome]:
    """Drive the commands back to back; with stall_seed, randomly drop valid/ready. A multi-step
    core starts with `neuron`'s constants and a zero membrane."""
    dut = build_core(cfg, weights, thresholds, neuron)
    fields = [name for name, _ in command_layout(cfg)]
    rng = random.Random(stall_seed)
    stalls = stall_seed is not None
    results: list[TileOutcome] = []

    async def bench(ctx):
        cycle = 0
        cmd_i = 0  # next command to present
        beat_i = 0  # next spike beat of the command being scanned
        scanning = None  # index of the command whose beats are being sent
        pending_beats: list[int] = []
        done_tiles = 0
        while done_tiles < len(commands):
            if cycle > max_cycles:
                raise RuntimeError(f"core did not finish within {max_cycles} cycles")
            present_cmd = cmd_i < len(commands) and scanning is None and not (stalls and rng.random() < stall_prob)
            if present_cmd:
                cmd, _ = commands[cmd_i]
                for name in fields:
                    ctx.set(getattr(dut.cmd.payload, name), int(getattr(cmd, name)))
            ctx.set(dut.cmd.valid, present_cmd)
            present_beat = beat_i < len(pending_beats) and not (stalls and rng.random() < stall_prob)
            if present_beat:
                ctx.set(dut.spikes.payload, pending_beats[beat_i])
            ctx.set(dut.spikes.valid, present_beat)
            ready = not (stalls and rng.random() < stall_prob)
            ctx.set(dut.out.ready, ready)

            cmd_fire = present_cmd and ctx.get(dut.cmd.ready)
            beat_fire = present_beat and ctx.get(dut.spikes.ready)
            if ready and ctx.get(dut.out.valid):
                payload = ctx.get(dut.out.payload)
                values = tuple(int(payload.values[c]) for c in range(cfg.cols))
                spikes = tuple(bool(int(payload.spikes) >> c & 1) for c in range(cfg.cols))
                tile = results[done_tiles]
                tile.beats.append(OutputBeat(int(payload.row), bool(payload.last), spikes, values, cycle))
                if payload.last:
                    done_tiles += 1
            await ctx.tick()
            if cmd_fire:
                results.append(TileOutcome(cycle, []))
                scanning = cmd_i
                pending_beats = commands[cmd_i][1]
                beat_i = 0
                cmd_i += 1
            if beat_fire:
                beat_i += 1
                if beat_i == len(pending_beats):
                    scanning = None
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd_path:
        with sim.write_vcd(vcd_path):
            sim.run()
    else:
        sim.run()
    return results
