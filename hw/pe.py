"""Processing element: one accumulator, one local weight memory, no multiplier.

Timing contract (see docs/ARCHITECTURE.md, "Timing contract"):
- In cycle y the PE sees `tok_in` (its west or north neighbour's registered token) and
  presents `tok_in.addr` to its weight memory's synchronous read port.
- At the end of cycle y it registers the token (`tok_out`, visible to its east/south
  neighbours in cycle y+1) and the memory returns W[addr] in cycle y+1.
- At the end of cycle y+1 it applies the token: ACC: acc += W; DOUBLE: acc <<= 1; NONE: hold.
  The accumulator wraps at acc_bits (two's complement), exactly as the golden model.
- `drain` (asserted by the controller only when no token is in flight) shifts the
  accumulators one row south: acc <= acc_in (the north neighbour's acc, 0 on row 0).
"""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.tokens import Op, token_layout


class ProcessingElement(wiring.Component):
    def __init__(self, cfg: CoreConfig, init: list[int] | None = None):
        self.cfg = cfg
        self._init = list(init) if init is not None else []
        super().__init__({
            "tok_in": In(token_layout(cfg)),
            "tok_out": Out(token_layout(cfg)),
            "drain": In(1),
            "acc_in": In(signed(cfg.acc_bits)),
            "acc": Out(signed(cfg.acc_bits)),
            "wr_en": In(1),
            "wr_addr": In(unsigned(cfg.weight_addr_bits)),
            "wr_data": In(signed(cfg.weight_bits)),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.weights = mem = Memory(shape=signed(cfg.weight_bits), depth=cfg.weight_depth, init=self._init)
        rd = mem.read_port(domain="sync")
        wr = mem.write_port()
        m.d.comb += [
            rd.addr.eq(self.tok_in.addr),
            # Read only for ACC tokens: bubbles and DOUBLEs cost no memory energy.
            rd.en.eq(self.tok_in.op == Op.ACC),
            wr.en.eq(self.wr_en),
            wr.addr.eq(self.wr_addr),
            wr.data.eq(self.wr_data),
        ]
        m.d.sync += self.tok_out.eq(self.tok_in)
        with m.If(self.drain):
            m.d.sync += self.acc.eq(self.acc_in)
        with m.Elif(self.tok_out.op == Op.ACC):
            m.d.sync += self.acc.eq(self.acc + rd.data)
        with m.Elif(self.tok_out.op == Op.DOUBLE):
            if cfg.fault != "no_double":
                m.d.sync += self.acc.eq(self.acc << 1)
        return m
