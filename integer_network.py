"""Integer networks and their vectorised functional golden model.

This is the bit-exact reference the RTL is verified against: the same widths and the same
wrap-around as the hardware. Per output neuron j the core computes

    acc_j   = wrap(sum_i x_i * W[j, i], acc_bits)      (x_i: spike bits, or k-bit pixels)
    value_j = acc_j - T_j                               (exact, acc_bits + 1 bits)
    spike_j = value_j >= 0

A readout layer (``spiking=False``) returns ``value_j``; the class is the argmax (lowest index
wins ties). Multi-bit first-layer inputs are processed MSB plane first with the accumulator
doubled between planes; because wrap-around is a ring homomorphism, that equals wrapping the
exact sum, which is what this model computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError


class NetworkError(SpikeforgeError):
    """An integer network that is inconsistent (shapes, widths, layer order)."""


def wrap_signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to `bits` bits (what a `bits`-wide register holds)."""
    values = np.asarray(values, dtype=np.int64)
    mask = (1 << bits) - 1
    half = 1 << (bits - 1)
    return ((values + half) & mask) - half


def signed_bits_for_range(lo: int, hi: int) -> int:
    """Smallest two's-complement width that holds every integer in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass
class Dense:
    """Fully connected layer: weight[out, in], one threshold per output."""

    weight: np.ndarray
    threshold: np.ndarray
    spiking: bool = True
    input_bits: int = 1

    kind = "dense"

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def outputs(self) -> int:
        return int(self.weight.shape[0])

    def weight_matrix(self) -> np.ndarray:
        """Weights as [outputs, fan_in]: the row an output neuron's PE stores."""
        return self.weight


