"""The token that travels through the PE array, one hop per cycle."""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from spikeforge.hw.config import CoreConfig


class Op(enum.Enum, shape=unsigned(2)):
    """What a PE does with the token in its register this cycle."""

    NONE = 0  # bubble: hold the accumulator
    ACC = 1  # acc += W[addr]            (one active input: a spike, or a 1 bit of a pixel plane)
    DOUBLE = 2  # acc <<= 1              (plane boundary of a multi-bit input, MSB plane first)


def token_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({"op": Op, "addr": unsigned(cfg.weight_addr_bits)})
