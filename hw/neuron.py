"""Neuron unit: the multi-step core's bottom edge, membrane state and per-step constants per column.

It takes the place of the threshold unit (hw/threshold.py) when `cfg.membrane_bits > 0`. The
synaptic array above stays accumulate-only; per output neuron and time step this unit computes
(integer_multistep.neuron_step is the same arithmetic in Python)

    u_new  = wrap( (first ? 0 : U - (U >> leak_shift)) + scale * acc + offset, membrane_bits )
    value  = u_new - threshold          (membrane_bits + 1 bits, exact)
    spike  = value >= 0
    U     <= readout | ~spike ? u_new : (reset_zero ? 0 : value)

Members, per column c: a membrane memory (`membrane_depth` x signed membrane_bits), and at the
same constant address a threshold memory, an offset memory and, when `scale_bits > 0`, a scale
memory (then one signed multiplier scale_bits x acc_bits per column, BNTT's per-step BatchNorm;
with scale_bits = 0 the scale is 1 and the unit is add-only, as for converted IF nets). The leak
is a constant shift and one subtractor (leak = 1 - 2^-k), applied only on commands with `leak`.

Ports: `rd_row`, `rd_step`, `rd_en` (cycle y) address the constants at
const_base + (per_step ? rd_step * R : 0) + rd_row and the membrane at membrane_base + rd_row;
the words are there in cycle y+1 (synchronous reads; with rd_en low they hold). In cycle y+1,
`value`/`spike` are combinational from `acc` (the array's bottom row), the read words and the
beat's control bits `first`, `leak`, `reset_zero`, `readout`; with `wr_en` the new U is written at
membrane_base + `wr_row` at the end of that cycle. The membrane read port is transparent to the
write port, so a one-row array reads in cycle y the U it writes in cycle y (steps back to back).
`load_*` write one constant word per cycle (target 1 threshold, 2 scale, 3 offset; `load_col`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig

LOAD_SCALE = 2
LOAD_OFFSET = 3


class NeuronUnit(wiring.Component):
    def __init__(self, cfg: CoreConfig, init: dict[str, list[list[int]]] | None = None):
        """init: {"thresholds"|"scales"|"offsets": C lists} (missing = zeros)."""
        if not cfg.multistep:
            raise ValueError("NeuronUnit needs a multi-step config (membrane_bits > 0)")
        self.cfg = cfg
        self._init = init or {}
        cols = cfg.cols
        data_bits = max(cfg.threshold_bits, cfg.scale_bits, cfg.offset_bits)
        super().__init__({
            "const_base": In(unsigned(cfg.threshold_addr_bits)),
            "membrane_base": In(unsigned(cfg.membrane_addr_bits)),
            "per_step": In(1),
            "rd_row": In(range(max(cfg.rows, 2))),
            "rd_step": In(unsigned(cfg.step_bits)),
            "rd_en": In(1),
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), cols)),
            "first": In(1),
            "leak": In(1),
            "reset_zero": In(1),
            "readout": In(1),
            "wr_row": In(range(max(cfg.rows, 2))),
            "wr_en": In(1),
            "value": Out(data.ArrayLayout(signed(cfg.value_bits), cols)),
            "spike": Out(cols),
            "load_en": In(1),
            "load_target": In(2),
            "load_col": In(unsigned(max(1, (cols - 1).bit_length()))),
            "load_addr": In(unsigned(cfg.threshold_addr_bits)),
            "load_data": In(signed(data_bits)),
        })

    def _constant(self, m: Module, name: str, col: int, bits: int, target: int, addr) -> Signal:
        cfg = self.cfg
        mem = Memory(shape=signed(bits), depth=cfg.threshold_depth, init=self._init.get(name, [[]] * cfg.cols)[col])
        m.submodules[f"{name}_{col}"] = mem
        rd = mem.read_port(domain="sync")
        wr = mem.write_port()
        m.d.comb += [
            rd.addr.eq(addr),
            rd.en.eq(self.rd_en),
            wr.en.eq(self.load_en & (self.load_target == target) & (self.load_col == col)),
            wr.addr.eq(self.load_addr),
            wr.data.eq(self.load_data),
        ]
        return rd.data

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        step = self.rd_step + 1 if cfg.fault == "wrong_step_constant" else self.rd_step
        const_addr = Signal(unsigned(cfg.threshold_addr_bits))
        m.d.comb += const_addr.eq(self.const_base + Mux(self.per_step, step * cfg.rows, 0) + self.rd_row)
        shift = cfg.leak_shift + 1 if cfg.fault == "leak_off_by_one" else cfg.leak_shift
        reset_zero = 1 if cfg.fault == "reset_to_zero" else self.reset_zero
        for col in range(cfg.cols):
            threshold = self._constant(m, "thresholds", col, cfg.threshold_bits, 1, const_addr)
            offset = self._constant(m, "offsets", col, cfg.offset_bits, LOAD_OFFSET, const_addr)
            membrane = Memory(shape=signed(cfg.membrane_bits), depth=cfg.membrane_depth, init=[])
            m.submodules[f"membrane_{col}"] = membrane
            wr = membrane.write_port()
            rd = membrane.read_port(domain="sync", transparent_for=(wr,))
            m.d.comb += [rd.addr.eq(self.membrane_base + self.rd_row), rd.en.eq(self.rd_en)]

            acc = self.acc[col]
            if cfg.scale_bits:
                scale = self._constant(m, "scales", col, cfg.scale_bits, LOAD_SCALE, const_addr)
                drive = Signal(signed(cfg.scale_bits + cfg.acc_bits))
                m.d.comb += drive.eq(scale * acc)
            else:
                drive = acc
            kept = Signal(signed(cfg.membrane_bits))  # leak(U), or U when the command has no leak
            if shift:
                m.d.comb += kept.eq(Mux(self.leak, rd.data - (rd.data >> shift), rd.data))
            else:
                m.d.comb += kept.eq(rd.data)
            u_new = Signal(signed(cfg.membrane_bits))
            m.d.comb += u_new.eq(Mux(self.first, 0, kept) + drive + offset)
            value = self.value[col]
            m.d.comb += [value.eq(u_new - threshold), self.spike[col].eq(value >= 0)]
            stored = Signal(signed(cfg.membrane_bits))
            m.d.comb += stored.eq(Mux(self.readout | ~self.spike[col], u_new, Mux(reset_zero, 0, value)))
            m.d.comb += [wr.addr.eq(self.membrane_base + self.wr_row), wr.en.eq(self.wr_en), wr.data.eq(stored)]
        return m
