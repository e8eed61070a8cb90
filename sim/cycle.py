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
from spikeforge.integer_multistep import neuron_step
from spikeforge.integer_network import wrap_signed
from spikeforge.sim.schedule import scan_slots, tile_timing


@dataclass(frozen=True)
class Command:
    """One tile: n_planes x n_words input beats, weights at weight_base, thresholds at threshold_base.

    The fields from membrane_base to readout exist on multi-step cores only (hw/step_loop.py): the
    time step of the first step, the steps run on the same accumulators, and the neuron unit's
    flags. `events`: the beats are n_words value events (encode_events; one plane). `slots`: the PE
    slots the tile uses (0: all); the others neither read nor add (their accumulators stay 0).
    `conv` to `n_x` exist on conv cores only (hw/conv_tiling.py): with `events`, the events are conv
    events {index, value, y, x} and the fields give the tile's geometry."""

    n_words: int
    n_planes: int
    weight_base: int
    threshold_base: int
    membrane_base: int = 0
    step: int = 0
    n_steps: int = 1
    first: bool = True
    per_step: bool = False
    leak: bool = False
    reset_zero: bool = False
    readout: bool = False
    events: bool = False
    slots: int = 0
    conv: bool = False
    group_shift: int = 0
    width_shift: int = 0
    stride_shift: int = 0
    pitch_shift: int = 0
    kernel_h: int = 0
    kernel_w: int = 0
    n_ch: int = 0
    n_y: int = 0
    n_x: int = 0


@dataclass
class NeuronMemories:
    """A multi-step core's neuron-unit memories: constants [C, threshold_depth] (the thresholds are
    run_tile's `thresholds`) and the membrane [C, membrane_depth], which run_tile updates."""

    scales: np.ndarray
    offsets: np.ndarray
    membrane: np.ndarray

    @classmethod
    def zeros(cls, cfg: CoreConfig, scales=None, offsets=None) -> NeuronMemories:
        shape = (cfg.cols, cfg.threshold_depth)
        return cls(np.ones(shape, np.int64) if scales is None else np.asarray(scales, np.int64),
                   np.zeros(shape, np.int64) if offsets is None else np.asarray(offsets, np.int64),
                   np.zeros((cfg.cols, cfg.membrane_depth), np.int64))


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


def uses_events(layer) -> bool:
    """A layer of multi-bit inputs (the pixels) runs as value events: one slot and one weight read
    per non-zero pixel instead of one per set bit of every plane."""
    return layer.input_bits > 1


def encode_events(values: np.ndarray, index_bits: int) -> tuple[int, list[int]]:
    """Unsigned integer inputs -> (n_events, beats): one event {index, value} per non-zero input in
    index order (index in the low index_bits), or one zero event for an all-zero input."""
    values = np.asarray(values, dtype=np.int64).ravel()
    nonzero = np.flatnonzero(values)
    if nonzero.size == 0:
        return 1, [0]
    return int(nonzero.size), [int(i) | int(values[i]) << index_bits for i in nonzero]


def encode_conv_events(cfg: CoreConfig, events: list[tuple[int, int, int, int]]) -> tuple[int, list[int]]:
    """Conv events (index, value, y, x) -> (n_events, beats), packed {index, value, y, x} from the
    LSB; no event -> one zero event (index 0, value 0: it adds nothing)."""
    if not events:
        return 1, [0]
    value_at, y_at = cfg.index_bits, cfg.index_bits + cfg.max_input_bits
    x_at = y_at + cfg.conv_coord_bits
    return len(events), [index | value << value_at | y << y_at | x << x_at for index, value, y, x in events]


def decode_conv_event(cfg: CoreConfig, beat: int) -> tuple[int, int, int, int]:
    """(index, value, y, x) of one conv event beat."""
    index, value = decode_event(cfg, beat)
    coord = (1 << cfg.conv_coord_bits) - 1
    y_at = cfg.index_bits + cfg.max_input_bits
    return index, value, beat >> y_at & coord, beat >> (y_at + cfg.conv_coord_bits) & coord


def conv_command(cmd: Command) -> bool:
    """The command's events are conv events (the RTL latches `conv & events`)."""
    return bool(cmd.conv and cmd.events)


def conv_pe_state(cfg: CoreConfig, cmd: Command) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per PE slot, what the RTL latches at accept for a conv command: (dy, dx, in_tile), the slot
    formulas of hw/conv_tiling.py with the RTL's widths (slot_bits values, coord-bit offsets)."""
    slot_mask = (1 << cfg.slot_bits) - 1
    coord_mask = (1 << cfg.conv_coord_bits) - 1
    s = np.arange(cfg.pes, dtype=np.int64)
    q = (s >> cmd.group_shift) & slot_mask
    ch = (s - (q << cmd.group_shift)) & slot_mask
    ly = (q >> cmd.width_shift) & slot_mask
    lx = (q - (ly << cmd.width_shift)) & slot_mask
    in_tile = (ch < cmd.n_ch) & (ly < cmd.n_y) & (lx < cmd.n_x)
    return (ly << cmd.stride_shift) & coord_mask, (lx << cmd.stride_shift) & coord_mask, in_tile


def decode_event(cfg: CoreConfig, beat: int) -> tuple[int, int]:
    """(index, value) of one event beat."""
    return beat & ((1 << cfg.index_bits) - 1), (beat >> cfg.index_bits) & ((1 << cfg.max_input_bits) - 1)


