"""The golden models agree with each other, and the generator refuses impossible configs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from spikeforge.hw.config import ConfigError, CoreConfig
from spikeforge.hw.layout import config_for_network, plan_layout
from spikeforge.integer_network import Conv, Dense, IntegerNetwork, NetworkError, Pool, wrap_signed
from spikeforge.sim.cycle import encode_input, run_tile
from spikeforge.sim.driver import NetworkDriver, layer_cycles_fast
from spikeforge.sim.schedule import scan_slots, tile_cycles


def small_net(rng: np.random.Generator) -> IntegerNetwork:
    conv = Conv(rng.integers(-8, 8, (6, 1, 3, 3)), rng.integers(100, 400, 6), in_shape=(1, 8, 8),
                stride=1, padding=1, input_bits=8)
    pool = Pool(2, 2, np.array([0, 1, 0, 0, 1, 0], dtype=np.uint8), in_shape=(6, 8, 8))
    hidden = Dense(rng.integers(-8, 8, (20, 96)), rng.integers(-3, 5, 20))
    readout = Dense(rng.integers(-8, 8, (10, 20)), rng.integers(-3, 3, 10), spiking=False)
    return IntegerNetwork([conv, pool, hidden, readout], (1, 8, 8), input_bits=8)


def test_wrap_signed():
    assert list(wrap_signed(np.array([127, 128, -129, 255, -1]), 8)) == [127, -128, 127, -1, -1]


def test_encode_input_planes_msb_first():
    n_words, beats = encode_input(np.array([5, 0, 2]), 3, 2)
    # plane 2: [1,0,0] -> words 0b01, 0b00; plane 1: [0,0,1] -> 0b00, 0b01; plane 0: [1,0,0]
    assert n_words == 2 and beats == [1, 0, 0, 1, 1, 0]
    assert scan_slots(beats, 3) == 1 + 1 + 1 + 1 + 1 + 1 + 2


def test_tile_cycles_formula_matches_run_tile():
    cfg = CoreConfig(rows=3, cols=5, skip_window=8, weight_depth=64, threshold_depth=8)
    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, (cfg.pes, 64))
    thresholds = rng.integers(-10, 10, (cfg.cols, 8))
    n_words, beats = encode_input(rng.integers(0, 2, 20), 1, 8)
    from spikeforge.sim.cycle import Command

    result = run_tile(cfg, weights, thresholds, Command(n_words, 1, 0, 0), beats)
    assert result.cycles == tile_cycles(cfg, scan_slots(beats, 1))


def test_driver_golden_equals_vectorised_model_and_fast_cycles():
    rng = np.random.default_rng(1)
    net = small_net(rng)
    cfg = CoreConfig(rows=3, cols=5, weight_bits=4, acc_bits=20, threshold_bits=20, skip_window=16)
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    pred, _, outs = net.forward(x, acc_bits=cfg.acc_bits, collect=True)
    driver = NetworkDriver(net, cfg)
    fast = layer_cycles_fast(net, cfg, x)
    for i in range(len(x)):
        trace = driver.run_image(x[i], driver.golden_backend)
        assert trace.prediction == pred[i]
        for layer, out in zip(trace.layers, outs, strict=True):
            assert np.array_equal(layer.output, out[i]), f"layer {layer.layer} differs"
        compute = [t for t in trace.layers if t.kind != "pool"]
        assert [t.cycles for t in compute] == list(fast[i])
        assert all(t.ideal_cycles < t.cycles < t.dense_cycles for t in compute)


def test_amaranth_rtl_runs_a_whole_network_like_the_golden_model():
    rng = np.random.default_rng(2)
    net = small_net(rng)
    cfg = CoreConfig(rows=2, cols=3, weight_bits=4, acc_bits=20, threshold_bits=20, skip_window=16)
    driver = NetworkDriver(net, cfg)
    image = rng.random((1, 8, 8)).astype(np.float32)
    golden = driver.run_image(image, driver.golden_backend)
    rtl = driver.run_image(image, driver.amaranth_backend)
    assert rtl.prediction == golden.prediction
    for a, b in zip(rtl.layers, golden.layers, strict=True):
        assert np.array_equal(a.output, b.output) and a.cycles == b.cycles


def test_and_pooling_differs_from_or():
    pool_or = Pool(2, 2, np.array([0], dtype=np.uint8), in_shape=(1, 2, 2))
    pool_and = Pool(2, 2, np.array([1], dtype=np.uint8), in_shape=(1, 2, 2))
    spikes = np.array([[[[True, False], [False, False]]]])
    assert pool_or.apply(spikes).item() and not pool_and.apply(spikes).item()


def test_accumulator_bound_and_refusal():
    net = IntegerNetwork([Dense(np.full((2, 100), 127), np.zeros(2, dtype=np.int64), input_bits=8),
                          Dense(np.ones((3, 2), dtype=np.int64), np.zeros(3, dtype=np.int64), spiking=False)],
                         (1, 10, 10), input_bits=8)
    # 100 * 127 * 255 = 3,238,500 needs 23 signed bits.
    assert net.required_acc_bits() == 23
    with pytest.raises(ConfigError, match="acc_bits=16 is too narrow.*--acc-bits 23"):
        config_for_network(net, 2, 2, acc_bits=16)
    assert config_for_network(net, 2, 2).acc_bits == 23


def test_layout_refuses_small_memories_and_bad_networks():
    rng = np.random.default_rng(3)
    net = small_net(rng)
    with pytest.raises(ConfigError, match="weight_depth"):
        plan_layout(net, CoreConfig(rows=1, cols=1, acc_bits=20, threshold_bits=20, weight_depth=16))
    with pytest.raises(NetworkError, match="readout"):
        IntegerNetwork(net.layers[:-1], (1, 8, 8)).validate()


@pytest.mark.parametrize("field,value", [("rows", 0), ("cols", 65), ("weight_bits", 1), ("weight_bits", 17),
                                         ("skip_window", 3), ("acc_bits", 100)])
def test_config_refuses_impossible_values(field, value):
    with pytest.raises(ConfigError, match=field):
        CoreConfig(**{field: value})


@pytest.mark.parametrize("argv", [["--rows", "0", "--cols", "5"], ["--rows", "3", "--cols", "65"],
                                  ["--rows", "3", "--cols", "5", "--weight-bits", "1"],
                                  ["--rows", "3", "--cols", "5", "--weight-bits", "17"]])
def test_generate_refusals_are_one_line(tmp_path, argv):
    proc = subprocess.run([sys.executable, "-m", "spikeforge.scripts.cli", "generate", *argv, "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_generate_writes_lint_clean_verilog(tmp_path, verilator_tool):
    proc = subprocess.run([sys.executable, "-m", "spikeforge.scripts.cli", "generate", "--rows", "3", "--cols", "5",
                           "--out", str(tmp_path / "g")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g" / "spikeforge_core_r3c5.v").exists() and (tmp_path / "g" / "core.json").exists()
    assert "lint-only -Wall: clean" in proc.stdout
