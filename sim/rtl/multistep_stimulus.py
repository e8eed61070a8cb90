"""Constrained-random stimulus for multi-step cores: neuron constants and step-loop commands.

Commands carry random steps, step counts (n_steps > 1 rotates the array), flags (first, per_step,
leak, reset_zero, readout) and membrane bases, so consecutive commands on the same membrane words
carry state from one to the next, as a network's time steps do. Used by the Amaranth and the
cocotb regressions alike.
"""

from __future__ import annotations

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.sim.cycle import Command, NeuronMemories, encode_input


def random_neuron(cfg: CoreConfig, rng: np.random.Generator) -> NeuronMemories:
    shape = (cfg.cols, cfg.threshold_depth)
    if cfg.scale_bits:
        lim = 1 << (cfg.scale_bits - 1)
        scales = rng.integers(-lim, lim, shape)
    else:
        scales = np.ones(shape, np.int64)
    olim = 1 << (cfg.offset_bits - 1)
    return NeuronMemories(scales, rng.integers(-olim, olim, shape), np.zeros((cfg.cols, cfg.membrane_depth), np.int64))


def random_thresholds(cfg: CoreConfig, rng: np.random.Generator) -> np.ndarray:
    """Mostly small positive thresholds (neurons that fire now and then), some at the limits."""
    t = rng.integers(1, max(2, min(cfg.threshold_max, 1 << (cfg.acc_bits - 2))), (cfg.cols, cfg.threshold_depth))
    corner = rng.random(t.shape)
    t[corner < 0.05] = cfg.threshold_min
    t[corner > 0.95] = cfg.threshold_max
    return t


def random_commands(cfg: CoreConfig, rng: np.random.Generator, count: int) -> list[tuple[Command, list[int]]]:
    commands = []
    fan_max = min(cfg.max_inputs, 3 * cfg.skip_window)
    membrane_slots = max(1, cfg.membrane_depth // cfg.rows)
    for n in range(count):
        planes = int(rng.integers(1, cfg.max_input_bits + 1)) if rng.random() < 0.3 else 1
        fan = int(rng.integers(1, fan_max + 1))
        density = rng.choice([0.0, 0.2, 0.6, 1.0])
        values = (rng.random(fan) < density) * rng.integers(1, 1 << planes, fan)
        n_words, beats = encode_input(values, planes, cfg.skip_window)
        n_steps = int(rng.integers(1, cfg.max_steps + 1)) if rng.random() < 0.3 else 1
        step = int(rng.integers(0, cfg.max_steps - n_steps + 1))
        per_step = bool(rng.random() < 0.5)
        blocks = cfg.max_steps if per_step else 1
        tbase = int(rng.integers(0, max(1, cfg.threshold_depth - blocks * cfg.rows + 1)))
        commands.append((Command(
            n_words, planes, int(rng.integers(0, cfg.weight_depth - n_words * cfg.skip_window + 1)), tbase,
            membrane_base=int(rng.integers(0, membrane_slots)) * cfg.rows, step=step, n_steps=n_steps,
            first=bool(n == 0 or rng.random() < 0.2), per_step=per_step, leak=bool(rng.random() < 0.6),
            reset_zero=bool(rng.random() < 0.3), readout=bool(rng.random() < 0.2)), beats))
    return commands


def random_multistep_case(cfg: CoreConfig, rng: np.random.Generator, count: int):
    """(weights, thresholds, neuron memories, commands) of one back-to-back run."""
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, cfg.weight_depth))
    return weights, random_thresholds(cfg, rng), random_neuron(cfg, rng), random_commands(cfg, rng, count)
