"""The generated core under cocotb (Verilator, and Icarus as a second simulator) against the
golden model `sim.cycle.run_tile`: every output value and spike, and the cycle at which each
beat leaves the core, over constrained-random tile vectors on six array shapes.

Stimulus comes from sim/rtl/stimulus.py (the same generator as the Amaranth tests and
`spikeforge verify`) plus thresholds pinned to the exact accumulator (acc == T); the stream parts,
monitors and stall schedule are sim/rtl/streams.py's, shared with the Amaranth bench. Seeds are
printed; SPIKEFORGE_SEED reruns and SPIKEFORGE_VECTORS sets the vectors per shape. On a mismatch
the failure names the case, command, output index, expected vs got, cycle and seed, and the
waveform of a rerun.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_stimulus import stimulus_seed, tile_config, vector_count

from spikeforge.sim import rtl
from spikeforge.sim.driver import golden_run
from spikeforge.sim.rtl import TileCase

pytestmark = pytest.mark.cocotb

# (rows, cols, weight_bits): square, single PE, one row, prime by prime, tall; weights 2/4/8 bits.
SHAPES = [(1, 1, 2), (1, 7, 4), (3, 5, 8), (4, 4, 2), (8, 8, 8), (16, 4, 4)]
# The default tier builds three of them (each Verilator build is ~20 s of CPU); the rest are slow.
FAST = {(1, 1, 2), (1, 7, 4), (3, 5, 8)}


def make_cases(cfg, seed: int, count: int, memories: int = 2, stalls: bool = False) -> list[TileCase]:
    """`memories` memory images with count // memories commands each (the core is reloaded
    through its load port between them)."""
    rng = np.random.default_rng(seed)
    cases = []
    for m in range(memories):
        weights, thresholds = rtl.random_memories(cfg, rng)
        commands = rtl.random_commands(cfg, rng, max(1, count // memories))
        case = TileCase(weights, thresholds, commands, stall_seed=seed + m if stalls else None)
        rtl.pin_thresholds(cfg, case, rng)
        cases.append(case)
    return cases


def assert_ok(report: rtl.CheckReport) -> None:
    assert report.ok, f"{report.sim} {report.shape}: {report.mismatch.message() if report.mismatch else report}"


def shape_params():
    for rows, cols, wb in SHAPES:
        marks = [] if (rows, cols, wb) in FAST else [pytest.mark.slow]
        yield pytest.param(rows, cols, wb, id=f"{rows}x{cols}-w{wb}", marks=marks)


@pytest.mark.parametrize("rows,cols,weight_bits", list(shape_params()))
def test_array_matches_golden(rows: int, cols: int, weight_bits: int, verilator_tool) -> None:
    cfg = tile_config(rows, cols, weight_bits)
    seed = stimulus_seed() + rows * 100 + cols
    cases = make_cases(cfg, seed, vector_count(48))
    report = rtl.check_tiles(cfg, cases, "verilator", seed=seed)
    assert_ok(report)
    assert report.vectors == sum(len(c.commands) for c in cases)


@pytest.mark.parametrize("rows,cols,weight_bits", [(3, 5, 4), (1, 1, 8)], ids=["3x5-w4", "1x1-w8"])
def test_backpressure_changes_timing_not_results(rows: int, cols: int, weight_bits: int, verilator_tool) -> None:
    """Stalls on every stream (sources hold valid until the transfer, the sink drops ready): every
    result equal to the model's, no protocol violation; the cycles differ from the model's but
    equal the Amaranth simulation's with the same stall seed (one StallSchedule for both)."""
    from spikeforge.sim.rtl.amaranth_sim import simulate_commands

    cfg = tile_config(rows, cols, weight_bits)
    seed = stimulus_seed() + 17 + rows * 100 + cols
    cases = make_cases(cfg, seed, vector_count(24), memories=1, stalls=True)
    report = rtl.check_tiles(cfg, cases, "verilator", seed=seed)
    assert_ok(report)
    case = cases[0]
    b = rtl.build(cfg, "verilator")
    result, _ = rtl.run_job(b, "tb_core", "tiles", {"config": cfg.to_dict(),
                                                            "cases": [rtl.case_json(case)]})
    cocotb_cycles = [[beat[4] for beat in o["beats"]] for o in result["cases"][0]["outcomes"]]
    amaranth = simulate_commands(cfg, case.weights, case.thresholds, case.commands, stall_seed=case.stall_seed)
    assert cocotb_cycles == [[b.cycle for b in t.beats] for t in amaranth], f"stall seed {case.stall_seed}"
    golden = golden_run(cfg, case.weights, case.thresholds, case.commands)
    assert cocotb_cycles != [[b.cycle for b in o.beats] for o in golden], "the stalls did not stall anything"