@dataclass
class Conv:
    """2-D convolution on a [cin, h, w] map; one threshold per output channel."""

    weight: np.ndarray  # [cout, cin, kh, kw]
    threshold: np.ndarray  # [cout]
    in_shape: tuple[int, int, int]
    stride: int = 1
    padding: int = 0
    spiking: bool = True
    input_bits: int = 1

    kind = "conv"

    @property
    def fan_in(self) -> int:
        return int(np.prod(self.weight.shape[1:]))

    @property
    def outputs(self) -> int:
        """Output channels: the neurons one command (one output position) computes."""
        return int(self.weight.shape[0])

    @property
    def out_hw(self) -> tuple[int, int]:
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        return ((h + 2 * self.padding - kh) // self.stride + 1, (w + 2 * self.padding - kw) // self.stride + 1)

    @property
    def positions(self) -> int:
        oh, ow = self.out_hw
        return oh * ow

    def weight_matrix(self) -> np.ndarray:
        return self.weight.reshape(self.weight.shape[0], -1)

    def im2col(self, x: np.ndarray) -> np.ndarray:
        """[batch, cin, h, w] -> [batch, positions, cin*kh*kw], zero padding, row-major positions."""
        cin, kh, kw = self.weight.shape[1:]
        p, s = self.padding, self.stride
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        oh, ow = self.out_hw
        cols = np.empty((x.shape[0], oh * ow, cin * kh * kw), dtype=x.dtype)
        for oy in range(oh):
            for ox in range(ow):
                patch = xp[:, :, oy * s: oy * s + kh, ox * s: ox * s + kw]
                cols[:, oy * ow + ox] = patch.reshape(x.shape[0], -1)
        return cols


@dataclass
class Pool:
    """Max-pooling of spike maps, per channel an OR (mode 0) or an AND (mode 1).

    Max-pool of potentials followed by a threshold equals OR-pooling of the spikes when the
    channel's map from potential to spike is monotone increasing. When BN's scale is negative the
    quantizer flips the channel's signs so that the hardware still compares ``acc >= T``; then
    ``max(u) <= T'`` becomes "every position fires", an AND.
    """

    kernel: int
    stride: int
    mode: np.ndarray  # uint8 [channels]
    in_shape: tuple[int, int, int] = (0, 0, 0)

    kind = "pool"

    @property
    def out_hw(self) -> tuple[int, int]:
        _, h, w = self.in_shape
        return ((h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1)

    def apply(self, spikes: np.ndarray) -> np.ndarray:
        """[batch, c, h, w] bool -> pooled bool map."""
        oh, ow = self.out_hw
        k, s = self.kernel, self.stride
        windows = np.stack(
            [spikes[:, :, dy: dy + s * oh: s, dx: dx + s * ow: s] for dy in range(k) for dx in range(k)], axis=0
        )
        any_ = windows.any(axis=0)
        all_ = windows.all(axis=0)
        use_and = np.asarray(self.mode, dtype=bool)[None, :, None, None]
        return np.where(use_and, all_, any_)


Layer = Dense | Conv | Pool


@dataclass
class IntegerNetwork:
    """An integer SNN as the hardware runs it, plus the input quantization of its first layer."""

    layers: list[Layer]
    input_shape: tuple[int, int, int]
    input_bits: int = 8
    num_classes: int = 10
    meta: dict = field(default_factory=dict)
    # None: the one-time-step network above. Set: T steps with membrane state (integer_multistep.py).
    multistep: Any = None

    @property
    def compute_layers(self) -> list[Dense | Conv]:
        return [layer for layer in self.layers if layer.kind != "pool"]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float pixels in [0, 1] -> unsigned `input_bits` integers (round to nearest)."""
        levels = (1 << self.input_bits) - 1
        return np.clip(np.rint(np.asarray(x, dtype=np.float64) * levels), 0, levels).astype(np.int64)

    def validate(self, acc_bits: int | None = None) -> None:
        """Check shapes and layer order; with acc_bits, also that no accumulator can overflow."""
        if not self.layers:
            raise NetworkError("network has no layers; quantize a trained checkpoint first")
        last = self.layers[-1]
        if last.kind == "pool" or last.spiking:
            raise NetworkError("the last layer must be a non-spiking readout (spiking=false)")
        for index, layer in enumerate(self.layers):
            if layer.kind != "pool" and not layer.spiking and layer is not last:
                raise NetworkError(f"layer {index} is non-spiking but not last; only the readout may be non-spiking")
            if layer.kind != "pool" and layer.input_bits > 1 and index != 0:
                raise NetworkError(
                    f"layer {index}: input_bits={layer.input_bits} but only the first layer is multi-bit"
                )
        if acc_bits is not None:
            need = self.required_acc_bits()
            if need > acc_bits:
                raise NetworkError(
                    f"acc_bits={acc_bits} is too narrow: the worst-case accumulator needs {need} bits; "
                    f"use --acc-bits {need} or more"
                )

    def layer_acc_bounds(self) -> list[tuple[int, int]]:
        """Per compute layer, the worst-case [lo, hi] of the accumulator over all inputs.

        hi = max_j sum of positive weights of j times the largest input, lo likewise with the
        negative weights; 0 is included because every tile starts from a cleared accumulator.
        """
        bounds = []
        for layer in self.compute_layers:
            w = layer.weight_matrix().astype(np.int64)
            xmax = (1 << layer.input_bits) - 1
            pos = np.where(w > 0, w, 0).sum(axis=1) * xmax
            neg = np.where(w < 0, w, 0).sum(axis=1) * xmax
            bounds.append((int(min(neg.min(initial=0), 0)), int(max(pos.max(initial=0), 0))))
        return bounds

    def layer_required_acc_bits(self) -> list[int]:
        """Per compute layer: bits for the accumulator's range and for the thresholds.

        The hardware forms acc - T in acc_bits + 1 bits exactly, so acc_bits only has to hold
        the accumulator and the threshold themselves; the comparison never wraps.
        """
        need = []
        for (lo, hi), layer in zip(self.layer_acc_bounds(), self.compute_layers, strict=True):
            t_lo, t_hi = int(layer.threshold.min(initial=0)), int(layer.threshold.max(initial=0))
            if self.multistep is not None:  # thresholds live in the neuron unit (membrane_bits)
                t_lo = t_hi = 0
            need.append(max(signed_bits_for_range(lo, hi), signed_bits_for_range(t_lo, t_hi), 2))
        return need

    def required_acc_bits(self) -> int:
        """Minimum accumulator width for the whole network (the widest layer)."""
        return max(self.layer_required_acc_bits(), default=2)

    def required_weight_bits(self) -> int:
        lo = min(int(layer.weight_matrix().min()) for layer in self.compute_layers)
        hi = max(int(layer.weight_matrix().max()) for layer in self.compute_layers)
        return max(2, signed_bits_for_range(lo, hi))

    def forward(self, x: np.ndarray, acc_bits: int = 32, collect: bool = False):
        """Integer inference on a batch of float images in [0, 1] ([batch, c, h, w]).

        Returns (predictions, readout values) or, with collect=True, also the per-layer outputs
        (spike maps as bool arrays, readout as int64).
        """
        if self.multistep is not None:
            from spikeforge.integer_multistep import forward_multistep, required_widths

            widths = required_widths(self)
            return forward_multistep(self, x, acc_bits, widths["membrane_bits"], collect=collect)
        act = self.quantize_input(x)
        outputs = []
        for layer in self.layers:
            if layer.kind == "pool":
                act = layer.apply(act.astype(bool))
                outputs.append(act)
                continue
            if layer.kind == "dense":
                flat = act.reshape(act.shape[0], -1).astype(np.int64)
                acc = flat @ layer.weight.astype(np.int64).T
            else:
                cols = layer.im2col(act.astype(np.int64))
                acc = cols @ layer.weight_matrix().astype(np.int64).T  # [b, positions, cout]
                oh, ow = layer.out_hw
                acc = acc.transpose(0, 2, 1).reshape(act.shape[0], layer.outputs, oh, ow)
            acc = wrap_signed(acc, acc_bits)
            t = layer.threshold.astype(np.int64)
            t = t[None, :, None, None] if layer.kind == "conv" else t[None, :]
            value = acc - t
            act = value >= 0 if layer.spiking else value
            outputs.append(act)
        logits = act.reshape(act.shape[0], -1)
        pred = np.argmax(logits, axis=1)
        if collect:
            return pred, logits, outputs
        return pred, logits
