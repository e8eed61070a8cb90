"""Synthesis flows: no multipliers in the generated array, ASIC GE and memory bits, the cache."""

from __future__ import annotations

import pytest

from spikeforge.hw.config import CoreConfig
from spikeforge.sim.estimate import synth


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_BUILD_DIR", str(tmp_path))
    return tmp_path


def test_generated_2x2_array_has_no_multiplier_cells(build):
    cfg = CoreConfig(
        rows=2,
        cols=2,
        weight_bits=8,
        acc_bits=16,
        threshold_bits=16,
        max_inputs=64,
        weight_depth=64,
        threshold_depth=8,
    )
    result = synth.synthesize_core(cfg, "mulcheck")
    assert result["mul_cells"] == 0
    assert result["cells"].get("$add", 0) >= 4


@pytest.mark.slow  # about 30 s alone, 90 s on a loaded 2-core machine
def test_generated_8x8_array_has_no_multiplier_cells(build):
    """Acceptance (issue 3): Yosys stat of a generated 8x8 array shows no multiplier cells."""
    cfg = CoreConfig(
        rows=8,
        cols=8,
        weight_bits=8,
        acc_bits=20,
        threshold_bits=20,
        max_inputs=128,
        weight_depth=256,
        threshold_depth=32,
    )
    result = synth.synthesize_core(cfg, "mulcheck")
    assert result["mul_cells"] == 0
    assert not any(k in result["cells"] for k in ("$mul", "$macc", "$macc_v2"))
    assert result["cells"].get("$add", 0) >= 64  # the check sees the design: one adder per PE at least


def test_mulcheck_finds_the_mac_baseline_multiplier(build):
    verilog, top = synth.mac_pe_verilog(8, 24, 16)
    result = synth.synthesize(verilog, top, "mulcheck", "macpe-test")
    assert result["mul_cells"] >= 1


def test_asic_flow_counts_memory_bits_and_caches(build):
    cfg = CoreConfig(
        rows=1,
        cols=1,
        weight_bits=4,
        acc_bits=10,
        threshold_bits=8,
        max_inputs=16,
        weight_depth=16,
        threshold_depth=4,
        skip_window=8,
        max_input_bits=1,
    )
    first = synth.synthesize_core(cfg, "asic")
    assert first["cached"] is False
    assert first["memory_bits"] == 16 * 4 + 4 * 8
    assert sorted(m["bits"] for m in first["memories"]) == [32, 64]
    assert first["ge_logic"] == first["transistors"] / 4 > 0
    assert first["ff"] >= cfg.acc_bits  # at least the accumulator
    again = synth.synthesize_core(cfg, "asic")
    assert again["cached"] is True and again["ge_logic"] == first["ge_logic"]
    assert list((build / "synth").glob("asic-*.json"))


def test_design_hash_tracks_config_and_options():
    a = synth.design_hash("core:x", "ecp5", {"route": True})
    assert a != synth.design_hash("core:y", "ecp5", {"route": True})
    assert a != synth.design_hash("core:x", "ecp5", {"route": False})
    assert a == synth.design_hash("core:x", "ecp5", {"route": True})


def test_unknown_flow_is_one_line_error():
    with pytest.raises(synth.SynthError, match="flow='vivado'"):
        synth.synthesize("module m; endmodule", "m", "vivado", "x")


@pytest.mark.slow
def test_ecp5_2x2_has_no_dsp_and_pe_is_smaller_than_mac(build):
    cfg = CoreConfig(
        rows=2,
        cols=2,
        weight_bits=8,
        acc_bits=20,
        threshold_bits=20,
        max_inputs=128,
        weight_depth=256,
        threshold_depth=32,
    )
    ecp5 = synth.synthesize_core(cfg, "ecp5", route=False)
    assert ecp5["dsp"] == 0 and ecp5["lut4"] > 0 and ecp5["ebr"] == 4
    cmp = synth.pe_comparison(cfg)
    assert cmp["ratio"] > 1.0


def test_critical_path_is_the_worst_clocked_path_of_the_report():
    from spikeforge.sim.estimate.synth_flows import critical_path

    def seg(kind, delay, src="a", dst="b"):
        return {"type": kind, "delay": delay, "from": {"cell": src}, "to": {"cell": dst}}

    report = {"critical_paths": [
        # an IO path is longer but unclocked: it does not set Fmax
        {"from": "<async>", "to": "clk", "path": [seg("routing", 10.0, "pin", "x"), seg("logic", 3.0, "x", "ff")]},
        {"from": "clk", "to": "clk", "path": [seg("clk-to-q", 0.5, "ff1", "n"), seg("routing", 4.0),
                                              seg("logic", 1.5, "m", "ff2")]},
        {"from": "clk", "to": "clk", "path": [seg("logic", 1.0, "ff3", "ff4")]},
    ]}
    assert critical_path(report) == {"clock": "clk", "from": "ff1", "to": "ff2", "delay_ns": 6.0,
                                     "routing_ns": 4.0, "logic_ns": 2.0}
    assert critical_path({}) is None
