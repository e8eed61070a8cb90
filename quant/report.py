"""Float vs integer comparison of a quantized model: accuracy, agreement, spike rates per block.

The integer side is `IntegerNetwork.forward` (integer_network.py), the golden model the RTL is
checked against, so these numbers are what the hardware will produce.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from spikeforge.quant.quantize import QuantResult


def float_predict(model: Any, x: np.ndarray, batch: int = 512) -> tuple[np.ndarray, list[float]]:
    """Eval-mode predictions of the torch model and the mean spike rate of each spiking block."""
    import torch

    model.eval()
    preds, sums, count = [], None, 0
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.as_tensor(x[start : start + batch], dtype=torch.float32)
            logits, traces = model.forward_traced(xb)
            preds.append(logits.argmax(dim=1).numpy())
            rates = [float(t.output.float().sum()) / t.output[0].numel() for t in traces[:-1]]
            sums = rates if sums is None else [a + b for a, b in zip(sums, rates, strict=True)]
            count += len(xb)
    return np.concatenate(preds), [s / count for s in (sums or [])]


def integer_predict(qres: QuantResult, x: np.ndarray, batch: int = 512) -> tuple[np.ndarray, list[float]]:
    """Golden-model predictions and the spike rate at the end of each spiking block (after its pool)."""
    net = qres.network
    preds, sums, count = [], None, 0
    ends = qres.block_last_layer[:-1]
    for start in range(0, len(x), batch):
        pred, _, outs = net.forward(x[start : start + batch], collect=True)
        preds.append(pred)
        rates = [float(outs[i].sum()) / outs[i][0].size for i in ends]
        sums = rates if sums is None else [a + b for a, b in zip(sums, rates, strict=True)]
        count += len(pred)
    return np.concatenate(preds), [s / count for s in (sums or [])]


def build_report(
    model: Any, qres: QuantResult, x: np.ndarray, y: np.ndarray, reference: Any = None
) -> dict[str, Any]:
    """Accuracies, agreement and spike rates on (x, y).

    `model` is the float model that was folded (after QAT, if any); `reference`, when given, is
    the original checkpoint's model, whose accuracy is the "float" figure to compare against.
    """
    fpred, frates = float_predict(model, x)
    ipred, irates = integer_predict(qres, x)
    report = compare(fpred, frates, ipred, irates, y, qres)
    if reference is not None:
        rpred, _ = float_predict(reference, x)
        report["folded_float_accuracy"] = report["float_accuracy"]  # the QAT-tuned float model
        report["float_accuracy"] = float(np.mean(rpred == np.asarray(y)))
        report["agreement_with_original"] = float(np.mean(rpred == ipred))
        report["accuracy_drop_pp"] = 100.0 * (report["float_accuracy"] - report["integer_accuracy"])
    return report


def compare(fpred: np.ndarray, frates: list[float], ipred: np.ndarray, irates: list[float], y: np.ndarray,
            qres: QuantResult) -> dict[str, Any]:
    """The report of float predictions `fpred` (a torch model, or a NIR graph's reference executor)
    against the golden model's `ipred`, with both sides' spike rates per spiking block."""
    y = np.asarray(y)
    report: dict[str, Any] = {
        "samples": int(len(y)),
        "float_accuracy": float(np.mean(fpred == y)),
        "integer_accuracy": float(np.mean(ipred == y)),
        "agreement": float(np.mean(fpred == ipred)),
        "weight_bits": qres.weight_bits,
        "per_channel": qres.per_channel,
        "input_bits": qres.network.input_bits,
        "acc_bits_required": qres.network.required_acc_bits(),
        "layer_acc_bits": qres.network.layer_required_acc_bits(),
        "spike_rates": [
            {"block": i, "float": f, "integer": r}
            for i, (f, r) in enumerate(zip(frates, irates, strict=True))
        ],
    }
    report["accuracy_drop_pp"] = 100.0 * (report["float_accuracy"] - report["integer_accuracy"])
    return report


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    what = "float accuracy (NIR graph, reference executor)" if report.get("source") == "nir" else \
        "float accuracy (eval, fixed threshold)"
    rows = [(what, f"{100 * report['float_accuracy']:.2f} %")]
    if "folded_float_accuracy" in report:
        rows.append(("float accuracy after QAT", f"{100 * report['folded_float_accuracy']:.2f} %"))
    rows += [
        ("integer accuracy (golden model)", f"{100 * report['integer_accuracy']:.2f} %"),
        ("drop", f"{report['accuracy_drop_pp']:+.2f} pp"),
        ("float/integer agreement", f"{100 * report['agreement']:.2f} %"),
        (
            "weight bits",
            f"{report['weight_bits']} ({'per channel' if report['per_channel'] else 'per layer'})",
        ),
        ("input bits", str(report["input_bits"])),
        ("accumulator bits (per layer)", ", ".join(map(str, report["layer_acc_bits"]))),
    ]
    if "timesteps" in report:  # multi-step (quant/multistep.py)
        rows += [("time steps T / early-exit step", f"{report['timesteps']} / {report['exit_step']}"),
                 ("input coding", report["input_coding"]),
                 ("membrane / scale / offset bits",
                  f"{report['membrane_bits']} / {report['scale_bits']} / {report['offset_bits']}")]
    if "readout" in report:
        rows += [("readout (NIR graph)", report["readout"]), ("time step dt (NIR graph)", f"{report['dt']:g} s")]
    rows += [
        (f"spike rate block {r['block']} (float / int)", f"{r['float']:.4f} / {r['integer']:.4f}")
        for r in report["spike_rates"]
    ]
    return rows


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Quantization report",
        "",
        f"Test samples: {report['samples']}",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in _rows(report)]
    return "\n".join(lines) + "\n"


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="spikeforge quantize")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in _rows(report):
        table.add_row(k, v)
    Console().print(table)
