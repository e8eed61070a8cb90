"""Mutation check: the regression must FAIL on every RTL fault that CoreConfig(fault=...) injects.

Each fault (hw/config.py FAULTS) is built into its own design (the config digest includes the
fault) and put through the same checks as the real core: the tile regression (and, in the slow
tier, the whole-network check and the block test of the faulty block). The test passes only
when a mismatch is detected. The default tier uses Icarus when it is installed (a build takes a
few seconds) and Verilator otherwise; the slow tier runs both.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from core_stimulus import stimulus_seed, tile_config
from test_cocotb_blocks import BLOCK_CFG, check_pe, check_scanner, check_threshold
from test_cocotb_core import make_cases
from test_cocotb_network import network_config, pick_images

from spikeforge.hw.config import FAULTS
from spikeforge.sim import rtl

pytestmark = pytest.mark.cocotb

DEFAULT_SIM = "icarus" if shutil.which("iverilog") else "verilator"
BLOCK_OF_FAULT = {"comparator_off_by_one": check_threshold, "drop_first_index": check_scanner, "no_double": check_pe}


def sim_params():
    yield pytest.param(DEFAULT_SIM, id=DEFAULT_SIM)
    other = "verilator" if DEFAULT_SIM == "icarus" else "icarus"
    yield pytest.param(other, id=other, marks=pytest.mark.slow)


@pytest.fixture(params=list(sim_params()))
def sim(request) -> str:
    request.getfixturevalue("icarus_tool" if request.param == "icarus" else "verilator_tool")
    return request.param


def test_faults_are_known() -> None:
    assert set(BLOCK_OF_FAULT) == set(FAULTS), "a new fault needs a mutation test"


@pytest.mark.parametrize("fault", FAULTS)
def test_tile_regression_catches_fault(fault: str, sim: str) -> None:
    cfg = tile_config(3, 5, 4)
    seed = stimulus_seed() + 41
    cases = make_cases(cfg, seed, 24)
    clean = rtl.check_tiles(cfg, cases, sim, seed=seed, waves_on_failure=False)
    assert clean.ok, clean.mismatch.message() if clean.mismatch else clean  # the same vectors pass without it
    faulty = rtl.check_tiles(cfg.replace(fault=fault), cases, sim, seed=seed, waves_on_failure=False)
    assert not faulty.ok, f"fault {fault} was not caught by {faulty.vectors} tile vectors (seed {seed})"
    assert not faulty.bit_exact, f"fault {fault} should change results, got: {faulty.mismatch.message()}"
    print(f"[mutation] {fault} caught on {sim}: {faulty.mismatch.message()}")


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_block_test_catches_fault(fault: str, sim: str) -> None:
    check = BLOCK_OF_FAULT[fault]
    cfg = BLOCK_CFG.replace(fault=fault)
    args = (cfg, sim, stimulus_seed() + 43) + ((False,) if check is check_scanner else ())
    with pytest.raises(pytest.fail.Exception):
        check(*args)


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_network_regression_catches_fault(fault: str, sim: str) -> None:
    """The whole-network check on real digits images: each fault changes some layer's output."""
    from test_cocotb_network import digits_artifact

    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import load_artifact

    net, manifest = load_artifact(digits_artifact())
    ds = load_dataset(manifest["dataset"]["name"])
    cfg = network_config(net, manifest, 3, 5).replace(fault=fault)
    seed = stimulus_seed() + 47
    images, _ = pick_images(ds, 10, seed)
    if fault == "comparator_off_by_one":
        # acc == T exactly is rare on real data: use test images where the golden model has it.
        images = boundary_images(net, np.asarray(ds.x_test, dtype=np.float64), cfg.acc_bits, 10)
        if len(images) == 0:
            pytest.skip("no test image puts a spiking neuron exactly at its threshold")
    report = rtl.check_network(cfg, net, images, sim, seed=seed, waves_on_failure=False)
    assert not report.ok, f"fault {fault} was not caught on {report.images} images (seed {seed})"


def boundary_images(net, images: np.ndarray, acc_bits: int, count: int) -> np.ndarray:
    """Images for which some dense spiking neuron's accumulator equals its threshold."""
    from spikeforge.integer_network import wrap_signed

    _, _, outputs = net.forward(images, acc_bits=acc_bits, collect=True)
    act = net.quantize_input(images).reshape(len(images), -1)
    hit = np.zeros(len(images), dtype=bool)
    for layer, out in zip(net.layers, outputs, strict=True):
        if layer.kind == "dense" and layer.spiking:
            acc = wrap_signed(act.astype(np.int64) @ layer.weight.astype(np.int64).T, acc_bits)
            hit |= np.any(acc == layer.threshold[None, :], axis=1)
        if layer.kind != "dense":
            break  # the check above covers the fully connected front of an MLP
        act = np.asarray(out).reshape(len(images), -1).astype(np.int64)
    return images[np.flatnonzero(hit)[:count]]
