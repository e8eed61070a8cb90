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

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, WritePort
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.tokens import Op, token_layout


class ProcessingElement(wiring.Component):
    """One output neuron: accumulator and weight memory (timing contract: the module docstring).

    Members:
    - `tok_in` (in, token_layout): the west/north neighbour's registered token; its `addr` is
      read from the weight memory in the same cycle.
    - `tok_out` (out, token_layout): `tok_in` one cycle later, for the east/south neighbour.
    - `drain` (in): load `acc_in` into the accumulator (no token in flight).
    - `acc_in` (in, signed acc_bits): the north neighbour's accumulator, 0 on row 0.
    - `acc` (out, signed acc_bits): the accumulator.
    - `wr` (`WritePort.Signature`, addr weight_addr_bits, data signed weight_bits): the weight
      memory's write port, one word per cycle while `wr.en`.
    """

    def __init__(self, cfg: CoreConfig, init: list[int] | None = None):
        self.cfg = cfg
        self._init = list(init) if init is not None else []
        super().__init__({
            "tok_in": In(token_layout(cfg)),
            "tok_out": Out(token_layout(cfg)),
            "drain": In(1),
            "acc_in": In(signed(cfg.acc_bits)),
            "acc": Out(signed(cfg.acc_bits)),
            "wr": Out(WritePort.Signature(addr_width=cfg.weight_addr_bits, shape=signed(cfg.weight_bits))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.weights = mem = Memory(shape=signed(cfg.weight_bits), depth=cfg.weight_depth, init=self._init)
        rd = mem.read_port(domain="sync")
        wiring.connect(m, wiring.flipped(self.wr), mem.write_port())
        m.d.comb += [
            rd.addr.eq(self.tok_in.addr),
            # Read only for ACC tokens: bubbles and DOUBLEs cost no memory energy.
            rd.en.eq(self.tok_in.op == Op.ACC),
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
