"""Multi-time-step integer SNNs: the neuron unit's arithmetic and the vectorised golden model.

An `IntegerNetwork` whose `multistep` is set runs T steps (or its early-exit step). Per compute
layer, step t and output neuron j the neuron unit (hw/neuron.py) computes, on integers

    acc     = wrap( sum_i x_{t,i} * W[j, i], acc_bits )      the array, accumulate-only, as one step
    u_new   = wrap( leak(U_{t-1}) + scale[t, j] * acc + offset[t, j], membrane_bits )
    value   = u_new - threshold[j]                            exact, membrane_bits + 1 bits
    spike   = value >= 0
    U_t     = u_new                  readout layer (never fires), or no spike
            = value   (reset by subtraction)  /  0 (reset to zero)   on a spike

with leak(U) = U - (U >> k) (arithmetic shift; k = 0: no leak) and U_{-1} = 0 (the command's
`first` flag). `scale`/`offset` have one row per step (BNTT's per-step BatchNorm) or one row for
all steps (conversion: scale 1, offset = the bias added every step). Inputs: `poisson` = spikes
drawn on the host every step from a seeded generator (`poisson_spikes`), `analog` = the
first layer takes the multi-bit image, its accumulator is computed once and re-added every step.
The readout's class is the argmax of its final U (lowest index on ties). `neuron_step` is the one
statement of that arithmetic; the cycle model (sim/cycle.py) and this model both call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INPUT_CODINGS = ("poisson", "analog")
RESETS = ("subtract", "zero")


@dataclass
class NeuronSteps:
    """The neuron-unit constants of one compute layer (thresholds stay in `layer.threshold`)."""

    scale: np.ndarray  # int64 [K, outputs], K = 1 (the same every step) or T
    offset: np.ndarray  # int64 [K, outputs]
    leak_shift: int = 0  # k of leak = 1 - 2^-k; 0 = no leak (IF)
    reset: str = "subtract"

    @property
    def per_step(self) -> bool:
        return self.scale.shape[0] > 1

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        row = step if self.per_step else 0
        return self.scale[row].astype(np.int64), self.offset[row].astype(np.int64)


@dataclass
class MultiStep:
    """What makes an integer network multi-step: T, the early exit, the input coding, the neurons."""

    timesteps: int
    exit_step: int  # steps the hardware runs (<= timesteps); the class is read after it
    input_coding: str  # one of INPUT_CODINGS
    neurons: list[NeuronSteps]  # one per compute layer
    input_gain: float = 2.0  # poisson: P(spike) = min(1, gain * pixel / 2)
    input_seed: int = 0
    notes: dict = field(default_factory=dict)  # float scales etc., for the manifest


def leak(u, shift: int):
    """U - (U >> k): the shift-and-subtract leak (k = 0: none). Works on ints and int64 arrays."""
    return u - (u >> shift) if shift else u


def wrap(values, bits: int):
    mask = (1 << bits) - 1
    half = 1 << (bits - 1)
    return ((values + half) & mask) - half


def neuron_step(u_old, acc, scale, offset, threshold, *, leak_shift: int, first: bool, reset_zero: bool,
                readout: bool, membrane_bits: int):
    """One step of the neuron unit -> (U stored, value, spike). Scalars or int64 arrays alike."""
    base = 0 if first else leak(u_old, leak_shift)
    u_new = wrap(base + scale * acc + offset, membrane_bits)
    value = u_new - threshold
    spike = value >= 0
    if readout:
        return u_new, value, spike
    fired = (0 * value) if reset_zero else value
    stored = wrap(np.where(spike, fired, u_new), membrane_bits)
    return stored, value, spike


def poisson_spikes(x: np.ndarray, steps: int, gain: float, seed: int, image_ids) -> np.ndarray:
    """Host-side input spikes [batch, steps, *shape] (uint8): spike = (r * 2 <= gain * x), r uniform
    in [0, 1) from numpy's PCG64 seeded with (seed, image id): the same spikes for the same image
    whether it runs alone (RTL) or in a batch (golden model)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty((len(x), steps) + x.shape[1:], dtype=np.uint8)
    for n, image in enumerate(image_ids):
        rng = np.random.default_rng([int(seed), int(image)])
        r = rng.random((steps,) + x.shape[1:])
        out[n] = (r * 2.0 <= gain * np.abs(x[n])[None]) & (x[n][None] > 0)
    return out


def layer_accumulate(layer, act: np.ndarray, acc_bits: int) -> np.ndarray:
    """The array's per-step accumulators of one compute layer for a batch of inputs."""
    if layer.kind == "dense":
        acc = act.reshape(act.shape[0], -1).astype(np.int64) @ layer.weight.astype(np.int64).T
    else:
        cols = layer.im2col(act.astype(np.int64))
        acc = cols @ layer.weight_matrix().astype(np.int64).T
        oh, ow = layer.out_hw
        acc = acc.transpose(0, 2, 1).reshape(act.shape[0], layer.outputs, oh, ow)
    return wrap(acc, acc_bits)


def _per_neuron(values: np.ndarray, layer) -> np.ndarray:
    values = values.astype(np.int64)
    return values[None, :, None, None] if layer.kind == "conv" else values[None, :]


