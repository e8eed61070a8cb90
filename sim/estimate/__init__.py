"""Estimation: latency, energy and area of an integer network on a generated core.

- counts.py: operation counts per image and layer (cycles from sim/schedule.py)
- latency.py: cycle statistics and the clock (routed Fmax measurements in fmax_routed.json)
- energy.py: the 45 nm energy-per-operation model and the SNN vs int8 DNN energy
- area_model.py: the calibrated analytical area model (area_calibration.json)
- synth.py, designs.py: Yosys/nextpnr synthesis (ECP5, iCE40, ASIC GE) and the designs it runs
- anchors.py: published figures of peer accelerators
- area.py, report.py: the area summary and the Markdown/JSON report

`estimate()` puts them together for one (network, config) point.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeforge.hw.config import ConfigError, CoreConfig
from spikeforge.integer_network import IntegerNetwork
from spikeforge.sim.estimate.area import area_report, area_summary
from spikeforge.sim.estimate.counts import operation_counts
from spikeforge.sim.estimate.energy import EnergyModel, energy_report
from spikeforge.sim.estimate.latency import DEFAULT_FMAX_MHZ, latency_report, measured_fmax
from spikeforge.sim.estimate.report import json_default, markdown_report, write_reports

__all__ = ["area_report", "area_summary", "estimate", "json_default", "load_model_and_data", "markdown_report",
           "operation_counts", "write_reports"]


def load_model_and_data(path, data_dir=None, images: int | None = None):
    """(IntegerNetwork, manifest, x_test, y_test) of an artifact, on its manifest's dataset
    (the first `images` test images when given)."""
    from spikeforge import SpikeforgeError
    from spikeforge.quant.artifact import load_artifact_data

    if images is not None and (isinstance(images, bool) or images < 1):
        raise SpikeforgeError(f"--images {images} must be >= 1")
    net, manifest, ds = load_artifact_data(path, data_dir)  # the dataset checked against the manifest
    x, y = ds.x_test, ds.y_test
    if images is not None:
        x, y = x[:images], y[:images]
    return net, manifest, x, y


def estimate(
    net: IntegerNetwork,
    cfg: CoreConfig,
    images: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    target: str = "ecp5",
    fast: bool = True,
    fmax_mhz: float | None = None,
    accuracy: float | None = None,
    energy_model: EnergyModel = EnergyModel(),
) -> dict[str, Any]:
    """The whole estimate of one (network, config) point; a JSON-ready dict."""
    if target not in ("ecp5", "ice40", "asic"):
        raise ConfigError(f"target={target!r} is unknown; use ecp5, ice40 or asic")
    if fmax_mhz is not None and not (fmax_mhz > 0 and math.isfinite(fmax_mhz)):
        raise ConfigError(f"fmax={fmax_mhz} is not a positive frequency; give --fmax in MHz, e.g. 100")
    if len(images) == 0:
        raise ConfigError("the dataset has no test images; estimate needs at least one input")
    area = area_report(cfg, target, fast)
    routed = area.get("synth", {}).get("fmax_mhz")
    measured = measured_fmax(cfg)
    if fmax_mhz is not None:
        fmax, fmax_source = fmax_mhz, "--fmax"
    elif routed:
        fmax, fmax_source = float(routed), "routed nextpnr-ecp5"
    elif measured is not None:
        fmax, fmax_source = measured
    else:
        fmax, fmax_source = DEFAULT_FMAX_MHZ, "assumed (no --fmax, no routed Fmax)"
    counts = operation_counts(net, cfg, images)
    if accuracy is None and labels is not None:
        pred, _ = net.forward(images, acc_bits=cfg.acc_bits)
        accuracy = float(np.mean(pred == labels))
    if cfg.multistep and fmax_mhz is None and not routed:
        fmax_source += "; of the one-step core: the neuron unit's Fmax is not measured"
    latency = latency_report(counts, fmax, net)
    latency["fmax_source"] = fmax_source
    return {
        "schema": "spikeforge-estimate",
        "schema_version": 1,
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "accuracy": accuracy,
        "latency": latency,
        "energy": energy_report(counts, cfg, energy_model),
        "area": area,
    }
