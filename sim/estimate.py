"""Latency, area and energy of an integer network on an R x C core, and the report that holds them.

Latency comes from the timing contract (hw/core.py, sim/cycle.py), evaluated exactly per image
on the real test inputs, vectorised over the dataset: a layer with V input vectors (1 for a dense
layer, one per output position for a conv layer) and T output tiles issues V*T commands back to
back, command k costs 1 + S_k + 2R + C cycles from accept to next accept, and the layer ends with
its last output beat, so

    cycles = T * sum_v (1 + S_v + 2R + C) + 1,     S_v = sum_words max(1, popcount) + planes - 1.

`sim.driver.layer_cycles_fast` computes the same thing command by command (the tests check they
agree, and that both agree with the RTL). The ideal (spike-count bound) is T * sum_v active_v
and the dense baseline replaces S_v by planes * fan_in + planes - 1: the same core without
zero-skipping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import atomic_write_text
from spikeforge.hw.config import ConfigError, CoreConfig
from spikeforge.sim.energy import EnergyModel, dnn_energy, snn_energy
from spikeforge.sim.layout import config_for_network  # noqa: F401  (re-exported: the one config rule)
from spikeforge.sim.network import IntegerNetwork

DEFAULT_FMAX_MHZ = 100.0  # used for microseconds only when neither --fmax nor a routed Fmax exists
CHUNK = 64  # images per vectorised step (bounds the im2col memory of conv layers)


# --- operation counts ----------------------------------------------------------------------------


def _popcounts(vec: np.ndarray, planes: int, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """vec [n, V, fan_in] unsigned ints -> (S [n, V], active [n, V], n_words)."""
    n, v, fan_in = vec.shape
    words = max(1, -(-fan_in // window))
    padded = np.zeros((n, v, words * window), dtype=np.int64)
    padded[:, :, :fan_in] = vec
    slots = np.zeros((n, v), dtype=np.int64)
    active = np.zeros((n, v), dtype=np.int64)
    for plane in range(planes):
        pop = ((padded >> plane) & 1).reshape(n, v, words, window).sum(axis=3)
        slots += np.maximum(pop, 1).sum(axis=2)
        active += pop.sum(axis=2)
    return slots + planes - 1, active, words


COUNT_KEYS = (
    "cycles",
    "ideal_cycles",
    "dense_cycles",
    "commands",
    "adds_performed",
    "adds_useful",
    "doubles_performed",
    "weight_reads",
    "compares_performed",
    "compares_useful",
    "threshold_reads",
    "input_bits_read",
    "output_bits_written",
    "spikes_out",
    "dnn_macs",
    "dnn_input_reads",
    "dnn_outputs",
)


def operation_counts(net: IntegerNetwork, cfg: CoreConfig, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image and compute layer ([images, layers] int64), every count latency and energy need."""
    from spikeforge.sim.layout import plan_layout

    layout = plan_layout(net, cfg)
    layers = net.compute_layers
    n = len(images)
    out = {k: np.zeros((n, len(layers)), dtype=np.int64) for k in COUNT_KEYS}
    r, c, pes = cfg.rows, cfg.cols, cfg.pes
    for lo in range(0, n, CHUNK):
        batch = np.asarray(images[lo : lo + CHUNK])
        _, _, outputs = net.forward(batch, acc_bits=cfg.acc_bits, collect=True)
        act = net.quantize_input(batch)
        column = 0
        for index, layer in enumerate(net.layers):
            if layer.kind != "pool":
                if layer.kind == "dense":
                    vec = act.reshape(len(batch), 1, -1).astype(np.int64)
                else:
                    vec = layer.im2col(act.astype(np.int64))
                planes = layer.input_bits
                s, active, words = _popcounts(vec, planes, cfg.skip_window)
                v = vec.shape[1]
                tiles = len(layout.tiles_of(index))
                dense_s = planes * layer.fan_in + planes - 1
                a = active.sum(axis=1)
                sel = (slice(lo, lo + len(batch)), column)
                out["cycles"][sel] = tiles * (1 + s + 2 * r + c).sum(axis=1) + 1
                out["ideal_cycles"][sel] = tiles * a
                out["dense_cycles"][sel] = tiles * v * (1 + dense_s + 2 * r + c) + 1
                out["commands"][sel] = v * tiles
                out["adds_performed"][sel] = a * tiles * pes
                out["adds_useful"][sel] = a * layer.outputs
                out["doubles_performed"][sel] = v * tiles * (planes - 1) * pes
                out["weight_reads"][sel] = a * tiles * pes
                out["compares_performed"][sel] = v * tiles * pes
                out["compares_useful"][sel] = v * layer.outputs
                out["threshold_reads"][sel] = v * tiles * pes
                out["input_bits_read"][sel] = v * tiles * words * planes * cfg.skip_window
                width = 1 if layer.spiking else cfg.acc_bits + 1
                out["output_bits_written"][sel] = v * layer.outputs * width
                o = outputs[index]
                out["spikes_out"][sel] = o.reshape(len(batch), -1).sum(axis=1) if layer.spiking else 0
                out["dnn_macs"][sel] = v * layer.fan_in * layer.outputs
                out["dnn_input_reads"][sel] = v * tiles * layer.fan_in
                out["dnn_outputs"][sel] = v * layer.outputs
                column += 1
            act = outputs[index]
    return out


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


