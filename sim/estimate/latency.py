"""Latency of an estimate: cycle statistics over the test set and the clock they run at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import IntegerNetwork

DEFAULT_FMAX_MHZ = 100.0  # used for microseconds only when neither --fmax nor a routed Fmax exists


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
        "min": float(values.min()),
    }


def latency_report(counts: dict[str, np.ndarray], fmax_mhz: float, net: IntegerNetwork) -> dict[str, Any]:
    cycles = counts["cycles"]
    total = cycles.sum(axis=1)
    ideal = counts["ideal_cycles"].sum(axis=1)
    dense = counts["dense_cycles"].sum(axis=1)
    kinds = [layer.kind for layer in net.compute_layers]
    per_layer = []
    for j, kind in enumerate(kinds):
        per_layer.append(
            {
                "layer": j,
                "kind": kind,
                "cycles": _stats(cycles[:, j]),
                "ideal_cycles": _stats(counts["ideal_cycles"][:, j]),
                "dense_cycles": _stats(counts["dense_cycles"][:, j]),
                "commands": _stats(counts["commands"][:, j]),
            }
        )
    mean = float(total.mean())
    return {
        "images": int(len(total)),
        "fmax_mhz": fmax_mhz,
        "cycles": _stats(total),
        "ideal_cycles": _stats(ideal),
        "dense_cycles": _stats(dense),
        "speedup_vs_dense": float(dense.mean() / mean),
        "actual_over_ideal": float(mean / max(ideal.mean(), 1.0)),
        "latency_us": {"mean": mean / fmax_mhz, "p99": float(np.percentile(total, 99)) / fmax_mhz},
        "dense_latency_us": float(dense.mean()) / fmax_mhz,
        "throughput_inferences_per_s": fmax_mhz * 1e6 / mean,
        "per_layer": per_layer,
    }


def measured_fmax(cfg: CoreConfig) -> tuple[float, str] | None:
    """The routed ECP5 Fmax measured for this array shape (sim/estimate/fmax_routed.json), else the lowest
    measured one as a conservative stand-in; None without measurements."""
    path = Path(__file__).with_name("fmax_routed.json")
    try:
        rows = json.loads(path.read_text())["measurements"]
    except (OSError, ValueError, KeyError):
        return None
    # A conv core (event-conv logic in every PE) is matched only by conv measurements, and back.
    same = [r for r in rows if (r["rows"], r["cols"]) == (cfg.rows, cfg.cols)
            and bool(r.get("conv_coord_bits", 0)) == cfg.conv]
    if same:  # the measurement of the same memory depth first
        r = min(same, key=lambda m: m.get("weight_depth") != cfg.weight_depth)
        depth = r.get("weight_depth")
        note = "" if depth in (None, cfg.weight_depth) else (
            f", with {depth}-word PE memories (this config: {cfg.weight_depth})")
        return float(r["fmax_mhz"]), f"routed nextpnr-ecp5, measured for {r['rows']}x{r['cols']} ({r['device']}{note})"
    if not rows:
        return None
    r = min([m for m in rows if bool(m.get("conv_coord_bits", 0)) == cfg.conv] or rows, key=lambda m: m["fmax_mhz"])
    return float(r["fmax_mhz"]), f"lowest routed nextpnr-ecp5 Fmax measured ({r['rows']}x{r['cols']}); not this shape"
