"""sim/schedule.py is the one statement of the timing contract: every cycle figure comes from it.

The proof that the numbers are right is elsewhere (the RTL regressions compare them cycle by
cycle); these tests prove that there is only one place to change them: shifting the schedule's
per-command cost moves the cycle model, the driver, the fast layer cycles and the estimator's
counts by exactly that shift, and no other module restates the formula.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import Dense, IntegerNetwork
from spikeforge.sim import schedule
from spikeforge.sim.cycle import Command, encode_input, run_tile
from spikeforge.sim.driver import NetworkDriver, layer_cycles_fast
from spikeforge.sim.estimate.counts import operation_counts

PACKAGE = Path(__file__).resolve().parent.parent
EXTRA = 7


def _net(rng: np.random.Generator) -> IntegerNetwork:
    hidden = Dense(rng.integers(-8, 8, (11, 20)), rng.integers(-3, 5, 11))
    readout = Dense(rng.integers(-8, 8, (4, 11)), rng.integers(-3, 3, 4), spiking=False)
    return IntegerNetwork([hidden, readout], (1, 4, 5), input_bits=3, num_classes=4)


def _figures(cfg: CoreConfig, net: IntegerNetwork, x: np.ndarray) -> dict[str, np.ndarray]:
    weights = np.zeros((cfg.pes, cfg.weight_depth), dtype=np.int64)
    thresholds = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
    n_words, beats = encode_input(np.arange(20) % 3, 2, cfg.skip_window)
    tile = run_tile(cfg, weights, thresholds, Command(n_words, 2, 0, 0), beats)
    driver = NetworkDriver(net, cfg)
    traced = np.array([[t.cycles for t in driver.run_image(img, driver.golden_backend).layers] for img in x])
    return {
        "tile": np.array([tile.cycles, tile.next_accept]),
        "driver": traced,
        "dense": np.array([[t.dense_cycles for t in driver.run_image(img, driver.golden_backend).layers]
                           for img in x]),
        "fast": layer_cycles_fast(net, cfg, x),
        "estimate": operation_counts(net, cfg, x)["cycles"],
        "estimate_dense": operation_counts(net, cfg, x)["dense_cycles"],
    }


def test_every_cycle_figure_follows_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    net = _net(rng)
    cfg = CoreConfig(rows=2, cols=3, skip_window=8, weight_depth=64, threshold_depth=16, max_inputs=32,
                     max_input_bits=3)
    x = rng.random((3, 1, 4, 5))
    before = _figures(cfg, net, x)
    commands = np.array([[len(cmds) for cmds in (NetworkDriver(net, cfg).layer_commands(i, a) for i, a in
                          _layer_inputs(net, cfg, img))] for img in x])

    real = schedule.command_cycles
    monkeypatch.setattr(schedule, "command_cycles", lambda c, slots, steps=1: real(c, slots, steps) + EXTRA)
    after = _figures(cfg, net, x)

    assert list(after["tile"] - before["tile"]) == [EXTRA, EXTRA]
    for key in ("driver", "dense", "fast", "estimate", "estimate_dense"):
        assert np.array_equal(after[key] - before[key], EXTRA * commands), key


def _layer_inputs(net: IntegerNetwork, cfg: CoreConfig, image: np.ndarray):
    """(layer index, input activation) of each compute layer of one image (golden model)."""
    _, _, outs = net.forward(image[None], acc_bits=cfg.acc_bits, collect=True)
    act = net.quantize_input(image[None])[0]
    for index in range(len(net.layers)):
        yield index, act
        act = outs[index][0]


# Shapes of the tile formula (S + 2R + C + ...): rows doubled next to cols.
FORMULA = re.compile(r"2\s*\*\s*(cfg\.)?(rows|r)\b\s*\+\s*(cfg\.)?(cols|c)\b|\b2R\s*\+\s*C\b")


def test_the_formula_is_written_once() -> None:
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith((".venv/", "build/", "tests/")) or "/." in rel:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if FORMULA.search(line):
                hits.append(f"{rel}:{n}")
    assert hits and all(h.startswith("sim/schedule.py:") or h.startswith("hw/") for h in hits), hits
