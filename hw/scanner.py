"""Zero-skip front end: spike-mask words in, one active input index per cycle out.

Input beats are `skip_window`-bit masks; beat w of plane p carries inputs w*W .. w*W+W-1 of
that plane (planes MSB first). A word with p >= 1 set bits costs p cycles (one ACC op per set
bit, lowest bit first); an all-zero word costs one cycle and emits nothing. Between planes one
DOUBLE op is emitted. The next beat is accepted in the cycle the current word finishes, so there
is no bubble between words.

Event mode (`events` at `start`): the command's beats are value events instead, {index, value}
(index in the low index_bits, then max_input_bits of value), one per non-zero input; each beat
is one ACC op with that index and value, so a first layer costs one slot per non-zero pixel and
each PE reads each weight once per pixel. n_words is the number of events (>= 1), one plane.
On a conv core (cfg.conv) an event also carries its window coordinates {y, x} after the value
(hw/conv_tiling.py); they come out on `y`, `x` with the op (0 for mask ops).

Timing contract (no stalls): `start` in cycle c0 latches n_words/n_planes/events; the first beat
is accepted in cycle c0+1; ops are emitted (combinationally, on `op`/`index`/`value`) in cycles
c0+2 .. c0+1+S with S = sum over words of max(1, popcount) + (n_planes - 1) (masks) or
S = n_words (events); `done` is high in the last of those cycles. A stalled `spikes` stream only
inserts idle cycles.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.tokens import Op


class ZeroSkipScanner(wiring.Component):
    """Spike-mask words in, one active input per cycle out (timing contract: the module docstring).

    Members:
    - `start` (in): latch `n_words` (in, words_bits), `n_planes` (in, plane_bits) and `events`
      (in) and begin.
    - `spikes` (in, stream of beat_bits): the input beats: skip_window-bit masks, planes MSB
      first, or (events) one value event per beat.
    - `op` (out, Op), `index` (out, index_bits), `value` (out, max_input_bits): this cycle's op
      and, for ACC, the input index and value (1 for a mask bit).
    - `y`, `x` (out, conv_coord_bits; conv cores only): the event's window coordinates.
    - `done` (out): high in the cycle of the last op of the command.
    - `busy` (out): high from the cycle after `start` through the cycle of `done`.
    """

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        members = {
            "start": In(1),
            "n_words": In(unsigned(cfg.words_bits)),
            "n_planes": In(unsigned(cfg.plane_bits)),
            "events": In(1),
            "spikes": In(stream.Signature(unsigned(cfg.beat_bits))),
            "op": Out(Op),
            "index": Out(unsigned(cfg.index_bits)),
            "value": Out(unsigned(cfg.max_input_bits)),
            "done": Out(1),
            "busy": Out(1),
        }
        if cfg.conv:
            members.update({"y": Out(unsigned(cfg.conv_coord_bits)), "x": Out(unsigned(cfg.conv_coord_bits))})
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.cfg
        window = cfg.skip_window
        lsb_bits = max(1, (window - 1).bit_length())
        m = Module()

        # n_words - 1, a register: the compare that ends a plane needs no subtractor in its cycle
        last_index = Signal(signed(cfg.words_bits + 1))
        beat_word = Signal.like(self.n_words)  # word index of the next beat to accept
        beat_planes_left = Signal.like(self.n_planes)  # planes with beats still to accept
        more_beats = Signal()  # beat_planes_left != 0, a register (it gates `ready`)
        have = Signal()
        mask = Signal(window)
        word = Signal.like(self.n_words)  # word index of the word in `mask`
        word_ends_plane = Signal()
        word_in_last_plane = Signal()
        pending_double = Signal()
        # Set bits left in `mask`, counted in a register so that no carry chain over the mask reaches
        # `ready` (the routed critical path of `rest == 0`).
        count = Signal(range(window + 1))
        # count <= 1 (the word's last op), itself a register: the compare is off the routed critical
        # path of v3 (count -> word_done -> have, 10.3 ns at 8x8).
        last_op = Signal()
        events = Signal()  # the command's beats are value events
        event_index = Signal(unsigned(cfg.index_bits))
        event_value = Signal(unsigned(cfg.max_input_bits))
        if cfg.conv:
            event_y = Signal(unsigned(cfg.conv_coord_bits))
            event_x = Signal(unsigned(cfg.conv_coord_bits))

        with m.If(self.start):
            m.d.sync += [
                last_index.eq(self.n_words - 1),
                beat_word.eq(0),
                # An event command is one plane whatever n_planes says.
                beat_planes_left.eq(Mux(self.events, 1, self.n_planes)),
                more_beats.eq(Mux(self.events, 1, self.n_planes) != 0),
                events.eq(self.events),
                have.eq(0),
                pending_double.eq(0),
                self.busy.eq(1),
            ]

        # Lowest set bit of the mask: a priority encoder, scanned high to low so the lowest wins.
        lsb = Signal(lsb_bits)
        for bit in reversed(range(window)):
            with m.If(mask[bit]):
                m.d.comb += lsb.eq(bit)
        rest = Signal(window)
        m.d.comb += rest.eq(mask & (mask - 1))

        word_done = Signal()  # an event is one op; a mask word ends with its last set bit
        m.d.comb += word_done.eq(self.busy & have & ~pending_double & (events | last_op))
        m.d.comb += self.spikes.ready.eq(self.busy & more_beats & (~have | word_done))

        index = Signal(unsigned(cfg.index_bits))
        m.d.comb += index.eq(Cat(lsb, word) if window > 1 else word)
        drop = Const(0)
        with m.If(self.busy & pending_double):
            m.d.comb += self.op.eq(Op.DOUBLE)
            m.d.sync += pending_double.eq(0)
        with m.Elif(self.busy & have & events):
            if cfg.fault == "drop_first_index":
                drop = event_index == 0
            with m.If(~drop):
                m.d.comb += [self.op.eq(Op.ACC), self.index.eq(event_index), self.value.eq(event_value)]
                if cfg.conv:
                    m.d.comb += [self.y.eq(event_y), self.x.eq(event_x)]
        with m.Elif(self.busy & have & (mask != 0)):
            if cfg.fault == "drop_first_index":
                drop = index == 0
            with m.If(~drop):
                m.d.comb += [self.op.eq(Op.ACC), self.index.eq(index), self.value.eq(1)]
            m.d.sync += [mask.eq(rest), count.eq(count - 1), last_op.eq(count <= 2)]

        with m.If(word_done):
            m.d.sync += have.eq(0)
            with m.If(word_ends_plane):
                with m.If(word_in_last_plane):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += self.busy.eq(0)
                with m.Else():
                    m.d.sync += pending_double.eq(1)

        popcount = Signal(range(window + 1))
        m.d.comb += popcount.eq(sum(self.spikes.payload[b] for b in range(window)))
        with m.If(self.spikes.valid & self.spikes.ready):
            last_word = beat_word == last_index
            payload = self.spikes.payload
            m.d.sync += [
                have.eq(1),
                mask.eq(payload[:window]),
                count.eq(popcount),
                last_op.eq(popcount <= 1),
                event_index.eq(payload[:cfg.index_bits]),
                event_value.eq(payload[cfg.index_bits:cfg.index_bits + cfg.max_input_bits]),
                word.eq(beat_word),
                word_ends_plane.eq(last_word),
                word_in_last_plane.eq(beat_planes_left == 1),
            ]
            if cfg.conv:
                coords = cfg.index_bits + cfg.max_input_bits
                m.d.sync += [event_y.eq(payload[coords:coords + cfg.conv_coord_bits]),
                             event_x.eq(payload[coords + cfg.conv_coord_bits:coords + 2 * cfg.conv_coord_bits])]
            with m.If(last_word):
                m.d.sync += [beat_word.eq(0), beat_planes_left.eq(beat_planes_left - 1),
                             more_beats.eq(beat_planes_left != 1)]
            with m.Else():
                m.d.sync += beat_word.eq(beat_word + 1)
        return m
