"""Constrained-random stimulus for the core: memory contents and tile commands with the corners.

The one random-case generator used by the Amaranth tests, the cocotb regression and
`spikeforge verify`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.sim.cycle import Command, encode_input, run_tile


@dataclass
class TileCase:
    """One backend call: memory contents and the commands run on them back to back."""

    weights: np.ndarray  # [R*C, weight_depth]
    thresholds: np.ndarray  # [C, threshold_depth]
    commands: list[tuple[Command, list[int]]]
    stall_seed: int | None = None



def case_json(case: TileCase) -> dict:
    return {
        "weights": np.asarray(case.weights, dtype=np.int64).tolist(),
        "thresholds": np.asarray(case.thresholds, dtype=np.int64).tolist(),
        "commands": [[c.n_words, c.n_planes, c.weight_base, c.threshold_base, list(map(int, beats))]
                     for c, beats in case.commands],
        "stall_seed": case.stall_seed,
    }


def pin_thresholds(cfg: CoreConfig, case: TileCase, rng: np.random.Generator, fraction: float = 0.5) -> None:
    """Set some thresholds of the first command to its exact accumulator (acc == T, value 0):
    the comparator's boundary, which random thresholds almost never hit."""
    if not case.commands:
        return
    cmd, beats = case.commands[0]
    result = run_tile(cfg, case.weights, case.thresholds, cmd, beats)
    for beat in result.beats:
        taddr = (cmd.threshold_base + beat.row) % cfg.threshold_depth
        for c in range(cfg.cols):
            acc = beat.values[c] + int(case.thresholds[c, taddr])
            if rng.random() < fraction and cfg.threshold_min <= acc <= cfg.threshold_max:
                case.thresholds[c, taddr] = acc


def random_case(cfg: CoreConfig, rng: np.random.Generator, count: int) -> TileCase:
    """Constrained-random commands on random memories, with the corners: no spikes, all spikes
    (all ones on every plane), the longest fan-in (max_inputs), weights at both extremes,
    thresholds at the register limits and exactly at the accumulator (acc == T)."""
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, cfg.weight_depth))
    corner = rng.random(weights.shape)
    weights[corner < 0.1] = cfg.weight_min
    weights[corner > 0.9] = cfg.weight_max
    span = min(1 << (cfg.weight_bits + 3), cfg.threshold_max)
    thresholds = rng.integers(-span, span + 1, size=(cfg.cols, cfg.threshold_depth))
    corner = rng.random(thresholds.shape)
    thresholds[corner < 0.05] = cfg.threshold_min
    thresholds[corner > 0.95] = cfg.threshold_max
    planes_max = cfg.max_input_bits
    commands = []
    for n in range(count):
        kind = n % 6
        fan_in = cfg.max_inputs if kind in (0, 3) else int(rng.integers(1, cfg.max_inputs + 1))
        planes = int(rng.integers(1, planes_max + 1)) if kind != 4 else planes_max
        if kind == 1:
            values = np.zeros(fan_in, dtype=np.int64)
        elif kind in (2, 3):
            values = np.full(fan_in, (1 << planes) - 1, dtype=np.int64)
        else:
            density = float(rng.choice([0.02, 0.1, 0.3, 0.6, rng.random()]))
            values = rng.integers(0, 1 << planes, size=fan_in) * (rng.random(fan_in) < density)
        n_words, beats = encode_input(values, planes, cfg.skip_window)
        span_w = n_words * cfg.skip_window
        base = int(rng.integers(0, max(1, cfg.weight_depth - span_w + 1)))
        tbase = int(rng.integers(0, cfg.threshold_depth - cfg.rows + 1))
        commands.append((Command(n_words, planes, base, tbase), beats))
    case = TileCase(weights, thresholds, commands)
    pin_thresholds(cfg, case, rng)
    return case

