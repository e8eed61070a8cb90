"""Run commands on the generated core in Amaranth's simulator (Python, no external tools).

Used by the block/array tests and as a backend of the NetworkDriver. The stream logic (sources,
sink, monitors, stall schedule, command loop) is sim/rtl/streams.py's `CoreHarness`, the same
object the cocotb bench (sim/rtl/benches/sf_bench.py) steps; this module only maps its port
names to the Amaranth signals and advances the clock.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.generate import core_component
from spikeforge.sim.cycle import Command
from spikeforge.sim.driver import TileOutcome
from spikeforge.sim.rtl.streams import CoreHarness, ProtocolViolation, StallSchedule


class ProtocolError(AssertionError):
    """A stream of the core broke the valid/ready rules; `violations` says where and how."""

    def __init__(self, violations: list[ProtocolViolation], schedule: StallSchedule) -> None:
        self.violations = violations
        first = violations[0].message()
        super().__init__(f"{first} ({len(violations)} violation(s); {schedule.describe()})")


class AmaranthPorts:
    """The `Ports` of sim/rtl/streams.py on an Amaranth testbench context."""

    def __init__(self, ctx, dut) -> None:
        self.ctx = ctx
        self.signals = {"__".join(map(str, path)): Value.cast(value)
                        for path, _, value in dut.signature.flatten(dut)}

    def set(self, name: str, value: int) -> None:
        self.ctx.set(self.signals[name], value)

    def get(self, name: str) -> int:
        return self.ctx.get(self.signals[name])


def run_harness(dut, cfg: CoreConfig, commands: list[tuple[Command, list[int]]], stall_seed: int | None = None,
                max_cycles: int = 10_000_000, vcd_path: str | None = None) -> CoreHarness:
    """Step a CoreHarness over `dut` (a core, or a test-only faulty one) until every command is
    done; the harness holds the outcomes and the monitors' violations."""
    schedule = StallSchedule(stall_seed)
    harness = CoreHarness(cfg, commands, schedule)

    async def bench(ctx):
        ports = AmaranthPorts(ctx, dut)
        while not harness.finished:
            if harness.cycle > max_cycles:
                raise RuntimeError(f"core did not finish within {max_cycles} cycles")
            harness.drive(ports)
            harness.sample(ports)
            await ctx.tick()
        harness.quiet(ports)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd_path:
        with sim.write_vcd(vcd_path):
            sim.run()
    else:
        sim.run()
    return harness


def simulate_commands(
    cfg: CoreConfig,
    weights: np.ndarray | None,
    thresholds: np.ndarray | None,
    commands: list[tuple[Command, list[int]]],
    stall_seed: int | None = None,
    max_cycles: int = 10_000_000,
    vcd_path: str | None = None,
) -> list[TileOutcome]:
    """Drive the commands back to back (with stall_seed, the StallSchedule's stalls on every
    stream); raise ProtocolError when a monitor saw a stream break the rules."""
    harness = run_harness(core_component(cfg, weights, thresholds), cfg, commands, stall_seed, max_cycles, vcd_path)
    if harness.violations:
        raise ProtocolError(harness.violations, harness.schedule)
    return harness.outcomes
