"""Fast analytical area model: ECP5 LUT4 / FF / CCU2C / EBR / DPR16X4 and ASIC GE, without synthesis.

Each metric is a non-negative combination of per-component counts derived from a CoreConfig
(`features`): the PE's accumulator (adder, next-value mux, register: pes * acc_bits), its token
register (pes * weight address bits), its memory port (pes * weight bits; when the weight memory
becomes LUT RAM, the read mux tree), the load-select decoder (pes * select bits), the threshold
unit (cols * acc_bits subtract-compare and output register), the zero-skip scanner (a priority
encoder over the window: window * log2(window), plus the mask register), and the controller
(address and counter widths), and on a conv core the PE's event-conv logic (coordinate registers,
offset subtract-compare and tap adder). The coefficients are fitted by non-negative least squares on
synthesis runs of the CALIBRATION configs and checked on the HOLDOUT configs, which the fit never
sees. Memory mapping (EBR or LUT RAM) follows Yosys's memory_libmap cost rule for ECP5
(DP16KD cost 128, DPR16X4 cost 4), so the block RAM counts are computed, not fitted.

Regenerate the calibration file (runs Yosys; cached in build/synth/):

    python -m spikeforge.sim.estimate.area_model --calibrate
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.hw.config import CoreConfig

CALIBRATION_FILE = Path(__file__).with_name("area_calibration.json")
METRICS = ("lut4", "ff", "ccu2c", "ge_logic")
FEATURES = (
    "const",
    "pe_acc",
    "pe_addr",
    "pe_weight",
    "pe_select",
    "pe_lutram_mux",
    "col_acc",
    "col_lutram_mux",
    "scan_enc",
    "pe_product",
    "pe_conv",
    "ctrl",
)

# DP16KD aspect ratios (depth, width) Yosys can use for one port, and the LUT RAM primitive.
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18))
EBR_COST, DPR_COST = 128, 4


class AreaModelError(SpikeforgeError):
    pass


def memory_mapping(depth: int, width: int) -> dict[str, int]:
    """How Yosys maps a depth x width memory (1 sync read, 1 write port) on ECP5.

    LUT RAM uses ceil(depth/16) * ceil(width/4) DPR16X4 cells at cost 4 each; block RAM uses the
    fewest DP16KD of any aspect ratio at cost 128 each; the cheaper wins (ties go to block RAM).
    """
    ebr = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in DP16KD_SHAPES)
    banks = math.ceil(depth / 16)
    dpr = banks * math.ceil(width / 4)
    if DPR_COST * dpr < EBR_COST * ebr:
        return {"ebr": 0, "dpr16x4": dpr, "banks": banks}
    return {"ebr": ebr, "dpr16x4": 0, "banks": 0}


def features(cfg: CoreConfig) -> dict[str, float]:
    """Per-component counts of `cfg` (see the module docstring)."""
    from spikeforge.hw.core import load_select_bits

    pes, cols = cfg.pes, cfg.cols
    wmap = memory_mapping(cfg.weight_depth, cfg.weight_bits)
    tmap = memory_mapping(cfg.threshold_depth, cfg.threshold_bits)
    lsb = max(1, (cfg.skip_window - 1).bit_length())
    return {
        "const": 1.0,
        "pe_acc": pes * cfg.acc_bits,
        "pe_addr": pes * cfg.weight_addr_bits,
        "pe_weight": pes * cfg.weight_bits,
        "pe_select": pes * load_select_bits(cfg),
        "pe_lutram_mux": pes * max(0, wmap["banks"] - 1) * cfg.weight_bits,
        "col_acc": cols * cfg.acc_bits,
        "col_lutram_mux": cols * max(0, tmap["banks"] - 1) * cfg.threshold_bits,
        "scan_enc": cfg.skip_window * (lsb + 1),  # priority encoder + mask register
        # the v2 PE pipeline: the shift-add tree of W * value and its two registers
        "pe_product": pes * (cfg.weight_bits + cfg.max_input_bits) * cfg.max_input_bits,
        # event-driven conv (hw/conv_tiling.py): per PE the y/x token registers, the two offset
        # subtractors and registers, the four compares and the tap adder before the memory address
        # and its slot geometry at accept (shifts and compares of slot_bits-wide fields)
        "pe_conv": pes * (4 * cfg.conv_coord_bits + cfg.weight_addr_bits + 4 * cfg.slot_bits) if cfg.conv else 0.0,
        "ctrl": cfg.weight_addr_bits + cfg.threshold_addr_bits + cfg.index_bits + cfg.words_bits,
    }


def memory_cells(cfg: CoreConfig) -> dict[str, int]:
    """EBR and DPR16X4 counts of the weight and threshold memories (computed, not fitted)."""
    w = memory_mapping(cfg.weight_depth, cfg.weight_bits)
    t = memory_mapping(cfg.threshold_depth, cfg.threshold_bits)
    return {
        "ebr": cfg.pes * w["ebr"] + cfg.cols * t["ebr"],
        "dpr16x4": cfg.pes * w["dpr16x4"] + cfg.cols * t["dpr16x4"],
    }


def memory_bits(cfg: CoreConfig) -> dict[str, int]:
    weights = cfg.pes * cfg.weight_depth * cfg.weight_bits
    thresholds = cfg.cols * cfg.threshold_depth * cfg.threshold_bits
    out = {"weight_bits": weights, "threshold_bits": thresholds, "total": weights + thresholds}
    if cfg.multistep:
        out["neuron_constant_bits"] = cfg.cols * cfg.threshold_depth * (cfg.scale_bits + cfg.offset_bits)
        out["membrane_bits"] = cfg.cols * cfg.membrane_depth * cfg.membrane_bits
        out["total"] += out["neuron_constant_bits"] + out["membrane_bits"]
    return out


def load_calibration(path: str | os.PathLike | None = None) -> dict[str, Any]:
    p = Path(path) if path is not None else CALIBRATION_FILE
    if not p.exists():
        raise AreaModelError(
            f"area calibration {p} is missing; run `python -m spikeforge.sim.estimate.area_model --calibrate`"
        )
    data = json.loads(p.read_text())
    if tuple(data.get("features", ())) != FEATURES:
        raise AreaModelError(
            f"area calibration {p} was fitted with other features; re-run "
            "`python -m spikeforge.sim.estimate.area_model --calibrate`"
        )
    return data


# The neuron unit of a multi-step core (hw/neuron.py, hw/step_loop.py), per column: logic per
# membrane bit (leak subtract, input and offset adds, compare, reset muxes) and per scale bit (the
# multiplier's glue; the product itself maps to one MULT18X18D per column). Not part of the NNLS fit:
# the coefficients are the synthesized difference (Yosys synth_ecp5, no routing) between the
# multi-step cores of the digits BNTT MLP (membrane 25, scale 12 bits) and converted MLP (membrane 25,
# no scale) artifacts and the same configs without the neuron unit: solved exactly from those two
# pairs (docs/ESTIMATION.md, "Multi-step cores"). GE: the one-step model's GE per LUT4.
NEURON_PER_COLUMN = {"lut4": {"membrane": 4.54, "scale": 5.77}, "ff": {"membrane": 1.91, "scale": 0.0},
                     "ccu2c": {"membrane": 0.62, "scale": 1.27}}


def one_step_part(cfg: CoreConfig) -> CoreConfig:
    """The same core without its neuron unit (what the calibrated one-step model describes)."""
    return cfg.replace(membrane_bits=0, scale_bits=0, offset_bits=0, leak_shift=0, membrane_depth=1, max_steps=1,
                       fault=None, threshold_bits=min(cfg.threshold_bits, cfg.acc_bits))


def neuron_memory_cells(cfg: CoreConfig) -> dict[str, int]:
    """EBR / DPR16X4 / DSP of the neuron unit beyond the one-step core's threshold memory. The
    threshold, offset and scale memories share one address: Yosys merges them into one wide block
    RAM when that maps to EBR (else they stay separate LUT RAMs); the membrane memory is its own."""
    base = memory_mapping(cfg.threshold_depth, min(cfg.threshold_bits, cfg.acc_bits))
    merged = memory_mapping(cfg.threshold_depth, cfg.threshold_bits + cfg.offset_bits + cfg.scale_bits)
    if merged["ebr"]:
        consts = merged
    else:
        parts = [memory_mapping(cfg.threshold_depth, b) for b in (cfg.threshold_bits, cfg.offset_bits, cfg.scale_bits)
                 if b]
        consts = {"ebr": sum(p["ebr"] for p in parts), "dpr16x4": sum(p["dpr16x4"] for p in parts)}
    membrane = memory_mapping(cfg.membrane_depth, cfg.membrane_bits)
    return {"ebr": cfg.cols * (consts["ebr"] + membrane["ebr"] - base["ebr"]),
            "dpr16x4": cfg.cols * (consts["dpr16x4"] + membrane["dpr16x4"] - base["dpr16x4"]),
            "dsp": cfg.cols if cfg.scale_bits else 0}


def predict(cfg: CoreConfig, calibration: dict[str, Any] | None = None) -> dict[str, float]:
    """Fast estimate of ECP5 LUT4/FF/CCU2C/EBR/DPR16X4 and ASIC logic GE for `cfg` (a multi-step
    core: the one-step part from the calibrated model plus the neuron unit)."""
    if cfg.multistep:
        out = predict(one_step_part(cfg), calibration)
        ge_per_lut = out["ge_logic"] / max(out["lut4"], 1.0)
        neuron = {m: cfg.cols * (c["membrane"] * cfg.membrane_bits + c["scale"] * cfg.scale_bits)
                  for m, c in NEURON_PER_COLUMN.items()}
        for metric, value in neuron.items():
            out[metric] += value
        out["ge_logic"] += neuron["lut4"] * ge_per_lut
        cells = neuron_memory_cells(cfg)
        out["ebr"] += cells["ebr"]
        out["dpr16x4"] += cells["dpr16x4"]
        out["dsp"] = cells["dsp"]
        out["neuron_unit"] = {**neuron, **cells}
        out.update({f"memory_{k}": v for k, v in memory_bits(cfg).items()})
        return out
    cal = calibration if calibration is not None else load_calibration()
    f = features(cfg)
    x = np.array([f[name] for name in FEATURES])
    out: dict[str, float] = {}
    for metric in METRICS:
        coef = np.array([cal["coefficients"][metric][name] for name in FEATURES])
        out[metric] = float(x @ coef)
    out.update(memory_cells(cfg))
    out.update({f"memory_{k}": v for k, v in memory_bits(cfg).items()})
    return out


def fit(records: list[tuple[CoreConfig, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Non-negative least squares per metric; each column scaled to unit norm for conditioning."""
    from scipy.optimize import nnls

    x = np.array([[features(cfg)[name] for name in FEATURES] for cfg, _ in records], dtype=float)
    scale = np.linalg.norm(x, axis=0)
    scale[scale == 0] = 1.0
    coefficients = {}
    for metric in METRICS:
        y = np.array([measured[metric] for _, measured in records], dtype=float)
        # Relative error matters, so weight each row by 1/y (small and large configs count alike).
        w = 1.0 / np.maximum(y, 1.0)
        sol, _ = nnls((x / scale) * w[:, None], y * w)
        coefficients[metric] = {name: float(c / s) for name, c, s in zip(FEATURES, sol, scale, strict=True)}
    return coefficients


