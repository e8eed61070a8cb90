"""Comparator threshold unit: one threshold memory and one subtract-compare per column.

value = acc - T is formed exactly in acc_bits + 1 bits (T sign-extended), and
spike = value >= 0, i.e. the neuron fires on `acc >= T`. (NIR's neurons fire on `>`;
quant/ exports the bias 0.5 - T to NIR, docs/INTEROP.md.) A readout layer uses `value` itself: T = -bias.

Timing contract: `addr`/`en` in cycle y; the threshold is available in cycle y+1 (synchronous
read; with en=0 the read data holds). `value`/`spike` are combinational from `acc` and the
read data.
"""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory, WritePort
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig


class ThresholdUnit(wiring.Component):
    """C threshold memories and comparators (timing contract: the module docstring).

    Members:
    - `addr` (in, threshold_addr_bits), `en` (in): read address and enable; the threshold is
      there in the next cycle and holds while `en` is low.
    - `acc` (in, C x signed acc_bits): the accumulators of the bottom PE row.
    - `value` (out, C x signed acc_bits+1): acc - T, combinational.
    - `spike` (out, C bits): value >= 0, combinational.
    - `wr` (`WritePort.Signature`, addr threshold_addr_bits, data signed threshold_bits) and
      `wr_col` (in): write one threshold of column `wr_col` per cycle while `wr.en`.
    """

    def __init__(self, cfg: CoreConfig, init: list[list[int]] | None = None):
        self.cfg = cfg
        self._init = init if init is not None else [[] for _ in range(cfg.cols)]
        cols = cfg.cols
        super().__init__({
            "addr": In(unsigned(cfg.threshold_addr_bits)),
            "en": In(1),
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), cols)),
            "value": Out(data.ArrayLayout(signed(cfg.acc_bits + 1), cols)),
            "spike": Out(cols),
            "wr": Out(WritePort.Signature(addr_width=cfg.threshold_addr_bits, shape=signed(cfg.threshold_bits))),
            "wr_col": In(unsigned(max(1, (cols - 1).bit_length()))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        for col in range(cfg.cols):
            mem = Memory(shape=signed(cfg.threshold_bits), depth=cfg.threshold_depth, init=self._init[col])
            m.submodules[f"thresholds_{col}"] = mem
            rd = mem.read_port(domain="sync")
            wr = mem.write_port()
            m.d.comb += [
                rd.addr.eq(self.addr),
                rd.en.eq(self.en),
                wr.en.eq(self.wr.en & (self.wr_col == col)),
                wr.addr.eq(self.wr.addr),
                wr.data.eq(self.wr.data),
                self.value[col].eq(self.acc[col] - rd.data),
            ]
            if cfg.fault == "comparator_off_by_one":
                m.d.comb += self.spike[col].eq(self.value[col] > 0)
            else:
                m.d.comb += self.spike[col].eq(self.value[col] >= 0)
        return m
