"""Accuracy, spike rates, operation counts and energy of a trained SpikeBlock network.

Counting rules (per test sample, averaged over the test set):

- ``synops``: accumulates done by the spiking layers, i.e. for every layer after the first,
  the exact number of (non-zero input, output) pairs connected by a weight: a spike into a
  Linear layer costs ``out_features``; into a conv layer, one accumulate per output channel and
  per output position whose receptive field contains it (borders counted exactly).
- ``first_layer_macs``: the first layer gets analog pixels (direct encoding), so its dense
  multiply-accumulates are counted apart, as MACs.
- ``ann_macs``: the same network run densely as an ANN (every input non-zero); ``ann_flops``
  = 2 * ann_macs (one multiply plus one add).
- Bias adds, BN and pooling are left out of every count (they fold into thresholds or cost
  comparisons only); shortcut projections are left out too.

Energy uses Horowitz (ISSCC 2014, 45 nm) per-op numbers, int32 by default like the Hoyer paper
(E_AC = 0.1 pJ, E_MAC = 3.1 + 0.1 pJ); fp32 is reported as well:
  SNN = synops * E_add + first_layer_macs * (E_mult + E_add)
  ANN = ann_macs * (E_mult + E_add)
Memory reads are not counted, although they dominate on real hardware.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from spikeforge.model.layers import HoyerSpike
from spikeforge.model.nets import SNN

ENERGY_PJ = {
    "int8": {"add": 0.03, "mult": 0.2},
    "int32": {"add": 0.1, "mult": 3.1},
    "fp32": {"add": 0.9, "mult": 3.7},
}


def accumulate_count(op: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample number of (non-zero input, output) weight uses of `op` on input batch `x`."""
    nz = (x != 0).to(torch.float64)
    if isinstance(op, nn.Linear):
        return nz.flatten(1).sum(1) * op.out_features
    if isinstance(op, nn.Conv2d):
        if op.groups != 1:
            raise ValueError("grouped convolutions are not counted")
        ones = torch.ones(1, op.in_channels, *op.kernel_size, dtype=torch.float64, device=x.device)
        per_pos = F.conv2d(nz, ones, stride=op.stride, padding=op.padding, dilation=op.dilation)
        return per_pos.flatten(1).sum(1) * op.out_channels
    raise ValueError(f"cannot count ops of {type(op).__name__}")


def _broadcast(threshold: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel threshold shaped to divide a [n, c, h, w] potential (a scalar stays as is)."""
    if threshold.dim() == 1 and like.dim() > 2:
        return threshold.view(1, -1, *([1] * (like.dim() - 2))).to(like.device)
    return threshold.to(like.device)


@torch.no_grad()
def evaluate(model: SNN, x, y, batch_size: int = 500, device: str | torch.device = "cpu") -> dict:
    """Accuracy with the fixed (running) threshold, spike rates and op counts on (x, y)."""
    model.eval()
    x_t, y_t = torch.as_tensor(x), torch.as_tensor(y)
    n = len(x_t)
    nblocks = len(model.blocks)
    correct = 0
    spikes = [0.0] * nblocks
    neurons = [0] * nblocks
    ops = [0.0] * nblocks
    dense = [0.0] * nblocks
    near = [0.0] * nblocks  # potentials within 10 % of the threshold: |u / threshold - 1| < 0.1
    for i in range(0, n, batch_size):
        xb, yb = x_t[i : i + batch_size].to(device), y_t[i : i + batch_size].to(device)
        logits, traces = model.forward_traced(xb)
        correct += int((logits.argmax(1) == yb).sum())
        for k, (block, tr) in enumerate(zip(model.blocks, traces, strict=True)):
            ops[k] += float(accumulate_count(block.op, tr.input).sum())
            dense[k] += float(accumulate_count(block.op, torch.ones_like(tr.input[:1])).sum()) * len(xb)
            if block.act is not None:
                spikes[k] += float((tr.output != 0).sum())
                neurons[k] = tr.output[0].numel()
            if hasattr(block.act, "threshold_value"):
                near[k] += float(((tr.potential / _broadcast(block.act.threshold_value(), tr.potential) - 1).abs()
                                  < 0.1).sum())
    active = [k for k in range(nblocks) if model.blocks[k].act is not None]
    rates = [spikes[k] / (neurons[k] * n) for k in active]
    first_macs = dense[0] / n
    synops = sum(ops[1:]) / n
    ann_macs = sum(dense) / n
    out = {
        "test_accuracy_fixed_threshold": correct / n,
        "spike_rates": rates,
        "spike_rate_mean": sum(spikes[k] for k in active) / max(1, sum(neurons[k] for k in active) * n),
        "spikes_per_sample": sum(spikes) / n,
        "layer_neurons": [neurons[k] for k in active],
        "synops": synops,
        "synops_per_layer": [o / n for o in ops[1:]],
        "first_layer_macs": first_macs,
        "ann_macs": ann_macs,
        "ann_flops": 2 * ann_macs,
    }
    thresholded = [k for k in active if hasattr(model.blocks[k].act, "threshold_value")]
    if thresholded:  # the Hoyer paper's distribution shift (its Fig. 2), over every spiking layer
        out["near_threshold_share"] = sum(near[k] for k in thresholded) / (sum(neurons[k] for k in thresholded) * n)
        out["near_threshold_share_per_layer"] = [near[k] / (neurons[k] * n) for k in thresholded]
    for width, e in ENERGY_PJ.items():
        if width == "int8":
            continue
        out[f"energy_snn_pj_{width}"] = synops * e["add"] + first_macs * (e["mult"] + e["add"])
        out[f"energy_ann_pj_{width}"] = ann_macs * (e["mult"] + e["add"])
    return out


@torch.no_grad()
def accuracy(
    model: SNN,
    x,
    y,
    batch_size: int = 500,
    device: str | torch.device = "cpu",
    per_input_threshold: bool = False,
) -> float:
    """Test accuracy; `per_input_threshold` makes every Hoyer layer recompute E for each input."""
    model.eval()
    hoyer = [m for m in model.modules() if isinstance(m, HoyerSpike)]
    for m in hoyer:
        m.per_input_threshold = per_input_threshold
    try:
        x_t, y_t = torch.as_tensor(x), torch.as_tensor(y)
        correct = 0
        for i in range(0, len(x_t), batch_size):
            logits = model(x_t[i : i + batch_size].to(device))
            correct += int((logits.argmax(1).cpu() == y_t[i : i + batch_size]).sum())
        return correct / len(x_t)
    finally:
        for m in hoyer:
            m.per_input_threshold = False