# Calibration and held-out configs: small arrays (cheap to synthesize) spanning every feature,
# EBR and LUT RAM weight memories; the held-out set adds larger arrays the fit never sees.
def _cfg(r: int, c: int, wb: int, acc: int, window: int, depth: int, tdepth: int, inputs: int,
         input_bits: int = 8, conv: int = 0) -> CoreConfig:
    return CoreConfig(
        rows=r,
        cols=c,
        weight_bits=wb,
        acc_bits=acc,
        threshold_bits=acc,
        skip_window=window,
        max_inputs=inputs,
        weight_depth=depth,
        threshold_depth=tdepth,
        max_input_bits=input_bits,
        conv_coord_bits=conv,
    )


CALIBRATION = (
    _cfg(1, 1, 8, 16, 32, 256, 16, 128),
    _cfg(1, 2, 4, 12, 8, 64, 16, 64),
    _cfg(2, 1, 8, 20, 16, 512, 32, 256),
    _cfg(2, 2, 8, 20, 32, 256, 32, 128),
    _cfg(2, 2, 4, 16, 32, 64, 16, 64, 2),
    _cfg(1, 4, 8, 24, 64, 1024, 64, 1024),
    _cfg(4, 1, 6, 18, 4, 128, 32, 128, 1),
    _cfg(2, 3, 8, 16, 32, 32, 8, 32),
    _cfg(2, 4, 5, 14, 8, 128, 16, 128, 4),
    _cfg(3, 3, 8, 20, 32, 256, 32, 128),
    _cfg(2, 2, 8, 20, 32, 256, 32, 256, 8, 3),
    _cfg(2, 4, 6, 16, 32, 512, 16, 512, 4, 4),
    _cfg(4, 2, 8, 20, 16, 128, 32, 128, 8, 2),
)
HOLDOUT = (
    _cfg(4, 4, 8, 20, 32, 256, 32, 128),
    _cfg(2, 8, 4, 16, 16, 128, 16, 128, 4),
    _cfg(3, 5, 6, 18, 32, 256, 32, 256),
    _cfg(4, 4, 8, 20, 32, 256, 32, 256, 8, 3),
)


