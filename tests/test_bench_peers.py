"""`spikeforge bench --which peers`: the ratios come from one estimate of one model, and they are the
ratios of that estimate's own figures (cycles over the SynOps/PE bound from the operation counts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """A small random integer MLP 64-16-10 on 8-bit pixels (no training needed)."""
    from spikeforge.integer_network import Dense, IntegerNetwork
    from spikeforge.quant.artifact import write_artifact

    rng = np.random.default_rng(1)
    net = IntegerNetwork([Dense(rng.integers(-127, 128, (16, 64)), rng.integers(0, 2000, 16), input_bits=8),
                          Dense(rng.integers(-127, 128, (10, 16)), rng.integers(-50, 50, 10), spiking=False)],
                         input_shape=(1, 8, 8), input_bits=8, meta={"dataset": "digits"})
    return write_artifact(tmp_path / "artifact", net, 8)


def test_peers_ratios_are_those_of_the_counts(artifact: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.hw.layout import config_for_network
    from spikeforge.scripts.cli import main
    from spikeforge.sim.estimate import load_model_and_data
    from spikeforge.sim.estimate.counts import operation_counts

    assert main(["bench", "--which", "peers", "--model", str(artifact), "--json", "--out", str(tmp_path / "b")]) == 0
    r = json.loads(capsys.readouterr().out)["peers"]
    net, _, x, _ = load_model_and_data(artifact, None, None)
    counts = operation_counts(net, config_for_network(net, 8, 8), x)
    useful = counts["adds_useful"].sum(axis=1).mean()
    cycles = counts["cycles"].sum(axis=1).mean()
    assert r["synops_per_image"] == pytest.approx(useful)
    assert r["cycles_over_bound"] == pytest.approx(cycles / (useful / 64))
    assert r["cycles_over_bound"] >= 1.0  # no schedule beats every PE adding usefully every cycle
    sparse_macs = counts["dnn_macs_nonzero"].sum(axis=1).mean()
    assert 0 < sparse_macs < counts["dnn_macs"].sum(axis=1).mean()  # the pixels of digits have zeros
    assert r["zero_skip_int8_dnn_nj"] < r["dense_int8_dnn_nj"]
    assert r["energy_over_zero_skip_dnn"] == pytest.approx(r["energy_nj"] / r["zero_skip_int8_dnn_nj"])
    assert {p["name"] for p in r["peers"]} >= {"Flexi-NeurA", "Spiker+"}
    for p in r["peers"]:
        assert p["spikeforge_latency_ratio"] == pytest.approx(r["latency_us"] / p["latency_us"])
