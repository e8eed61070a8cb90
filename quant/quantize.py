"""Weight quantization, QAT fine-tuning and the checkpoint -> IntegerNetwork flow.

Weights are quantized symmetrically: s = max|w| / (2^(b-1) - 1), Wq = clip(round(w / s)), with
one s per output channel (`per_channel`) or per layer. The readout always uses one scale per
layer so that argmax over its outputs is preserved (quant/fold.py). Thresholds come from
quant/fold.py; inputs are pixels in [0, 1] quantized to `input_bits` bits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge.integer_network import IntegerNetwork
from spikeforge.quant.fold import (
    SUPPORTED_METHODS,
    FloatBlock,
    FoldInfo,
    QuantError,
    extract_blocks,
    fold_block,
    fold_bn,
    fold_readout,
)

ALLOWED_WEIGHT_BITS = (2, 3, 4, 5, 6, 7, 8, 16)


def check_bits(weight_bits: int, input_bits: int) -> None:
    """Refuse bit widths the core does not have, with the option to change."""
    if isinstance(weight_bits, bool) or weight_bits not in ALLOWED_WEIGHT_BITS:
        raise QuantError(f"--weight-bits {weight_bits} is not supported; use 2..8 or 16")
    if isinstance(input_bits, bool) or not isinstance(input_bits, int) or not 1 <= input_bits <= 8:
        raise QuantError(f"--input-bits {input_bits} is outside 1..8; use 1 <= --input-bits <= 8")


def quantize_weight(w: np.ndarray, bits: int, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric quantization: (Wq int64 like w, scale float64[out]); a zero row gets scale 0."""
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise QuantError("weights contain NaN or inf; the checkpoint is corrupt or training diverged")
    qmax = (1 << (bits - 1)) - 1
    rows = w.reshape(w.shape[0], -1)
    peak = np.abs(rows).max(axis=1) if per_channel else np.full(w.shape[0], np.abs(rows).max(initial=0.0))
    scale = peak / qmax
    safe = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(rows / safe[:, None]), -qmax, qmax).astype(np.int64)
    return q.reshape(w.shape), scale


@dataclass
class QuantResult:
    """The integer network plus what the quantizer decided, per block."""

    network: IntegerNetwork
    folds: list[FoldInfo]
    blocks: list[FloatBlock]
    block_last_layer: list[int] = field(default_factory=list)  # index in network.layers per block
    weight_bits: int = 8
    per_channel: bool = False


def quantize_blocks(
    blocks: list[FloatBlock],
    input_shape: tuple[int, int, int],
    num_classes: int,
    weight_bits: int = 8,
    per_channel: bool = False,
    input_bits: int = 8,
) -> QuantResult:
    """Quantize and fold float blocks (see fold.py) into an `IntegerNetwork`."""
    check_bits(weight_bits, input_bits)
    layers: list = []
    folds: list[FoldInfo] = []
    ends: list[int] = []
    for blk in blocks:
        if blk.spiking:
            wq, scale = quantize_weight(blk.weight, weight_bits, per_channel)
            new, info = fold_block(blk, wq, scale)
        else:
            blk = fold_bn(blk)
            wq, scale = quantize_weight(blk.weight, weight_bits, per_channel=False)
            new, info = fold_readout(blk, wq, float(scale[0]))
        layers.extend(new)
        folds.append(info)
        ends.append(len(layers) - 1)
    net = IntegerNetwork(layers, tuple(int(v) for v in input_shape), input_bits, int(num_classes))
    net.validate()
    return QuantResult(net, folds, blocks, ends, weight_bits, per_channel)


# --- checkpoints --------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint safely (spikeforge.model.checkpoint: no code runs) and check it."""
    from spikeforge.model.checkpoint import load_checkpoint as load

    return load(path)


def check_method(method: Any) -> None:
    """Only single-step threshold SNNs map to one integer comparison per neuron."""
    if method == "relu":
        raise QuantError(
            "quantize a hoyer/heaviside checkpoint; relu nets need conversion (--method convert)"
        )
    if method in ("convert", "bntt"):
        raise QuantError(
            f"method {method!r} is a multi-step SNN (IF neurons over T steps); the core runs "
            "one-time-step nets: quantize a hoyer/heaviside checkpoint"
        )
    if method not in SUPPORTED_METHODS:
        raise QuantError(f"checkpoint method {method!r} is unknown; quantize a hoyer/heaviside checkpoint")


def build_model(ckpt: dict[str, Any]) -> Any:
    """Rebuild the float module in eval mode (its fixed thresholds are what the hardware uses)."""
    from spikeforge.model.nets import build_from_checkpoint

    model = build_from_checkpoint(ckpt)
    model.eval()
    return model


def quantize_module(
    model: Any,
    dataset: dict[str, Any],
    weight_bits: int = 8,
    per_channel: bool = False,
    input_bits: int = 8,
) -> QuantResult:
    """Quantize an eval-mode module following the SpikeBlock contract."""
    input_shape = tuple(int(v) for v in dataset["input_shape"])
    blocks = extract_blocks(model, input_shape, input_bits)
    return quantize_blocks(
        blocks, input_shape, int(dataset["num_classes"]), weight_bits, per_channel, input_bits
    )


# --- QAT ---------------------------------------------------------------------------------------


def _fake_quant_param(bits: int, per_channel: bool) -> Any:
    """A parametrization that replaces a weight by its quantized value, gradient passed straight through."""
    import torch
    import torch.nn as nn

    qmax = float((1 << (bits - 1)) - 1)

    class FakeQuant(nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            rows = w.reshape(w.shape[0], -1)
            peak = rows.abs().amax(dim=1) if per_channel else rows.abs().amax().expand(w.shape[0])
            scale = (peak / qmax).clamp_min(1e-12).reshape((-1,) + (1,) * (w.dim() - 1))
            q = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
            return w + (q - w).detach()  # straight-through estimator

    return FakeQuant()


def qat_finetune(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    weight_bits: int,
    per_channel: bool,
    epochs: int,
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 64,
    lam: float = 0.0,
    progress: bool = True,
) -> Any:
    """Fine-tune with fake-quantized weights; train mode also re-estimates the running thresholds.

    The readout is fake-quantized per layer, as fold.py quantizes it. Returns the model in eval
    mode with plain float weights (fold.py then quantizes them to the same values the forward used).
    `lam` keeps the Hoyer regulariser of training in the loss (0 drops it).
    """
    import torch
    import torch.nn as nn
    import torch.nn.utils.parametrize as parametrize

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    last = len(model.blocks) - 1
    for index, blk in enumerate(model.blocks):
        parametrize.register_parametrization(
            blk.op, "weight", _fake_quant_param(weight_bits, per_channel and index != last)
        )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.as_tensor(x_train, dtype=torch.float32)
    y = torch.as_tensor(y_train, dtype=torch.long)
    from spikeforge.progress import Progress

    with Progress(disable=not progress) as bar:
        task = bar.add_task("QAT", total=epochs)
        for _ in range(epochs):
            model.train()
            order = torch.as_tensor(rng.permutation(len(x)))
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                out = model(x[idx])
                logits = out[0] if isinstance(out, tuple) else out
                loss = loss_fn(logits, y[idx])
                if lam and hasattr(model, "hoyer_loss"):
                    loss = loss + lam * model.hoyer_loss()
                opt.zero_grad()
                loss.backward()
                opt.step()
            bar.advance(task)
    for blk in model.blocks:
        parametrize.remove_parametrizations(blk.op, "weight", leave_parametrized=False)
    model.eval()
    return model
