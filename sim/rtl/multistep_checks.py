"""RTL checks of multi-step cores: random step-loop tiles against the golden cycle model.

Whole multi-step networks go through `checks.check_network` (the driver sequences their steps);
this module adds the tile-level regression: random commands with every step-loop field (steps,
n_steps > 1, first, per_step, leak, reset_zero, readout, membrane bases) on random weights,
thresholds, scales and offsets, every beat's values, spikes and cycle compared with
`sim.driver.golden_run`, whose membrane carries over from command to command like the RTL's.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.sim.cycle import Command, NeuronMemories
from spikeforge.sim.driver import TileOutcome, golden_run
from spikeforge.sim.rtl.build import build
from spikeforge.sim.rtl.runner import run_job
from spikeforge.sim.rtl.scoreboard import CheckReport, compare_outcomes, outcome_from_json


@dataclass
class MultistepCase:
    weights: np.ndarray
    thresholds: np.ndarray
    neuron: NeuronMemories  # its membrane is the initial state (zero, as after reset)
    commands: list[tuple[Command, list[int]]]
    stall_seed: int | None = None


def case_json(case: MultistepCase) -> dict:
    return {
        "weights": np.asarray(case.weights, np.int64).tolist(),
        "thresholds": np.asarray(case.thresholds, np.int64).tolist(),
        "scales": np.asarray(case.neuron.scales, np.int64).tolist(),
        "offsets": np.asarray(case.neuron.offsets, np.int64).tolist(),
        "commands": [[{k: (int(v) if not isinstance(v, bool) else v) for k, v in dataclasses.asdict(c).items()},
                      list(map(int, beats))] for c, beats in case.commands],
        "stall_seed": case.stall_seed,
    }


def golden_case(cfg: CoreConfig, case: MultistepCase, membrane: np.ndarray | None = None) -> list[TileOutcome]:
    """The golden run of a case; `membrane` (updated in place) is the state the previous case left."""
    neuron = copy.deepcopy(case.neuron)
    if membrane is not None:
        neuron.membrane = membrane
    return golden_run(cfg, case.weights, case.thresholds, case.commands, neuron)


def run_multistep_tiles(cfg: CoreConfig, cases: Sequence[MultistepCase], sim: str = "verilator") -> dict:
    """The raw RTL result of the cases in one simulation (every case on the same core: its
    membrane carries over from case to case)."""
    b = build(cfg, sim)
    result, _ = run_job(b, "tb_core", "tiles", {"config": cfg.to_dict(),
                                                          "cases": [case_json(c) for c in cases]})
    result["build_seconds"] = b.seconds
    return result


def check_multistep_tiles(cfg: CoreConfig, cases: Sequence[MultistepCase], sim: str = "verilator",
                          seed: int | None = None, golden_cfg: CoreConfig | None = None) -> CheckReport:
    """Bits of every case, and cycles of the unstalled ones, against the golden model (of
    `golden_cfg`, default cfg: a fault test passes the clean config to see the mismatch)."""
    report = CheckReport(sim, f"{cfg.rows}x{cfg.cols}")
    result = run_multistep_tiles(cfg, cases, sim)
    report.build_seconds = float(result["build_seconds"])
    report.sim_cycles = int(result["cycles_simulated"])
    report.sim_seconds = float(result["wall_s"])
    ref = golden_cfg or cfg
    membrane = np.zeros((cfg.cols, cfg.membrane_depth), np.int64)  # the RTL's after reset; kept across cases
    for index, (case, raw) in enumerate(zip(cases, result["cases"], strict=True)):
        got = [outcome_from_json(o) for o in raw["outcomes"]]
        want = golden_case(ref, case, membrane)
        report.vectors += len(case.commands)

        def label(n: int, r: int, c: int, i: int = index) -> tuple[str, int]:
            return f"case {i}, command {n}", r * cfg.cols + c

        bad = compare_outcomes(cfg, want, got, cycles=False, seed=seed, label=label)
        if bad is not None:
            report.bit_exact = False
        elif case.stall_seed is None:
            bad = compare_outcomes(cfg, want, got, cycles=True, seed=seed, label=label)
            if bad is not None:
                report.cycle_exact = False
        if bad is not None:
            report.mismatch = bad
            break
    return report
