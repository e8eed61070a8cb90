"""Estimates of multi-step networks: cycles from the schedule (equal to the driver's), membrane
energy, and the neuron unit's area; the one-step core's figures do not move."""

from __future__ import annotations

import numpy as np
from test_multistep_rtl import tiny_network

from spikeforge.hw.config import TOKEN_PIPELINE, CoreConfig
from spikeforge.hw.layout import config_for_network
from spikeforge.sim.driver import NetworkDriver, layer_cycles_fast
from spikeforge.sim.estimate import area_model
from spikeforge.sim.estimate.counts import operation_counts
from spikeforge.sim.estimate.energy import energy_report
from spikeforge.sim.schedule import command_cycles, tile_timing


def test_step_loop_cycles_are_the_schedule() -> None:
    cfg = CoreConfig(rows=3, cols=2, membrane_bits=24, offset_bits=8, max_steps=5)
    assert command_cycles(cfg, 7, 1) == 1 + 7 + 2 * 3 + 2 + TOKEN_PIPELINE
    assert command_cycles(cfg, 7, 5) == command_cycles(cfg, 7, 1) + 3 * 4
    beats, nxt = tile_timing(cfg, 7, 10, 5)
    assert len(beats) == 15 and beats[-1] == nxt == 10 + command_cycles(cfg, 7, 5)
    assert beats == list(range(nxt - 14, nxt + 1))


def test_counts_cycles_equal_the_driver_and_energy_has_the_membrane() -> None:
    for coding, conv in (("poisson", False), ("analog", True)):
        net = tiny_network(coding, conv)
        cfg = config_for_network(net, 2, 2)
        x = np.random.default_rng(9).random((4, 1, 4, 4))
        counts = operation_counts(net, cfg, x)
        assert np.array_equal(counts["cycles"], layer_cycles_fast(net, cfg, x))
        driver = NetworkDriver(net, cfg)
        trace = driver.run_image(x[1], driver.golden_backend, image_id=1)
        assert counts["cycles"][1].tolist() == [t.cycles for t in trace.layers if t.kind != "pool"]
        steps = net.multistep.exit_step
        drains = sum(len(t.outcomes) * (steps if coding == "analog" and t.layer == 0 else 1) for t in trace.layers)
        assert counts["membrane_reads"][1].sum() == drains * cfg.pes == counts["membrane_writes"][1].sum()
        parts = energy_report(counts, cfg)["snn"]["parts_pj"]
        assert parts["membrane"] > 0 and (parts["neuron_multiply"] > 0) == (cfg.scale_bits > 0)


def test_area_includes_the_neuron_unit_and_leaves_one_step_alone() -> None:
    one = CoreConfig()
    multi = one.replace(membrane_bits=25, scale_bits=12, offset_bits=21, leak_shift=4, membrane_depth=32,
                        max_steps=8, threshold_bits=24)
    a, b = area_model.predict(one), area_model.predict(multi)
    assert "neuron_unit" not in a and b["dsp"] == 8
    assert b["lut4"] > a["lut4"] and b["ff"] > a["ff"] and b["memory_total"] > a["memory_total"]
    assert area_model.predict(area_model.one_step_part(multi))["lut4"] == a["lut4"]
