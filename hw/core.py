"""The spikeforge core: zero-skip front end, R x C accumulate-only systolic array, threshold unit.

Dataflow (docs/ARCHITECTURE.md): output-stationary, one input vector at a time. Every PE owns
one output neuron of a tile of R*C outputs and a local weight memory. The zero-skip scanner
turns the input's spike masks into a stream of active-input tokens; a token enters PE (0, 0),
moves south along column 0 and east along every row, one register per hop, so PE (r, c) sees
it r + c cycles after PE (0, 0). Each PE reads its own weight for the token's input and adds it.
Weights and accumulators stay; only tokens move; there is no combinational broadcast of data.
At the end of a tile the accumulators shift south, one row per cycle, through the threshold
unit at the bottom edge, which emits one output beat (C neurons) per row.

A first layer of multi-bit pixels runs in event mode: its beats are value events {index, value},
one per non-zero pixel, and every PE adds W * value (shifted copies of W, no multiplier) from one
read. PEs whose slot a tile does not use (`slots`) neither read nor add.

Timing contract, no stalls (cycle c0 = the cycle the command is accepted; P = TOKEN_PIPELINE = 5):
- scan:    ops emitted in cycles c0+2 .. e with e = c0 + 1 + S,
           S = sum over input words of max(1, popcount(word)) + (n_planes - 1), or the number of
           events in event mode
- flush:   cycles e+1 .. e+R+C-1+P (the last token reaches PE (R-1, C-1) and is applied)
- capture: cycle X = e + R + C + P: the drain buffer (hw/drain_buffer.py) takes the accumulators and
           the array clears them; the next command can be accepted in X itself
- drain:   output beat k (PE row R-1-k) is valid in cycle X + 2 + k, `last` on k = R-1, while the
           array already runs the next tile (the drain overlaps its scan and flush).
So a command occupies the array for 1 + S + R + C + P cycles. A multi-step core (hw/step_loop.py)
drains the array itself and does not overlap. Back-pressure: `spikes` stalls insert idle scan
cycles; `out` stalls hold the drain, and a flushed tile waits in the array until the buffer is
free. Neither changes a result. sim/schedule.py states the same contract.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import TOKEN_PIPELINE, CoreConfig
from spikeforge.hw.drain_buffer import DrainBuffer
from spikeforge.hw.neuron import NeuronUnit
from spikeforge.hw.pe import ProcessingElement
from spikeforge.hw.scanner import ZeroSkipScanner
from spikeforge.hw.step_loop import StepLoop
from spikeforge.hw.threshold import ThresholdUnit
from spikeforge.hw.tokens import token_layout

LOAD_WEIGHT = 0
LOAD_THRESHOLD = 1


def command_layout(cfg: CoreConfig) -> data.StructLayout:
    fields = {
        "n_words": unsigned(cfg.words_bits),  # input beats per plane, >= 1
        "n_planes": unsigned(cfg.plane_bits),  # 1 for spikes, k for k-bit pixels, >= 1
        "events": unsigned(1),  # the beats are n_words value events (n_planes ignored)
        "slots": unsigned(cfg.slot_bits),  # PE slots the tile uses, 1 .. R*C; 0: all
        "weight_base": unsigned(cfg.weight_addr_bits),
        "threshold_base": unsigned(cfg.threshold_addr_bits),
    }
    if cfg.conv:  # event-driven conv (hw/conv_tiling.py): the tile's geometry
        shift = unsigned(cfg.conv_shift_bits)
        kernel = unsigned(cfg.conv_coord_bits + 1)
        fields.update({
            "conv": unsigned(1),  # the events are conv events (effective with `events` only)
            "group_shift": shift,  # 2^group_shift channel slots per output position
            "width_shift": shift,  # 2^width_shift positions per tile row
            "stride_shift": unsigned(2),
            "pitch_shift": shift,  # kernel row pitch 2^pitch_shift words
            "kernel_h": kernel,
            "kernel_w": kernel,
            "n_ch": unsigned(cfg.slot_bits),  # channels, position rows and columns the tile uses
            "n_y": unsigned(cfg.slot_bits),
            "n_x": unsigned(cfg.slot_bits),
        })
    if cfg.multistep:  # the neuron unit's step loop (hw/neuron.py)
        fields.update({
            "membrane_base": unsigned(cfg.membrane_addr_bits),
            "step": unsigned(cfg.step_bits),  # time step of the command's first step
            "n_steps": unsigned(cfg.step_bits),  # steps on the same accumulators, >= 1
            "first": unsigned(1),  # the first step: U starts at 0
            "per_step": unsigned(1),  # constants have one block of R words per step
            "leak": unsigned(1),
            "reset_zero": unsigned(1),
            "readout": unsigned(1),  # integrate only: no spike, no reset
        })
    return data.StructLayout(fields)


def output_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "row": unsigned(max(1, (cfg.rows - 1).bit_length())),
        "last": unsigned(1),
        "spikes": unsigned(cfg.cols),
        "values": data.ArrayLayout(signed(cfg.value_bits), cfg.cols),
    })


def load_select_bits(cfg: CoreConfig) -> int:
    return max(1, (max(cfg.pes, cfg.cols) - 1).bit_length())


def load_layout(cfg: CoreConfig) -> data.StructLayout:
    """One memory word to write. Declared LSB first, so the packed payload reads
    {target, select, addr, data} from the MSB down."""
    return data.StructLayout({
        "data": signed(max(cfg.weight_bits, cfg.threshold_bits, cfg.scale_bits, cfg.offset_bits)),
        "addr": unsigned(max(cfg.weight_addr_bits, cfg.threshold_addr_bits)),
        "select": unsigned(load_select_bits(cfg)),  # PE index r*C+c, or column
        # LOAD_WEIGHT or LOAD_THRESHOLD; on a multi-step core also LOAD_SCALE, LOAD_OFFSET (hw/neuron.py)
        "target": unsigned(2 if cfg.multistep else 1),
    })


def load_signature(cfg: CoreConfig) -> stream.Signature:
    """The memory load stream: always ready, one word written per cycle while `valid`."""
    return stream.Signature(load_layout(cfg), always_ready=True)


class SpikeforgeCore(wiring.Component):
    """The R x C core (timing contract: the module docstring; docs/ARCHITECTURE.md).

    Members:
    - `cmd` (in, stream of command_layout): one tile: n_words, n_planes, events, slots,
      weight_base, threshold_base. Accepted only while the core is idle.
    - `spikes` (in, stream of beat_bits): the tile's input beats: skip_window-bit masks, planes
      MSB first, or value events (events commands).
    - `out` (out, stream of output_layout): one beat per PE row (row R-1 first): row, last,
      spikes (C bits), values (C x signed acc_bits+1). Registered; once `valid` is high it and
      the payload hold until `ready`.
    - `load` (in, stream of load_layout, always_ready): writes one weight (target 0, PE
      `select`) or threshold (target 1, column `select`) word at `addr` per cycle while `valid`.
      Load between tiles (while `idle`), not during one.
    - `idle` (out): no tile in flight; `cmd` is ready.

    A multi-step core (`cfg.membrane_bits > 0`) has the command fields of the step loop
    (hw/step_loop.py), output values of signed membrane_bits+1, and load targets 2 (scale) and 3
    (offset) of the neuron unit (hw/neuron.py), which replaces the threshold unit.

    weight_init: R*C lists (PE r*C+c); threshold_init: C lists; neuron_init (multi-step):
    {"scales"|"offsets": C lists}. None = zeros.
    """

    def __init__(self, cfg: CoreConfig, weight_init=None, threshold_init=None, neuron_init=None):
        self.cfg = cfg
        self._weight_init = weight_init
        self._threshold_init = threshold_init
        self._neuron_init = neuron_init
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "spikes": In(stream.Signature(unsigned(cfg.beat_bits))),
            "out": Out(stream.Signature(output_layout(cfg))),
            "load": In(load_signature(cfg)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        m = Module()

        m.submodules.scanner = scanner = ZeroSkipScanner(cfg)
        if cfg.multistep:
            init = dict(self._neuron_init or {})
            if self._threshold_init is not None:
                init["thresholds"] = self._threshold_init
            m.submodules.neuron = thr = NeuronUnit(cfg, init)
            step = StepLoop(cfg)
        else:
            m.submodules.threshold = thr = ThresholdUnit(cfg, self._threshold_init)
        pes = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                init = self._weight_init[r * cols + c] if self._weight_init is not None else None
                pes[r][c] = pe = ProcessingElement(cfg, init)
                m.submodules[f"pe_{r}_{c}"] = pe

        weight_base = Signal(unsigned(cfg.weight_addr_bits))
        # The threshold address presented this cycle, a register (no adder before the memory).
        threshold_addr = Signal(unsigned(cfg.threshold_addr_bits))
        counter = Signal(range(rows + cols + TOKEN_PIPELINE))
        drain_row = Signal(range(max(rows, 2)))  # k: beats already drained
        drain = Signal()

        out_valid = self.out.valid
        load = self.load.payload
        advance = Signal()
        m.d.comb += advance.eq(~out_valid | self.out.ready)

        # Front end, two of the TOKEN_PIPELINE registers: the scanner's op (its priority encoder's
        # index) is registered as is, then becomes a token with the PE-local weight address
        # (weight_base + index), registered again; so neither the encoder nor the adder shares a
        # cycle with the other or with a memory address (the routed critical path of the
        # one-register front end: mask -> encoder -> adder -> token, 9.2 ns at 8x8).
        front = Signal(token_layout(cfg).members["op"])
        front_index = Signal.like(scanner.index)
        front_value = Signal.like(scanner.value)
        m.d.sync += [front.eq(scanner.op), front_index.eq(scanner.index), front_value.eq(scanner.value)]
        token = Signal(token_layout(cfg))
        m.d.sync += [
            token.op.eq(front),
            token.addr.eq(weight_base + front_index),
            token.value.eq(front_value),
        ]
        if cfg.conv:
            front_y = Signal.like(scanner.y)
            front_x = Signal.like(scanner.x)
            m.d.sync += [front_y.eq(scanner.y), front_x.eq(scanner.x), token.y.eq(front_y), token.x.eq(front_x)]
        wiring.connect(m, wiring.flipped(self.spikes), scanner.spikes)
        m.d.comb += [scanner.n_words.eq(self.cmd.payload.n_words), scanner.n_planes.eq(self.cmd.payload.n_planes),
                     scanner.events.eq(self.cmd.payload.events)]
        # Gating: each PE's slot-in-use bit, set when a command is accepted.
        slots = self.cmd.payload.slots
        active = Signal(cfg.pes)
        accept = self.cmd.valid & self.cmd.ready
        in_slots = [(slots == 0) | (slots > s) for s in range(cfg.pes)]
        if cfg.conv:
            conv_regs = self._conv_geometry(m, accept, in_slots, active)
        else:
            with m.If(accept):
                m.d.sync += active.eq(Cat(*in_slots))

        # The array: tokens hop south along column 0 and east along each row; accumulators
        # shift south during the drain.
        for r in range(rows):
            for c in range(cols):
                pe = pes[r][c]
                if c > 0:
                    m.d.comb += pe.tok_in.eq(pes[r][c - 1].tok_out)
                elif r > 0:
                    m.d.comb += pe.tok_in.eq(pes[r - 1][0].tok_out)
                else:
                    m.d.comb += pe.tok_in.eq(token)
                # A one-step core's drain clears the array (its tile is in the drain buffer); a
                # multi-step core drains the array itself, rotating until the command's last step.
                acc_in = 0
                if cfg.multistep:
                    acc_in = pes[r - 1][c].acc if r > 0 else Mux(step.rotate, pes[rows - 1][c].acc, 0)
                if cfg.conv:
                    conv, dys, dxs, kernel_h, kernel_w, pitch = conv_regs
                    m.d.comb += [pe.conv.eq(conv), pe.dy.eq(dys[r * cols + c]), pe.dx.eq(dxs[r * cols + c]),
                                 pe.kernel_h.eq(kernel_h), pe.kernel_w.eq(kernel_w), pe.pitch.eq(pitch)]
                m.d.comb += [
                    pe.active.eq(active[r * cols + c]),
                    pe.drain.eq(drain),
                    pe.acc_in.eq(acc_in),
                    pe.wr.en.eq(self.load.valid & (load.target == LOAD_WEIGHT) & (load.select == r * cols + c)),
                    pe.wr.addr.eq(load.addr),
                    pe.wr.data.eq(load.data),
                ]
        if cfg.multistep:
            for c in range(cols):
                m.d.comb += thr.acc[c].eq(pes[rows - 1][c].acc)
        else:  # the drain buffer sits between the array and the threshold unit
            m.submodules.drain_buffer = buffer = DrainBuffer(cfg)
            for r in range(rows):
                for c in range(cols):
                    m.d.comb += buffer.acc[r * cols + c].eq(pes[r][c].acc)
            for c in range(cols):
                m.d.comb += thr.acc[c].eq(buffer.bottom[c])
        if cfg.multistep:
            m.d.comb += [
                thr.load_en.eq(self.load.valid & (load.target != LOAD_WEIGHT)),
                thr.load_target.eq(load.target),
                thr.load_col.eq(load.select),
                thr.load_addr.eq(load.addr),
                thr.load_data.eq(load.data),
            ]
            step.elaborate_into(m, self, thr, scanner, drain, advance, weight_base)
            return m
        return self._command_fsm(m, scanner, thr, weight_base, threshold_addr, counter, drain_row, drain, advance)

    def _conv_geometry(self, m: Module, accept, in_slots: list, active: Signal):
        """Registers set when a command is accepted on a conv core: the conv flag, the kernel and
        pitch, each PE's receptive-field offset (dy, dx) and its slot-in-use bit, from the slot
        formulas of hw/conv_tiling.py (shifts and comparisons of the PE's constant slot number)."""
        cfg = self.cfg
        p = self.cmd.payload
        coord = cfg.conv_coord_bits
        conv = Signal()
        kernel_h = Signal(unsigned(coord + 1))
        kernel_w = Signal(unsigned(coord + 1))
        pitch = Signal(unsigned(cfg.conv_shift_bits))
        dys = [Signal(unsigned(coord), name=f"dy_{s}") for s in range(cfg.pes)]
        dxs = [Signal(unsigned(coord), name=f"dx_{s}") for s in range(cfg.pes)]
        is_conv = p.conv & p.events
        used = []
        with m.If(accept):
            m.d.sync += [conv.eq(is_conv), kernel_h.eq(p.kernel_h), kernel_w.eq(p.kernel_w), pitch.eq(p.pitch_shift)]
            for s in range(cfg.pes):
                slot = Const(s, cfg.slot_bits)
                q = (slot >> p.group_shift)[:cfg.slot_bits]
                ch = (slot - (q << p.group_shift))[:cfg.slot_bits]
                ly = (q >> p.width_shift)[:cfg.slot_bits]
                lx = (q - (ly << p.width_shift))[:cfg.slot_bits]
                in_tile = (ch < p.n_ch) & (ly < p.n_y) & (lx < p.n_x)
                used.append(in_slots[s] & (~is_conv | in_tile))
                m.d.sync += [dys[s].eq((ly << p.stride_shift)[:coord]), dxs[s].eq((lx << p.stride_shift)[:coord])]
            m.d.sync += active.eq(Cat(*used))
        return conv, dys, dxs, kernel_h, kernel_w, pitch

    def _command_fsm(self, m: Module, scanner, thr, weight_base, threshold_addr, counter, drain_row, drain,
                     advance) -> Module:
        """The one-step core's controller (timing: the module docstring): the command FSM (IDLE,
        SCAN, FLUSH) and, beside it, the drain of the previous tile from the drain buffer."""
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        load = self.load.payload
        out_valid = self.out.valid
        buffer = m.submodules.drain_buffer
        m.d.comb += [
            thr.wr.en.eq(self.load.valid & (load.target == LOAD_THRESHOLD)),
            thr.wr_col.eq(load.select),
            thr.wr.addr.eq(load.addr),
            thr.wr.data.eq(load.data),
        ]

        pending = Signal()  # a flushed tile waits in the array for the drain buffer
        draining = Signal()  # the buffer holds a tile that is leaving, one row per beat
        drain_addr = Signal.like(threshold_addr)  # the threshold of the next row to drain
        capture = Signal()
        m.d.comb += capture.eq(pending & ~draining)

        # The output register: one beat per drained row.
        with m.If(advance):
            m.d.sync += out_valid.eq(0)

        # Capture (cycle X): the buffer takes the accumulators, the array clears them (drain with
        # acc_in = 0), and the threshold of row R-1 is read; the next command may start in X.
        with m.If(capture):
            m.d.comb += [buffer.capture.eq(1), drain.eq(1), thr.addr.eq(threshold_addr), thr.en.eq(1)]
            m.d.sync += [pending.eq(0), draining.eq(1), drain_row.eq(0), drain_addr.eq(threshold_addr - 1)]
        # Drain (cycles X+1 ..): one beat per cycle that `out` can take, row R-1 first.
        with m.Elif(draining):
            m.d.comb += [thr.addr.eq(drain_addr), thr.en.eq(advance), buffer.shift.eq(advance)]
            with m.If(advance):
                m.d.sync += [
                    drain_addr.eq(drain_addr - 1),
                    out_valid.eq(1),
                    self.out.payload.row.eq(rows - 1 - drain_row),
                    self.out.payload.last.eq(drain_row == rows - 1),
                    self.out.payload.spikes.eq(thr.spike),
                    self.out.payload.values.eq(thr.value),
                    drain_row.eq(drain_row + 1),
                ]
                with m.If(drain_row == rows - 1):
                    m.d.sync += draining.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                # A tile still in the array waits for the buffer (only while `out` stalls).
                ready = ~(pending & draining)
                m.d.comb += [self.cmd.ready.eq(ready), self.idle.eq(~pending & ~draining)]
                with m.If(self.cmd.valid & ready):
                    m.d.comb += scanner.start.eq(1)
                    m.d.sync += [
                        weight_base.eq(self.cmd.payload.weight_base),
                        threshold_addr.eq(self.cmd.payload.threshold_base + rows - 1),
                    ]
                    m.next = "SCAN"
            with m.State("SCAN"):
                with m.If(scanner.done):
                    m.d.sync += counter.eq(rows + cols - 2 + TOKEN_PIPELINE)
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                # Wait until the last token has been applied by PE (R-1, C-1).
                m.d.sync += counter.eq(counter - 1)
                with m.If(counter == 0):
                    m.d.sync += pending.eq(1)
                    m.next = "IDLE"
        return m
