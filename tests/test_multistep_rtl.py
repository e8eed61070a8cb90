"""The multi-step core (hw/neuron.py, hw/step_loop.py) against the golden cycle model, bit and
cycle for cycle: random step-loop tiles on six array shapes (Amaranth's simulator and cocotb on
Verilator, with random stalls), injected neuron-unit faults, and whole multi-step networks.

Seeds come from SPIKEFORGE_SEED (printed); SPIKEFORGE_VECTORS sets the commands per shape.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from core_stimulus import stimulus_seed, vector_count

from spikeforge.hw.config import NEURON_FAULTS, CoreConfig
from spikeforge.integer_multistep import MultiStep, NeuronSteps
from spikeforge.integer_network import Conv, Dense, IntegerNetwork
from spikeforge.sim.driver import NetworkDriver
from spikeforge.sim.rtl.multistep_checks import MultistepCase, check_multistep_tiles, golden_case
from spikeforge.sim.rtl.multistep_stimulus import random_multistep_case

# single PE, one row, prime by prime, one column, square, tall.
SHAPES = [(1, 1), (1, 4), (3, 5), (5, 1), (4, 4), (7, 3)]
FAST = {(1, 1), (3, 5)}


def step_config(rows: int, cols: int, **changes) -> CoreConfig:
    """Small memories, every neuron-unit feature: multiplier, leak, 4 steps per command."""
    return CoreConfig(rows=rows, cols=cols, weight_bits=6, acc_bits=13, threshold_bits=11, skip_window=8,
                      max_input_bits=3, max_inputs=48, weight_depth=64, threshold_depth=64, membrane_bits=18,
                      scale_bits=5, offset_bits=10, leak_shift=3, membrane_depth=32, max_steps=4, **changes)


def make_cases(cfg: CoreConfig, seed: int, count: int, stalled: bool = True) -> list[MultistepCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(3 if stalled else 2):
        w, t, n, commands = random_multistep_case(cfg, rng, max(1, count // 3))
        cases.append(MultistepCase(w, t, n, commands, stall_seed=seed + k if k == 2 else None))
    return cases


def amaranth_matches(cfg: CoreConfig, case: MultistepCase, reference: CoreConfig | None = None) -> str | None:
    """None if the Amaranth simulation equals the golden model (of `reference`), else the first difference."""
    from spikeforge.sim.rtl.amaranth_sim import simulate_commands

    got = simulate_commands(cfg, case.weights, case.thresholds, case.commands, stall_seed=case.stall_seed,
                            neuron=copy.deepcopy(case.neuron))
    want = golden_case(reference or cfg, case)
    for n, (w, g) in enumerate(zip(want, got, strict=True)):
        for k, (a, b) in enumerate(zip(w.beats, g.beats, strict=True)):
            if (a.row, a.last, a.values, a.spikes) != (b.row, b.last, b.values, b.spikes):
                return f"command {n} beat {k}: values {a.values} expected, {b.values} got"
            if case.stall_seed is None and a.cycle != b.cycle:
                return f"command {n} beat {k}: cycle {a.cycle} expected, {b.cycle} got"
        if len(w.beats) != len(g.beats):
            return f"command {n}: {len(w.beats)} beats expected, {len(g.beats)} got"
    return None if len(want) == len(got) else "command count"


@pytest.mark.parametrize("rows,cols", [pytest.param(r, c, marks=[] if (r, c) in FAST else [pytest.mark.slow])
                                       for r, c in SHAPES])
def test_amaranth_step_loop_matches_golden(rows: int, cols: int) -> None:
    cfg = step_config(rows, cols)
    seed = stimulus_seed() + 7 * rows + cols
    for case in make_cases(cfg, seed, vector_count(18)):
        assert amaranth_matches(cfg, case) is None, f"{rows}x{cols} seed {seed}"


@pytest.mark.cocotb
@pytest.mark.parametrize("rows,cols", [pytest.param(r, c, marks=[] if (r, c) in FAST else [pytest.mark.slow])
                                       for r, c in SHAPES])
def test_verilator_step_loop_matches_golden(rows: int, cols: int, verilator_tool) -> None:
    cfg = step_config(rows, cols)
    seed = stimulus_seed() + 7 * rows + cols
    report = check_multistep_tiles(cfg, make_cases(cfg, seed, vector_count(60)), "verilator", seed=seed)
    assert report.ok, report.mismatch.message() if report.mismatch else report
    assert report.vectors >= 3 * (vector_count(60) // 3)


# --- injected faults: each must show up, and as exactly that fault --------------------------------
FAULTS = list(NEURON_FAULTS)


def fault_case(cfg: CoreConfig, fault: str, seed: int) -> MultistepCase:
    """Commands that exercise the faulty part: leaking state, spikes with subtraction, per-step constants."""
    rng = np.random.default_rng(seed)
    w, t, n, commands = random_multistep_case(cfg, rng, 16)
    t[:] = rng.integers(1, 200, t.shape)  # low thresholds: neurons fire, so the reset matters
    fixed = []
    for k, (cmd, beats) in enumerate(commands):
        cmd = dataclasses.replace(cmd, leak=True, reset_zero=False, readout=False, first=k == 0,
                           per_step=cmd.per_step or fault == "wrong_step_constant")
        fixed.append((cmd, beats))
    return MultistepCase(w, t, n, fixed)


@pytest.mark.parametrize("fault", FAULTS)
def test_amaranth_neuron_faults_are_caught_as_themselves(fault: str) -> None:
    clean = step_config(2, 3)
    faulty = clean.replace(fault=fault)
    case = fault_case(clean, fault, stimulus_seed() + FAULTS.index(fault))
    assert amaranth_matches(faulty, case, reference=clean) is not None, f"{fault} went unnoticed"
    assert amaranth_matches(faulty, case, reference=faulty) is None, f"{fault} is not the mismatch seen"


@pytest.mark.cocotb
@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_verilator_neuron_faults_are_caught_as_themselves(fault: str, verilator_tool) -> None:
    clean = step_config(2, 3)
    faulty = clean.replace(fault=fault)
    cases = [fault_case(clean, fault, stimulus_seed() + FAULTS.index(fault))]
    caught = check_multistep_tiles(faulty, cases, "verilator", golden_cfg=clean)
    assert not caught.ok and caught.mismatch.what == "value", f"{fault} went unnoticed"
    assert check_multistep_tiles(faulty, cases, "verilator", golden_cfg=faulty).ok, f"{fault} is not the mismatch"


# --- whole networks --------------------------------------------------------------------------------
def tiny_network(coding: str, conv: bool = False) -> IntegerNetwork:
    """A random multi-step net: BNTT-like (Poisson spikes, per-step scales, leak) or converted-like
    (analog first layer computed once, add-only), optionally with a conv layer."""
    rng = np.random.default_rng(11)
    steps = 3
    bits = 1 if coding == "poisson" else 4
    if conv:
        first = Conv(rng.integers(-7, 8, (3, 1, 3, 3)), rng.integers(20, 60, 3), (1, 4, 4), padding=1,
                     input_bits=bits)
        fan = 3 * 16
    else:
        first = Dense(rng.integers(-7, 8, (5, 16)), rng.integers(20, 60, 5), input_bits=bits)
        fan = 5
    layers = [first, Dense(rng.integers(-7, 8, (3, fan)), np.zeros(3, np.int64), spiking=False)]
    outs = first.outputs
    if coding == "poisson":
        hidden = NeuronSteps(rng.integers(1, 6, (steps, outs)), rng.integers(-9, 9, (steps, outs)), 2, "subtract")
    else:
        hidden = NeuronSteps(np.ones((1, outs), np.int64), rng.integers(-9, 9, (1, outs)), 0, "subtract")
    readout = NeuronSteps(np.ones((1, 3), np.int64), rng.integers(-3, 3, (1, 3)), 0, "subtract")
    ms = MultiStep(steps, steps, coding, [hidden, readout], input_gain=2.0, input_seed=1)
    return IntegerNetwork(layers, (1, 4, 4), bits, 3, multistep=ms)


@pytest.mark.parametrize("coding,conv", [("poisson", False), ("analog", False), ("analog", True)])
def test_driver_and_amaranth_agree_with_the_functional_model(coding: str, conv: bool) -> None:
    from spikeforge.hw.layout import config_for_network
    from spikeforge.sim.driver import layer_cycles_fast

    net = tiny_network(coding, conv)
    cfg = config_for_network(net, 2, 2)
    driver = NetworkDriver(net, cfg)
    x = np.random.default_rng(4).random((3, 1, 4, 4))
    pred, logits = net.forward(x, acc_bits=cfg.acc_bits)
    fast = layer_cycles_fast(net, cfg, x)
    for i in range(len(x)):
        golden = driver.run_image(x[i], driver.golden_backend, image_id=i)
        assert np.array_equal(golden.logits, logits[i]) and golden.prediction == pred[i]
        assert [t.cycles for t in golden.layers if t.kind != "pool"] == list(fast[i])
    rtl = driver.run_image(x[0], driver.amaranth_backend, image_id=0)
    assert np.array_equal(rtl.logits, logits[0])


@pytest.mark.cocotb
@pytest.mark.parametrize("coding", ["poisson", "analog"])
def test_verilator_runs_tiny_multistep_networks(coding: str, verilator_tool) -> None:
    from spikeforge.hw.layout import config_for_network
    from spikeforge.sim import rtl

    net = tiny_network(coding, conv=coding == "analog")
    cfg = config_for_network(net, 2, 2)
    report = rtl.check_network(cfg, net, np.random.default_rng(4).random((2, 1, 4, 4)), "verilator")
    assert report.ok, report.mismatch.message() if report.mismatch else report
    per_image = report.details["per_image"]
    assert all(p["golden_cycles"] == p["rtl_cycles"] for p in per_image)


# --- trained networks on real digits images (slow: training + a 20-image RTL sample) ---------------
def _trained_artifact(tmp_path, method: str, **train):
    from spikeforge.api import quantize
    from spikeforge.api import train as train_model

    result = train_model(method, "digits", train.pop("arch", "mlp"), out=tmp_path / "train", seed=0, **train)
    return quantize(result.checkpoint, tmp_path / "artifact")


@pytest.mark.cocotb
@pytest.mark.slow
@pytest.mark.parametrize("method,train", [
    ("bntt", {"epochs": 10}),
    ("convert", {"epochs": 20, "reg": "l1", "lam": 0.01, "timesteps": 16}),
    ("convert", {"arch": "lenet", "epochs": 20, "reg": "l1", "lam": 1e-4, "timesteps": 8}),
], ids=["bntt-mlp", "convert-mlp", "convert-lenet"])
def test_trained_multistep_network_on_digits_rtl(method: str, train: dict, tmp_path, verilator_tool,
                                                  icarus_tool) -> None:
    from spikeforge.model.data import load_dataset
    from spikeforge.sim import rtl

    q = _trained_artifact(tmp_path, method, **train)
    assert abs(q.report["float_accuracy"] - q.report["integer_accuracy"]) <= 0.02  # a short training run
    images = load_dataset("digits", None, 0).x_test[:20]
    report = rtl.check_network(q.core, q.network, images, "verilator", seed=0, baked=True)
    assert report.ok, report.mismatch.message() if report.mismatch else report
    assert all(p["golden_cycles"] == p["rtl_cycles"] for p in report.details["per_image"])
    small = rtl.check_network(q.core, q.network, images[:2], "icarus", seed=0)
    assert small.ok, small.mismatch.message() if small.mismatch else small
