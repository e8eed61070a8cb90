"""Event-driven convolution: how one command covers several output positions and channels.

On a core with `conv_coord_bits > 0` (docs/ARCHITECTURE.md, "Event-driven convolution") a conv
layer runs as one command per *output tile*: `tile_h` x `tile_w` output positions times `group`
output channels. Every non-zero input (spike or pixel) inside the tile's input window is one event
{index, value, y, x} for the whole tile; each PE finds its kernel tap from the event's window
coordinates and its own position, and skips the event when it lies outside its receptive field.
So each input spike is scanned once per tile that sees it, not once per output position.

PE slot s (= r*C + c) of a conv command holds:

    channel   ch = s mod 2^group_shift             (its output channel within the channel tile)
    position  q  = s >> group_shift,  ly = q >> width_shift,  lx = q mod 2^width_shift
    offset    dy = ly << stride_shift,  dx = lx << stride_shift   (its receptive field in the window)

and it is used when ch < n_ch, ly < n_y and lx < n_x (edge tiles) as well as s < slots. For an event
at window coordinates (y, x): ky = y - dy, kx = x - dx; the PE adds W * value when 0 <= ky < kernel_h
and 0 <= kx < kernel_w, reading its weight at

    weight_base + index + (ky << pitch_shift | kx),    index = ci * kernel_h * 2^pitch_shift

(the event's input channel ci). A channel's kernel is stored with a row pitch of 2^pitch_shift >=
kernel_w words, so the address is a shift and an OR, and each PE needs only two subtractors, four
comparisons and one adder: no multiplier. The price is memory: a 5x5 kernel takes 5 x 8 words
(1.6x), a 3x3 one 3 x 4 (1.33x). Every PE with the same ch holds a copy of that channel's kernels.

The tiling (`choose_tiling`): group = the smallest power of two >= cout, capped at the largest
power of two <= R*C (more channels: several channel tiles); the rest of the array holds positions,
`tile_w` a power of two and `tile_h` = positions // tile_w rows. Among the widths it keeps the one
with the fewest modelled cycles per image, ceil(oh/tile_h) * ceil(ow/tile_w) * channel tiles *
(overhead + density * cin * window area), with overhead = sim/schedule.py's cycles of a command
beyond its events (R + C + P + 1) and density 0.2 spikes per input: bigger tiles share more of their window and
pay the per-command overhead fewer times, but their edge tiles waste more slots. A layer whose
per-position model (positions * ceil(cout / R*C) * (overhead + density * fan-in)) is no worse
keeps the per-position path: a power-of-two group can leave PEs idle that whole-channel tiles use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from spikeforge.hw.config import CoreConfig

# The input density the tiling choice assumes (spikes per input); the choice only weighs window
# area against per-command overhead, so it is not sensitive to this value.
ASSUMED_DENSITY = 0.2
MAX_STRIDE_SHIFT = 3


def _floor_pow2_shift(n: int) -> int:
    return max(0, n.bit_length() - 1)


def _ceil_pow2_shift(n: int) -> int:
    return max(0, (max(1, n) - 1).bit_length())


@dataclass(frozen=True)
class ConvTiling:
    """The tile geometry of one conv layer on one core (the module docstring states its meaning)."""

    cin: int
    cout: int
    kernel_h: int
    kernel_w: int
    stride_shift: int
    padding: int
    out_h: int
    out_w: int
    group_shift: int
    width_shift: int
    tile_h: int
    pitch_shift: int

    @property
    def group(self) -> int:
        return 1 << self.group_shift

    @property
    def tile_w(self) -> int:
        return 1 << self.width_shift

    @property
    def stride(self) -> int:
        return 1 << self.stride_shift

    @property
    def slots(self) -> int:
        """PE slots a command uses: tile_h * tile_w positions x group channels."""
        return self.tile_h * self.tile_w * self.group

    @property
    def window_h(self) -> int:
        return (self.tile_h - 1) * self.stride + self.kernel_h

    @property
    def window_w(self) -> int:
        return (self.tile_w - 1) * self.stride + self.kernel_w

    @property
    def channel_tiles(self) -> int:
        return -(-self.cout // self.group)

    @property
    def words(self) -> int:
        """Weight words per PE and channel tile: cin kernels of kernel_h rows of 2^pitch_shift."""
        return self.cin * self.kernel_h << self.pitch_shift

    @property
    def coord_bits(self) -> int:
        """Bits of an event's window coordinate (0 .. window - 1)."""
        return max(1, (max(self.window_h, self.window_w) - 1).bit_length())

    @property
    def commands(self) -> int:
        return self.channel_tiles * -(-self.out_h // self.tile_h) * -(-self.out_w // self.tile_w)

    def tiles(self) -> Iterator[tuple[int, int, int, int, int]]:
        """(channel tile, oy0, ox0, n_y, n_x) per command, in driver order: channel tile, then
        tile rows, then tile columns."""
        for t in range(self.channel_tiles):
            for oy0 in range(0, self.out_h, self.tile_h):
                for ox0 in range(0, self.out_w, self.tile_w):
                    yield t, oy0, ox0, min(self.tile_h, self.out_h - oy0), min(self.tile_w, self.out_w - ox0)

    def window_inputs(self, in_h: int, in_w: int, oy0: int, ox0: int) -> int:
        """Inputs inside the window of the tile at (oy0, ox0) of an [cin, in_h, in_w] map (padding
        included): the slots of the same command without zero-skipping."""
        p = self.padding
        h = min(in_h + 2 * p, oy0 * self.stride + self.window_h) - oy0 * self.stride
        w = min(in_w + 2 * p, ox0 * self.stride + self.window_w) - ox0 * self.stride
        return self.cin * h * w

    def slot_geometry(self, pes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per PE slot: (ch, ly, lx), the formulas of the module docstring."""
        s = np.arange(pes)
        q = s >> self.group_shift
        return s & (self.group - 1), q >> self.width_shift, q & (self.tile_w - 1)


def event_capable(layer) -> bool:
    """A conv layer the event dataflow can run: a power-of-two stride up to 2^MAX_STRIDE_SHIFT."""
    if layer.kind != "conv":
        return False
    s = int(layer.stride)
    return s >= 1 and s & (s - 1) == 0 and s.bit_length() - 1 <= MAX_STRIDE_SHIFT


def _tiling(layer, cfg: CoreConfig, width_shift: int) -> ConvTiling:
    cout, cin, kh, kw = (int(v) for v in layer.weight.shape)
    oh, ow = layer.out_hw
    group_shift = min(_ceil_pow2_shift(cout), _floor_pow2_shift(cfg.pes))
    positions = cfg.pes >> group_shift
    tile_h = max(1, min(positions >> width_shift, oh))
    return ConvTiling(cin, cout, kh, kw, int(layer.stride).bit_length() - 1, int(layer.padding), oh, ow,
                      group_shift, width_shift, tile_h, _ceil_pow2_shift(kw))


def choose_tiling(layer, cfg: CoreConfig, coord_bits: int | None = None) -> ConvTiling | None:
    """The tiling of the module docstring, or None when the layer cannot run as events on cfg
    (not an event-capable conv, or no tile whose window fits `coord_bits`, cfg's by default)."""
    if not event_capable(layer):
        return None
    bits = cfg.conv_coord_bits if coord_bits is None else coord_bits
    if bits <= 0:
        return None
    from spikeforge.sim.schedule import command_cycles

    overhead = command_cycles(cfg, 0)  # the per-command cycles beyond the events
    best, best_cost = None, math.inf
    positions_shift = _floor_pow2_shift(cfg.pes) - _tiling(layer, cfg, 0).group_shift
    for width_shift in range(positions_shift + 1):
        t = _tiling(layer, cfg, width_shift)
        if t.tile_w > 1 and (t.tile_w >> 1) >= t.out_w:
            continue  # wider than the map: the same tiles as the narrower width, more waste
        if t.coord_bits > bits:
            continue
        window = t.cin * t.window_h * t.window_w
        cost = t.commands * (overhead + ASSUMED_DENSITY * window)
        if cost < best_cost:
            best, best_cost = t, cost
    # The same model of the per-position path: a layer whose channels fill the array better that
    # way (e.g. 10 channels on 15 PEs, where a power-of-two group takes 8) stays on it.
    per_position = (layer.positions * -(-int(layer.weight.shape[0]) // cfg.pes)
                    * (overhead + ASSUMED_DENSITY * layer.fan_in))
    return best if best_cost < per_position else None


def conv_coord_bits_for(net, rows: int, cols: int) -> int:
    """The coordinate width a core of R x C needs to run every event-capable conv layer of `net`
    as events (0: the network has none)."""
    probe = CoreConfig(rows=rows, cols=cols, conv_coord_bits=8)
    bits = 0
    for layer in net.layers:
        t = choose_tiling(layer, probe)
        if t is not None:
            bits = max(bits, t.coord_bits)
    return bits


def window_events(t: ConvTiling, padded: np.ndarray, oy0: int, ox0: int) -> list[tuple[int, int, int, int]]:
    """The events of one command: (index, value, y, x) of every non-zero input of the tile's
    window, channel-major then row-major; `padded` is the [cin, h + 2p, w + 2p] input."""
    y0, x0 = oy0 * t.stride, ox0 * t.stride
    window = padded[:, y0: y0 + t.window_h, x0: x0 + t.window_w]
    ci, y, x = np.nonzero(window)
    rows = t.kernel_h << t.pitch_shift
    return [(int(c) * rows, int(window[c, yy, xx]), int(yy), int(xx)) for c, yy, xx in zip(ci, y, x, strict=True)]
