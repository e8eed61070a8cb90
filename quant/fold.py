"""Fold a trained one-time-step SNN into integer weights and integer thresholds.

Per block the float model computes (eval mode)

    u = W x + b  ->  [max-pool on u]  ->  y = c * u + d  ->  fire iff y >= theta

with BN written as its affine map, c = gamma / sqrt(var + eps) and d = beta - c * mu, and theta
the activation's effective threshold (Hoyer: |v_th| * E_run; Heaviside: its threshold). With
quantized weights W ~ s_j * Wq_j (one scale per output channel or per layer) and the input
x = a * xq (a = 1 for spikes, a = 1 / (2^k - 1) for k-bit pixels), u_j = s_j a acc_j + b_j with
the integer accumulator acc_j = sum_i Wq[j, i] xq_i. Solving the comparison for acc_j gives one
integer threshold per channel; docs/QUANTIZATION.md has the derivation and the pooling proof.

The torch side (`extract_blocks`) only reads parameters into `FloatBlock`s; the folding itself is
numpy so it can be tested exhaustively without a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.integer_network import Conv, Dense, Pool


class QuantError(SpikeforgeError):
    """A model the quantizer cannot map to the integer core. One line: layer, problem, fix."""


SUPPORTED_METHODS = ("hoyer", "fixed", "heaviside")  # fixed: the authors' E = 1 ablation (HoyerSpike)


@dataclass
class FloatBlock:
    """One block's float parameters, as numpy float64, in the order the hardware needs them."""

    index: int
    kind: str  # "dense" | "conv"
    weight: np.ndarray  # [out, in] or [cout, cin, kh, kw]
    bias: np.ndarray  # [out]
    in_shape: tuple[int, ...]  # (fan_in,) for dense, (cin, h, w) for conv
    stride: int = 1
    padding: int = 0
    pool: tuple[int, int] | None = None  # (kernel, stride) of a max-pool on the potentials
    bn_scale: np.ndarray | None = None  # c = gamma / sqrt(var + eps), per channel
    bn_shift: np.ndarray | None = None  # d = beta - c * mu, per channel
    theta: np.ndarray | None = None  # per-channel firing threshold; None marks the readout
    input_bits: int = 1  # > 1 only for the first layer (k-bit pixels)
    strict: bool = False  # fire on y > theta (NIR, snnTorch, Norse) rather than y >= theta

    @property
    def spiking(self) -> bool:
        return self.theta is not None

    @property
    def outputs(self) -> int:
        return int(self.weight.shape[0])

    def out_shape(self) -> tuple[int, ...]:
        """Shape after the op and the pool: (out,) or (cout, oh, ow)."""
        if self.kind == "dense":
            return (self.outputs,)
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        oh = (h + 2 * self.padding - kh) // self.stride + 1
        ow = (w + 2 * self.padding - kw) // self.stride + 1
        if self.pool is not None:
            k, s = self.pool
            oh, ow = (oh - k) // s + 1, (ow - k) // s + 1
        return (self.outputs, oh, ow)


@dataclass
class FoldInfo:
    """What folding one block decided, for the manifest and the report."""

    block: int
    flipped: list[int] = field(default_factory=list)  # channels with negative BN scale (negated)
    always: list[int] = field(default_factory=list)  # constant channels that always fire
    never: list[int] = field(default_factory=list)  # constant channels that never fire
    scale: list[float] = field(default_factory=list)  # weight scale per channel (or one)

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "flipped_channels": self.flipped,
            "always_fire": self.always,
            "never_fire": self.never,
            "weight_scale": self.scale,
        }


def input_scale(input_bits: int) -> float:
    """Float value of one integer input step: spikes are exact 0/1, pixels are xq / (2^k - 1)."""
    return 1.0 if input_bits <= 1 else 1.0 / ((1 << input_bits) - 1)


def _compare(y: float, theta: float, strict: bool) -> bool:
    return bool(y > theta) if strict else bool(y >= theta)


