"""Mutation check: the regression must FAIL on every RTL fault that CoreConfig(fault=...) injects,
and fail the way the fault must make it fail.

Each fault (hw/config.py FAULTS) is built into its own design (the config digest, and so the build
key, includes the fault; no command takes one) and put through the same checks as the real core
on an input built to exercise it (sim/rtl/stimulus.py `fault_case`): the tile regression (and, in
the slow tier, the whole-network check and the block test of the faulty block). Every test first
shows that the real core passes the same input, then asserts the specific mismatch
(tests/core_stimulus.py FAULT_MISMATCH). The default tier uses Icarus when it is installed (a
build takes a few seconds) and Verilator otherwise; the slow tier runs both.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from core_stimulus import FAULT_MISMATCH, stimulus_seed, tile_config
from test_cocotb_blocks import BLOCK_CFG, check_pe, check_scanner, check_threshold
from test_cocotb_network import network_config, pick_images

from spikeforge.hw.config import FAULTS, PROTOCOL_FAULTS
from spikeforge.sim import rtl

pytestmark = pytest.mark.cocotb

DEFAULT_SIM = "icarus" if shutil.which("iverilog") else "verilator"
# The block test of each data fault, and the start of the failure it must report.
BLOCK_OF_FAULT = {
    "comparator_off_by_one": (check_threshold, r"threshold unit \(\w+\) cycle \d+: value/spike expected"),
    "drop_first_index": (check_scanner, r"scanner \(\w+\) command \d+ .*: op \d+ expected"),
    "no_double": (check_pe, r"PE \(\w+\) cycle \d+: acc expected"),
}


def sim_params():
    yield pytest.param(DEFAULT_SIM, id=DEFAULT_SIM)
    other = "verilator" if DEFAULT_SIM == "icarus" else "icarus"
    yield pytest.param(other, id=other, marks=pytest.mark.slow)


@pytest.fixture(params=list(sim_params()))
def sim(request) -> str:
    request.getfixturevalue("icarus_tool" if request.param == "icarus" else "verilator_tool")
    return request.param


def test_faults_are_known() -> None:
    assert set(BLOCK_OF_FAULT) | set(PROTOCOL_FAULTS) == set(FAULTS), "a new fault needs a mutation test"
    assert set(FAULT_MISMATCH) == set(FAULTS), "a new fault needs its expected mismatch"


def assert_expected_mismatch(fault: str, report: rtl.CheckReport) -> None:
    bad = report.mismatch
    assert bad is not None and not report.ok, f"fault {fault} was not caught ({report.vectors} vectors)"
    assert bad.what == FAULT_MISMATCH[fault], f"fault {fault}: unexpected mismatch {bad.message()}"
    if fault in PROTOCOL_FAULTS:
        # The beats were right (the scoreboard passed); only the monitor on `out` saw the fault.
        assert report.bit_exact and not report.protocol_clean, bad.message()
    elif fault == "comparator_off_by_one":
        assert (bad.expected, bad.got) == (True, False), bad.message()  # acc == T: the model spikes
    else:
        assert not report.bit_exact and bad.got < bad.expected, bad.message()  # a lost input or doubling


@pytest.mark.parametrize("fault", FAULTS)
def test_tile_regression_catches_fault(fault: str, sim: str) -> None:
    cfg = tile_config(3, 5, 4)
    seed = stimulus_seed() + 41
    case = rtl.fault_case(cfg, fault, np.random.default_rng(seed), stall_seed=seed)
    clean = rtl.check_tiles(cfg, [case], sim, seed=seed, waves_on_failure=False)
    assert clean.ok, clean.mismatch.message() if clean.mismatch else clean  # the same input passes without it
    faulty = rtl.check_tiles(cfg.replace(fault=fault), [case], sim, seed=seed, waves_on_failure=False)
    assert_expected_mismatch(fault, faulty)
    print(f"[mutation] {fault} caught on {sim}: {faulty.mismatch.message()}")


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(BLOCK_OF_FAULT))
def test_block_test_catches_fault(fault: str, sim: str) -> None:
    check, message = BLOCK_OF_FAULT[fault]
    seed = stimulus_seed() + 43
    args = (seed, False) if check is check_scanner else (seed,)
    check(BLOCK_CFG, sim, *args)  # the real block passes
    with pytest.raises(pytest.fail.Exception, match=message):
        check(BLOCK_CFG.replace(fault=fault), sim, *args)


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_network_regression_catches_fault(fault: str, sim: str) -> None:
    """The whole-network check on real digits images; for the comparator fault an image built so
    that a neuron's accumulator equals its threshold exactly, for the protocol faults stalls."""
    from test_cocotb_network import digits_artifact

    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import load_artifact

    net, manifest = load_artifact(digits_artifact())
    ds = load_dataset(manifest["dataset"]["name"])
    cfg = network_config(net, manifest, 3, 5)
    seed = stimulus_seed() + 47
    images, _ = pick_images(ds, 4, seed)
    if fault == "comparator_off_by_one":
        images = boundary_image(net, images[0], cfg.acc_bits)[None]
    stall_seed = seed if fault in PROTOCOL_FAULTS else None
    clean = rtl.check_network(cfg, net, images, sim, seed=seed, stall_seed=stall_seed, waves_on_failure=False)
    assert clean.ok, clean.mismatch.message() if clean.mismatch else clean
    report = rtl.check_network(cfg.replace(fault=fault), net, images, sim, seed=seed, stall_seed=stall_seed,
                               waves_on_failure=False)
    assert_expected_mismatch(fault, report)
    if fault == "comparator_off_by_one":
        assert "layer 0" in report.mismatch.where, report.mismatch.message()


def boundary_image(net, image: np.ndarray, acc_bits: int) -> np.ndarray:
    """`image` with pixels moved so that one neuron of the first (dense, spiking) layer has its
    accumulator exactly at its threshold: greedy integer steps on the quantized pixels toward
    acc == T, then checked with the functional model."""
    from spikeforge.integer_network import wrap_signed

    layer = net.layers[0]
    assert layer.kind == "dense" and layer.spiking, "the boundary construction needs a dense spiking first layer"
    levels = (1 << net.input_bits) - 1
    q0 = net.quantize_input(image[None]).reshape(-1).astype(np.int64)
    weight = layer.weight.astype(np.int64)
    residual0 = layer.threshold.astype(np.int64) - weight @ q0
    for j in np.argsort(np.abs(residual0)):  # the neurons nearest their threshold first
        q, r, w = q0.copy(), int(residual0[j]), weight[j]
        for _ in range(4 * q.size):
            if r == 0:
                break
            nz = np.flatnonzero(w)
            delta = np.clip(np.rint(r / w[nz]).astype(np.int64), -q[nz], levels - q[nz])
            left = np.abs(r - w[nz] * delta)
            best = int(np.argmin(left))
            if left[best] >= abs(r):
                break  # stuck: try the next neuron
            k = nz[best]
            q[k] += delta[best]
            r -= int(w[k] * delta[best])
        if r == 0:
            out = (q / levels).reshape(image.shape)
            acc = wrap_signed(weight @ net.quantize_input(out[None]).reshape(-1), acc_bits)
            assert acc[j] == layer.threshold[j], "the constructed image misses the threshold"
            return out
    raise AssertionError("no neuron of the first layer could be put exactly at its threshold")
