"""Latency, energy and area estimation: exact cycles against the driver and the RTL, counts, reports, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from spikeforge.hw.config import TOKEN_PIPELINE, ConfigError, CoreConfig
from spikeforge.hw.layout import config_for_network
from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool
from spikeforge.sim.driver import NetworkDriver, layer_cycles_fast
from spikeforge.sim.estimate import estimate, operation_counts, write_reports
from spikeforge.sim.estimate.energy import dnn_energy, e_add, e_mult, snn_energy


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    from spikeforge.model.data import load_dataset

    ds = load_dataset("digits")
    return ds.x_test[:n], ds.y_test[:n]


def _mlp(seed: int = 0, hidden: int = 12, bits: int = 2, wmax: int = 8) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-wmax, wmax, (hidden, 64))
    w2 = rng.integers(-wmax, wmax, (10, hidden))
    return IntegerNetwork(
        [Dense(w1, rng.integers(0, 30, hidden), True, bits), Dense(w2, rng.integers(-4, 4, 10), False, 1)],
        (1, 8, 8),
        input_bits=bits,
        meta={"dataset": "digits"},
    )


def _cnn(seed: int = 1) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    conv = Conv(rng.integers(-4, 4, (6, 1, 3, 3)), rng.integers(0, 8, 6), (1, 8, 8), 1, 1, True, 2)
    pool = Pool(2, 2, np.array([0, 1, 0, 0, 1, 0], dtype=np.uint8), (6, 8, 8))
    dense = Dense(rng.integers(-4, 4, (10, 96)), rng.integers(-3, 3, 10), False, 1)
    return IntegerNetwork([conv, pool, dense], (1, 8, 8), input_bits=2)


def test_config_for_network_is_minimal_and_valid():
    net = _mlp()
    cfg = config_for_network(net, 2, 3)
    assert cfg.weight_bits == net.required_weight_bits() == 4
    assert cfg.acc_bits == max(net.required_acc_bits(), cfg.weight_bits)
    assert cfg.max_inputs == 64 and cfg.max_input_bits == 2
    # 12 hidden on 6 slots = 2 tiles x 64 words, 10 outputs = 2 tiles x 12 words -> 152 -> 256
    assert cfg.weight_depth == 256 and cfg.threshold_depth == 8
    wide = config_for_network(net, 2, 3, weight_bits=8)
    assert wide.weight_bits == 8
    with pytest.raises(ConfigError, match="weight_bits=3"):
        config_for_network(net, 2, 3, weight_bits=3)


@pytest.mark.parametrize("make", [_mlp, _cnn])
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 4)])
def test_cycles_equal_driver_contract(make, shape):
    net = make()
    x, _ = _digits(12)
    cfg = config_for_network(net, *shape)
    counts = operation_counts(net, cfg, x)
    assert np.array_equal(counts["cycles"], layer_cycles_fast(net, cfg, x))
    assert (counts["ideal_cycles"] <= counts["cycles"]).all()
    assert (counts["cycles"] <= counts["dense_cycles"]).all()
    assert (counts["adds_useful"] <= counts["adds_performed"]).all()


def test_counts_by_hand():
    # One dense layer, 3 outputs on a 2x2 array (1 tile, one unused slot), 5 inputs, window 4.
    w = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]])
    net = IntegerNetwork([Dense(w, np.zeros(3, dtype=np.int64), False, 1)], (1, 1, 5), input_bits=1)
    cfg = config_for_network(net, 2, 2, skip_window=4)
    x = np.array([[[[1, 0, 1, 1, 0]]]], dtype=np.float32)  # 3 active inputs: words 1011|0 -> 3 + 1 slots
    c = {k: int(v.sum()) for k, v in operation_counts(net, cfg, x).items()}
    p = TOKEN_PIPELINE
    # One command (1 + S + R + C + P, its drain overlapping nothing) and the last drain (R + 2).
    assert c["cycles"] == (1 + 4 + 2 + 2 + p) + 2 + 2
    assert c["ideal_cycles"] == 3
    assert c["dense_cycles"] == (1 + 5 + 2 + 2 + p) + 2 + 2
    # gating: the unused fourth slot neither reads nor adds
    assert c["adds_performed"] == 3 * 3 and c["adds_useful"] == 3 * 3
    assert c["weight_reads"] == 3 * 3
    assert c["compares_performed"] == 4 and c["compares_useful"] == 3
    assert c["input_bits_read"] == 2 * 4
    assert c["dnn_macs"] == 15
    assert c["dnn_macs_nonzero"] == 3 * 3  # three non-zero inputs, three outputs each
    assert c["output_bits_written"] == 3 * (cfg.acc_bits + 1)


def test_event_counts_by_hand():
    # A first layer of 4-bit pixels runs as value events: one slot and one read per non-zero pixel.
    w = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]])
    net = IntegerNetwork([Dense(w, np.zeros(3, dtype=np.int64), False, 4)], (1, 1, 5), input_bits=4)
    cfg = config_for_network(net, 2, 2, skip_window=4)
    pixels = np.array([15, 0, 1, 6, 0])  # 3 non-zero; set bits 4 + 1 + 2
    x = (pixels / 15.0).astype(np.float32).reshape(1, 1, 1, 5)
    assert (net.quantize_input(x).ravel() == pixels).all()
    c = {k: int(v.sum()) for k, v in operation_counts(net, cfg, x).items()}
    assert c["cycles"] == (1 + 3 + 2 + 2 + TOKEN_PIPELINE) + 2 + 2
    assert c["ideal_cycles"] == 3
    assert c["weight_reads"] == 3 * 3 and c["adds_performed"] == 3 * 3
    assert c["product_adds"] == (3 + 0 + 1) * 3  # set bits beyond the first, per used slot
    assert c["doubles_performed"] == 0
    assert c["input_bits_read"] == 3 * cfg.event_bits
    x0 = np.zeros_like(x)  # an empty image still sends one (zero) event
    c0 = {k: int(v.sum()) for k, v in operation_counts(net, cfg, x0).items()}
    assert c0["cycles"] == (1 + 1 + 2 + 2 + TOKEN_PIPELINE) + 2 + 2 and c0["ideal_cycles"] == 0


def test_energy_model_points_and_comparison():
    assert e_add(8) == pytest.approx(0.03) and e_add(32) == pytest.approx(0.1)
    assert e_mult(8) == pytest.approx(0.2) and e_mult(32) == pytest.approx(3.2)
    counts = {
        "adds_performed": 100,
        "adds_useful": 80,
        "doubles_performed": 0,
        "weight_reads": 100,
        "compares_performed": 10,
        "threshold_reads": 10,
        "input_bits_read": 64,
        "output_bits_written": 10,
        "dnn_macs": 1000,
        "dnn_macs_nonzero": 300,
        "dnn_input_reads": 100,
        "dnn_outputs": 10,
    }
    snn = snn_energy(counts, acc_bits=16, weight_bits=8, threshold_bits=16)
    assert snn["total_pj"] == pytest.approx(sum(snn["parts_pj"].values()))
    assert snn["parts_pj"]["accumulate"] == pytest.approx(100 * e_add(16))
    assert snn["parts_pj"]["weight_read"] == pytest.approx(100 * 8 * 10 / 64)
    assert snn["pj_per_synop"] == pytest.approx(snn["total_pj"] / 80)
    dnn = dnn_energy(counts)
    assert dnn["parts_pj"]["mac"] == pytest.approx(1000 * (0.2 + e_add(24)))
    assert dnn["total_pj"] > snn["total_pj"]
    sparse = dnn_energy(counts, skip_zeros=True)
    assert sparse["parts_pj"]["mac"] == pytest.approx(300 * (0.2 + e_add(24)))
    assert sparse["parts_pj"]["weight_read"] == pytest.approx(300 * 8 * 10 / 64)
    assert sparse["parts_pj"]["input_read"] == dnn["parts_pj"]["input_read"]  # it still reads every input


def test_estimate_fast_report(tmp_path):
    net = _mlp()
    x, y = _digits(40)
    cfg = config_for_network(net, 2, 2)
    rep = estimate(net, cfg, x, labels=y, fast=True, fmax_mhz=50.0)
    lat = rep["latency"]
    total = layer_cycles_fast(net, cfg, x).sum(axis=1)
    assert lat["cycles"]["mean"] == pytest.approx(total.mean())
    assert lat["cycles"]["p99"] == pytest.approx(np.percentile(total, 99))
    assert lat["latency_us"]["mean"] == pytest.approx(total.mean() / 50.0)
    assert lat["speedup_vs_dense"] > 1.0
    assert rep["accuracy"] == pytest.approx(np.mean(net.forward(x, acc_bits=cfg.acc_bits)[0] == y))
    assert rep["area"]["fast"]["lut4"] > 0
    jpath, mpath = write_reports(rep, tmp_path / "r")
    assert json.loads(jpath.read_text())["config_digest"] == cfg.digest()
    text = mpath.read_text()
    assert "## Latency" in text and "## Energy" in text and "## Area" in text
    with pytest.raises(ConfigError, match="fmax"):
        estimate(net, cfg, x, fast=True, fmax_mhz=-1.0)


@pytest.mark.parametrize("shape", [(2, 2), (3, 4)])
def test_predicted_cycles_equal_amaranth_rtl(shape):
    """Acceptance: the estimator's cycles equal the RTL's on 20 digits images per array shape."""
    net = _mlp(seed=3, hidden=8, bits=1)
    x, _ = _digits(20)
    cfg = config_for_network(net, *shape)
    predicted = operation_counts(net, cfg, x)["cycles"]
    driver = NetworkDriver(net, cfg)
    for i in range(len(x)):
        trace = driver.run_image(x[i], driver.amaranth_backend)
        rtl = [t.cycles for t in trace.layers if t.kind != "pool"]
        assert rtl == list(predicted[i]), f"image {i}"


def _artifact(tmp_path, name: str, wmax: int, seed: int):
    from spikeforge.quant.artifact import write_artifact

    net = _mlp(seed=seed, wmax=wmax)
    return write_artifact(tmp_path / name, net, weight_bits=net.required_weight_bits())


def test_cli_estimate_and_errors(tmp_path, capsys):
    from spikeforge.scripts.cli import main

    art = _artifact(tmp_path, "a", 8, 0)
    out = tmp_path / "est"
    rc = main(
        [
            "estimate",
            "--model",
            str(art),
            "--rows",
            "2",
            "--cols",
            "2",
            "--fast",
            "--images",
            "30",
            "--fmax",
            "80",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rep = json.loads((out / "estimate.json").read_text())
    assert rep["latency"]["fmax_mhz"] == 80 and rep["latency"]["images"] == 30
    assert (out / "estimate.md").exists()
    capsys.readouterr()
    assert main(["estimate", "--model", str(art), "--rows", "0", "--cols", "2", "--fast"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "rows" in err
    assert (
        main(["estimate", "--model", str(art), "--rows", "2", "--cols", "2", "--fast", "--weight-bits", "2"])
        == 2
    )
    assert "weight_bits=2" in capsys.readouterr().err


def test_cli_sweep_writes_csv_and_pareto_plots(tmp_path):
    from spikeforge.scripts.cli import main

    a4 = _artifact(tmp_path, "m4", 8, 0)  # weights need 4 bits
    a8 = _artifact(tmp_path, "m8", 100, 1)  # weights need 8 bits: infeasible at --weight-bits 4
    out = tmp_path / "sweep"
    rc = main(
        [
            "sweep",
            "--rows",
            "1,2,4",
            "--cols",
            "2,4",
            "--weight-bits",
            "4,8",
            "--model",
            str(a4),
            "--model",
            str(a8),
            "--fast",
            "--images",
            "20",
            "--jobs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 24
    feasible = [r for r in rows if r["feasible"] == "True"]
    assert len(feasible) == 18
    assert all("weight_bits=4" in r["reason"] for r in rows if r["feasible"] == "False")
    front = [r for r in feasible if r["pareto"] == "True"]
    assert front
    # No feasible point may dominate a Pareto point.
    for p in front:
        for q in feasible:
            assert not (
                float(q["latency_us"]) < float(p["latency_us"]) and float(q["lut4"]) < float(p["lut4"])
            )
    assert (out / "pareto_latency_area.png").stat().st_size > 1000
    assert (out / "pareto_accuracy_energy.png").stat().st_size > 1000
    assert len(json.loads((out / "sweep.json").read_text())["points"]) == 24


def test_sweep_rejects_bad_jobs(tmp_path, capsys):
    from spikeforge.scripts.cli import main

    art = _artifact(tmp_path, "a", 8, 0)
    assert (
        main(
            [
                "sweep",
                "--rows",
                "2",
                "--cols",
                "2",
                "--weight-bits",
                "4",
                "--model",
                str(art),
                "--fast",
                "--jobs",
                "0",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 2
    )
    assert "--jobs" in capsys.readouterr().err


def test_area_model_memory_rule_and_holdout():
    """The stored calibration: the memory rule reproduces Yosys's EBR/LUT RAM counts, and the fitted
    model, recomputed from the current features, is within 10 % of synthesis LUTs on held-out configs."""
    from spikeforge.sim.estimate import area_model

    cal = area_model.load_calibration()
    for row in cal["calibration"] + cal["holdout"]:
        cfg = CoreConfig.from_dict(row["config"])
        cells = area_model.memory_cells(cfg)
        assert cells["ebr"] == row["measured"]["ebr"]
        assert cells["dpr16x4"] == row["measured"]["dpr16x4"]
    for row in cal["holdout"]:
        pred = area_model.predict(CoreConfig.from_dict(row["config"]), cal)
        assert abs(pred["lut4"] - row["measured"]["lut4"]) <= 0.10 * row["measured"]["lut4"]
    held = {json.dumps(r["config"], sort_keys=True) for r in cal["holdout"]}
    assert not held & {json.dumps(r["config"], sort_keys=True) for r in cal["calibration"]}