def energy_report(counts: dict[str, np.ndarray], cfg: CoreConfig, model: EnergyModel = EnergyModel()) -> dict:
    mean = {k: float(v.sum(axis=1).mean()) for k, v in counts.items()}
    snn = snn_energy(mean, cfg.acc_bits, cfg.weight_bits, cfg.threshold_bits, model)
    dnn = dnn_energy(mean, model)
    return {
        "model": model.to_dict(),
        "counts_mean": mean,
        "snn": snn,
        "dnn_int8": dnn,
        "dnn_over_snn": dnn["total_pj"] / max(snn["total_pj"], 1e-12),
        "useful_fraction_of_adds": mean["adds_useful"] / max(mean["adds_performed"], 1.0),
    }


def measured_fmax(cfg: CoreConfig) -> tuple[float, str] | None:
    """The routed ECP5 Fmax measured for this array shape (hw/fmax_routed.json), else the lowest
    measured one as a conservative stand-in; None without measurements."""
    path = Path(__file__).resolve().parent.parent / "hw" / "fmax_routed.json"
    try:
        rows = json.loads(path.read_text())["measurements"]
    except (OSError, ValueError, KeyError):
        return None
    same = [r for r in rows if (r["rows"], r["cols"]) == (cfg.rows, cfg.cols)]
    if same:
        r = same[0]
        depth = r.get("weight_depth")
        note = "" if depth in (None, cfg.weight_depth) else (
            f", with {depth}-word PE memories (this config: {cfg.weight_depth})")
        return float(r["fmax_mhz"]), f"routed nextpnr-ecp5, measured for {r['rows']}x{r['cols']} ({r['device']}{note})"
    if not rows:
        return None
    r = min(rows, key=lambda m: m["fmax_mhz"])
    return float(r["fmax_mhz"]), f"lowest routed nextpnr-ecp5 Fmax measured ({r['rows']}x{r['cols']}); not this shape"


def area_report(cfg: CoreConfig, target: str, fast: bool, route: bool = True) -> dict[str, Any]:
    """Fast model (`fast`) or synthesis (cached) of cfg for ecp5, ice40 or asic."""
    from spikeforge.hw import area_model

    fast_est = area_model.predict(cfg)
    report: dict[str, Any] = {"target": target, "fast": fast_est, "memory_bits": area_model.memory_bits(cfg)}
    if fast:
        report["source"] = "analytical model (hw/area_calibration.json)"
        return report
    from spikeforge.hw.synth import SRAM_GE_PER_BIT, synthesize_core

    synth = synthesize_core(cfg, target, route=route)
    report["synth"] = {k: v for k, v in synth.items() if k not in ("tools",)}
    report["source"] = f"synthesis ({target})"
    if target == "asic":
        report["sram_ge_per_bit"] = SRAM_GE_PER_BIT
    return report


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


# --- report files --------------------------------------------------------------------------------


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


