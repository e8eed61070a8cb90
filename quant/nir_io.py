"""NIR export of an integer network that snnTorch and Norse run, and its exact re-import.

The exported graph is a float NIR graph that computes exactly what the core computes, in the
node types both tools import (docs/INTEROP.md has the tables and the reasoning):

- A spiking dense/conv layer is `Affine`/`Conv2d(weight = Wq, bias = 0.5 - T)` followed by
  `LIF(tau = dt, r = 1, v_leak = 0, v_threshold = 0, v_reset = 0)`. For integers
  `acc >= T  <=>  acc - T + 0.5 > 0  <=>  acc - T + 0.5 >= 0`, so the graph fires exactly when
  the core does under either comparison (NIR and snnTorch fire on `>`), and a threshold of 0 is
  met the same whatever input gain a tool's time-step convention gives the LIF (snnTorch's
  dt = 1e-4 or Norse's 1e-3). tau = dt makes the neuron memoryless (snnTorch's beta = 0), as
  the one-step core is: snnTorch's stateful modules then give the same answer call after call.
  The per-neuron threshold lives in the bias because snnTorch's importer takes a single
  v_threshold per LIF node.
- The readout is `Affine/Conv2d(weight = Wq, bias = -T)` with no neuron: its output is the
  hardware's `value`, and argmax (first index on ties, as the core) gives the class.
- The input scale is explicit: the first layer's weights are `Wq * (2^k - 1)`, so the graph
  takes pixels in [0, 1] as the dataset gives them (the core rounds `x * (2^k - 1)`; on the
  dataset's k-bit grid the two are equal). Graph metadata records `input_scale` and the range.
- An OR/AND pool is a summing `Conv2d(k, stride s, weight = identity over channels,
  bias = 0.5 - m)` + LIF, with m = 1 (OR) or k*k (AND): snnTorch does not import SumPool2d and
  Norse drops AvgPool2d, but both import Conv2d.
- A map feeds a dense layer through `Flatten(start_dim=-3, end_dim=-1)`: in NIR's unbatched
  shapes that flattens [c, h, w], and in torch (which both tools map it to) it keeps the batch.

Every value is an integer (or an integer + 0.5) below 2^24 in magnitude for the networks the core
runs, so the hidden and readout layers are exact in float32; only the first layer's
`Wq * 255 * x` carries float32 rounding, far below the 0.5 margin (tests/test_nir_export.py
measures it on every digits test image).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool
from spikeforge.quant.nir_read import Graph, NIRError, graph_from_nir, read_graph

FORMAT = "spikeforge-integer"
FORMAT_VERSION = 2
EXPORT_DT = 1e-4  # seconds: snnTorch's fixed dt; tau = dt makes the exported LIF memoryless

__all__ = ["EXPORT_DT", "FORMAT", "NIRError", "from_nir", "read_nir", "to_nir", "write_nir"]


def _lif(shape: tuple[int, ...]) -> Any:
    import nir

    zeros = np.zeros(shape)
    return nir.LIF(tau=np.full(shape, EXPORT_DT), r=np.ones(shape), v_leak=zeros.copy(),
                   v_threshold=zeros.copy(), v_reset=zeros.copy())


def _pool_conv(layer: Pool, index: int, shape: tuple[int, ...]) -> Any:
    """The OR/AND pool as a summing conv: bias 0.5 - m, m = 1 spike (OR) or all k*k (AND)."""
    import nir

    c, k = shape[0], layer.kernel
    weight = np.zeros((c, c, k, k))
    weight[np.arange(c), np.arange(c)] = 1.0
    need = np.where(np.asarray(layer.mode) == 1, k * k, 1)
    return nir.Conv2d(input_shape=tuple(shape[1:]), weight=weight, stride=layer.stride, padding=0, dilation=1,
                      groups=1, bias=0.5 - need,
                      metadata={"spikeforge_layer": index, "spikeforge_kind": "pool",
                                "mode": np.asarray(layer.mode, dtype=np.int64)})


def to_nir(net: IntegerNetwork, scales: list[list[float]] | None = None) -> Any:
    """The integer network as a sequential float `nir.NIRGraph` that snnTorch and Norse run exactly.

    `scales` are the float weight scales per compute layer (recorded in node metadata only).
    """
    import nir

    levels = (1 << net.input_bits) - 1
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    shape: tuple[int, ...] = tuple(net.input_shape)
    ci = 0
    for index, layer in enumerate(net.layers):
        if layer.kind == "pool":
            nodes[f"pool{index}"] = _pool_conv(layer, index, shape)
            shape = (shape[0], *layer.out_hw)
            nodes[f"pool{index}_lif"] = _lif(shape)
            continue
        threshold = np.asarray(layer.threshold, dtype=np.int64)
        factor = levels if index == 0 else 1  # the first layer takes [0, 1] pixels, the core x * levels
        meta: dict[str, Any] = {"spikeforge_layer": index, "spikeforge_kind": layer.kind,
                                "input_bits": int(layer.input_bits), "spiking": int(layer.spiking),
                                "threshold": threshold, "input_scale": int(factor)}
        if scales is not None:
            meta["scale"] = np.asarray(scales[ci], dtype=np.float64)
        ci += 1
        weight = np.asarray(layer.weight, dtype=np.float64) * factor
        bias = (0.5 - threshold) if layer.spiking else -threshold.astype(np.float64)
        if layer.kind == "dense":
            if len(shape) > 1:
                nodes[f"flatten{index}"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=-len(shape),
                                                       end_dim=-1)
            nodes[f"layer{index}"] = nir.Affine(weight=weight, bias=bias, metadata=meta)
            shape = (layer.outputs,)
        else:
            nodes[f"layer{index}"] = nir.Conv2d(input_shape=tuple(layer.in_shape[1:]), weight=weight,
                                                stride=layer.stride, padding=layer.padding, dilation=1, groups=1,
                                                bias=bias, metadata=meta)
            shape = (layer.outputs, *layer.out_hw)
        if layer.spiking:
            nodes[f"layer{index}_lif"] = _lif(shape)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    names = list(nodes)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "input_bits": int(net.input_bits),
        "input_scale": int(levels),
        "input_range": np.array([0.0, 1.0]),
        "num_classes": int(net.num_classes),
        "timesteps": 1,
        "dt": EXPORT_DT,
        "comparison": "core fires on acc >= T; the graph computes acc - T + 0.5 and fires on > 0",
        "readout": "the last Affine/Conv2d output is the core's value acc - T; the class is its argmax",
    }
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), metadata=metadata,
                        type_check=False)


def write_nir(net: IntegerNetwork, path: str | os.PathLike, scales: list[list[float]] | None = None) -> Path:
    """Export to a NIR HDF5 file, written to a temp file first and renamed."""
    import nir

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        nir.write(tmp, to_nir(net, scales))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --- exact re-import of spikeforge's own export --------------------------------------------------


def _scalar(value: Any, where: str) -> int:
    arr = np.asarray(value).ravel()
    if arr.size == 0 or not np.all(arr == arr[0]):
        raise NIRError(f"{where} is not one value for both axes; the core takes square kernels and strides")
    return int(arr[0])


def _ints(value: Any, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.rint(arr)):
        raise NIRError(f"{where} holds non-integer values; it was not written by spikeforge's export")
    return np.rint(arr).astype(np.int64)


def _chain(graph: Graph) -> list:
    """Input to Output of a sequential graph (spikeforge writes nothing else)."""
    succ = dict(graph.edges)
    order, name = [], next((n for n, node in graph.nodes.items() if node.type == "Input"), None)
    while name is not None and len(order) <= len(graph.nodes):
        order.append(graph.nodes[name])
        name = succ.get(name)
    if len(graph.edges) != len(graph.nodes) - 1 or len(order) != len(graph.nodes) or order[-1].type != "Output":
        raise NIRError("NIR graph is not the sequential Input ... Output chain spikeforge's export writes")
    return order


def from_nir(graph: Any) -> IntegerNetwork:
    """The IntegerNetwork of a graph written by `to_nir` (a `nir.NIRGraph`, or a parsed `Graph`)."""
    graph = graph_from_nir(graph)
    meta = graph.metadata
    if str(meta.get("format", "")) != FORMAT or int(np.asarray(meta.get("format_version", 0))) != FORMAT_VERSION:
        raise NIRError("NIR graph was not written by spikeforge's export (metadata.format); "
                       "import float graphs with `spikeforge quantize MODEL.nir`")
    order = _chain(graph)
    input_shape = tuple(int(v) for v in np.asarray(order[0].fields.get("shape")).ravel())
    if len(input_shape) != 3:
        raise NIRError(f"NIR Input shape {input_shape} is not [c, h, w]")
    input_bits = int(np.asarray(meta["input_bits"]))
    layers: list = []
    shape: tuple[int, ...] = input_shape
    for i, node in enumerate(order[1:-1], start=1):
        if node.type in ("Flatten", "LIF"):
            continue
        f = node.fields
        kind = str(node.metadata.get("spikeforge_kind", ""))
        bias = np.asarray(f.get("bias"), dtype=np.float64)
        spiking = order[i + 1].type == "LIF"
        if kind == "pool":
            k, s = _scalar(f["weight"].shape[-1], node.where()), _scalar(f["stride"], node.where())
            layer: Any = Pool(k, s, _ints(node.metadata["mode"], node.where()).astype(np.uint8), in_shape=shape)
            layers.append(layer)
            shape = (shape[0], *layer.out_hw)
            continue
        factor = int(np.asarray(node.metadata.get("input_scale", 1)))
        weight = _ints(np.asarray(f["weight"], dtype=np.float64) / factor, node.where())
        threshold = _ints(0.5 - bias if spiking else -bias, node.where())
        bits = int(np.asarray(node.metadata.get("input_bits", 1)))
        if kind == "dense":
            layer = Dense(weight, threshold, spiking=spiking, input_bits=bits)
            shape = (layer.outputs,)
        else:
            layer = Conv(weight, threshold, tuple(shape), _scalar(f["stride"], node.where()),
                         _scalar(f["padding"], node.where()), spiking=spiking, input_bits=bits)
            shape = (layer.outputs, *layer.out_hw)
        layers.append(layer)
    net = IntegerNetwork(layers, input_shape, input_bits, int(np.asarray(meta["num_classes"])))
    net.validate()
    return net


def read_nir(path: str | os.PathLike) -> IntegerNetwork:
    """Read a NIR file written by `write_nir` back into the identical IntegerNetwork."""
    return from_nir(read_graph(path))
