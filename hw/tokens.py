"""The token that travels through the PE array, one hop per cycle."""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from spikeforge.hw.config import CoreConfig


class Op(enum.Enum, shape=unsigned(2)):
    """What a PE does with the token in its register this cycle."""

    NONE = 0  # bubble: hold the accumulator
    ACC = 1  # acc += W[addr] * value   (a spike or a 1 bit of a pixel plane: value 1; a value event: its value)
    DOUBLE = 2  # acc <<= 1              (plane boundary of a multi-bit input, MSB plane first)


def token_layout(cfg: CoreConfig) -> data.StructLayout:
    """op, PE-local weight address, the input value (1 for spikes and plane bits) and, on a conv
    core, the event's window coordinates y, x (hw/conv_tiling.py)."""
    fields = {"op": Op, "addr": unsigned(cfg.weight_addr_bits), "value": unsigned(cfg.max_input_bits)}
    if cfg.conv:
        fields.update({"y": unsigned(cfg.conv_coord_bits), "x": unsigned(cfg.conv_coord_bits)})
    return data.StructLayout(fields)
