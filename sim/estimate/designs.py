"""The designs synthesis runs: the core (plain or in an I/O-folding wrapper), one PE, and the
int8 multiply-accumulate PE used as the baseline for gate equivalents per PE."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig


class MacPE(wiring.Component):
    """Baseline: an int8 multiply-accumulate PE shaped like ProcessingElement.

    Same systolic token (valid + weight address, plus the 8-bit activation a MAC array must
    carry), same local weight memory and synchronous read, but acc += w * x with a real
    multiplier, into a 24-bit accumulator, with the same drain path.
    """

    def __init__(self, weight_bits: int = 8, act_bits: int = 8, acc_bits: int = 24, depth: int = 256):
        self.weight_bits, self.act_bits, self.acc_bits, self.depth = weight_bits, act_bits, acc_bits, depth
        addr = max(1, (depth - 1).bit_length())
        self.tok = data.StructLayout({"valid": unsigned(1), "addr": unsigned(addr), "x": signed(act_bits)})
        super().__init__(
            {
                "tok_in": In(self.tok),
                "tok_out": Out(self.tok),
                "drain": In(1),
                "acc_in": In(signed(acc_bits)),
                "acc": Out(signed(acc_bits)),
                "wr_en": In(1),
                "wr_addr": In(unsigned(addr)),
                "wr_data": In(signed(weight_bits)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.weights = mem = Memory(shape=signed(self.weight_bits), depth=self.depth, init=[])
        rd, wr = mem.read_port(domain="sync"), mem.write_port()
        m.d.comb += [
            rd.addr.eq(self.tok_in.addr),
            wr.en.eq(self.wr_en),
            wr.addr.eq(self.wr_addr),
            wr.data.eq(self.wr_data),
        ]
        m.d.sync += self.tok_out.eq(self.tok_in)
        with m.If(self.drain):
            m.d.sync += self.acc.eq(self.acc_in)
        with m.Elif(self.tok_out.valid):
            m.d.sync += self.acc.eq(self.acc + rd.data * self.tok_out.x)
        return m


def core_verilog(
    cfg: CoreConfig, weights: np.ndarray | None = None, thresholds: np.ndarray | None = None
) -> tuple[str, str]:
    from spikeforge.hw.generate import verilog_text
    from spikeforge.toolchain import configure_environment

    configure_environment()
    return verilog_text(cfg, weights, thresholds), cfg.top_name


FOLD_BITS = 32


class FoldedOutputs(wiring.Component):
    """IO wrapper for place and route: the core's inputs are pins, its outputs are XOR-folded into
    FOLD_BITS registered pins. A 16 x 16 core has more output bits than any LFE5U package has pins;
    the fold keeps every output bit live (nothing is optimised away) at a small, stated cost of
    about (output bits - 32) / 3 LUT4 and 32 FFs."""

    def __init__(self, core: wiring.Component):
        self.core = core
        inputs = {}
        self.out_bits = 0
        for path, member, _ in core.signature.flatten(core):
            if member.flow == In:
                inputs["__".join(map(str, path))] = In(member.shape)
            else:
                from amaranth.hdl import Shape

                self.out_bits += Shape.cast(member.shape).width
        super().__init__({**inputs, "folded": Out(FOLD_BITS)})

    def elaborate(self, platform):
        from amaranth.hdl import Cat, Const

        m = Module()
        m.submodules.core = core = self.core
        outs = []
        for path, member, value in core.signature.flatten(core):
            if member.flow == In:
                m.d.comb += value.eq(getattr(self, "__".join(map(str, path))))
            else:
                outs.append(value)
        bits = Cat(*outs)
        fold = Const(0, FOLD_BITS)
        for lo in range(0, len(bits), FOLD_BITS):
            fold = fold ^ bits[lo : lo + FOLD_BITS]
        m.d.sync += self.folded.eq(fold)
        return m


def wrapped_core_verilog(cfg: CoreConfig) -> tuple[str, str]:
    """The core inside FoldedOutputs, for routed ECP5 runs."""
    from amaranth.back import verilog

    from spikeforge.hw.core import SpikeforgeCore
    from spikeforge.toolchain import configure_environment

    configure_environment()
    top = f"{cfg.top_name}_folded"
    return verilog.convert(FoldedOutputs(SpikeforgeCore(cfg)), name=top, emit_src=False), top


def pe_verilog(cfg: CoreConfig) -> tuple[str, str]:
    """One spikeforge ProcessingElement on its own (for GE per PE)."""
    from amaranth.back import verilog

    from spikeforge.hw.pe import ProcessingElement
    from spikeforge.toolchain import configure_environment

    configure_environment()
    top = "spikeforge_pe"
    return verilog.convert(ProcessingElement(cfg), name=top, emit_src=False), top


def mac_pe_verilog(weight_bits: int = 8, acc_bits: int = 24, depth: int = 256) -> tuple[str, str]:
    from amaranth.back import verilog

    from spikeforge.toolchain import configure_environment

    configure_environment()
    top = "mac_pe"
    return verilog.convert(MacPE(weight_bits, 8, acc_bits, depth), name=top, emit_src=False), top

