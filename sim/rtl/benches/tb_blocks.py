"""cocotb test for the single blocks (PE, zero-skip scanner, threshold unit): a vector player.

The host gives one row of input port values per cycle; the bench applies them after the rising
edge that starts the cycle, waits for the combinational logic to settle (ReadOnly) and records
the output ports, so sample t shows the outputs during cycle t (registered state after t edges
since reset, combinational paths from cycle t's inputs). Cycle 0 is the first cycle with `rst`
low. The reference models and all comparisons live in tests/test_cocotb_blocks.py.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from sf_bench import CLOCK_NS, CocotbPorts, Stopwatch, Value, read_job, write_result

from spikeforge.sim.rtl.streams import StallSchedule, StreamSource


def sample(handle) -> int | None:
    """The port's value, or None while it holds X/Z (Icarus shows uninitialised read data as X)."""
    value = handle.value
    return value.to_unsigned() if value.is_resolvable else None


@cocotb.test()
async def vectors(dut) -> None:
    job = read_job()
    inputs = [Value(getattr(dut, name)) for name in job["inputs"]]
    outputs = [getattr(dut, name) for name in job["outputs"]]
    watch = Stopwatch()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for port in inputs:
        port.set(0)
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    samples = []
    for row in job["vectors"]:
        for port, value in zip(inputs, row, strict=True):
            port.set(value)
        await ReadOnly()
        samples.append([sample(port) for port in outputs])
        await RisingEdge(dut.clk)
    write_result({"samples": samples, "cycles_simulated": len(samples), "wall_s": watch.seconds})


@cocotb.test()
async def scanner(dut) -> None:
    """Commands through the zero-skip scanner with a stream source on `spikes` (sim/rtl/streams.py:
    it holds valid until the transfer; with the job's stall seed its StallSchedule pauses it): per
    command, a gap, a one-cycle `start`, then the beats until `done`. Records (cycle - c0, op,
    index, done, beat taken) for every cycle after c0."""
    job = read_job()
    schedule = StallSchedule(job.get("stall_seed"))
    ports = CocotbPorts(dut)
    watch = Stopwatch()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for name in ("start", "n_words", "n_planes", "events", "spikes__valid", "spikes__payload"):
        ports.set(name, 0)
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    records, cycles = [], 0
    for words, planes, beats, gap in job["commands"]:
        for _ in range(gap):
            await RisingEdge(dut.clk)
            cycles += 1
        ports.set("start", 1)
        ports.set("n_words", words)
        ports.set("n_planes", planes)
        await RisingEdge(dut.clk)
        ports.set("start", 0)
        source = StreamSource("spikes", schedule.pauses(f"spikes{len(records)}"))
        source.queue.extend(beats)
        rel, done, log = 1, False, []
        while not done:
            if rel > 64 * (len(beats) + 2) * 40:
                raise RuntimeError(f"scanner did not finish a command of {len(beats)} beats")
            ports.cycle = cycles + rel
            source.drive(ports)
            await ReadOnly()
            fire = source.sample(ports) is not None
            done = ports.get("done") == 1
            log.append([rel, ports.get("op"), ports.get("index"), int(done), int(fire)])
            await RisingEdge(dut.clk)
            rel += 1
        ports.set("spikes__valid", 0)
        cycles += rel
        records.append(log)
    write_result({"commands": records, "cycles_simulated": cycles, "wall_s": watch.seconds})
