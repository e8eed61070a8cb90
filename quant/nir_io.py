"""NIR export and import of an integer network (the `nir` package, 1.0.x).

Mapping (docs/QUANTIZATION.md has the reasoning):

- Dense -> `Affine(weight=Wq, bias=0)`; Conv -> `Conv2d(weight=Wq, bias=0)`; integer arrays.
- A spiking layer is followed by `Threshold(T - 1)`: NIR fires on `v > thr`, the core on
  `acc >= T`, and for integers `acc >= T  <=>  acc > T - 1`. Conv thresholds are broadcast over
  the output map (NIR's Threshold is element-wise).
- The readout is `Affine/Conv2d(bias=-T)` without a Threshold: its output is `acc - T`, the
  hardware's `value`.
- Pool mode OR/AND -> `SumPool2d(k, s)` + `Threshold`: the sum of k*k spikes is > 0 iff any
  fires (OR, threshold 0) and > k*k - 1 iff all fire (AND, threshold k*k - 1); both exact.
- A `Flatten` sits between a conv/pool map and a dense layer.

Weights are exported as int64 arrays; the float scale of each layer, the input bit width and
the comparison convention are recorded in node/graph metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool


class NIRError(SpikeforgeError):
    """A NIR graph that is not an exported spikeforge integer network."""


def to_nir(net: IntegerNetwork, scales: list[list[float]] | None = None) -> Any:
    """The integer network as a sequential `nir.NIRGraph`; `scales` are per compute layer."""
    import nir

    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    shape: tuple[int, ...] = tuple(net.input_shape)
    ci = 0
    for index, layer in enumerate(net.layers):
        if layer.kind == "pool":
            k, s = layer.kernel, layer.stride
            c, oh, ow = layer.in_shape[0], *layer.out_hw
            nodes[f"pool{index}"] = nir.SumPool2d(
                np.array([k, k]), np.array([s, s]), np.array([0, 0]), metadata={"spikeforge_layer": index}
            )
            per_channel = np.where(np.asarray(layer.mode) == 1, k * k - 1, 0).astype(np.int64)
            nodes[f"pool{index}_spike"] = nir.Threshold(
                np.broadcast_to(per_channel[:, None, None], (c, oh, ow)).copy()
            )
            shape = (c, oh, ow)
            continue
        meta: dict[str, Any] = {
            "spikeforge_layer": index,
            "input_bits": int(layer.input_bits),
            "spiking": int(layer.spiking),
        }
        if scales is not None:
            meta["scale"] = np.asarray(scales[ci], dtype=np.float64)
        ci += 1
        weight = np.asarray(layer.weight, dtype=np.int64)
        bias = (
            np.zeros(layer.outputs, dtype=np.int64)
            if layer.spiking
            else -np.asarray(layer.threshold, np.int64)
        )
        if layer.kind == "dense":
            if len(shape) > 1:
                nodes[f"flatten{index}"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
            nodes[f"layer{index}"] = nir.Affine(weight=weight, bias=bias, metadata=meta)
            out_shape: tuple[int, ...] = (layer.outputs,)
        else:
            nodes[f"layer{index}"] = nir.Conv2d(
                input_shape=tuple(layer.in_shape[1:]),
                weight=weight,
                stride=layer.stride,
                padding=layer.padding,
                dilation=1,
                groups=1,
                bias=bias,
                metadata=meta,
            )
            out_shape = (layer.outputs, *layer.out_hw)
        if layer.spiking:
            t = np.asarray(layer.threshold, dtype=np.int64) - 1  # acc >= T  <=>  acc > T - 1
            if layer.kind == "conv":
                t = np.broadcast_to(t[:, None, None], out_shape).copy()
            nodes[f"layer{index}_spike"] = nir.Threshold(t)
        shape = out_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    names = list(nodes)
    edges = list(zip(names[:-1], names[1:], strict=True))
    metadata = {
        "format": "spikeforge-integer",
        "input_bits": int(net.input_bits),
        "num_classes": int(net.num_classes),
        "comparison": "core fires on acc >= T; exported Threshold is T - 1 (NIR fires on >)",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


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


def _chain(graph: Any) -> list[tuple[str, Any]]:
    """Nodes of a sequential graph from its Input to its Output, in order."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    succ: dict[str, str] = {}
    for a, b in edges:
        if a in succ:
            raise NIRError(f"NIR node {a!r} has several successors; only sequential graphs are supported")
        succ[a] = b
    starts = [n for n, node in nodes.items() if type(node).__name__ == "Input"]
    if len(starts) != 1:
        raise NIRError(f"NIR graph has {len(starts)} Input nodes; export a single-input network")
    order, name = [], starts[0]
    while True:
        if name not in nodes:
            raise NIRError(f"NIR edge points to unknown node {name!r}; the file is corrupt")
        order.append((name, nodes[name]))
        if name not in succ:
            break
        name = succ[name]
        if len(order) > len(nodes):
            raise NIRError("NIR graph has a cycle; only sequential graphs are supported")
    if type(order[-1][1]).__name__ != "Output":
        raise NIRError("NIR graph does not end in an Output node")
    return order


