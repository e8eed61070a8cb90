"""The spikeforge core: zero-skip front end, R x C accumulate-only systolic array, threshold unit.

Dataflow (docs/ARCHITECTURE.md): output-stationary, one input vector at a time. Every PE owns
one output neuron of a tile of R*C outputs and a local weight memory. The zero-skip scanner
turns the input's spike masks into a stream of active-input tokens; a token enters PE (0, 0),
moves south along column 0 and east along every row, one register per hop, so PE (r, c) sees
it r + c cycles after PE (0, 0). Each PE reads its own weight for the token's input and adds it.
Weights and accumulators stay; only tokens move; there is no combinational broadcast of data.
At the end of a tile the accumulators shift south, one row per cycle, through the threshold
unit at the bottom edge, which emits one output beat (C neurons) per row.

Timing contract, no stalls (cycle c0 = the cycle the command is accepted):
- scan:  ops emitted in cycles c0+2 .. e with e = c0 + 1 + S,
         S = sum over input words of max(1, popcount(word)) + (n_planes - 1)
- flush: cycles e+1 .. e+R+C-1 (the last token reaches PE (R-1, C-1) and is applied)
- drain: cycles d0 .. d0+R-1 with d0 = e + R + C; output beat k (PE row R-1-k) is valid in
         cycle d0 + 1 + k, `last` on k = R-1
- the next command can be accepted in cycle d0 + R.
Back-pressure: `spikes` stalls insert idle scan cycles; `out` stalls hold the drain. Neither
changes a result. sim/cycle.py implements the same contract.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.pe import ProcessingElement
from spikeforge.hw.scanner import ZeroSkipScanner
from spikeforge.hw.threshold import ThresholdUnit
from spikeforge.hw.tokens import token_layout

LOAD_WEIGHT = 0
LOAD_THRESHOLD = 1


def command_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "n_words": unsigned(cfg.words_bits),  # input beats per plane, >= 1
        "n_planes": unsigned(cfg.plane_bits),  # 1 for spikes, k for k-bit pixels, >= 1
        "weight_base": unsigned(cfg.weight_addr_bits),
        "threshold_base": unsigned(cfg.threshold_addr_bits),
    })


def output_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "row": unsigned(max(1, (cfg.rows - 1).bit_length())),
        "last": unsigned(1),
        "spikes": unsigned(cfg.cols),
        "values": data.ArrayLayout(signed(cfg.acc_bits + 1), cfg.cols),
    })


def load_select_bits(cfg: CoreConfig) -> int:
    return max(1, (max(cfg.pes, cfg.cols) - 1).bit_length())


def load_layout(cfg: CoreConfig) -> data.StructLayout:
    """One memory word to write. Declared LSB first, so the packed payload reads
    {target, select, addr, data} from the MSB down."""
    return data.StructLayout({
        "data": signed(max(cfg.weight_bits, cfg.threshold_bits)),
        "addr": unsigned(max(cfg.weight_addr_bits, cfg.threshold_addr_bits)),
        "select": unsigned(load_select_bits(cfg)),  # PE index r*C+c, or column
        "target": unsigned(1),  # LOAD_WEIGHT or LOAD_THRESHOLD
    })


def load_signature(cfg: CoreConfig) -> stream.Signature:
    """The memory load stream: always ready, one word written per cycle while `valid`."""
    return stream.Signature(load_layout(cfg), always_ready=True)


class SpikeforgeCore(wiring.Component):
    """The R x C core (timing contract: the module docstring; docs/ARCHITECTURE.md).

    Members:
    - `cmd` (in, stream of command_layout): one tile: n_words, n_planes, weight_base,
      threshold_base. Accepted only while the core is idle.
    - `spikes` (in, stream of skip_window-bit masks): the tile's input beats, planes MSB first.
    - `out` (out, stream of output_layout): one beat per PE row (row R-1 first): row, last,
      spikes (C bits), values (C x signed acc_bits+1). Registered; once `valid` is high it and
      the payload hold until `ready`.
    - `load` (in, stream of load_layout, always_ready): writes one weight (target 0, PE
      `select`) or threshold (target 1, column `select`) word at `addr` per cycle while `valid`.
      Load between tiles (while `idle`), not during one.
    - `idle` (out): no tile in flight; `cmd` is ready.

    weight_init: R*C lists (PE r*C+c); threshold_init: C lists. None = zeros.
    """

    def __init__(self, cfg: CoreConfig, weight_init=None, threshold_init=None):
        self.cfg = cfg
        self._weight_init = weight_init
        self._threshold_init = threshold_init
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "spikes": In(stream.Signature(unsigned(cfg.skip_window))),
            "out": Out(stream.Signature(output_layout(cfg))),
            "load": In(load_signature(cfg)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        m = Module()

        m.submodules.scanner = scanner = ZeroSkipScanner(cfg)
        m.submodules.threshold = thr = ThresholdUnit(cfg, self._threshold_init)
        pes = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                init = self._weight_init[r * cols + c] if self._weight_init is not None else None
                pes[r][c] = pe = ProcessingElement(cfg, init)
                m.submodules[f"pe_{r}_{c}"] = pe

        weight_base = Signal(unsigned(cfg.weight_addr_bits))
        threshold_base = Signal(unsigned(cfg.threshold_addr_bits))
        counter = Signal(range(max(rows + cols, 2)))
        drain_row = Signal(range(max(rows, 2)))  # k: beats already drained
        drain = Signal()

        out_valid = self.out.valid
        load = self.load.payload
        advance = Signal()
        m.d.comb += advance.eq(~out_valid | self.out.ready)

        # Front end: the scanner's op becomes a token with the PE-local weight address.
        token = Signal(token_layout(cfg))
        m.d.comb += [
            token.op.eq(scanner.op),
            token.addr.eq(weight_base + scanner.index),
        ]
        wiring.connect(m, wiring.flipped(self.spikes), scanner.spikes)
        m.d.comb += [scanner.n_words.eq(self.cmd.payload.n_words), scanner.n_planes.eq(self.cmd.payload.n_planes)]

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
                m.d.comb += [
                    pe.drain.eq(drain),
                    pe.acc_in.eq(pes[r - 1][c].acc if r > 0 else 0),
                    pe.wr.en.eq(self.load.valid & (load.target == LOAD_WEIGHT) & (load.select == r * cols + c)),
                    pe.wr.addr.eq(load.addr),
                    pe.wr.data.eq(load.data),
                ]
        for c in range(cols):
            m.d.comb += thr.acc[c].eq(pes[rows - 1][c].acc)
        m.d.comb += [
            thr.wr.en.eq(self.load.valid & (load.target == LOAD_THRESHOLD)),
            thr.wr_col.eq(load.select),
            thr.wr.addr.eq(load.addr),
            thr.wr.data.eq(load.data),
        ]

        # The output register: one beat per drained row.
        with m.If(advance):
            m.d.sync += out_valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(1), self.idle.eq(1)]
                with m.If(self.cmd.valid):
                    m.d.comb += scanner.start.eq(1)
                    m.d.sync += [
                        weight_base.eq(self.cmd.payload.weight_base),
                        threshold_base.eq(self.cmd.payload.threshold_base),
                    ]
                    m.next = "SCAN"
            with m.State("SCAN"):
                with m.If(scanner.done):
                    m.d.sync += counter.eq(rows + cols - 2)
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                # Wait until the last token has been applied by PE (R-1, C-1); meanwhile
                # fetch the threshold of the first row to drain (row R-1).
                m.d.comb += [thr.addr.eq(threshold_base + rows - 1), thr.en.eq(1)]
                m.d.sync += counter.eq(counter - 1)
                with m.If(counter == 0):
                    m.d.sync += drain_row.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [
                    thr.addr.eq(threshold_base + rows - 2 - drain_row),
                    thr.en.eq(advance),
                    drain.eq(advance),
                ]
                with m.If(advance):
                    m.d.sync += [
                        out_valid.eq(1),
                        self.out.payload.row.eq(rows - 1 - drain_row),
                        self.out.payload.last.eq(drain_row == rows - 1),
                        self.out.payload.spikes.eq(thr.spike),
                        self.out.payload.values.eq(thr.value),
                        drain_row.eq(drain_row + 1),
                    ]
                    with m.If(drain_row == rows - 1):
                        m.next = "IDLE"
        return m
