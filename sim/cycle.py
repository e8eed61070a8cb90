"""Cycle-accurate golden model of one core command (one tile), and the command encoding.

It is the software twin of hw/core.py: given the memory contents, a command and the input
beats, it returns every output beat with its values and the exact cycle at which it leaves the
core (no stalls: sources always valid, sink always ready). Its cycle numbers come from
sim/schedule.py, the one statement of the timing contract (docs/ARCHITECTURE.md); hw/core.py is
the RTL that keeps it, and the two change together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import wrap_signed
from spikeforge.sim.schedule import scan_slots, tile_timing


@dataclass(frozen=True)
class Command:
    """One tile: n_planes x n_words input beats, weights at weight_base, thresholds at threshold_base."""

    n_words: int
    n_planes: int
    weight_base: int
    threshold_base: int


@dataclass(frozen=True)
class OutputBeat:
    row: int  # PE row whose C neurons this beat carries
    last: bool
    spikes: tuple[bool, ...]  # per column
    values: tuple[int, ...]  # acc - threshold per column
    cycle: int  # cycle in which the beat is valid and taken (no stalls)


@dataclass(frozen=True)
class TileResult:
    beats: tuple[OutputBeat, ...]
    accept_cycle: int  # cycle the command was accepted (c0)
    scan_slots: int  # S: scan cycles (accumulate slots incl. empty words and plane doublings)
    active: int  # ideal: number of active (input, plane) bits = accumulate ops
    next_accept: int  # first cycle the core can accept the next command

    @property
    def done_cycle(self) -> int:
        return self.beats[-1].cycle

    @property
    def cycles(self) -> int:
        """Cycles from command accept to the last output beat, both included."""
        return self.done_cycle - self.accept_cycle + 1


def encode_input(values: np.ndarray, n_planes: int, window: int) -> tuple[int, list[int]]:
    """Unsigned integer inputs (spikes: 0/1) -> (n_words, beats), plane-major, MSB plane first."""
    values = np.asarray(values, dtype=np.int64).ravel()
    n = values.size
    n_words = max(1, -(-n // window))
    padded = np.zeros(n_words * window, dtype=np.int64)
    padded[:n] = values
    weights = np.left_shift(np.ones(window, dtype=object), np.arange(window)).astype(object)
    beats = []
    for plane in reversed(range(n_planes)):
        bits = ((padded >> plane) & 1).reshape(n_words, window).astype(object)
        beats.extend(int(x) for x in (bits * weights).sum(axis=1))
    return n_words, beats


def run_tile(
    cfg: CoreConfig,
    weights: np.ndarray,
    thresholds: np.ndarray,
    cmd: Command,
    beats: list[int],
    accept_cycle: int = 0,
) -> TileResult:
    """Execute one command exactly as the RTL does (weights[R*C, depth], thresholds[C, depth])."""
    window = cfg.skip_window
    acc = np.zeros(cfg.pes, dtype=np.int64)
    active = 0
    for plane in range(cmd.n_planes):
        if plane:
            acc = wrap_signed(acc << 1, cfg.acc_bits)
        for w in range(cmd.n_words):
            word = beats[plane * cmd.n_words + w]
            for bit in range(window):
                if word >> bit & 1:
                    addr = (cmd.weight_base + w * window + bit) % cfg.weight_depth
                    acc = wrap_signed(acc + weights[:, addr], cfg.acc_bits)
                    active += 1
    s = scan_slots(beats, cmd.n_planes)
    beat_cycles, next_accept = tile_timing(cfg, s, accept_cycle)
    out = []
    for k in range(cfg.rows):
        row = cfg.rows - 1 - k
        taddr = (cmd.threshold_base + row) % cfg.threshold_depth
        values = tuple(int(acc[row * cfg.cols + c] - thresholds[c, taddr]) for c in range(cfg.cols))
        out.append(OutputBeat(row, k == cfg.rows - 1, tuple(v >= 0 for v in values), values, beat_cycles[k]))
    return TileResult(tuple(out), accept_cycle, s, active, next_accept)
