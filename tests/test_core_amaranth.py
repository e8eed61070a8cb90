"""The whole core in Amaranth's simulator against the golden model: bit-exact and cycle-exact.

The default tier runs a representative number of vectors per shape; the slow tier
(`make test-all`) runs 2,000 per shape (SPIKEFORGE_VECTORS overrides both).
"""

from __future__ import annotations

import numpy as np
import pytest
from core_stimulus import random_commands, random_memories, stimulus_seed, tile_config, vector_count

from spikeforge.hw.config import FAULTS
from spikeforge.sim.cycle import run_tile
from spikeforge.sim.rtl.amaranth_sim import simulate_commands

SHAPES = [(1, 1, 2), (1, 7, 4), (3, 5, 8), (4, 4, 2), (8, 8, 8), (16, 4, 4)]


def check_tiles(cfg, weights, thresholds, commands, seed, stalls=False):
    rtl = simulate_commands(cfg, weights, thresholds, commands, stall_seed=seed if stalls else None)
    assert len(rtl) == len(commands)
    accept = 0
    for n, ((cmd, beats), got) in enumerate(zip(commands, rtl, strict=True)):
        want = run_tile(cfg, weights, thresholds, cmd, beats, accept_cycle=accept)
        accept = want.next_accept
        assert len(got.beats) == cfg.rows, f"tile {n}: {len(got.beats)} beats, want {cfg.rows} (seed {seed})"
        if not stalls:
            assert got.accept_cycle == want.accept_cycle, (
                f"tile {n}: accepted in cycle {got.accept_cycle}, model {want.accept_cycle} (seed {seed})")
        for k, (g, w) in enumerate(zip(got.beats, want.beats, strict=True)):
            where = f"tile {n} ({cmd}), beat {k} row {w.row}, seed {seed}"
            assert (g.row, g.last) == (w.row, w.last), f"{where}: row/last {g.row, g.last} != {w.row, w.last}"
            for c in range(cfg.cols):
                assert g.values[c] == w.values[c], f"{where}, column {c}: value {g.values[c]} != {w.values[c]}"
                assert g.spikes[c] == w.spikes[c], f"{where}, column {c}: spike {g.spikes[c]} != {w.spikes[c]}"
            if not stalls:
                assert g.cycle == w.cycle, f"{where}: left the core in cycle {g.cycle}, model {w.cycle}"
    return rtl


def run_shape(rows, cols, weight_bits, count, stalls=False):
    seed = stimulus_seed() + rows * 100 + cols
    rng = np.random.default_rng(seed)
    cfg = tile_config(rows, cols, weight_bits)
    weights, thresholds = random_memories(cfg, rng)
    commands = random_commands(cfg, rng, count)
    check_tiles(cfg, weights, thresholds, commands, seed, stalls)


@pytest.mark.parametrize("rows,cols,weight_bits", SHAPES)
def test_array_matches_golden(rows, cols, weight_bits):
    # The big shapes are slow in the Python simulator; fewer vectors keep the default tier quick.
    run_shape(rows, cols, weight_bits, vector_count(40 if rows * cols <= 16 else 12))


@pytest.mark.parametrize("rows,cols,weight_bits", [(3, 5, 4), (1, 1, 8)])
def test_backpressure_changes_timing_not_results(rows, cols, weight_bits):
    run_shape(rows, cols, weight_bits, vector_count(24), stalls=True)


@pytest.mark.slow
@pytest.mark.parametrize("rows,cols,weight_bits", SHAPES)
def test_array_2000_vectors(rows, cols, weight_bits):
    run_shape(rows, cols, weight_bits, vector_count(2000))


def test_stalls_really_stall():
    """Guard against a stall generator that never stalls: stalled runs take longer."""
    seed = stimulus_seed()
    rng = np.random.default_rng(seed)
    cfg = tile_config(2, 3, 4)
    weights, thresholds = random_memories(cfg, rng)
    commands = random_commands(cfg, rng, 6)
    calm = simulate_commands(cfg, weights, thresholds, commands)
    stalled = simulate_commands(cfg, weights, thresholds, commands, stall_seed=seed)
    assert stalled[-1].beats[-1].cycle > calm[-1].beats[-1].cycle


@pytest.mark.parametrize("fault", FAULTS)
def test_injected_faults_are_caught(fault):
    """Mutation check: the same comparison must fail on a core built with an injected fault."""
    seed = stimulus_seed()
    rng = np.random.default_rng(seed)
    cfg = tile_config(3, 5, 4).replace(fault=fault)
    weights, thresholds = random_memories(cfg, rng)
    commands = random_commands(cfg, rng, 30)
    with pytest.raises(AssertionError):
        check_tiles(cfg, weights, thresholds, commands, seed)
