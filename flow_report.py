"""The flow's report: Markdown + JSON + PNG plots from the stages' results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spikeforge import atomic_write_text
from spikeforge.sim.estimate.anchors import TABLE_HEADER, anchor_rows_markdown, fmt

if TYPE_CHECKING:
    from spikeforge.flow_stages import FlowOptions


def area_line(est: dict) -> tuple[str, dict]:
    from spikeforge.sim.estimate import area_summary

    area = area_summary(est["area"])
    fast = est["area"]["fast"]
    text = (f"{area.get('lut4', 0):,.0f} LUT4, {area.get('ff', 0):,.0f} FF, {area.get('ebr', 0):,.0f} EBR, "
            f"{fast['ge_logic']:,.0f} GE logic ({est['area']['source']})")
    return text, area


def headline(args: FlowOptions, train: dict, quant: dict, gen: dict, verify: dict, est: dict) -> dict:
    q = quant["report"]
    lat = est["latency"]
    images = verify.get("per_image", [])
    matches = sum(1 for im in images if im["golden"] == im["rtl"]) if isinstance(images, list) else 0
    text, _ = area_line(est)
    return {
        "dataset": args.dataset,
        "arch": "nir" if getattr(args, "nir", None) else args.arch,
        "method": "nir" if getattr(args, "nir", None) else args.method,
        "shape": f"{args.rows}x{args.cols}",
        "weight_bits": args.weight_bits,
        "input_bits": int(q["input_bits"]),
        "float_accuracy": 100 * q["float_accuracy"],
        "integer_accuracy": 100 * q["integer_accuracy"],
        "agreement": 100 * q["agreement"],
        "rtl_samples": len(images) if isinstance(images, list) else 0,
        "rtl_matches": matches,
        "rtl_bit_exact": bool(verify.get("bit_exact")),
        "rtl_cycle_exact": bool(verify.get("cycle_exact")),
        "rtl_sample_accuracy": _sample_accuracy(verify),
        "cycles_mean": lat["cycles"]["mean"],
        "cycles_p99": lat["cycles"]["p99"],
        "ideal_cycles_mean": lat["ideal_cycles"]["mean"],
        "dense_cycles_mean": lat["dense_cycles"]["mean"],
        "speedup_vs_dense": lat["speedup_vs_dense"],
        "fmax_mhz": lat["fmax_mhz"],
        "fmax_source": lat.get("fmax_source", ""),
        "latency_us": lat["latency_us"]["mean"],
        "throughput": lat["throughput_inferences_per_s"],
        "area": text,
        "energy_nj": est["energy"]["snn"]["total_pj"] / 1000,
        "pj_per_synop": est["energy"]["snn"]["pj_per_synop"],
        "dnn_energy_nj": est["energy"]["dnn_int8"]["total_pj"] / 1000,
        # multi-step SNNs (issue 16): T, the step the hardware runs to, the input coding
        "timesteps": int(q.get("timesteps", 1)),
        "exit_step": int(q.get("exit_step", 1)),
        "input_coding": q.get("input_coding", "direct"),
        "zero_skip_dnn_energy_nj": est["energy"]["dnn_int8_zero_skip"]["total_pj"] / 1000,
    }


def _sample_accuracy(verify: dict) -> float | None:
    images = verify.get("per_image")
    labels = verify.get("labels")
    if not isinstance(images, list) or not labels:
        return None
    return 100 * sum(int(im["rtl"] == lab) for im, lab in zip(images, labels, strict=False)) / len(images)


def plots(out: Path, quant: dict, est: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rates = quant["report"].get("spike_rates", [])
    if rates:
        fig, ax = plt.subplots(figsize=(5, 3))
        xs = range(len(rates))
        ax.bar([x - 0.2 for x in xs], [r["float"] for r in rates], width=0.4, label="float")
        ax.bar([x + 0.2 for x in xs], [r["integer"] for r in rates], width=0.4, label="integer")
        ax.set_xticks(list(xs), [f"layer {r['block']}" for r in rates])
        ax.set_ylabel("spike rate")
        ax.set_title("Spike rate per spiking layer")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "spike_rates.png", dpi=120)
        plt.close(fig)
        written.append("spike_rates.png")
    layers = est["latency"]["per_layer"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    xs = range(len(layers))
    for offset, key, label in ((-0.27, "ideal_cycles", "ideal (spike count)"), (0.0, "cycles", "spikeforge core"),
                               (0.27, "dense_cycles", "no zero-skipping")):
        ax.bar([x + offset for x in xs], [layer[key]["mean"] for layer in layers], width=0.27, label=label)
    ax.set_xticks(list(xs), [f"layer {layer['layer']} ({layer['kind']})" for layer in layers])
    ax.set_ylabel("cycles per image (mean)")
    ax.set_title("Cycles per layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "cycles_per_layer.png", dpi=120)
    plt.close(fig)
    written.append("cycles_per_layer.png")
    return written


def selection_markdown(sel: dict) -> list[str]:
    """The `--input-bits auto` section: each width's validation and test integer accuracy, the rule, the choice."""
    lines = [
        "## Input bits (--input-bits auto)",
        "",
        f"Chosen: **{sel['chosen']}-bit inputs**. Rule: the {sel['rule']}. Validation: {sel['val_size']} images "
        f"held out of the training set (every candidate trains without them); the test set played no part in "
        f"the choice. 8-bit reference: {100 * sel['reference_val_accuracy']:.2f} % on validation.",
        "",
        "| input bits | validation integer accuracy | test integer accuracy | within "
        f"{sel['tolerance_pp']} pp of 8 bits |",
        "|---|---|---|---|",
    ]
    for row in sel["candidates"]:
        mark = " (chosen)" if row["input_bits"] == sel["chosen"] else ""
        lines.append(f"| {row['input_bits']}{mark} | {100 * row['val_accuracy']:.2f} % | "
                     f"{100 * row['test_accuracy']:.2f} % | {'yes' if row['passes'] else 'no'} |")
    lines += ["", f"The rest of the flow ran on `{sel['train']}/` and `{sel['quantize']}/`.", ""]
    return lines


