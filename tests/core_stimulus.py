"""Constrained-random stimulus for the core: shared by the Amaranth and cocotb tests."""

from __future__ import annotations

import os

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.sim.cycle import Command, encode_input


def stimulus_seed(default: int = 20261123) -> int:
    """The seed of a randomized test: SPIKEFORGE_SEED or a fixed default, printed for reruns."""
    seed = int(os.environ.get("SPIKEFORGE_SEED", default))
    print(f"[spikeforge] stimulus seed = {seed} (rerun with SPIKEFORGE_SEED={seed})")
    return seed


def vector_count(default: int) -> int:
    """Vectors per shape: SPIKEFORGE_VECTORS overrides (the slow tier uses 2,000)."""
    return int(os.environ.get("SPIKEFORGE_VECTORS", default))


def tile_config(rows: int, cols: int, weight_bits: int) -> CoreConfig:
    """A small-memory config that still exercises every width: long fan-in, 3-bit inputs."""
    return CoreConfig(
        rows=rows, cols=cols, weight_bits=weight_bits, acc_bits=weight_bits + 9, threshold_bits=weight_bits + 9,
        skip_window=8, max_input_bits=3, max_inputs=96, weight_depth=128, threshold_depth=4 * rows,
    )


def random_memories(cfg: CoreConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weights with the range's extremes over-represented; thresholds up to the register's limits."""
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, cfg.weight_depth))
    corner = rng.random(weights.shape)
    weights[corner < 0.1] = cfg.weight_min
    weights[corner > 0.9] = cfg.weight_max
    span = 1 << (cfg.weight_bits + 3)
    thresholds = rng.integers(-span, span, size=(cfg.cols, cfg.threshold_depth))
    corner = rng.random(thresholds.shape)
    thresholds[corner < 0.05] = cfg.threshold_min
    thresholds[corner > 0.95] = cfg.threshold_max
    return weights, thresholds


def random_commands(cfg: CoreConfig, rng: np.random.Generator, count: int) -> list[tuple[Command, list[int]]]:
    """Commands with random fan-in, planes and density, incl. no spikes, all spikes, max fan-in."""
    commands = []
    for n in range(count):
        corner = n % 8
        fan_in = cfg.max_inputs if corner in (0, 5) else int(rng.integers(1, cfg.max_inputs + 1))
        planes = int(rng.integers(1, cfg.max_input_bits + 1))
        if corner == 1:
            values = np.zeros(fan_in, dtype=np.int64)  # no spikes
        elif corner in (2, 5):
            values = np.full(fan_in, (1 << planes) - 1)  # all spikes / all ones
        else:
            density = float(rng.choice([0.02, 0.1, 0.3, 0.6, rng.random()]))
            values = rng.integers(0, 1 << planes, size=fan_in) * (rng.random(fan_in) < density)
        n_words, beats = encode_input(values, planes, cfg.skip_window)
        base = int(rng.integers(0, cfg.weight_depth - n_words * cfg.skip_window + 1))
        tbase = int(rng.integers(0, cfg.threshold_depth - cfg.rows + 1))
        commands.append((Command(n_words, planes, base, tbase), beats))
    return commands
