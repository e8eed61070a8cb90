"""Reference models of the core's blocks, written from their docstring contracts (hw/pe.py,
hw/scanner.py, hw/threshold.py): one statement of each, used by the Amaranth block tests
(tests/test_blocks_amaranth.py) and the cocotb block tests (tests/test_cocotb_blocks.py).
The op codes are hw/tokens.py's `Op`, not restated."""

from __future__ import annotations

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.tokens import Op
from spikeforge.integer_network import wrap_signed

NONE, ACC, DOUBLE = Op.NONE.value, Op.ACC.value, Op.DOUBLE.value


class PeModel:
    """hw/pe.py's contract: the token in cycle y reads W[addr] (ACC tokens while `active`); the PE
    registers the token (tok_out in y+1), registers the word read at the end of y+1, forms
    W * value over y+2 and y+3 and applies it at the end of y+4: ACC adds W * value, DOUBLE shifts
    left, NONE (or an ACC/DOUBLE seen while not `active`) holds; drain loads acc_in. The
    accumulator wraps at acc_bits. `mem`: the weight memory's initial contents."""

    def __init__(self, cfg: CoreConfig, mem: list[int] | None = None) -> None:
        self.cfg = cfg
        self.mem = list(mem) if mem is not None else [0] * cfg.weight_depth
        self.tok_out = (NONE, 0, 0)
        self.rdata = 0  # the read port's data (holds while not enabled)
        self.weight, self.op2, self.value2 = 0, NONE, 0
        self.partial, self.op3a = 0, NONE
        self.product, self.op3 = 0, NONE
        self.acc = 0

    def step(self, op: int, addr: int, drain: int, acc_in: int, wr_en: int = 0, wr_addr: int = 0,
             wr_data: int = 0, value: int = 1, active: int = 1) -> None:
        """One clock edge with these inputs (op/addr/value of `tok_in`, `active`, the write port)."""
        if drain:
            acc = acc_in
        elif self.op3 == ACC:
            acc = self.acc + self.product
        elif self.op3 == DOUBLE:
            acc = self.acc << 1
        else:
            acc = self.acc
        self.acc = int(wrap_signed(np.int64(acc), self.cfg.acc_bits))
        self.product, self.op3 = self.partial, self.op3a
        self.partial, self.op3a = self.weight * self.value2, self.op2
        self.weight = self.rdata
        self.op2 = self.tok_out[0] if active else NONE
        self.value2 = self.tok_out[2]
        if op == ACC and active:
            self.rdata = self.mem[addr]  # synchronous read of the old contents
        if wr_en:
            self.mem[wr_addr] = wr_data
        self.tok_out = (int(op), int(addr), int(value))


def scanner_reference(cfg: CoreConfig, n_words: int, n_planes: int,
                      beats: list[int]) -> tuple[list[tuple[int, int, int]], int]:
    """hw/scanner.py's contract, no stalls: (cycle - c0, op, index) of every op. Each word costs
    max(1, popcount) cycles (ACC per set bit, lowest first; an empty word one idle cycle), one
    DOUBLE between planes; ops occupy cycles c0+2 .. c0+1+S and `done` is high in the last.
    Returns the ops and the done cycle (relative to c0)."""
    ops, cycle = [], 2
    window = cfg.skip_window
    for plane in range(n_planes):
        if plane:
            ops.append((cycle, DOUBLE, 0))
            cycle += 1
        for w in range(n_words):
            word = beats[plane * n_words + w]
            if word == 0:
                cycle += 1
            for bit in range(window):
                if word >> bit & 1:
                    ops.append((cycle, ACC, w * window + bit))
                    cycle += 1
    return ops, cycle - 1


class ThresholdModel:
    """hw/threshold.py's contract: addr/en in cycle y -> threshold in y+1 (holds when en=0);
    value = acc - T exact in acc_bits+1 bits, spike = value >= 0, combinational.
    `table`: the threshold memories' initial contents [C][depth]."""

    def __init__(self, cfg: CoreConfig, table: list[list[int]] | None = None) -> None:
        self.cfg = cfg
        self.mem = [list(row) for row in table] if table is not None else \
            [[0] * cfg.threshold_depth for _ in range(cfg.cols)]
        self.rdata: list[int] | None = None  # unknown until the first read

    def outputs(self, acc: list[int]) -> tuple[list[int], list[int]] | None:
        if self.rdata is None:
            return None
        values = [int(a) - t for a, t in zip(acc, self.rdata, strict=True)]
        return values, [int(v >= 0) for v in values]

    def step(self, addr: int, en: int, wr_en: int = 0, wr_col: int = 0, wr_addr: int = 0, wr_data: int = 0) -> None:
        if en:
            self.rdata = [self.mem[c][addr] for c in range(self.cfg.cols)]
        if wr_en:
            self.mem[wr_col][wr_addr] = wr_data
