"""Each block of the core in Amaranth's simulator against its reference model (tests/block_models.py,
shared with the cocotb block tests)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from block_models import PeModel, ThresholdModel, scanner_reference
from core_stimulus import stimulus_seed

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.pe import ProcessingElement
from spikeforge.hw.scanner import ZeroSkipScanner
from spikeforge.hw.threshold import ThresholdUnit
from spikeforge.hw.tokens import Op
from spikeforge.sim.cycle import encode_input


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("weight_bits", [2, 4, 8])
def test_pe_accumulates_doubles_drains(weight_bits):
    seed = stimulus_seed() + weight_bits
    rng = np.random.default_rng(seed)
    cfg = CoreConfig(rows=1, cols=1, weight_bits=weight_bits, acc_bits=weight_bits + 4,
                     threshold_bits=weight_bits + 4, weight_depth=32)
    mem = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=cfg.weight_depth)
    mem[:2] = [cfg.weight_min, cfg.weight_max]
    dut = ProcessingElement(cfg, list(map(int, mem)))
    cycles = 600
    ops = rng.choice([Op.NONE, Op.ACC, Op.DOUBLE], size=cycles, p=[0.3, 0.6, 0.1])
    addrs = rng.integers(0, cfg.weight_depth, size=cycles)
    drains = rng.random(cycles) < 0.05
    values = rng.integers(0, 1 << cfg.max_input_bits, size=cycles)
    values[rng.random(cycles) < 0.3] = 1  # spikes and plane bits
    active = rng.random(cycles) < 0.85
    acc_in = rng.integers(cfg.acc_min, cfg.acc_max + 1, size=cycles)

    model = PeModel(cfg, list(map(int, mem)))

    async def bench(ctx):
        for t in range(cycles):
            ctx.set(dut.tok_in.op, ops[t])
            ctx.set(dut.tok_in.addr, int(addrs[t]))
            ctx.set(dut.tok_in.value, int(values[t]))
            ctx.set(dut.active, bool(active[t]))
            ctx.set(dut.drain, bool(drains[t]))
            ctx.set(dut.acc_in, int(acc_in[t]))
            assert ctx.get(dut.acc) == model.acc, f"cycle {t}: acc {ctx.get(dut.acc)} != {model.acc} (seed {seed})"
            assert ctx.get(dut.tok_out.op).value == model.tok_out[0], f"cycle {t}: token not forwarded (seed {seed})"
            model.step(Op(ops[t]).value, int(addrs[t]), int(drains[t]), int(acc_in[t]),
                       value=int(values[t]), active=int(active[t]))
            await ctx.tick()

    run(dut, bench)


@pytest.mark.parametrize("window", [1, 8, 32])
def test_scanner_emits_active_indices_per_contract(window):
    seed = stimulus_seed() + window
    rng = np.random.default_rng(seed)
    cfg = CoreConfig(rows=1, cols=1, skip_window=window, max_inputs=96, max_input_bits=3)
    dut = ZeroSkipScanner(cfg)
    jobs = []
    for n in range(30):
        fan_in = cfg.max_inputs if n % 5 == 0 else int(rng.integers(1, cfg.max_inputs + 1))
        planes = int(rng.integers(1, 4))
        density = [0.0, 1.0, 0.05, 0.3, rng.random()][n % 5]
        values = rng.integers(0, 1 << planes, size=fan_in) * (rng.random(fan_in) < density)
        if density == 1.0:
            values[:] = (1 << planes) - 1
        n_words, beats = encode_input(values, planes, window)
        ops, done_cycle = scanner_reference(cfg, n_words, planes, beats)
        # One entry per cycle c0+2 .. done: the reference's ops, NONE in an empty word's cycle.
        expect, cycle = [], 2
        for when, op, index in ops:
            expect.extend([(Op.NONE, 0)] * (when - cycle))
            expect.append((Op(op), index))
            cycle = when + 1
        expect.extend([(Op.NONE, 0)] * (done_cycle + 1 - cycle))
        jobs.append((n_words, planes, beats, expect))

    async def bench(ctx):
        for n_words, planes, beats, expect in jobs:
            ctx.set(dut.n_words, n_words)
            ctx.set(dut.n_planes, planes)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got, beat, cycle = [], 0, 0
            while True:
                ctx.set(dut.spikes.valid, beat < len(beats))
                if beat < len(beats):
                    ctx.set(dut.spikes.payload, beats[beat])
                if cycle >= 1:  # the contract: ops from the second cycle after start
                    op = Op(ctx.get(dut.op))
                    got.append((op, ctx.get(dut.index) if op == Op.ACC else 0))
                done = ctx.get(dut.done)
                if ctx.get(dut.spikes.ready) and beat < len(beats):
                    beat += 1
                await ctx.tick()
                cycle += 1
                if done:
                    break
            assert got == expect, f"scanner ops differ (seed {seed}): got {got[:8]}..., want {expect[:8]}..."
            assert beat == len(beats)
            assert not ctx.get(dut.busy)

    run(dut, bench)


@pytest.mark.parametrize("cols", [1, 5])
def test_threshold_unit_compares_at_the_limits(cols):
    seed = stimulus_seed() + cols
    rng = np.random.default_rng(seed)
    cfg = CoreConfig(rows=1, cols=cols, weight_bits=4, acc_bits=10, threshold_bits=10, threshold_depth=16)
    table = rng.integers(cfg.threshold_min, cfg.threshold_max + 1, size=(cols, 16))
    table[:, 0], table[:, 1] = cfg.threshold_min, cfg.threshold_max
    dut = ThresholdUnit(cfg, [list(map(int, row)) for row in table])
    accs = rng.integers(cfg.acc_min, cfg.acc_max + 1, size=(300, cols))
    accs[::7] = cfg.acc_max
    accs[3::7] = cfg.acc_min
    addrs = rng.integers(0, 16, size=300)
    # Equal values sit exactly on the threshold: the `>=` corner.
    accs[5::11] = table[:, 4]
    addrs[4::11] = 4

    model = ThresholdModel(cfg, [list(map(int, row)) for row in table])

    async def bench(ctx):
        for t in range(300):
            ctx.set(dut.addr, int(addrs[t]))
            ctx.set(dut.en, 1)
            ctx.set(dut.acc, [int(a) for a in accs[t]])
            want = model.outputs(list(accs[t]))
            if want is not None:
                for c in range(cols):
                    got = ctx.get(dut.value[c])
                    assert got == want[0][c], f"cycle {t} col {c}: value {got} != {want[0][c]} (seed {seed})"
                    assert (ctx.get(dut.spike) >> c & 1) == want[1][c], f"cycle {t} col {c}: spike (seed {seed})"
            model.step(int(addrs[t]), 1)
            await ctx.tick()

    run(dut, bench)