def fold_block(block: FloatBlock, wq: np.ndarray, scale: np.ndarray) -> tuple[list, FoldInfo]:
    """Integer layers (compute layer, then a Pool if the block pools) for one spiking block.

    `wq` holds the quantized weights and `scale` their per-channel float scales (a per-layer
    scale is passed repeated). The result fires exactly when the float block with weights
    scale * wq fires, for every input on the integer grid (up to float64 rounding at ties).
    """
    if not block.spiking:
        raise ValueError("fold_block folds spiking blocks; use fold_readout for the last block")
    out = block.outputs
    a = input_scale(block.input_bits)
    c = np.ones(out) if block.bn_scale is None else np.broadcast_to(block.bn_scale, (out,)).astype(np.float64)
    d = (
        np.zeros(out)
        if block.bn_shift is None
        else np.broadcast_to(block.bn_shift, (out,)).astype(np.float64)
    )
    theta = np.broadcast_to(np.asarray(block.theta, dtype=np.float64), (out,))
    step = np.asarray(scale, dtype=np.float64) * a  # float value of one accumulator unit
    weight = np.array(wq, dtype=np.int64, copy=True)
    threshold = np.zeros(out, dtype=np.int64)
    mode = np.zeros(out, dtype=np.uint8)
    info = FoldInfo(block.index, scale=[float(v) for v in np.asarray(scale, dtype=np.float64)])
    for j in range(out):
        if c[j] == 0.0 or step[j] == 0.0:
            # The potential no longer depends on the input: BN output is the constant
            # c*b + d (gamma == 0, or an all-zero weight row).
            fires = _compare(c[j] * block.bias[j] + d[j], theta[j], block.strict)
            weight[j] = 0
            threshold[j] = 0 if fires else 1
            (info.always if fires else info.never).append(j)
            continue
        # c*u + d >= theta  <=>  u >= bound (c > 0)  or  u <= bound (c < 0); with `strict` the
        # same bounds hold with > and <, and the loops below settle the integer boundary either way
        bound = (theta[j] - d[j]) / c[j]
        limit = (bound - block.bias[j]) / step[j]  # same comparison on acc (step > 0)
        if not math.isfinite(limit):
            raise QuantError(
                f"block {block.index} channel {j}: threshold folds to a non-finite value "
                f"({limit}); check the checkpoint's BN statistics and v_th"
            )

        def fires(acc: int, j: int = j) -> bool:
            # The float decision on an exact integer accumulator: the reference the fold must match.
            return _compare(c[j] * (step[j] * acc + block.bias[j]) + d[j], theta[j], block.strict)

        if c[j] > 0:
            t = math.ceil(limit)  # acc >= limit  <=>  acc >= ceil(limit) on integers
            # limit is rounded in float64; at an exact tie ceil can land one off, so settle the
            # boundary with the float comparison itself (monotone in acc, at most a step or two)
            while fires(t - 1):
                t -= 1
            while not fires(t):
                t += 1
            threshold[j] = t
        else:
            # acc <= limit  <=>  -acc >= -floor(limit): negate the weights, keep acc >= T
            top = math.floor(limit)
            while not fires(top):
                top -= 1
            while fires(top + 1):
                top += 1
            weight[j] = -weight[j]
            threshold[j] = -top
            mode[j] = 1  # max-pool then "u <= bound" is "every position fires": AND
            info.flipped.append(j)
    layers: list = []
    if block.kind == "dense":
        layers.append(Dense(weight, threshold, spiking=True, input_bits=block.input_bits))
    else:
        layers.append(
            Conv(
                weight,
                threshold,
                tuple(block.in_shape),
                block.stride,
                block.padding,
                spiking=True,
                input_bits=block.input_bits,
            )
        )
    if block.pool is not None:
        if block.kind != "conv":
            raise QuantError(f"block {block.index}: max-pool after a linear layer; pool only conv maps")
        k, s = block.pool
        cout, h, w = layers[0].outputs, *layers[0].out_hw
        layers.append(Pool(k, s, mode, in_shape=(cout, h, w)))
    return layers, info


