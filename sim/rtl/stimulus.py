"""Constrained-random stimulus for the core: memory contents and tile commands with the corners.

The one random-case generator used by the Amaranth tests, the cocotb regression and
`spikeforge verify`, and the cases that exercise each injected fault (`fault_case`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from spikeforge.hw.config import FAULTS, PROTOCOL_FAULTS, CoreConfig
from spikeforge.sim.cycle import Command, encode_conv_events, encode_events, encode_input, run_tile


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
        "commands": [[dataclasses.asdict(c), list(map(int, beats))] for c, beats in case.commands],
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


def random_memories(cfg: CoreConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weights [R*C, depth] with both extremes over-represented; thresholds [C, depth] around
    the sums a tile reaches, some at the register limits."""
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, cfg.weight_depth))
    corner = rng.random(weights.shape)
    weights[corner < 0.1] = cfg.weight_min
    weights[corner > 0.9] = cfg.weight_max
    span = min(1 << (cfg.weight_bits + 3), cfg.threshold_max)
    thresholds = rng.integers(-span, span + 1, size=(cfg.cols, cfg.threshold_depth))
    corner = rng.random(thresholds.shape)
    thresholds[corner < 0.05] = cfg.threshold_min
    thresholds[corner > 0.95] = cfg.threshold_max
    return weights, thresholds


def random_commands(cfg: CoreConfig, rng: np.random.Generator, count: int) -> list[tuple[Command, list[int]]]:
    """Commands with the corners: no spikes, all spikes (all ones on every plane), the longest
    fan-in (max_inputs), the most planes; otherwise random fan-in, planes and density. Every other
    multi-bit command runs as value events (kinds 1 and 2 cover the empty and the full event
    list), and slots (gating) are random: all, one, or any count."""
    planes_max = cfg.max_input_bits
    commands = []
    for n in range(count):
        kind = n % 8
        fan_in = cfg.max_inputs if kind in (0, 3) else int(rng.integers(1, cfg.max_inputs + 1))
        planes = int(rng.integers(1, planes_max + 1)) if kind != 4 else planes_max
        if kind == 1:
            values = np.zeros(fan_in, dtype=np.int64)
        elif kind in (2, 3):
            values = np.full(fan_in, (1 << planes) - 1, dtype=np.int64)
        else:
            density = float(rng.choice([0.02, 0.1, 0.3, 0.6, rng.random()]))
            values = rng.integers(0, 1 << planes, size=fan_in) * (rng.random(fan_in) < density)
        events = kind in (5, 6, 7) or (kind in (1, 2) and n % 16 >= 8)
        slots = int(rng.choice([0, 1, cfg.pes, int(rng.integers(1, cfg.pes + 1))]))
        if cfg.conv and kind in (1, 5, 6, 7) and n % 2 == 1 and _pow2(cfg.weight_depth):
            commands.append(random_conv_command(cfg, rng, slots, empty=kind == 1))
            continue
        commands.append(command_for(cfg, rng, values, planes, events=events, slots=slots))
    return commands


def _pow2(n: int) -> bool:
    return n & (n - 1) == 0


def random_conv_command(cfg: CoreConfig, rng: np.random.Generator, slots: int = 0,
                        empty: bool = False) -> tuple[Command, list[int]]:
    """A conv event command (hw/conv_tiling.py) with random geometry anywhere in its fields' widths
    (edge tiles, kernels wider than the pitch, offsets that wrap) and random events: the RTL must
    agree with the golden model on all of it, not only on the tilings the driver builds."""
    coord = cfg.conv_coord_bits
    log_pes = cfg.pes.bit_length() - 1
    slot_max = (1 << cfg.slot_bits) - 1
    kernel_h = int(rng.integers(1, (1 << coord) + 1))
    kernel_w = int(rng.integers(1, (1 << coord) + 1))
    proper = max(0, (kernel_w - 1).bit_length())
    pitch = proper if rng.random() < 0.8 else int(rng.integers(0, (1 << cfg.conv_shift_bits)))
    group_shift = int(rng.integers(0, log_pes + 1))
    width_shift = int(rng.integers(0, log_pes - group_shift + 1))
    n_events = 0 if empty else int(rng.choice([1, int(rng.integers(1, 4 * (1 << coord) + 1))]))
    events = [(int(rng.integers(0, cfg.max_inputs)), int(rng.integers(0, 1 << cfg.max_input_bits)),
               int(rng.integers(0, 1 << coord)), int(rng.integers(0, 1 << coord))) for _ in range(n_events)]
    n_words, beats = encode_conv_events(cfg, events)
    in_range = rng.random() < 0.7  # mostly the driver's kind of geometry, sometimes anything
    cmd = Command(n_words, 1, int(rng.integers(0, cfg.weight_depth)),
                  int(rng.integers(0, cfg.threshold_depth - cfg.rows + 1)), events=True, slots=slots, conv=True,
                  group_shift=group_shift, width_shift=width_shift, stride_shift=int(rng.integers(0, 3)),
                  pitch_shift=pitch, kernel_h=kernel_h, kernel_w=kernel_w,
                  n_ch=int(rng.integers(0, (1 << group_shift) + 1)) if in_range else int(rng.integers(0, slot_max + 1)),
                  n_y=int(rng.integers(0, (cfg.pes >> group_shift >> width_shift) + 1)) if in_range
                  else int(rng.integers(0, slot_max + 1)),
                  n_x=int(rng.integers(0, (1 << width_shift) + 1)) if in_range else int(rng.integers(0, slot_max + 1)))
    return cmd, beats