def run_tile(
    cfg: CoreConfig,
    weights: np.ndarray,
    thresholds: np.ndarray,
    cmd: Command,
    beats: list[int],
    accept_cycle: int = 0,
    neuron: NeuronMemories | None = None,
) -> TileResult:
    """Execute one command exactly as the RTL does (weights[R*C, depth], thresholds[C, depth]);
    a multi-step core also takes (and updates) its neuron memories."""
    window = cfg.skip_window
    acc = np.zeros(cfg.pes, dtype=np.int64)
    used = np.arange(cfg.pes) < (cmd.slots or cfg.pes)
    weights = np.where(used[:, None], weights, 0)  # idle slots neither read nor add (conv: also outside the tile)
    active = 0
    if conv_command(cmd):
        dy, dx, in_tile = conv_pe_state(cfg, cmd)
        used &= in_tile
        rows = np.arange(cfg.pes)
        addr_mask = (1 << cfg.weight_addr_bits) - 1
        coord_mask = (1 << cfg.conv_coord_bits) - 1
        for beat in beats[:cmd.n_words]:
            index, value, y, x = decode_conv_event(cfg, beat)
            ky, kx = y - dy, x - dx
            inside = used & (ky >= 0) & (ky < cmd.kernel_h) & (kx >= 0) & (kx < cmd.kernel_w)
            tap = ((ky & coord_mask) << cmd.pitch_shift) | (kx & coord_mask)
            addr = (((cmd.weight_base + index) & addr_mask) + tap) & addr_mask
            acc = wrap_signed(acc + np.where(inside, weights[rows, addr % cfg.weight_depth], 0) * value, cfg.acc_bits)
            active += int(inside.any())
        s = cmd.n_words
    elif cmd.events:
        for beat in beats[:cmd.n_words]:
            index, value = decode_event(cfg, beat)
            acc = wrap_signed(acc + weights[:, (cmd.weight_base + index) % cfg.weight_depth] * value, cfg.acc_bits)
            active += 1
        s = cmd.n_words
    for plane in range(0 if cmd.events else cmd.n_planes):
        if plane:
            acc = wrap_signed(acc << 1, cfg.acc_bits)
        for w in range(cmd.n_words):
            word = beats[plane * cmd.n_words + w]
            for bit in range(window):
                if word >> bit & 1:
                    addr = (cmd.weight_base + w * window + bit) % cfg.weight_depth
                    acc = wrap_signed(acc + weights[:, addr], cfg.acc_bits)
                    active += 1
    if not cmd.events:
        s = scan_slots(beats, cmd.n_planes)
    if cfg.multistep:
        beat_cycles, next_accept = tile_timing(cfg, s, accept_cycle, cmd.n_steps)
        out = _neuron_beats(cfg, acc, thresholds, cmd, neuron or NeuronMemories.zeros(cfg), beat_cycles)
        return TileResult(tuple(out), accept_cycle, s, active, next_accept)
    beat_cycles, next_accept = tile_timing(cfg, s, accept_cycle)
    out = []
    for k in range(cfg.rows):
        row = cfg.rows - 1 - k
        taddr = (cmd.threshold_base + row) % cfg.threshold_depth
        values = tuple(int(acc[row * cfg.cols + c] - thresholds[c, taddr]) for c in range(cfg.cols))
        out.append(OutputBeat(row, k == cfg.rows - 1, tuple(v >= 0 for v in values), values, beat_cycles[k]))
    return TileResult(tuple(out), accept_cycle, s, active, next_accept)


def _neuron_beats(cfg: CoreConfig, acc: np.ndarray, thresholds: np.ndarray, cmd: Command,
                  neuron: NeuronMemories, beat_cycles: list[int]) -> list[OutputBeat]:
    """The drains of a multi-step command through the neuron unit (hw/neuron.py), with the
    neuron-unit faults of cfg.fault reproduced (so a fault test can name the exact mismatch)."""
    shift = cfg.leak_shift + (cfg.fault == "leak_off_by_one")
    reset_zero = cmd.reset_zero or cfg.fault == "reset_to_zero"
    out = []
    for s in range(cmd.n_steps):
        # the step register wraps at step_bits; the faulty unit reads the next step's constants
        step = (cmd.step + s) % (1 << cfg.step_bits) + (cfg.fault == "wrong_step_constant")
        for j in range(cfg.rows):
            row = cfg.rows - 1 - j
            caddr = (cmd.threshold_base + (step * cfg.rows if cmd.per_step else 0) + row) \
                % (1 << cfg.threshold_addr_bits) % cfg.threshold_depth
            maddr = (cmd.membrane_base + row) % (1 << cfg.membrane_addr_bits) % cfg.membrane_depth
            lanes = acc[row * cfg.cols: (row + 1) * cfg.cols]
            scale = neuron.scales[:, caddr] if cfg.scale_bits else 1
            stored, value, spike = neuron_step(
                neuron.membrane[:, maddr], lanes, scale, neuron.offsets[:, caddr], thresholds[:, caddr],
                leak_shift=shift if cmd.leak else 0, first=cmd.first and s == 0, reset_zero=reset_zero,
                readout=cmd.readout, membrane_bits=cfg.membrane_bits)
            neuron.membrane[:, maddr] = stored
            k = s * cfg.rows + j
            out.append(OutputBeat(row, k == cmd.n_steps * cfg.rows - 1, tuple(bool(v) for v in spike),
                                  tuple(int(v) for v in value), beat_cycles[k]))
    return out
