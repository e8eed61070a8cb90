"""Integer export of multi-step SNNs: BNTT (model/bntt.py) and converted IF nets (model/convert.py).

BNTT, hidden layer l, step t, neuron j (eval mode):  z = g_tj * (W h_t - mu_tj), g = gamma/sqrt(var+eps),
U_t = leak U_{t-1} + z, spike = U_t > 1, U_t -= spike. With W = s_w * Wq and the membrane in units of
1/Theta, the neuron unit adds  scale_tj * acc + offset_tj  with scale = round(g s_w Theta) and
offset = round(-g mu Theta); Theta is chosen per layer so that the largest |scale| fills
SCALE_BITS. `U > 1` becomes `U >= Theta + 1` (the hardware's >=), leak = 1 - 2^-k is U - (U >> k)
(the checkpoint must have been trained with such a leak), reset by subtraction of the threshold.
The readout integrates acc without leak (scale 1, offset 0) and the class is argmax of U after the
early-exit step. Inputs are host-drawn Poisson spikes (integer_multistep.poisson_spikes).

Converted, layer l: U += W' s + b' each step, spike = U >= 1, U -= 1 (Rueckauer et al. 2017). In
units of the layer's weight scale: threshold = round(1 / s_w) (first layer: 2^bits - 1 times that,
because its input is the bits-bit image), offset = round(b' / s_w), scale 1: accumulate-only. The
first layer's accumulator is computed once and re-added every step. Average pooling of spikes
before a layer is folded into that layer's weights (each weight spread over the 2x2 window, / 4),
so the layer takes the unpooled spikes and stays accumulate-only (BNTT_AND_CONVERSION.md §5).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeforge.integer_multistep import MultiStep, NeuronSteps, forward_multistep, poisson_spikes, required_widths
from spikeforge.integer_network import Conv, Dense, IntegerNetwork
from spikeforge.quant.fold import QuantError
from spikeforge.quant.quantize import quantize_weight

SCALE_BITS = 12  # the neuron unit's per-step scale (one multiply per neuron and step, BNTT only)


def leak_shift_of(leak: float) -> int:
    """k with leak == 1 - 2^-k exactly (1.0: no leak, k = 0); refuse any other leak in one line."""
    if leak == 1.0:
        return 0
    k = -math.log2(1.0 - leak) if 0 < leak < 1 else float("nan")
    if not (k == k and k == round(k) and 1 <= k <= 16):
        raise QuantError(f"checkpoint leak={leak} is not 1 - 2^-k; the hardware leak is a shift-and-subtract: "
                         "retrain with leak 1 - 2^-k (model.bntt.DEFAULT_LEAK = 0.9375)")
    return int(round(k))


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


# --------------------------------------------------------------------------------------------- BNTT
def bntt_network(net: Any, dataset: dict[str, Any], weight_bits: int, per_channel: bool) -> IntegerNetwork:
    """The integer network of an eval-mode BNTTNet (mlp only)."""
    from spikeforge.model.bntt import BN_EPS, early_exit_step

    if net.arch.get("name") != "mlp":
        raise QuantError("bntt checkpoint: only the mlp architecture maps to the core (its conv variant "
                         "average-pools non-binary spikes); train with --arch mlp")
    shift = leak_shift_of(net.leak)
    T = net.timesteps
    exit_step = early_exit_step(net.gammas().mean(dim=0).tolist())
    layers: list = []
    neurons: list[NeuronSteps] = []
    thetas = []
    for l, op in enumerate(net.layers[:-1]):
        wq, s_w = quantize_weight(_np(op.weight), weight_bits, per_channel)
        bns = net.bntt[l]
        gamma = np.stack([_np(bn.weight) for bn in bns])  # [T, out]
        mu = np.stack([_np(bn.running_mean) for bn in bns])
        var = np.stack([_np(bn.running_var) for bn in bns])
        g = gamma / np.sqrt(var + BN_EPS)
        peak = float(np.abs(g * s_w[None]).max())
        theta = ((1 << (SCALE_BITS - 1)) - 1) / peak if peak > 0 else 1.0
        scale = np.rint(g * s_w[None] * theta).astype(np.int64)
        offset = np.rint(-g * mu * theta).astype(np.int64)
        threshold = np.full(wq.shape[0], int(round(theta)) + 1, dtype=np.int64)  # U > Theta <=> U >= Theta+1
        layers.append(Dense(wq, threshold, spiking=True, input_bits=1))
        neurons.append(NeuronSteps(scale, offset, leak_shift=shift, reset="subtract"))
        thetas.append(theta)
    wq, _ = quantize_weight(_np(net.layers[-1].weight), weight_bits, per_channel=False)
    layers.append(Dense(wq, np.zeros(wq.shape[0], dtype=np.int64), spiking=False, input_bits=1))
    outs = wq.shape[0]
    neurons.append(NeuronSteps(np.ones((1, outs), np.int64), np.zeros((1, outs), np.int64), 0, "subtract"))
    ms = MultiStep(T, exit_step, "poisson", neurons, input_gain=float(net.input_gain), input_seed=0,
                   notes={"method": "bntt", "leak": float(net.leak), "membrane_scale": thetas})
    out = IntegerNetwork(layers, tuple(int(v) for v in dataset["input_shape"]), 1, int(dataset["num_classes"]),
                         multistep=ms)
    out.validate()
    return out


def bntt_float_predict(net: Any, x: np.ndarray, ms: MultiStep, image_ids: np.ndarray) -> np.ndarray:
    """The float BNTT model (eval BN, float leak, U > 1) on the same host spikes as the integer model."""
    from spikeforge.model.bntt import BN_EPS

    spikes = poisson_spikes(x, ms.exit_step, ms.input_gain, ms.input_seed, image_ids).astype(np.float64)
    spikes = spikes.reshape(len(x), ms.exit_step, -1)
    weights = [_np(op.weight) for op in net.layers]
    mems: list[Any] = [None] * (len(weights) - 1)
    u_out = 0.0
    for t in range(ms.exit_step):
        h = spikes[:, t]
        for l, w in enumerate(weights[:-1]):
            bn = net.bntt[l][t]
            z = _np(bn.weight) * (h @ w.T - _np(bn.running_mean)) / np.sqrt(_np(bn.running_var) + BN_EPS)
            u = z if mems[l] is None else net.leak * mems[l] + z
            s = (u > 1.0).astype(np.float64)
            mems[l] = u - s
            h = s
        u_out = u_out + h @ weights[-1].T
    return np.argmax(u_out, axis=1)


# ----------------------------------------------------------------------------------------- convert
def _unpool_dense(w: np.ndarray, in_shape: tuple[int, int, int]) -> np.ndarray:
    """Dense weights over a 2x2-average-pooled [c, h/2, w/2] map -> weights over the [c, h, w] map."""
    c, h, wd = in_shape
    if h % 2 or wd % 2:
        raise QuantError(f"convert checkpoint: average pooling of an odd {h}x{wd} map does not fold; "
                         "use an input size with even maps")
    w4 = w.reshape(w.shape[0], c, h // 2, wd // 2)
    return np.repeat(np.repeat(w4, 2, axis=2), 2, axis=3).reshape(w.shape[0], -1) / 4.0


def _unpool_conv(w: np.ndarray, in_shape: tuple[int, int, int]) -> np.ndarray:
    """kxk conv (stride 1) after 2x2 average pooling -> a 2k x 2k conv of stride 2 on the unpooled map."""
    _, h, wd = in_shape
    if h % 2 or wd % 2:
        raise QuantError(f"convert checkpoint: average pooling of an odd {h}x{wd} map does not fold; "
                         "use an input size with even maps")
    return np.repeat(np.repeat(w, 2, axis=2), 2, axis=3) / 4.0


def convert_network(snn: Any, dataset: dict[str, Any], timesteps: int, weight_bits: int,
                    input_bits: int) -> IntegerNetwork:
    """The integer network of a converted (data-normalised) IF net: mlp or lenet."""
    from torch import nn

    shape: tuple[int, ...] = tuple(int(v) for v in dataset["input_shape"])
    layers: list = []
    neurons: list[NeuronSteps] = []
    last = len(snn.ops) - 1
    for l, op in enumerate(snn.ops):
        pooled = isinstance(snn.pres[l], nn.AvgPool2d)
        w = _np(op.weight)
        b = _np(op.bias)
        if isinstance(op, nn.Conv2d):
            if op.stride != (1, 1) or op.padding[0] != op.padding[1] or op.kernel_size[0] != op.kernel_size[1]:
                raise QuantError("convert checkpoint: only square stride-1 convolutions are supported; "
                                 "use --arch lenet")
            stride, pad = 1, op.padding[0]
            if pooled:
                w, stride, pad = _unpool_conv(w, shape), 2, 2 * pad
        else:
            if pooled:
                w = _unpool_dense(w, shape)
        wq, s_w = quantize_weight(w, weight_bits, per_channel=False)
        s = float(s_w[0]) if s_w[0] > 0 else 1.0
        unit = s / ((1 << input_bits) - 1) if l == 0 else s  # one acc LSB in membrane units of 1.0
        bits = input_bits if l == 0 else 1
        spiking = l != last
        threshold = np.full(wq.shape[0], int(round(1.0 / unit)) if spiking else 0, dtype=np.int64)
        offset = np.rint(b / unit).astype(np.int64)[None]
        if isinstance(op, nn.Conv2d):
            layer = Conv(wq, threshold, tuple(int(v) for v in shape), stride=stride, padding=pad,
                         spiking=spiking, input_bits=bits)
            oh, ow = layer.out_hw
            shape = (wq.shape[0], oh, ow)
        else:
            layer = Dense(wq, threshold, spiking=spiking, input_bits=bits)
            shape = (wq.shape[0],)
        layers.append(layer)
        neurons.append(NeuronSteps(np.ones_like(offset), offset, 0, "subtract"))
    ms = MultiStep(int(timesteps), int(timesteps), "analog", neurons, notes={"method": "convert"})
    out = IntegerNetwork(layers, tuple(int(v) for v in dataset["input_shape"]), input_bits,
                         int(dataset["num_classes"]), multistep=ms)
    out.validate()
    return out


def convert_float_predict(snn: Any, x: np.ndarray, timesteps: int) -> np.ndarray:
    """The float IF SNN (model.convert.simulate_batch) at `timesteps` steps."""
    import torch

    from spikeforge.model.convert import simulate_batch

    preds = []
    for start in range(0, len(x), 500):
        xb = torch.as_tensor(x[start: start + 500], dtype=torch.float32)
        preds.append(simulate_batch(snn, xb, timesteps).potential.argmax(1).numpy())
    return np.concatenate(preds)


# ------------------------------------------------------------------------------------------ report
def integer_predict(net: IntegerNetwork, x: np.ndarray, image_ids: np.ndarray, batch: int = 256) -> np.ndarray:
    widths = required_widths(net)
    acc_bits = net.required_acc_bits()
    preds = [forward_multistep(net, x[i: i + batch], acc_bits, widths["membrane_bits"], image_ids[i: i + batch])[0]
             for i in range(0, len(x), batch)]
    return np.concatenate(preds)


def multistep_report(fpred: np.ndarray, ipred: np.ndarray, y: np.ndarray, net: IntegerNetwork,
                     weight_bits: int, per_channel: bool) -> dict[str, Any]:
    """The quantize report (quant/report.py's keys) plus the multi-step figures."""
    ms: MultiStep = net.multistep
    fa, ia = float((fpred == y).mean()), float((ipred == y).mean())
    return {
        "float_accuracy": fa,
        "integer_accuracy": ia,
        "accuracy_drop_pp": 100.0 * (fa - ia),
        "agreement": float((fpred == ipred).mean()),
        "samples": int(len(y)),
        "weight_bits": weight_bits,
        "per_channel": per_channel,
        "input_bits": net.input_bits,
        "layer_acc_bits": net.layer_required_acc_bits(),
        "spike_rates": [],
        "timesteps": ms.timesteps,
        "exit_step": ms.exit_step,
        "input_coding": ms.input_coding,
        "acc_bits_required": net.required_acc_bits(),
        **{k: v for k, v in required_widths(net).items()},
    }


def export_checkpoint(ckpt: dict[str, Any], x_test: np.ndarray, y_test: np.ndarray, weight_bits: int,
                      per_channel: bool, input_bits: int) -> tuple[IntegerNetwork, dict[str, Any]]:
    """A bntt or convert checkpoint -> (integer network, float-vs-integer report on the test set)."""
    ids = np.arange(len(x_test))
    method = ckpt["method"]
    if method == "bntt":
        from spikeforge.model.bntt import build_from_checkpoint
    else:
        from spikeforge.model.convert import build_from_checkpoint
    try:
        model = build_from_checkpoint(ckpt)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise QuantError(f"checkpoint: its state_dict is not a {method} model ({type(exc).__name__}); "
                         f"re-train with `spikeforge train --method {method}`") from None
    if method == "bntt":
        net = model
        inet = bntt_network(net, ckpt["dataset"], weight_bits, per_channel)
        fpred = bntt_float_predict(net, x_test, inet.multistep, ids)
    else:
        snn = model
        T = int(ckpt.get("timesteps") or 100)
        inet = convert_network(snn, ckpt["dataset"], T, weight_bits, input_bits)
        fpred = convert_float_predict(snn, x_test, T)
    ipred = integer_predict(inet, x_test, ids)
    return inet, multistep_report(fpred, ipred, y_test, inet, weight_bits, per_channel)
