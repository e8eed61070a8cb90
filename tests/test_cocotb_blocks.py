"""Block tests under cocotb: the PE, the zero-skip front end and the threshold unit, each against
its reference model (tests/block_models.py, written from the block's docstring contract and
shared with the Amaranth block tests).

Each block is converted on its own (`amaranth.back.verilog.convert(component, name="sf_<block>_block")`)
and simulated by sim/rtl/benches/tb_blocks.py. Stimulus is constrained-random with a printed seed
(SPIKEFORGE_SEED reruns it) and always includes the corners: no spikes and all spikes, weights at
both ends of their range, thresholds and accumulators at the register limits (and equal), and the
longest fan-in of the config. On a mismatch the test reruns the vectors with waveforms on and
names the file.
"""

from __future__ import annotations

import numpy as np
import pytest
from block_models import ACC, DOUBLE, NONE, PeModel, ThresholdModel, scanner_reference
from core_stimulus import stimulus_seed

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.tokens import token_layout
from spikeforge.sim import rtl
from spikeforge.sim.cycle import encode_input

pytestmark = pytest.mark.cocotb

# Narrow widths so that the corners (wrap-around, register limits) are reachable in a few
# hundred cycles; max_inputs 40 is five 8-bit words, not a multiple of the word size.
BLOCK_CFG = CoreConfig(rows=2, cols=3, weight_bits=4, acc_bits=8, threshold_bits=8, skip_window=8,
                       max_input_bits=3, max_inputs=40, weight_depth=64, threshold_depth=8)


SIMS = [pytest.param("verilator", id="verilator"), pytest.param("icarus", id="icarus")]


@pytest.fixture(params=SIMS)
def sim(request):
    if request.param == "icarus":
        request.getfixturevalue("icarus_tool")
    else:
        request.getfixturevalue("verilator_tool")
    return request.param


def to_signed(value: int, bits: int) -> int:
    value = int(value) & ((1 << bits) - 1)
    return value - (1 << bits) if value >> (bits - 1) else value


def unsigned(value: int, bits: int) -> int:
    return int(value) & ((1 << bits) - 1)


def fail_with_waves(message: str, rerun) -> None:
    """Fail with the message and the path of a waveform of the same vectors."""
    try:
        path = rerun()
    except rtl.RtlError as exc:
        path = f"(waveform rerun failed: {exc})"
    pytest.fail(f"{message}; waveform: {path}")


# --------------------------------------------------------------------------------------------
# processing element


def pe_stimulus(cfg: CoreConfig, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """(op, addr, drain, acc_in, wr_en, wr_addr, wr_data) per cycle."""
    depth = cfg.weight_depth
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=depth)
    weights[0], weights[1] = cfg.weight_max, cfg.weight_min  # the extremes, at known addresses
    weights[rng.random(depth) < 0.15] = cfg.weight_max
    weights[rng.random(depth) < 0.15] = cfg.weight_min
    rows = [(NONE, 0, 0, 0, 1, a, int(weights[a])) for a in range(depth)]  # load phase
    rows += [(NONE, 0, 0, 0, 0, 0, 0)] * 2

    def drain_burst() -> None:
        rows.extend([(NONE, 0, 0, 0, 0, 0, 0)] * 2)  # drain only with no token in flight
        for _ in range(int(rng.integers(1, 4))):
            acc_in = int(rng.choice([cfg.acc_min, cfg.acc_max, 0, int(rng.integers(cfg.acc_min, cfg.acc_max + 1))]))
            rows.append((NONE, 0, 1, acc_in, 0, 0, 0))

    for burst in range(12):
        if burst in (1, 2):  # the longest fan-in: max_inputs ACCs of one extreme weight (wraps)
            rows.extend((ACC, burst - 1, 0, 0, 0, 0, 0) for _ in range(cfg.max_inputs))
        for _ in range(int(rng.integers(20, 60))):
            op = int(rng.choice([NONE, ACC, ACC, ACC, DOUBLE]))
            rows.append((op, int(rng.integers(0, depth)), 0, 0, 0, 0, 0))
        drain_burst()
    # A partial reload between tiles, then more tokens (the write port while idle).
    for a in rng.choice(depth, size=8, replace=False):
        rows.append((NONE, 0, 0, 0, 1, int(a), int(rng.integers(cfg.weight_min, cfg.weight_max + 1))))
    rows.extend((int(rng.choice([ACC, DOUBLE])), int(rng.integers(0, depth)), 0, 0, 0, 0, 0) for _ in range(40))
    rows.extend([(NONE, 0, 0, 0, 0, 0, 0)] * 3)
    return rows