def fold_readout(block: FloatBlock, wq: np.ndarray, scale: float) -> tuple[list, FoldInfo]:
    """The non-spiking last block: value_j = acc_j - T_j is the integer logit (logit / (s a)).

    One common scale keeps argmax: logit_j = s a acc_j + b_j = s a (acc_j + b_j / (s a)), so
    T_j = -round(b_j / (s a)). BN must already be folded into weight and bias (see `fold_bn`).
    """
    if block.pool is not None:
        raise QuantError(f"block {block.index}: the readout block pools; put the pool in an earlier block")
    if block.bn_scale is not None:
        raise ValueError("fold BN into the readout's weights first (fold_bn)")
    step = float(scale) * input_scale(block.input_bits)
    bias = np.asarray(block.bias, dtype=np.float64)
    threshold = -np.rint(bias / step).astype(np.int64) if step > 0 else np.zeros_like(bias, dtype=np.int64)
    weight = np.asarray(wq, dtype=np.int64)
    if block.kind == "dense":
        layer = Dense(weight, threshold, spiking=False, input_bits=block.input_bits)
    else:
        layer = Conv(
            weight,
            threshold,
            tuple(block.in_shape),
            block.stride,
            block.padding,
            spiking=False,
            input_bits=block.input_bits,
        )
    return [layer], FoldInfo(block.index, scale=[float(scale)])


def fold_bn(block: FloatBlock) -> FloatBlock:
    """BN of a non-spiking block folded into its float weights and bias (y = c (Wx + b) + d)."""
    if block.bn_scale is None:
        return block
    c = np.asarray(block.bn_scale, dtype=np.float64)
    shape = (-1,) + (1,) * (block.weight.ndim - 1)
    return FloatBlock(
        block.index,
        block.kind,
        block.weight * c.reshape(shape),
        c * block.bias + block.bn_shift,
        block.in_shape,
        block.stride,
        block.padding,
        block.pool,
        None,
        None,
        None,
        block.input_bits,
    )


# --- torch side -------------------------------------------------------------------------------


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t, dtype=np.float64)


def _square(value: Any, name: str, index: int) -> int:
    """torch stores kernel/stride/padding as int or tuple; the core needs one square value."""
    if isinstance(value, str):
        raise QuantError(f"block {index}: {name}={value!r} is not supported; use an integer {name}")
    if isinstance(value, tuple | list):
        if len(set(value)) != 1:
            raise QuantError(
                f"block {index}: non-square {name}={tuple(value)}; use equal {name} in both axes"
            )
        value = value[0]
    return int(value)


def _threshold(act: Any, index: int) -> np.ndarray:
    """Effective firing threshold on the BN output, from the activation's eval-mode contract."""
    import torch.nn as nn

    if isinstance(act, nn.ReLU | nn.ReLU6 | nn.LeakyReLU):
        raise QuantError(
            "quantize a hoyer/heaviside checkpoint; relu nets need conversion (--method convert)"
        )
    name = type(act).__name__
    if hasattr(act, "threshold_value"):  # HoyerSpike: |v_th| * running_threshold
        value = act.threshold_value()
    elif name == "HeavisideSpike" and hasattr(act, "threshold"):
        value = act.threshold
    else:
        raise QuantError(
            f"block {index}: activation {name} is not supported; use HoyerSpike or HeavisideSpike"
        )
    theta = np.atleast_1d(_np(value))
    if not np.all(np.isfinite(theta)):
        raise QuantError(f"block {index}: the firing threshold is not finite; retrain or check v_th")
    return theta


