"""The schedule: the one statement of how many cycles the core spends, from a command's inputs.

Every cycle figure in spikeforge comes from here: the cycle-accurate model (sim/cycle.py), the
network driver (sim/driver.py), the estimator's vectorised counts (sim/estimate/counts.py) and
the energy counts. hw/core.py implements the same contract in RTL, and the regressions compare
the RTL cycle by cycle with the numbers below (docs/ARCHITECTURE.md, "Timing contract").

Contract (no stalls; cycle c0 = the cycle a command is accepted; P = TOKEN_PIPELINE = 5, the
two front-end registers, the registered weight read and the two product registers):
- scan slots   S = sum over input words of max(1, popcount(word)) + (n_planes - 1) (spike masks
               and pixel planes), or S = the number of value events (event commands)
- scan         one slot per cycle in c0+2 .. e, e = c0 + 1 + S
- flush        e+1 .. e+R+C-1+P (the last token reaches PE (R-1, C-1) and is applied)
- capture      X = e + R + C + P: the drain buffer takes the tile; X is also the next accept
- drain        output beat k (PE row R-1-k) leaves in cycle X + 2 + k, overlapping the next tile
So one command occupies the core for `command_cycles` = 1 + S + R + C + P cycles (accept to next
accept), a tile takes `tile_cycles` = S + 2R + C + P + 3 cycles from accept to last beat (both
included), and commands issued back to back take sum(command_cycles) + R + 2 cycles.

Multi-step cores (hw/step_loop.py) drain the array itself, without overlap: a command with
n_steps steps scans and flushes once, then drains n_steps times, R beats each (beat k = s*R + j
leaves in d0 + 1 + k, d0 = e + R + C + P), so it occupies the core for
1 + S + 2R + C + P + R*(n_steps - 1) cycles and its last beat leaves in the cycle of the next
accept (back to back: sum(command_cycles) + 1). A network of T steps issues, per layer, one command
per (position, tile, step) (the analog first layer: one per (position, tile) with n_steps = T), so
its cycles per image are the sum over those commands.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikeforge.hw.config import TOKEN_PIPELINE, CoreConfig


def scan_slots(beats: Sequence[int], n_planes: int) -> int:
    """S of one command from its input beats (skip-window masks, plane-major)."""
    return sum(max(1, int(b).bit_count()) for b in beats) + (n_planes - 1)


def command_slots(cmd, beats: Sequence[int]) -> int:
    """S of one command (sim/cycle.py `Command`): its events, or its masks' scan slots."""
    return int(cmd.n_words) if cmd.events else scan_slots(beats, cmd.n_planes)


def scan_slots_batch(values: np.ndarray, n_planes: int, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """S for many commands at once, straight from their unsigned inputs.

    values: [..., fan_in] integers (spikes 0/1, or n_planes-bit pixels). Returns (S[...],
    active[...], n_words), where active is the number of set (input, plane) bits: the ideal
    accumulate count of the command.
    """
    values = np.asarray(values, dtype=np.int64)
    fan_in = values.shape[-1]
    words = max(1, -(-fan_in // window))
    padded = np.zeros(values.shape[:-1] + (words * window,), dtype=np.int64)
    padded[..., :fan_in] = values
    slots = np.zeros(values.shape[:-1], dtype=np.int64)
    active = np.zeros(values.shape[:-1], dtype=np.int64)
    for plane in range(n_planes):
        pop = ((padded >> plane) & 1).reshape(values.shape[:-1] + (words, window)).sum(axis=-1)
        slots += np.maximum(pop, 1).sum(axis=-1)
        active += pop.sum(axis=-1)
    return slots + n_planes - 1, active, words


def event_slots(values: np.ndarray) -> np.ndarray:
    """S of event commands from their unsigned inputs [..., fan_in]: one slot per non-zero input,
    and one (a zero event) for an all-zero input."""
    return np.maximum((np.asarray(values) != 0).sum(axis=-1), 1)


def dense_slots(fan_in: int, n_planes: int) -> int:
    """S of the same core without zero-skipping: every input bit of every plane costs a slot."""
    return n_planes * fan_in + n_planes - 1


def command_cycles(cfg: CoreConfig, slots, steps=1):
    """Cycles a command occupies the core, from its accept to the next command's accept."""
    if not cfg.multistep:  # the drain overlaps the next command
        return 1 + slots + cfg.rows + cfg.cols + TOKEN_PIPELINE
    return 1 + slots + 2 * cfg.rows + cfg.cols + TOKEN_PIPELINE + cfg.rows * (steps - 1)


def drain_tail(cfg: CoreConfig) -> int:
    """Cycles from the next accept to a command's last output beat: R + 1 on a one-step core (its
    drain overlaps the next command), 0 on a multi-step core."""
    return 0 if cfg.multistep else cfg.rows + 1


def tile_cycles(cfg: CoreConfig, slots, steps=1):
    """Cycles from a command's accept to its last output beat, both included."""
    return command_cycles(cfg, slots, steps) + drain_tail(cfg) + 1


def tile_timing(cfg: CoreConfig, slots: int, accept_cycle: int, steps: int = 1) -> tuple[list[int], int]:
    """(output beat cycles, next accept cycle) of a command with S = slots (and `steps` drains)
    accepted at accept_cycle."""
    next_accept = accept_cycle + int(command_cycles(cfg, slots, steps))
    # One beat per row and step; the last R + 1 cycles after the next accept (one-step) or in it.
    beats = cfg.rows * steps
    last = next_accept + drain_tail(cfg)
    beat_cycles = [last - (beats - 1 - k) for k in range(beats)]
    return beat_cycles, next_accept


def membrane_accesses(cfg: CoreConfig, steps=1):
    """Membrane words read and written by one command: one read and one write per neuron slot per step."""
    return cfg.pes * np.asarray(steps), cfg.pes * np.asarray(steps)


def back_to_back_cycles(cfg: CoreConfig, slots, steps=1):
    """Cycles of commands issued back to back, first accept to last beat, both included.

    slots: an array [..., commands] of S per command (steps: their drain counts, multi-step
    cores); the sum runs over the last axis."""
    return np.sum(command_cycles(cfg, np.asarray(slots), np.asarray(steps)), axis=-1) + drain_tail(cfg) + 1
