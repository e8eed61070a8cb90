"""The estimate's report files: Markdown and JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import atomic_write_text
from spikeforge.sim.estimate.area import area_summary


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
        f"- zero-skipping int8 DNN (a MAC only per non-zero input): {en['dnn_int8_zero_skip']['total_pj']:.1f} pJ "
        f"({en['dnn_int8_zero_skip']['macs']:.0f} MACs); zero-skipping DNN / SNN = "
        f"{en['zero_skip_dnn_over_snn']:.2f}x",
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
