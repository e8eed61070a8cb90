"""The float reference executor of a NIR graph: node by node, float64, the semantics of nir_import.

This is the "float model" of an imported graph, the side the integer model is compared with in
the quantization report. It does not use the lowering (quant/nir_import.lower, quant/nir_ops): it
runs the nodes as written, so a wrong merge or fold shows up as disagreement. Per time step, with
direct input coding (the graph's input is lo + (hi - lo) * pixel at every step):

    Affine / Linear   h @ W.T (+ b)           Conv2d  torch conv2d (stride, padding, dilation, groups)
    AvgPool2d         mean over the window    SumPool2d  the window's sum
    Flatten           NIR's unbatched dims, shifted past the batch axis
    LIF, IF, CubaLIF  v = decay v + gain I; z = v > v_threshold; v = v_reset where z
    Threshold         z = I > threshold       LI  v = decay v + gain I (no spikes)

with decay and gain from nir_import.coefficients (Euler, dt). The readout is the Output's input,
or the membrane of a neuron that feeds the Output, summed over the steps; the class is its argmax.
tests/test_nir_import.py checks this executor against snnTorch's and Norse's own execution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikeforge.quant.nir_import import NEURONS, ImportOptions, chain, coefficients, resolve_options
from spikeforge.quant.nir_ops import num, square
from spikeforge.quant.nir_read import Graph, NIRError, Node


def _full(value: np.ndarray, shape: tuple[int, ...], torch: Any) -> Any:
    """A per-neuron parameter broadcast over one sample's shape (flat, per channel or scalar)."""
    value = np.asarray(value, dtype=np.float64)
    if value.size == int(np.prod(shape)):
        value = value.reshape(shape)
    elif len(shape) == 3 and value.size == shape[0]:
        value = value.reshape(-1, 1, 1)
    elif value.size != 1:
        raise NIRError(f"a neuron parameter has {value.size} values for input shape {list(shape)}")
    return torch.as_tensor(np.broadcast_to(value, shape).copy())


def _dim(value: Any) -> int:
    d = int(np.asarray(value).ravel()[0])
    return d + 1 if d >= 0 else d  # NIR counts axes without the batch; torch with it


def _linear(node: Node, h: Any, torch: Any) -> Any:
    F = torch.nn.functional
    t = node.type
    if t in ("Affine", "Linear"):
        w = torch.as_tensor(num(node, "weight"))
        return h @ w.T + (torch.as_tensor(num(node, "bias")) if t == "Affine" else 0.0)
    if t == "Conv2d":
        w = torch.as_tensor(num(node, "weight"))
        b = torch.as_tensor(np.broadcast_to(num(node, "bias", 0.0), (w.shape[0],)).copy())
        return F.conv2d(h, w, b, stride=max(square(node, "stride", 1), 1), padding=square(node, "padding", 0),
                        dilation=square(node, "dilation", 1), groups=square(node, "groups", 1))
    if t in ("AvgPool2d", "SumPool2d"):
        k = square(node, "kernel_size")
        out = F.avg_pool2d(h, k, square(node, "stride", k) or k)
        return out * (k * k) if t == "SumPool2d" else out
    if t == "Flatten":
        return torch.flatten(h, _dim(node.fields.get("start_dim", 0)), _dim(node.fields.get("end_dim", -1)))
    if t == "Identity":
        return h
    raise NIRError(f"{node.where()} has no reference semantics; it is not supported")


def run_graph(graph: Graph, x: np.ndarray, options: ImportOptions, batch: int = 512
              ) -> tuple[np.ndarray, dict[str, float]]:
    """Readout values [n, outputs] of the graph on images x in [0, 1], and each neuron node's spike rate."""
    import torch

    options = resolve_options(graph, options)
    order = chain(graph)
    lo, hi = options.input_range
    in_shape = tuple(int(v) for v in num(order[0], "shape").ravel())
    coef = {n.name: coefficients(n, options.dt) for n in order if n.type in (*NEURONS, "LI")}
    sums = {name: 0.0 for name in coef if graph.nodes[name].type != "LI"}
    outs = []
    for start in range(0, len(x), batch):
        xb = torch.as_tensor(np.asarray(x[start:start + batch], dtype=np.float64))
        xb = lo + (hi - lo) * xb.reshape(len(xb), *in_shape)
        state: dict[str, Any] = {}
        total = None
        for _ in range(options.timesteps):
            h, mem = xb, None
            for node in order[1:-1]:
                if node.name not in coef:
                    h, mem = _linear(node, h, torch), None
                    continue
                c = coef[node.name]
                shape = tuple(h.shape[1:])
                gain = _full(c["gain"], shape, torch)
                if node.type == "Threshold":
                    v = h * gain
                else:
                    v = _full(c["decay"], shape, torch) * state.get(node.name, 0.0) + gain * h
                mem = v
                if node.type == "LI":
                    state[node.name] = v
                    h = v
                    continue
                z = (v > _full(c["theta"], shape, torch)).to(torch.float64)
                state[node.name] = torch.where(z > 0, _full(c["v_reset"], shape, torch), v)
                sums[node.name] += float(z.sum()) / z[0].numel()
                h = z
            value = (mem if mem is not None else h).reshape(len(xb), -1)
            total = value if total is None else total + value
        outs.append(total.numpy())
    rates = {name: s / (len(x) * options.timesteps) for name, s in sums.items()}
    return np.concatenate(outs), rates