def command_for(cfg: CoreConfig, rng: np.random.Generator, values: np.ndarray, planes: int,
                weight_base: int | None = None, events: bool = False, slots: int = 0) -> tuple[Command, list[int]]:
    """A command over the unsigned inputs `values` (random bases where not given), as mask planes
    or (events) value events."""
    if events:
        n_words, beats = encode_events(values, cfg.index_bits)
        span_w = len(values)
    else:
        n_words, beats = encode_input(values, planes, cfg.skip_window)
        span_w = n_words * cfg.skip_window
    if weight_base is None:
        weight_base = int(rng.integers(0, max(1, cfg.weight_depth - span_w + 1)))
    tbase = int(rng.integers(0, cfg.threshold_depth - cfg.rows + 1))
    return Command(n_words, 1 if events else planes, weight_base, tbase, events=events, slots=slots), beats


def random_case(cfg: CoreConfig, rng: np.random.Generator, count: int) -> TileCase:
    """Constrained-random commands on random memories, with the corners of random_memories and
    random_commands and thresholds exactly at the accumulator (acc == T, pin_thresholds)."""
    weights, thresholds = random_memories(cfg, rng)
    case = TileCase(weights, thresholds, random_commands(cfg, rng, count))
    pin_thresholds(cfg, case, rng)
    return case


def fault_case(cfg: CoreConfig, fault: str, rng: np.random.Generator, stall_seed: int | None = None) -> TileCase:
    """A case built to exercise one injected fault of hw/config.py FAULTS (no hoping):

    - comparator_off_by_one: one command whose every output has acc == T exactly (value 0, spike);
    - drop_first_index: input 0 active and every PE's weight for it non-zero;
    - no_double: two planes with the MSB plane set and non-zero weights under it;
    - the protocol faults: random commands under stalls (they only act while `out` is stalled)."""
    weights, thresholds = random_memories(cfg, rng)
    if fault in PROTOCOL_FAULTS:
        return TileCase(weights, thresholds, random_commands(cfg, rng, 8), stall_seed=stall_seed)
    fan_in = min(cfg.max_inputs, 2 * cfg.skip_window)
    if fault == "comparator_off_by_one":
        values = (rng.random(fan_in) < 0.5).astype(np.int64)
        case = TileCase(weights, thresholds, [command_for(cfg, rng, values, 1)])
        pin_thresholds(cfg, case, rng, fraction=1.0)
        return case
    if fault == "drop_first_index":
        values = (rng.random(fan_in) < 0.3).astype(np.int64)
        values[0] = 1
        cmd = command_for(cfg, rng, values, 1)
        weights[:, cmd[0].weight_base] = cfg.weight_max
        return TileCase(weights, thresholds, [cmd])
    if fault == "no_double":
        if cfg.max_input_bits < 2:
            raise ValueError("no_double needs a config with max_input_bits >= 2")
        values = rng.integers(2, 4, size=fan_in)  # the MSB of two planes set everywhere
        cmd = command_for(cfg, rng, values, 2)
        base = cmd[0].weight_base
        weights[:, base: base + fan_in] = cfg.weight_max
        return TileCase(weights, thresholds, [cmd])
    raise ValueError(f"fault {fault!r} is unknown; use one of {FAULTS}")
