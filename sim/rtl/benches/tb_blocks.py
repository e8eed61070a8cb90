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
from sf_bench import CLOCK_NS, Stopwatch, Value, read_job, write_result


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
    """Commands through the zero-skip scanner with a closed-loop spike source: per command, a gap,
    a one-cycle `start`, then the beats (dropped at random with the job's stall seed) until
    `done`. Records (cycle - c0, op, index, done, beat taken) for every cycle after c0."""
    import random

    job = read_job()
    rng = random.Random(job.get("stall_seed"))
    stalls = job.get("stall_seed") is not None
    start, n_words, n_planes = Value(dut.start), Value(dut.n_words), Value(dut.n_planes)
    valid, payload = Value(dut.spikes__valid), Value(dut.spikes__payload)
    watch = Stopwatch()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for port in (start, n_words, n_planes, valid, payload):
        port.set(0)
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    records, cycles = [], 0
    for words, planes, beats, gap in job["commands"]:
        for _ in range(gap):
            await RisingEdge(dut.clk)
            cycles += 1
        start.set(1)
        n_words.set(words)
        n_planes.set(planes)
        await RisingEdge(dut.clk)
        start.set(0)
        rel, taken, done, log = 1, 0, False, []
        while not done:
            if rel > 64 * (len(beats) + 2) * 40:
                raise RuntimeError(f"scanner did not finish a command of {len(beats)} beats")
            present = taken < len(beats) and not (stalls and rng.random() < 0.3)
            if present:
                payload.set(beats[taken])
            valid.set(int(present))
            await ReadOnly()
            fire = present and dut.spikes__ready.value == 1
            done = dut.done.value == 1
            log.append([rel, dut.op.value.to_unsigned(), dut.index.value.to_unsigned(), int(done), int(fire)])
            await RisingEdge(dut.clk)
            taken += int(fire)
            rel += 1
        valid.set(0)
        cycles += rel
        records.append(log)
    write_result({"commands": records, "cycles_simulated": cycles, "wall_s": watch.seconds})