def check_pe(cfg: CoreConfig, sim: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    stim = pe_stimulus(cfg, rng)
    tok = {name: (f.offset, f.width) for name, f in token_layout(cfg)}

    def pack_token(op: int, addr: int, value: int) -> int:
        return (op << tok["op"][0]) | (addr << tok["addr"][0]) | (value << tok["value"][0])

    values = rng.integers(0, 1 << cfg.max_input_bits, size=len(stim))
    values[rng.random(len(stim)) < 0.3] = 1  # spikes and plane bits
    active = (rng.random(len(stim)) < 0.85).astype(int)
    stim = [(*row, int(v), int(a)) for row, v, a in zip(stim, values, active, strict=True)]
    inputs = ["tok_in", "active", "drain", "acc_in", "wr__en", "wr__addr", "wr__data"]
    vectors = [[pack_token(op, addr, value), act, drain, unsigned(acc_in, cfg.acc_bits), wr_en, wr_addr,
                unsigned(wr_data, cfg.weight_bits)]
               for op, addr, drain, acc_in, wr_en, wr_addr, wr_data, value, act in stim]
    outputs = ["tok_out", "acc"]
    got, _ = rtl.run_vectors(cfg, "pe", inputs, outputs, vectors, sim)
    model = PeModel(cfg)
    for t, row in enumerate(stim):
        want_tok = pack_token(*model.tok_out)
        if got[t][0] is None or got[t][1] is None:
            have_tok, have_acc = None, None  # X: a mismatch below
        else:
            have_tok, have_acc = int(got[t][0]), to_signed(got[t][1], cfg.acc_bits)
        if (have_tok, have_acc) != (want_tok, model.acc):
            fail_with_waves(
                f"PE ({sim}) cycle {t}: acc expected {model.acc}, got {have_acc}; tok_out expected {want_tok}, "
                f"got {have_tok} (input {row}); seed {seed}",
                lambda: rtl.run_vectors(cfg, "pe", inputs, outputs, vectors, sim, waves=True)[1])
        model.step(*row)


@pytest.mark.parametrize("cfg", [BLOCK_CFG, BLOCK_CFG.replace(weight_bits=2, acc_bits=5, threshold_bits=5)],
                         ids=["w4acc8", "w2acc5"])
def test_pe_matches_reference(cfg: CoreConfig, sim: str) -> None:
    check_pe(cfg, sim, stimulus_seed() + cfg.weight_bits)


# --------------------------------------------------------------------------------------------
# zero-skip front end


def scanner_commands(cfg: CoreConfig, rng: np.random.Generator, count: int) -> list[tuple[int, int, list[int], int]]:
    commands = []
    for n in range(count):
        kind = n % 5
        fan_in = cfg.max_inputs if kind in (0, 2) else int(rng.integers(1, cfg.max_inputs + 1))
        planes = int(rng.integers(1, cfg.max_input_bits + 1))
        if kind == 1:
            values = np.zeros(fan_in, dtype=np.int64)  # no spikes
        elif kind == 2:
            values = np.full(fan_in, (1 << planes) - 1)  # all spikes, every plane
        else:
            values = rng.integers(0, 1 << planes, size=fan_in) * (rng.random(fan_in) < rng.random())
        n_words, beats = encode_input(values, planes, cfg.skip_window)
        commands.append((n_words, planes, beats, int(rng.integers(0, 4))))
    return commands


def check_scanner(cfg: CoreConfig, sim: str, seed: int, stalls: bool) -> None:
    rng = np.random.default_rng(seed)
    commands = scanner_commands(cfg, rng, 40)
    stall_seed = seed if stalls else None
    got, _ = rtl.run_scanner(cfg, commands, stall_seed, sim)

    def rerun():
        return rtl.run_scanner(cfg, commands, stall_seed, sim, waves=True)[1]

    for n, ((n_words, planes, beats, _), log) in enumerate(zip(commands, got, strict=True)):
        want_ops, want_done = scanner_reference(cfg, n_words, planes, beats)
        have_ops = [(rel, op, index if op == ACC else 0) for rel, op, index, _, _ in log if op != NONE]
        done_cycles = [rel for rel, _, _, done, _ in log if done]
        taken = sum(fire for *_, fire in log)
        where = f"scanner ({sim}) command {n} (n_words={n_words}, planes={planes}, beats={beats}); seed {seed}"
        if taken != len(beats):
            fail_with_waves(f"{where}: took {taken} beats, expected {len(beats)}", rerun)
        if stalls:  # a stalled source only inserts idle cycles: same ops in the same order
            if [o[1:] for o in have_ops] != [o[1:] for o in want_ops] or len(done_cycles) != 1:
                fail_with_waves(f"{where}: ops {have_ops} != expected {want_ops} (order, stalled)", rerun)
            continue
        for k in range(max(len(have_ops), len(want_ops))):
            w = want_ops[k] if k < len(want_ops) else None
            h = have_ops[k] if k < len(have_ops) else None
            if w != h:
                fail_with_waves(f"{where}: op {k} expected (cycle, op, index) {w}, got {h}", rerun)
        if done_cycles != [want_done]:
            fail_with_waves(f"{where}: done in cycles {done_cycles}, expected {want_done}", rerun)
        fires = [rel for rel, *_, fire in log if fire]
        if fires and fires[0] != 1:
            fail_with_waves(f"{where}: first beat taken in cycle c0+{fires[0]}, expected c0+1", rerun)


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "stalls"])
def test_scanner_matches_reference(sim: str, stalls: bool) -> None:
    check_scanner(BLOCK_CFG, sim, stimulus_seed() + 7, stalls)