def test_icarus_and_verilator_agree(verilator_tool, icarus_tool) -> None:
    """The same vectors (no stalls, then stalls) on both simulators: identical beats and cycles,
    and both equal to the golden model."""
    cfg = tile_config(3, 5, 4)
    seed = stimulus_seed() + 29
    for stalls in (False, True):
        cases = make_cases(cfg, seed, vector_count(16), memories=1, stalls=stalls)
        outs = {}
        for sim in ("verilator", "icarus"):
            report = rtl.check_tiles(cfg, cases, sim, seed=seed)
            assert_ok(report)
            b = rtl.build(cfg, sim)
            result, _ = rtl.run_job(b, "tb_core", "tiles", {"config": cfg.to_dict(),
                                                                    "cases": [rtl.case_json(cases[0])]})
            outs[sim] = result["cases"][0]["outcomes"]
        assert outs["verilator"] == outs["icarus"], f"simulators disagree (stalls={stalls}, seed {seed})"


@pytest.mark.slow
@pytest.mark.parametrize("rows,cols,weight_bits", [(1, 7, 4), (3, 5, 8)], ids=["1x7-w4", "3x5-w8"])
def test_array_matches_golden_icarus(rows: int, cols: int, weight_bits: int, icarus_tool) -> None:
    cfg = tile_config(rows, cols, weight_bits)
    seed = stimulus_seed() + rows * 100 + cols
    assert_ok(rtl.check_tiles(cfg, make_cases(cfg, seed, vector_count(48)), "icarus", seed=seed))


def test_mismatch_report_names_everything(verilator_tool) -> None:
    """A golden model that disagrees (thresholds changed behind the RTL's back) must produce a
    report naming case, command, output, expected/got, cycle, seed and a waveform file."""
    cfg = tile_config(1, 1, 2)
    seed = stimulus_seed() + 3
    cases = make_cases(cfg, seed, 8, memories=1)
    b = rtl.build(cfg, "verilator")
    result, _ = rtl.run_job(b, "tb_core", "tiles", {"config": cfg.to_dict(),
                                                            "cases": [rtl.case_json(cases[0])]})
    got = [rtl.outcome_from_json(o) for o in result["cases"][0]["outcomes"]]
    wrong = cases[0].thresholds + 1  # the model now expects every value one lower
    want = golden_run(cfg, cases[0].weights, wrong, cases[0].commands)
    bad = rtl.compare_outcomes(cfg, want, got, cycles=True, seed=seed)
    assert bad is not None and bad.what == "value" and bad.expected == bad.got - 1
    text = bad.message()
    for part in ("command 0", "output 0", "expected", "got", "cycle", f"seed {seed}"):
        assert part in text, text
    waves = rtl.rerun_with_waves(cfg, "verilator", "core", "tiles",
                                         {"config": cfg.to_dict(), "cases": [rtl.case_json(cases[0])]}, None)
    assert waves is not None and waves.endswith((".fst", ".vcd")), waves
    from pathlib import Path

    assert Path(waves).stat().st_size > 0