def forward_multistep(net, x: np.ndarray, acc_bits: int, membrane_bits: int, image_ids=None,
                      collect: bool = False):
    """Integer inference of a multi-step network on float images [batch, c, h, w] in [0, 1].

    Returns (predictions, final readout U) or, with collect=True, also per layer the list of
    per-step outputs (spikes as bool, readout values as int64)."""
    ms: MultiStep = net.multistep
    steps = ms.exit_step
    batch = len(x)
    image_ids = np.arange(batch) if image_ids is None else np.asarray(image_ids)
    if ms.input_coding == "poisson":
        spikes = poisson_spikes(x, steps, ms.input_gain, ms.input_seed, image_ids)
        per_step = [spikes[:, t] for t in range(steps)]
    else:
        once = net.quantize_input(x)
        per_step = [once] * steps
    outputs = []
    ci = 0
    for index, layer in enumerate(net.layers):
        if layer.kind == "pool":
            per_step = [layer.apply(a.astype(bool)) for a in per_step]
            outputs.append(per_step)
            continue
        neuron = ms.neurons[ci]
        ci += 1
        threshold = _per_neuron(layer.threshold, layer)
        analog_once = ms.input_coding == "analog" and index == 0
        acc = layer_accumulate(layer, per_step[0], acc_bits) if analog_once else None
        u = None
        outs = []
        for t in range(steps):
            if not analog_once:
                acc = layer_accumulate(layer, per_step[t], acc_bits)
            scale, offset = (_per_neuron(v, layer) for v in neuron.at(t))
            u, value, spike = neuron_step(
                u, acc, scale, offset, threshold, leak_shift=neuron.leak_shift, first=t == 0,
                reset_zero=neuron.reset == "zero", readout=not layer.spiking, membrane_bits=membrane_bits)
            outs.append(spike if layer.spiking else value)
        per_step = outs
        outputs.append(outs)
    logits = per_step[-1].reshape(batch, -1)
    pred = np.argmax(logits, axis=1)
    return (pred, logits, outputs) if collect else (pred, logits)


def _acc_bounds_per_neuron(layer) -> tuple[np.ndarray, np.ndarray]:
    w = layer.weight_matrix().astype(np.int64)
    xmax = (1 << layer.input_bits) - 1
    return np.where(w < 0, w, 0).sum(axis=1) * xmax, np.where(w > 0, w, 0).sum(axis=1) * xmax


def membrane_bounds(net) -> list[tuple[int, int]]:
    """Per compute layer, the [lo, hi] of every integer the neuron unit stores or forms (u_new, U,
    the constants), over every input and all T steps: interval arithmetic per neuron and step.
    leak(U) is monotone, so the interval's ends map to the ends."""
    from spikeforge.integer_network import Conv  # noqa: F401  (layer kinds documented there)

    ms: MultiStep = net.multistep
    bounds = []
    for layer, neuron in zip(net.compute_layers, ms.neurons, strict=True):
        acc_lo, acc_hi = _acc_bounds_per_neuron(layer)
        theta = layer.threshold.astype(np.int64)
        lo = hi = np.zeros_like(theta)
        ext_lo = min(0, int(theta.min(initial=0)), int(neuron.offset.min(initial=0)))
        ext_hi = max(0, int(theta.max(initial=0)), int(neuron.offset.max(initial=0)))
        for t in range(ms.exit_step):
            scale, offset = neuron.at(t)
            products = np.stack([scale * acc_lo, scale * acc_hi])
            new_lo = (leak(lo, neuron.leak_shift) if t else 0) + products.min(axis=0) + offset
            new_hi = (leak(hi, neuron.leak_shift) if t else 0) + products.max(axis=0) + offset
            if not layer.spiking:
                lo, hi = new_lo, new_hi
            else:
                quiet = new_lo < theta  # some inputs leave the neuron below threshold
                fires = new_hi >= theta
                q_hi = np.minimum(new_hi, theta - 1)
                if neuron.reset == "zero":
                    f_lo = f_hi = np.zeros_like(theta)
                else:
                    f_lo, f_hi = np.maximum(new_lo, theta) - theta, new_hi - theta
                big = np.iinfo(np.int64).max
                lo = np.minimum(np.where(quiet, new_lo, big), np.where(fires, f_lo, big))
                hi = np.maximum(np.where(quiet, q_hi, -big), np.where(fires, f_hi, -big))
            ext_lo = min(ext_lo, int(new_lo.min(initial=0)), int(lo.min(initial=0)))
            ext_hi = max(ext_hi, int(new_hi.max(initial=0)), int(hi.max(initial=0)))
        bounds.append((ext_lo, ext_hi))
    return bounds


def required_widths(net) -> dict[str, int]:
    """membrane_bits, scale_bits (0 = every scale is 1: no multiplier), offset_bits, max_steps."""
    from spikeforge.integer_network import signed_bits_for_range

    ms: MultiStep = net.multistep
    lo = min(b[0] for b in membrane_bounds(net))
    hi = max(b[1] for b in membrane_bounds(net))
    scales = np.concatenate([n.scale.ravel() for n in ms.neurons])
    offsets = np.concatenate([n.offset.ravel() for n in ms.neurons])
    unit = bool(np.all(scales == 1))
    return {
        "membrane_bits": max(2, signed_bits_for_range(lo, hi)),
        "scale_bits": 0 if unit else max(2, signed_bits_for_range(int(scales.min()), int(scales.max()))),
        "offset_bits": max(2, signed_bits_for_range(int(offsets.min(initial=0)), int(offsets.max(initial=0)))),
        "max_steps": int(ms.exit_step),
    }
