"""The whole core in Amaranth's simulator against the golden model: bit-exact and cycle-exact.

The stimulus is sim/rtl/stimulus.py's, the stream parts and the stall schedule are
sim/rtl/streams.py's (the cocotb regression uses the same), the comparison is the scoreboard's
`compare_outcomes`. The default tier runs a representative number of vectors per shape; the slow
tier (`make test-all`) runs 2,000 per shape (SPIKEFORGE_VECTORS overrides both).
"""

from __future__ import annotations

import numpy as np
import pytest
from core_stimulus import FAULT_MISMATCH, stimulus_seed, tile_config, vector_count

from spikeforge.hw.config import FAULTS, PROTOCOL_FAULTS
from spikeforge.sim.driver import golden_run
from spikeforge.sim.rtl.amaranth_sim import ProtocolError, simulate_commands
from spikeforge.sim.rtl.scoreboard import compare_outcomes
from spikeforge.sim.rtl.stimulus import TileCase, fault_case, random_case

SHAPES = [(1, 1, 2), (1, 7, 4), (3, 5, 8), (4, 4, 2), (8, 8, 8), (16, 4, 4)]


def first_mismatch(cfg, case: TileCase, seed: int):
    """The scoreboard's first difference between the RTL and the golden model (None: equal);
    cycles are compared only without stalls."""
    rtl = simulate_commands(cfg, case.weights, case.thresholds, case.commands, stall_seed=case.stall_seed)
    want = golden_run(cfg, case.weights, case.thresholds, case.commands)
    return compare_outcomes(cfg, want, rtl, cycles=case.stall_seed is None, seed=seed)


def run_shape(rows, cols, weight_bits, count, stalls=False):
    seed = stimulus_seed() + rows * 100 + cols
    cfg = tile_config(rows, cols, weight_bits)
    case = random_case(cfg, np.random.default_rng(seed), count)
    case.stall_seed = seed if stalls else None
    bad = first_mismatch(cfg, case, seed)
    assert bad is None, bad.message()


@pytest.mark.parametrize("rows,cols,weight_bits", SHAPES)
def test_array_matches_golden(rows, cols, weight_bits):
    # The big shapes are slow in the Python simulator; fewer vectors keep the default tier quick.
    run_shape(rows, cols, weight_bits, vector_count(40 if rows * cols <= 16 else 12))


@pytest.mark.parametrize("rows,cols,weight_bits", [(3, 5, 4), (1, 1, 8)])
def test_backpressure_changes_timing_not_results(rows, cols, weight_bits):
    run_shape(rows, cols, weight_bits, vector_count(24), stalls=True)


@pytest.mark.slow
@pytest.mark.parametrize("rows,cols,weight_bits", SHAPES)
def test_array_2000_vectors(rows, cols, weight_bits):
    run_shape(rows, cols, weight_bits, vector_count(2000))


def test_stalls_really_stall():
    """Guard against a stall schedule that never stalls: stalled runs take longer."""
    seed = stimulus_seed()
    cfg = tile_config(2, 3, 4)
    case = random_case(cfg, np.random.default_rng(seed), 6)
    calm = simulate_commands(cfg, case.weights, case.thresholds, case.commands)
    stalled = simulate_commands(cfg, case.weights, case.thresholds, case.commands, stall_seed=seed)
    assert stalled[-1].beats[-1].cycle > calm[-1].beats[-1].cycle


def test_faults_have_expectations():
    assert set(FAULT_MISMATCH) == set(FAULTS), "a new fault needs its expected mismatch here"


@pytest.mark.parametrize("fault", FAULTS)
def test_injected_faults_are_caught(fault):
    """Mutation check: on a case built to exercise the fault, the real core passes and the
    faulty one fails with the specific mismatch the fault must cause."""
    seed = stimulus_seed()
    cfg = tile_config(3, 5, 4)
    case = fault_case(cfg, fault, np.random.default_rng(seed), stall_seed=seed + 1)
    clean = first_mismatch(cfg, case, seed)
    assert clean is None, f"the real core fails the fault's case: {clean.message()}"
    faulty = cfg.replace(fault=fault)
    if fault in PROTOCOL_FAULTS:
        # The beats and their cycles are those of the real core: only the monitor sees it.
        with pytest.raises(ProtocolError) as caught:
            simulate_commands(faulty, case.weights, case.thresholds, case.commands, stall_seed=case.stall_seed)
        first = caught.value.violations[0]
        assert (first.stream, first.what) == ("out", FAULT_MISMATCH[fault].removeprefix("out ")), first.message()
        return
    bad = first_mismatch(faulty, case, seed)
    assert bad is not None, f"fault {fault} was not caught (seed {seed})"
    assert bad.what == FAULT_MISMATCH[fault], bad.message()
    if fault == "comparator_off_by_one":  # acc == T exactly: value 0, the model spikes, the fault does not
        assert (bad.expected, bad.got) == (True, False), bad.message()
    else:
        assert bad.got < bad.expected, bad.message()  # a lost input / a lost doubling of positive weights


def test_protocol_fault_is_invisible_to_the_scoreboard():
    """Why the monitors exist: with the monitor's verdict set aside (the backend of a run that
    does not raise), a protocol fault gives the same beats and cycles as the real core."""
    from spikeforge.hw.generate import core_component
    from spikeforge.sim.rtl import amaranth_sim

    seed = stimulus_seed()
    cfg = tile_config(3, 5, 4)
    case = fault_case(cfg, "out_valid_drops_while_stalled", np.random.default_rng(seed), stall_seed=seed + 1)
    runs = {}
    for fault in (None, "out_valid_drops_while_stalled"):
        dut_cfg = cfg.replace(fault=fault)
        harness = amaranth_sim.run_harness(core_component(dut_cfg, case.weights, case.thresholds), dut_cfg,
                                           case.commands, case.stall_seed)
        runs[fault] = harness
    assert runs[None].violations == []
    assert runs["out_valid_drops_while_stalled"].violations
    assert runs[None].outcomes == runs["out_valid_drops_while_stalled"].outcomes