def markdown(args: FlowOptions, h: dict, train: dict, quant: dict, gen: dict, verify: dict, est: dict,
             figures: list[str], selection: dict | None = None) -> str:
    q = quant["report"]
    lat = est["latency"]
    en = est["energy"]
    _, area = area_line(est)
    fast = est["area"]["fast"]
    mem = est["area"].get("memory_bits", {})
    lines = [
        f"# spikeforge flow report: {h['dataset']} {h['arch']} ({h['method']}) on a {h['shape']} core",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| float accuracy (fixed threshold) | {h['float_accuracy']:.2f} % |",
        f"| integer accuracy (golden model, {q['weight_bits']}-bit weights) | {h['integer_accuracy']:.2f} % |",
        f"| float/integer agreement | {h['agreement']:.2f} % |",
        f"| RTL-verified sample ({verify.get('sim')}) | {h['rtl_matches']}/{h['rtl_samples']} predictions equal "
        f"to the golden model; bit-exact {h['rtl_bit_exact']}, cycle-exact {h['rtl_cycle_exact']} |",
        f"| cycles per image | {h['cycles_mean']:.1f} mean, {h['cycles_p99']:.0f} p99 "
        f"(ideal {h['ideal_cycles_mean']:.1f}, dense {h['dense_cycles_mean']:.0f}) |",
        f"| zero-skip speed-up over dense | {h['speedup_vs_dense']:.2f}x |",
        *([f"| time steps | T = {h['timesteps']}, run to step {h['exit_step']} (input: {h['input_coding']}); "
           f"{h['cycles_mean'] / h['exit_step']:.1f} cycles per step |"] if h["timesteps"] > 1 else []),
        f"| latency | {h['latency_us']:.2f} µs at {h['fmax_mhz']:.1f} MHz ({h['fmax_source']}); "
        f"{h['throughput']:,.0f} images/s |",
        f"| area | {h['area']} |",
        f"| energy per inference | {h['energy_nj']:.2f} nJ ({h['pj_per_synop']:.2f} pJ per synaptic op); "
        f"int8 MAC DNN {h['dnn_energy_nj']:.2f} nJ, zero-skipping int8 DNN {h['zero_skip_dnn_energy_nj']:.2f} nJ |",
        "",
        *(selection_markdown(selection) if selection else []),
        "## Accuracy and spikes",
        "",
        f"- Training: `{' '.join(train.get('argv', ['(given checkpoint)']))}`",
        f"- Integer model: {q['weight_bits']}-bit weights "
        f"({'per channel' if q.get('per_channel') else 'per layer'}), {q['input_bits']}-bit inputs, "
        f"accumulators need {q['acc_bits_required']} bits (per layer {q.get('layer_acc_bits')}).",
        f"- RTL sample: {h['rtl_samples']} test images; accuracy on the sample "
        f"{fmt(h['rtl_sample_accuracy'], 1, ' %')} (RTL predictions).",
        "",
        "| spiking layer | float spike rate | integer spike rate |",
        "|---|---|---|",
    ]
    lines += [f"| {r['block']} | {r['float']:.4f} | {r['integer']:.4f} |" for r in q.get("spike_rates", [])]
    lines += [
        "",
        "## Cycles and latency",
        "",
        "Exact cycles of the timing contract (docs/ARCHITECTURE.md) over the whole test set; the RTL "
        "matched them cycle for cycle on the verified sample.",
        "",
        "| layer | kind | commands | cycles mean | p99 | ideal mean | dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer in lat["per_layer"]:
        lines.append(f"| {layer['layer']} | {layer['kind']} | {layer['commands']['mean']:.0f} | "
                     f"{layer['cycles']['mean']:.1f} | {layer['cycles']['p99']:.0f} | "
                     f"{layer['ideal_cycles']['mean']:.1f} | {layer['dense_cycles']['mean']:.0f} |")
    lines += [
        "",
        "## Area",
        "",
        f"Source: {est['area']['source']}. Memory bits: weights {mem.get('weights', fast.get('memory_weight_bits'))}, "
        f"thresholds {mem.get('thresholds', fast.get('memory_threshold_bits'))}.",
        "",
        "| LUT4 | FF | CCU2C | EBR | DPR16X4 | GE (logic) | Fmax (MHz) |",
        "|---|---|---|---|---|---|---|",
        f"| {area.get('lut4', 0):,.0f} | {area.get('ff', 0):,.0f} | {fast.get('ccu2c', 0):,.0f} | "
        f"{area.get('ebr', 0):,.0f} | {area.get('dpr16x4', 0):,.0f} | {fast['ge_logic']:,.0f} | "
        f"{h['fmax_mhz']:.1f} ({h['fmax_source']}) |",
        "",
        "## Energy",
        "",
        f"{en['snn']['total_pj'] / 1000:.2f} nJ per inference: "
        + ", ".join(f"{k} {v / 1000:.2f} nJ" for k, v in en["snn"]["parts_pj"].items())
        + f". The same network as an int8 MAC DNN: {en['dnn_int8']['total_pj'] / 1000:.2f} nJ "
        f"(compute only: SNN {en['snn']['compute_pj'] / 1000:.2f} nJ vs "
        f"DNN {en['dnn_int8']['compute_pj'] / 1000:.2f} nJ); as a zero-skipping int8 DNN (a MAC only per "
        f"non-zero input): {en['dnn_int8_zero_skip']['total_pj'] / 1000:.2f} nJ. "
        f"Per-op energies: {en['model']['source']}.",
        "",
        "## Against published FPGA SNN accelerators",
        "",
        f"**Not like for like:** spikeforge's row is {h['dataset']} "
        f"({'8x8 pixels, 64 inputs' if h['dataset'] == 'digits' else h['dataset']}) "
        "on an ECP5 estimate; the others are MNIST (28x28, 784 inputs) on Xilinx parts as their authors "
        "report them. See docs/results/mnist-class.md for the MNIST-class head-to-head.",
        "",
        *TABLE_HEADER,
        f"| **spikeforge** {h['shape']} | {h['dataset']}; ECP5 ({est['area']['source']}) | "
        f"{h['integer_accuracy']:.2f} % | {area.get('lut4', 0):,.0f} LUT4 | {area.get('ff', 0):,.0f} | "
        f"{area.get('ebr', 0):,.0f} | 0 | {h['fmax_mhz']:.1f} | {h['latency_us']:.2f} | {h['throughput']:,.0f} | "
        f"{h['energy_nj'] / 1000:.4f} (45 nm model) | this run |",
        *anchor_rows_markdown(),
        "",
        "n/r: not reported. Anchor energies are the authors' power x latency (whole FPGA); "
        "spikeforge's is the 45 nm op-count model of the core alone.",
        "",
        "## Files",
        "",
        f"- Verilog: `generate/{gen['verilog']}` (lint: {gen['lint']}); FuseSoC core: "
        f"`generate/rtl/{gen['top']}.core`; memory init: `generate/rtl/mem/`; core manifest: `generate/rtl/core.json`",
        f"- Integer model: `{selection['quantize'] if selection else 'quantize'}/artifact/` "
        "(`manifest.json`, `weights.npz`, `network.nir`)",
        "- RTL verification: `verify/verify.json`; estimate: `estimate/estimate.md`, `estimate/estimate.json`",
        *[f"- Plot: `report/{f}`" for f in figures],
        "",
    ]
    return "\n".join(lines)


def write_flow_report(out: Path, args: FlowOptions, train: dict, quant: dict, gen: dict, verify: dict,
                      est: dict, selection: dict | None = None) -> dict[str, Any]:
    """report.json + report.md (+ plots) into `out`; `selection`: the --input-bits auto record
    (spikeforge.input_width.selection_table), reported as report.json's "input_bits_selection"."""
    h = headline(args, train, quant, gen, verify, est)
    figures = plots(out, quant, est)
    report = {"schema": "spikeforge-flow-report", "schema_version": 1, "headline": h, "train": train.get("metrics"),
              "quantize": quant["report"], "generate": gen, "verify": verify, "estimate": est, "figures": figures}
    if selection is not None:
        report["input_bits_selection"] = selection
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(out / "report.md", markdown(args, h, train, quant, gen, verify, est, figures, selection))
    return {"headline": h, "figures": figures}