def measure(cfg: CoreConfig) -> dict[str, float]:
    """Synthesize cfg for ECP5 (no routing) and ASIC; the numbers the model predicts."""
    from spikeforge.sim.estimate.synth import synthesize_core

    e = synthesize_core(cfg, "ecp5", route=False)
    a = synthesize_core(cfg, "asic")
    return {
        "lut4": e["lut4"],
        "ff": e["ff"],
        "ccu2c": e["ccu2c"],
        "ebr": e["ebr"],
        "dpr16x4": e["dpr16x4"],
        "ge_logic": a["ge_logic"],
    }


def _measure_star(cfg_dict: dict) -> dict[str, float]:
    return measure(CoreConfig.from_dict(cfg_dict))


def calibrate(jobs: int = 1, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Synthesize CALIBRATION + HOLDOUT, fit on CALIBRATION, report errors on HOLDOUT, write the file."""
    from concurrent.futures import ProcessPoolExecutor

    from spikeforge.progress import Progress

    configs = list(CALIBRATION) + list(HOLDOUT)
    measured: list[dict[str, float]] = [{} for _ in configs]
    with ProcessPoolExecutor(max_workers=jobs) as pool, Progress(transient=False) as progress:
        task = progress.add_task("synthesizing", total=len(configs))
        futures = {pool.submit(_measure_star, c.to_dict()): i for i, c in enumerate(configs)}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            measured[futures[fut]] = fut.result()
            progress.advance(task)
    cal_records = list(zip(CALIBRATION, measured[: len(CALIBRATION)], strict=True))
    coefficients = fit(cal_records)
    data: dict[str, Any] = {
        "features": list(FEATURES),
        "coefficients": coefficients,
        "metrics": list(METRICS),
    }

    def rows(cfgs, meas):
        out_rows = []
        for cfg, m in zip(cfgs, meas, strict=True):
            p = predict(cfg, data)
            out_rows.append(
                {
                    "config": cfg.to_dict(),
                    "measured": m,
                    "predicted": {k: p[k] for k in (*METRICS, "ebr", "dpr16x4")},
                    "error_pct": {
                        k: 100.0 * (p[k] - m[k]) / m[k] if m[k] else 0.0 for k in (*METRICS, "ebr", "dpr16x4")
                    },
                }
            )
        return out_rows

    from spikeforge.sim.estimate.synth import tool_versions

    data["calibration"] = rows(CALIBRATION, measured[: len(CALIBRATION)])
    data["holdout"] = rows(HOLDOUT, measured[len(CALIBRATION) :])
    data["max_holdout_error_pct"] = {k: max(abs(r["error_pct"][k]) for r in data["holdout"]) for k in METRICS}
    data["tools"] = tool_versions()
    data["command"] = "python -m spikeforge.sim.estimate.area_model --calibrate"
    path = Path(out) if out is not None else CALIBRATION_FILE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikeforge.sim.estimate.area_model", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--calibrate", action="store_true", help="synthesize the calibration configs and refit"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=None, help=f"calibration file (default {CALIBRATION_FILE})")
    args = parser.parse_args(argv)
    if not args.calibrate:
        parser.print_help()
        return 0
    data = calibrate(args.jobs, args.out)
    for row in data["holdout"]:
        c = row["config"]
        print(
            f"holdout {c['rows']}x{c['cols']} wb{c['weight_bits']} acc{c['acc_bits']}: "
            + ", ".join(
                f"{k} {row['measured'][k]:.0f} vs {row['predicted'][k]:.0f} ({row['error_pct'][k]:+.1f} %)"
                for k in METRICS
            )
        )
    print("max held-out error %:", {k: round(v, 2) for k, v in data["max_holdout_error_pct"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