def markdown_report(rep: dict[str, Any], title: str = "spikeforge estimate") -> str:
    cfg, lat, en = rep["config"], rep["latency"], rep["energy"]
    area = area_summary(rep["area"])
    lines = [
        f"# {title}",
        "",
        f"Core {cfg['rows']}x{cfg['cols']}, weight_bits {cfg['weight_bits']}, acc_bits {cfg['acc_bits']}, "
        f"skip_window {cfg['skip_window']}, weight_depth {cfg['weight_depth']}, "
        f"threshold_depth {cfg['threshold_depth']} (digest {rep['config_digest']}).",
        "",
    ]
    if rep.get("accuracy") is not None:
        lines += [f"Integer accuracy (golden model, test set): {100 * rep['accuracy']:.2f} %", ""]
    lines += [
        "## Latency",
        "",
        f"{lat['images']} test images; Fmax {lat['fmax_mhz']:.1f} MHz ({lat['fmax_source']}).",
        "",
        "| | mean | p99 | max |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("cycles", "cycles (zero-skip)"),
        ("ideal_cycles", "ideal (active bits)"),
        ("dense_cycles", "dense baseline"),
    ):
        st = lat[key]
        lines.append(f"| {label} | {st['mean']:.1f} | {st['p99']:.1f} | {st['max']:.0f} |")
    lines += [
        "",
        f"- latency: {lat['latency_us']['mean']:.2f} us mean, {lat['latency_us']['p99']:.2f} us p99 "
        f"(dense {lat['dense_latency_us']:.2f} us)",
        f"- speed-up over the dense core: {lat['speedup_vs_dense']:.2f}x; actual / ideal: "
        f"{lat['actual_over_ideal']:.2f}",
        f"- throughput: {lat['throughput_inferences_per_s']:.0f} inferences/s",
        "",
        "| layer | kind | commands | cycles mean | cycles p99 | ideal mean | dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for pl in lat["per_layer"]:
        lines.append(
            f"| {pl['layer']} | {pl['kind']} | {pl['commands']['mean']:.0f} | {pl['cycles']['mean']:.1f} | "
            f"{pl['cycles']['p99']:.1f} | {pl['ideal_cycles']['mean']:.1f} | "
            f"{pl['dense_cycles']['mean']:.0f} |"
        )
    lines += [
        "",
        f"## Area ({rep['area']['target']}, {rep['area']['source']})",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for k, v in area.items():
        if k != "source" and v is not None:
            lines.append(f"| {k} | {v:.0f} |" if isinstance(v, int | float) else f"| {k} | {v} |")
    mb = rep["area"]["memory_bits"]
    lines += [f"| memory bits (weights + thresholds) | {mb['weight_bits']} + {mb['threshold_bits']} |", ""]
    snn, dnn = en["snn"], en["dnn_int8"]
    lines += ["## Energy per inference (45 nm, Horowitz ISSCC 2014)", "", "| component | pJ |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in snn["parts_pj"].items()]
    lines += [
        f"| **total** | **{snn['total_pj']:.1f}** |",
        "",
        f"- {snn['pj_per_synop']:.3f} pJ per useful synaptic op; useful / performed adds "
        f"{en['useful_fraction_of_adds']:.2f}",
        f"- int8 MAC DNN of the same network: {dnn['total_pj']:.1f} pJ ({dnn['macs']:.0f} MACs, "
        f"{dnn['pj_per_mac']:.3f} pJ/MAC); DNN / SNN = {en['dnn_over_snn']:.2f}x",
        f"- compute only: SNN {snn['compute_pj']:.1f} pJ vs DNN {dnn['compute_pj']:.1f} pJ",
        "- weight reads: one per PE per ACC token (hw/pe.py gates the read port by the token)",
        "",
    ]
    return "\n".join(lines)


def write_reports(
    rep: dict[str, Any], out_dir: str | os.PathLike, stem: str = "estimate"
) -> tuple[Path, Path]:
    out = Path(out_dir)
    jpath, mpath = out / f"{stem}.json", out / f"{stem}.md"
    atomic_write_text(jpath, json.dumps(rep, indent=2, default=json_default) + "\n")
    atomic_write_text(mpath, markdown_report(rep))
    return jpath, mpath


def json_default(obj: Any) -> Any:
    """json.dumps `default=` for the numpy scalars/arrays and paths that reports carry."""
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