def _int_array(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.rint(arr)):
            raise NIRError(f"NIR node {name!r} holds non-integer values; only integer networks import")
    elif arr.dtype.kind not in "iu":
        raise NIRError(f"NIR node {name!r} has dtype {arr.dtype}; expected integers")
    return arr.astype(np.int64)


def _per_channel(t: np.ndarray, name: str) -> np.ndarray:
    """A Threshold broadcast over a conv map, back to one value per channel."""
    if t.ndim == 3:
        if not np.all(t == t[:, :1, :1]):
            raise NIRError(f"NIR node {name!r} varies over positions; the core has one threshold per channel")
        return t[:, 0, 0]
    return t


def from_nir(graph: Any) -> IntegerNetwork:
    """Rebuild the IntegerNetwork of a graph written by `to_nir` (after `nir.read` or not)."""
    order = _chain(graph)
    meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (graph.metadata or {}).items()}
    input_shape = tuple(int(v) for v in np.asarray(order[0][1].input_type["input"]).ravel())
    if len(input_shape) != 3:
        raise NIRError(f"NIR Input shape {input_shape} is not [c, h, w]")
    input_bits = int(np.asarray(meta.get("input_bits", 8)))
    layers: list = []
    shape: tuple[int, ...] = input_shape
    i = 1
    while i < len(order) - 1:
        name, node = order[i]
        kind = type(node).__name__
        nxt_name, nxt = order[i + 1]
        thresholded = type(nxt).__name__ == "Threshold"
        if kind == "Flatten":
            i += 1
            continue
        if kind == "SumPool2d":
            k, s = (int(np.asarray(v).ravel()[0]) for v in (node.kernel_size, node.stride))
            if np.any(np.asarray(node.padding) != 0) or not thresholded:
                raise NIRError(f"NIR node {name!r}: pooling must be SumPool2d(padding 0) then Threshold")
            t = _per_channel(_int_array(nxt.threshold, nxt_name), nxt_name)
            if not np.all((t == 0) | (t == k * k - 1)):
                raise NIRError(f"NIR node {nxt_name!r}: pool threshold must be 0 (OR) or k*k-1 (AND)")
            mode = ((t == k * k - 1) & (k > 1)).astype(np.uint8)
            pool = Pool(k, s, mode, in_shape=tuple(shape))
            layers.append(pool)
            shape = (shape[0], *pool.out_hw)
            i += 2
            continue
        if kind not in ("Affine", "Conv2d"):
            raise NIRError(f"NIR node {name!r} of type {kind} is not supported by the integer core")
        weight = _int_array(node.weight, name)
        bias = _int_array(node.bias, name)
        bits = int(np.asarray((node.metadata or {}).get("input_bits", input_bits if not layers else 1)))
        if thresholded:
            threshold = _per_channel(_int_array(nxt.threshold, nxt_name), nxt_name) + 1
            if np.any(bias != 0):
                raise NIRError(
                    f"NIR node {name!r}: a spiking layer's bias must be 0 (it lives in the threshold)"
                )
        else:
            threshold = -bias
        if kind == "Affine":
            layer: Dense | Conv = Dense(weight, threshold, spiking=thresholded, input_bits=bits)
            shape = (layer.outputs,)
        else:
            stride, padding = (int(np.asarray(v).ravel()[0]) for v in (node.stride, node.padding))
            layer = Conv(
                weight, threshold, tuple(shape), stride, padding, spiking=thresholded, input_bits=bits
            )
            shape = (layer.outputs, *layer.out_hw)
        layers.append(layer)
        i += 2 if thresholded else 1
    num_classes = int(np.asarray(meta.get("num_classes", int(np.prod(shape)))))
    net = IntegerNetwork(layers, input_shape, input_bits, num_classes)
    net.validate()
    return net


def read_nir(path: str | os.PathLike) -> IntegerNetwork:
    """Read a NIR file written by `write_nir` back into an IntegerNetwork."""
    import nir

    try:
        graph = nir.read(os.fspath(path), type_check=False)
    except FileNotFoundError:
        raise NIRError(f"NIR file {path} does not exist; pass a file written by write_nir") from None
    except Exception as exc:  # h5py/nir raise many kinds for a corrupt file
        raise NIRError(
            f"NIR file {path} cannot be read ({type(exc).__name__}); pass a file written by write_nir"
        ) from None
    return from_nir(graph)