def extract_blocks(module: Any, input_shape: tuple[int, int, int], input_bits: int) -> list[FloatBlock]:
    """Read `module.blocks` (SpikeBlock(op, pool, bn, act)) into FloatBlocks; refuse what the core lacks."""
    import torch.nn as nn

    blocks = getattr(module, "blocks", None)
    if blocks is None or len(blocks) == 0:
        raise QuantError(
            "the model has no .blocks; rebuild it with spikeforge.model.nets.build_from_checkpoint"
        )
    shape: tuple[int, ...] = tuple(int(v) for v in input_shape)
    out: list[FloatBlock] = []
    last = len(blocks) - 1
    for index, blk in enumerate(blocks):
        if getattr(blk, "shortcut_from", None) is not None:
            raise QuantError(
                f"block {index}: residual shortcut from block {blk.shortcut_from} is not supported "
                "by the core; quantize a plain (mlp/cnn/vgg) architecture"
            )
        op, pool, bn, act = (getattr(blk, n, None) for n in ("op", "pool", "bn", "act"))
        if isinstance(op, nn.Linear):
            fan_in = int(np.prod(shape))
            if op.in_features != fan_in:
                raise QuantError(
                    f"block {index}: Linear expects {op.in_features} inputs but receives {fan_in}"
                )
            fb = FloatBlock(index, "dense", _np(op.weight), np.zeros(op.out_features), (fan_in,))
        elif isinstance(op, nn.Conv2d):
            if len(shape) != 3 or shape[0] != op.in_channels:
                raise QuantError(
                    f"block {index}: Conv2d expects {op.in_channels} channels but receives shape {shape}"
                )
            if _square(op.dilation, "dilation", index) != 1 or op.groups != 1 or op.padding_mode != "zeros":
                raise QuantError(
                    f"block {index}: conv with dilation/groups/non-zero padding mode is not supported; "
                    "use dilation=1, groups=1, padding_mode='zeros'"
                )
            _square(op.kernel_size, "kernel_size", index)
            fb = FloatBlock(
                index,
                "conv",
                _np(op.weight),
                np.zeros(op.out_channels),
                shape,
                _square(op.stride, "stride", index),
                _square(op.padding, "padding", index),
            )
        else:
            raise QuantError(
                f"block {index}: op {type(op).__name__} is not supported; use nn.Linear or nn.Conv2d"
            )
        if op.bias is not None:
            fb.bias = _np(op.bias)
        fb.input_bits = input_bits if index == 0 else 1
        if pool is not None:
            if not isinstance(pool, nn.MaxPool2d) or fb.kind != "conv":
                raise QuantError(
                    f"block {index}: pool {type(pool).__name__} is not supported; "
                    "use nn.MaxPool2d after a conv"
                )
            if (
                _square(pool.padding, "pool padding", index) != 0
                or _square(pool.dilation, "pool dilation", index) != 1
                or pool.ceil_mode
            ):
                raise QuantError(
                    f"block {index}: max-pool with padding/dilation/ceil_mode is not supported; "
                    "use padding=0, dilation=1, ceil_mode=False"
                )
            k = _square(pool.kernel_size, "pool kernel_size", index)
            fb.pool = (k, _square(pool.stride if pool.stride is not None else k, "pool stride", index))
        if bn is not None:
            if not isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d) or bn.running_mean is None:
                raise QuantError(
                    f"block {index}: normalisation {type(bn).__name__} is not supported; "
                    "use BatchNorm1d/2d with running statistics"
                )
            gamma = _np(bn.weight) if bn.weight is not None else np.ones(fb.outputs)
            beta = _np(bn.bias) if bn.bias is not None else np.zeros(fb.outputs)
            fb.bn_scale = gamma / np.sqrt(_np(bn.running_var) + bn.eps)
            fb.bn_shift = beta - fb.bn_scale * _np(bn.running_mean)
        if act is None:
            if index != last:
                raise QuantError(
                    f"block {index}: only the last block may be non-spiking; give it a spike activation"
                )
        else:
            if index == last:
                raise QuantError(
                    f"block {index}: the last block spikes; the readout must be non-spiking (act=None)"
                )
            theta = _threshold(act, index)
            if theta.size not in (1, fb.outputs):
                raise QuantError(
                    f"block {index}: {theta.size} thresholds for {fb.outputs} channels; "
                    "use one per channel or one per layer"
                )
            fb.theta = np.broadcast_to(theta, (fb.outputs,)).copy()
        shape = fb.out_shape()
        out.append(fb)
    return out
