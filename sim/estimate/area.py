"""Area of an estimate: the calibrated model or a (cached) synthesis run, and its headline numbers."""

from __future__ import annotations

from typing import Any

from spikeforge.hw.config import CoreConfig


def area_report(cfg: CoreConfig, target: str, fast: bool, route: bool = True) -> dict[str, Any]:
    """Fast model (`fast`) or synthesis (cached) of cfg for ecp5, ice40 or asic."""
    from spikeforge.sim.estimate import area_model

    fast_est = area_model.predict(cfg)
    report: dict[str, Any] = {"target": target, "fast": fast_est, "memory_bits": area_model.memory_bits(cfg)}
    if fast:
        report["source"] = "analytical model (sim/estimate/area_calibration.json)"
        return report
    from spikeforge.sim.estimate.synth import SRAM_GE_PER_BIT, synthesize_core

    synth = synthesize_core(cfg, target, route=route)
    report["synth"] = {k: v for k, v in synth.items() if k not in ("tools",)}
    report["source"] = f"synthesis ({target})"
    if target == "asic":
        report["sram_ge_per_bit"] = SRAM_GE_PER_BIT
    return report


def area_summary(area: dict[str, Any]) -> dict[str, Any]:
    """The headline area numbers of an area report (synthesis when present, else the model)."""
    fast = area["fast"]
    s = area.get("synth")
    if s is None:
        return {
            "lut4": fast["lut4"],
            "ff": fast["ff"],
            "ebr": fast["ebr"],
            "dpr16x4": fast["dpr16x4"],
            "ge_logic": fast["ge_logic"],
            "source": "model",
        }
    if s["target"] == "ecp5":
        return {
            "lut4": s["lut4"],
            "ff": s["ff"],
            "ebr": s["ebr"],
            "dpr16x4": s["dpr16x4"],
            "ccu2c": s["ccu2c"],
            "dsp": s["dsp"],
            "fmax_mhz": s.get("fmax_mhz"),
            "device": s.get("device"),
            "source": "synthesis",
        }
    if s["target"] == "ice40":
        return {
            "lut4": s["lut4"],
            "ff": s["ff"],
            "lc": s.get("lc"),
            "ram40_4k": s["ram40_4k"],
            "dsp": s["dsp"],
            "source": "synthesis",
        }
    return {
        "ge_logic": s["ge_logic"],
        "ge_memory_sram": s["ge_memory_sram"],
        "memory_bits": s["memory_bits"],
        "ff": s["ff"],
        "source": "synthesis",
    }
