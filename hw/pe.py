"""Processing element: one accumulator, one local weight memory, no multiplier.

Timing contract (see docs/ARCHITECTURE.md, "Timing contract"):
- In cycle y the PE sees `tok_in` (its west or north neighbour's registered token) and, for an
  ACC token while `active`, presents `tok_in.addr` to its weight memory's synchronous read port.
- At the end of cycle y it registers the token (`tok_out`, visible to its east/south
  neighbours in cycle y+1); the memory returns W[addr] in cycle y+1, and the PE registers it
  (the block RAM's output register) at the end of y+1.
- In cycles y+2 and y+3 it forms W * value from that register as a sum of W's shifted copies,
  one per set bit of the token's value (adders only, a balanced tree whose first level is
  registered at the end of y+2), and registers it at the end of y+3.
- At the end of cycle y+4 it applies the token: ACC: acc += W * value; DOUBLE: acc <<= 1; NONE:
  hold. The accumulator wraps at acc_bits (two's complement), exactly as the golden model.
  So a token is applied 3 cycles after the one-register-per-hop chain would (TOKEN_PIPELINE,
  with the core's two front-end registers: 5).
- `active` low (a slot a tile does not use): the token neither reads the memory nor changes
  the accumulator; it is still passed on.
- Conv cores, a conv command (`conv`): the token is an input event at window coordinates (y, x);
  in cycle y the PE forms ky = y - dy, kx = x - dx (its own receptive-field offset, fixed for the
  tile) and reads W[addr + (ky << pitch | kx)] only when 0 <= ky < kernel_h and 0 <= kx < kernel_w;
  an event outside its receptive field is a bubble for this PE (hw/conv_tiling.py).
- `drain` (asserted by the controller only when no token is in flight) shifts the
  accumulators one row south: acc <= acc_in (the north neighbour's acc, 0 on row 0).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
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
    - `active` (in): this PE's slot is used by the tile in flight (gating: held for a tile).
    - conv cores only, held for a tile: `conv` (in: the tokens are conv events), `dy`, `dx` (in,
      conv_coord_bits: the PE's receptive-field offset in the window), `kernel_h`, `kernel_w`
      (in, conv_coord_bits+1), `pitch` (in, conv_shift_bits: log2 of the kernel row pitch).
    - `drain` (in): load `acc_in` into the accumulator (no token in flight).
    - `acc_in` (in, signed acc_bits): the north neighbour's accumulator, 0 on row 0.
    - `acc` (out, signed acc_bits): the accumulator.
    - `wr` (`WritePort.Signature`, addr weight_addr_bits, data signed weight_bits): the weight
      memory's write port, one word per cycle while `wr.en`.
    """

    def __init__(self, cfg: CoreConfig, init: list[int] | None = None):
        self.cfg = cfg
        self._init = list(init) if init is not None else []
        members = {
            "tok_in": In(token_layout(cfg)),
            "tok_out": Out(token_layout(cfg)),
            "active": In(1),
            "drain": In(1),
            "acc_in": In(signed(cfg.acc_bits)),
            "acc": Out(signed(cfg.acc_bits)),
            "wr": Out(WritePort.Signature(addr_width=cfg.weight_addr_bits, shape=signed(cfg.weight_bits))),
        }
        if cfg.conv:
            coord = cfg.conv_coord_bits
            members.update({"conv": In(1), "dy": In(unsigned(coord)), "dx": In(unsigned(coord)),
                            "kernel_h": In(unsigned(coord + 1)), "kernel_w": In(unsigned(coord + 1)),
                            "pitch": In(unsigned(cfg.conv_shift_bits))})
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.weights = mem = Memory(shape=signed(cfg.weight_bits), depth=cfg.weight_depth, init=self._init)
        rd = mem.read_port(domain="sync")
        wiring.connect(m, wiring.flipped(self.wr), mem.write_port())
        if cfg.conv:
            uses = Signal()  # the token is for this PE: always, but for conv events outside its field
            coord = cfg.conv_coord_bits
            ky = Signal(signed(coord + 1))
            kx = Signal(signed(coord + 1))
            inside = Signal()
            m.d.comb += [
                ky.eq(self.tok_in.y - self.dy),
                kx.eq(self.tok_in.x - self.dx),
                inside.eq((ky >= 0) & (ky < self.kernel_h) & (kx >= 0) & (kx < self.kernel_w)),
                uses.eq(~self.conv | inside),
                rd.addr.eq(Mux(self.conv, self.tok_in.addr + ((ky.as_unsigned()[:coord] << self.pitch)
                                                              | kx.as_unsigned()[:coord]),
                               self.tok_in.addr)),
            ]
            # Read only for ACC tokens of a used slot: bubbles, DOUBLEs, idle slots and conv events
            # outside the receptive field cost no memory energy.
            m.d.comb += rd.en.eq((self.tok_in.op == Op.ACC) & self.active & uses)
        else:
            m.d.comb += [rd.addr.eq(self.tok_in.addr), rd.en.eq((self.tok_in.op == Op.ACC) & self.active)]
        m.d.sync += self.tok_out.eq(self.tok_in)
        gate = self.active
        if cfg.conv:
            used = Signal()
            m.d.sync += used.eq(uses)
            gate = self.active & used

        # Stage 2 (cycle y+1): the word read, registered; the op of an idle slot becomes a bubble.
        weight = Signal(signed(cfg.weight_bits))
        op2 = Signal(Op)
        value2 = Signal.like(self.tok_in.value)
        m.d.sync += [
            weight.eq(rd.data),
            op2.eq(Mux(gate, self.tok_out.op, Op.NONE)),
            value2.eq(self.tok_out.value),
        ]
        # Stage 3 (cycles y+2, y+3): W * value as W's shifted copies, one per set bit of the value.
        product = Signal(signed(cfg.weight_bits + cfg.max_input_bits))
        op3 = Signal(Op)
        # A balanced tree of two-operand adds (log2(max_input_bits) adder delays), each kept as
        # its own adder (a carry chain on an FPGA): one merged sum would be mapped to a larger
        # gate-level adder tree.
        # The first level's pair sums are registered (stage 3a, cycle y+2), the rest of the tree is
        # stage 3b (cycle y+3): no cycle holds more than two adder delays.
        terms = [Mux(value2[b], weight << b, 0) for b in range(cfg.max_input_bits)]
        op3a = Signal(Op)
        m.d.sync += op3a.eq(op2)
        level = 0
        while len(terms) > 1:
            level += 1
            pairs = []
            for k in range(0, len(terms) - 1, 2):
                node = Signal(signed(cfg.weight_bits + cfg.max_input_bits), name=f"sum{level}_{k // 2}",
                              attrs={"keep": 1})
                m.d.comb += node.eq(terms[k] + terms[k + 1])
                pairs.append(node)
            terms = pairs + terms[len(terms) - len(terms) % 2:]
            if level == 1:
                staged = [Signal(signed(cfg.weight_bits + cfg.max_input_bits), name=f"pair{k}")
                          for k in range(len(terms))]
                m.d.sync += [reg.eq(term) for reg, term in zip(staged, terms, strict=True)]
                terms = staged
        if level == 0:  # one input bit: nothing to add, the first stage is a plain register
            staged = Signal(signed(cfg.weight_bits + cfg.max_input_bits), name="pair0")
            m.d.sync += staged.eq(terms[0])
            terms = [staged]
        m.d.sync += [product.eq(terms[0]), op3.eq(op3a)]
        # Stage 4 (cycle y+4): apply.
        with m.If(self.drain):
            m.d.sync += self.acc.eq(self.acc_in)
        with m.Elif(op3 == Op.ACC):
            m.d.sync += self.acc.eq(self.acc + product)
        with m.Elif(op3 == Op.DOUBLE):
            if cfg.fault != "no_double":
                m.d.sync += self.acc.eq(self.acc << 1)
        return m
