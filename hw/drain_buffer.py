"""Drain buffer of a one-step core: where a finished tile waits while the array runs the next one.

One register per PE (acc_bits each), arranged like the array. `capture` copies every PE's
accumulator into the buffer in one cycle (the controller clears the accumulators in the same
cycle); `shift` moves the buffer one row south, row 0 taking 0, and the bottom row feeds the
threshold unit. So the drain of tile i (R shifts, one output beat each) overlaps the scan and flush
of tile i+1 (docs/ARCHITECTURE.md, "Timing contract"): the array's accumulators are free again
one cycle after the flush.

Timing contract: `capture` in cycle X: `rows[r][c]` = acc(r, c) from cycle X+1. `shift` in cycle
y: row r holds what row r-1 held in y, from y+1. The controller never asserts both.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.config import CoreConfig


class DrainBuffer(wiring.Component):
    """R x C registers between the array and the threshold unit (timing: the module docstring).

    Members:
    - `capture` (in): load every register from `acc`.
    - `shift` (in): every row takes its north neighbour's value, row 0 takes 0.
    - `acc` (in, R x C signed acc_bits, row-major): the array's accumulators.
    - `bottom` (out, C signed acc_bits): row R-1, what the threshold unit compares.
    """

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        super().__init__({
            "capture": In(1),
            "shift": In(1),
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.pes)),
            "bottom": Out(data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        m = Module()
        held = [[Signal(signed(cfg.acc_bits), name=f"held_{r}_{c}") for c in range(cols)] for r in range(rows)]
        for r in range(rows):
            for c in range(cols):
                with m.If(self.capture):
                    m.d.sync += held[r][c].eq(self.acc[r * cols + c])
                with m.Elif(self.shift):
                    m.d.sync += held[r][c].eq(held[r - 1][c] if r > 0 else 0)
        for c in range(cols):
            m.d.comb += self.bottom[c].eq(held[rows - 1][c])
        return m