# --------------------------------------------------------------------------------------------
# threshold unit


def check_threshold(cfg: CoreConfig, sim: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cols, depth, ab = cfg.cols, cfg.threshold_depth, cfg.acc_bits
    model = ThresholdModel(cfg)
    rows: list[tuple[int, int, int, int, int, int, list[int]]] = []  # addr, en, wr_en, wr_col, wr_addr, wr_data, acc
    expected: list[tuple[list[int], list[int]] | None] = []

    def add(addr, en, wr_en, wr_col, wr_addr, wr_data, acc):
        rows.append((addr, en, wr_en, wr_col, wr_addr, wr_data, acc))
        expected.append(model.outputs(acc))
        model.step(addr, en, wr_en, wr_col, wr_addr, wr_data)

    corners = [cfg.threshold_min, cfg.threshold_max, 0, -1, 1]
    for _phase in range(3):
        for c in range(cols):  # (re)load every threshold, the register's limits included
            for a in range(depth):
                t = int(rng.choice(corners)) if rng.random() < 0.4 else int(rng.integers(cfg.threshold_min,
                                                                                         cfg.threshold_max + 1))
                add(0, 0, 1, c, a, t, [0] * cols)
        for _ in range(150):
            addr, en = int(rng.integers(0, depth)), int(rng.random() < 0.7)
            acc = []
            for c in range(cols):
                pick = rng.random()
                if model.rdata is not None and pick < 0.3:
                    acc.append(max(cfg.acc_min, min(cfg.acc_max, model.rdata[c])))  # acc == T, the boundary
                elif pick < 0.5:
                    acc.append(int(rng.choice([cfg.acc_min, cfg.acc_max])))
                else:
                    acc.append(int(rng.integers(cfg.acc_min, cfg.acc_max + 1)))
            add(addr, en, 0, 0, 0, 0, acc)
    inputs = ["addr", "en", "wr__en", "wr_col", "wr__addr", "wr__data", "acc"]
    vectors = [[addr, en, wr_en, wr_col, wr_addr, unsigned(wr_data, cfg.threshold_bits),
                sum(unsigned(a, ab) << (c * ab) for c, a in enumerate(acc))]
               for addr, en, wr_en, wr_col, wr_addr, wr_data, acc in rows]
    outputs = ["value", "spike"]
    got, _ = rtl.run_vectors(cfg, "threshold", inputs, outputs, vectors, sim)
    checked = 0
    for t, want in enumerate(expected):
        if want is None:
            continue
        vb = ab + 1
        if got[t][0] is None or got[t][1] is None:
            fail_with_waves(f"threshold unit ({sim}) cycle {t}: value/spike are X, expected {want}; seed {seed}",
                            lambda: rtl.run_vectors(cfg, "threshold", inputs, outputs, vectors, sim,
                                                           waves=True)[1])
        values = [to_signed(int(got[t][0]) >> (c * vb), vb) for c in range(cols)]
        spikes = [int(got[t][1]) >> c & 1 for c in range(cols)]
        if (values, spikes) != (want[0], want[1]):
            fail_with_waves(
                f"threshold unit ({sim}) cycle {t}: value/spike expected {want}, got {(values, spikes)} "
                f"(acc {rows[t][6]}); seed {seed}",
                lambda: rtl.run_vectors(cfg, "threshold", inputs, outputs, vectors, sim, waves=True)[1])
        checked += 1
    assert checked > 300  # the reads really happened


@pytest.mark.parametrize("cfg", [BLOCK_CFG, BLOCK_CFG.replace(threshold_bits=6)], ids=["t8acc8", "t6acc8"])
def test_threshold_matches_reference(cfg: CoreConfig, sim: str) -> None:
    check_threshold(cfg, sim, stimulus_seed() + 11 + cfg.threshold_bits)
