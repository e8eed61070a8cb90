"""Linear NIR nodes as the ops the core runs, and their composition between two neurons.

Affine/Linear after Affine/Linear is one dense layer; a pool after a Conv2d is one larger,
strided conv; a pool before an unpadded Conv2d is one conv on the unpooled map; a pool before an
Affine spreads each weight over its window. All are exact linear identities (tests check them
against the node-by-node reference in quant/nir_reference.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge.quant.nir_read import NIRError, Node

MAX_FAN_IN = 1 << 16


# --- node fields --------------------------------------------------------------------------------


def num(node: Node, key: str, default: Any = None) -> np.ndarray:
    """A numeric field as finite float64."""
    value = node.fields.get(key, default)
    if value is None:
        raise NIRError(f"{node.where()}: field {key!r} is missing")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iufb":
        raise NIRError(f"{node.where()}: field {key!r} has dtype {arr.dtype}; expected numbers")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise NIRError(f"{node.where()}: field {key!r} holds NaN or inf")
    return arr


def square(node: Node, key: str, default: Any = None) -> int:
    """kernel/stride/padding as one non-negative integer (the core has square ones)."""
    raw = node.fields.get(key, default)
    if isinstance(raw, str | bytes) or (isinstance(raw, np.ndarray) and raw.dtype.kind in "OSU"):
        text = raw.decode() if isinstance(raw, bytes) else str(np.asarray(raw).ravel()[0])
        if key == "padding" and text == "valid":
            return 0
        raise NIRError(f"{node.where()}: {key}={text!r} is not supported; write an explicit integer {key}")
    arr = num(node, key, default).ravel()
    if arr.size == 0 or arr.size > 2 or not np.all(arr == arr[0]) or arr[0] != int(arr[0]) or arr[0] < 0:
        raise NIRError(f"{node.where()}: {key}={arr.tolist()} is not one non-negative integer for both axes; "
                       f"the core takes square {key}s")
    return int(arr[0])


@dataclass
class Op:
    """u = W x + b as the core runs it: dense on the flattened input, or a square conv."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    in_shape: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    names: list[str] = field(default_factory=list)

    def out_shape(self) -> tuple[int, ...]:
        if self.kind == "dense":
            return (self.weight.shape[0],)
        k = self.weight.shape[-1]
        _, h, w = self.in_shape
        return (self.weight.shape[0], (h + 2 * self.padding - k) // self.stride + 1,
                (w + 2 * self.padding - k) // self.stride + 1)


@dataclass
class PoolSpec:
    kernel: int
    stride: int
    factor: float  # 1 for SumPool2d, 1 / k^2 for AvgPool2d
    in_shape: tuple[int, int, int]
    name: str

    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1)


def flat(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop leading singleton axes (an unbatched [1, 64] is a flat 64)."""
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def dense_op(node: Node, shape: tuple[int, ...]) -> Op:
    weight = num(node, "weight")
    if weight.ndim != 2:
        raise NIRError(f"{node.where()}: weight has shape {weight.shape}; expected [out, in]")
    if len(flat(shape)) != 1:
        raise NIRError(f"{node.where()} receives a {list(shape)} map; put a Flatten before it")
    fan_in = int(np.prod(shape))
    if weight.shape[1] != fan_in or fan_in > MAX_FAN_IN:
        raise NIRError(f"{node.where()}: weight expects {weight.shape[1]} inputs but receives {fan_in}")
    bias = num(node, "bias") if node.type == "Affine" else np.zeros(weight.shape[0])
    if bias.shape != (weight.shape[0],):
        raise NIRError(f"{node.where()}: bias has shape {bias.shape}; expected ({weight.shape[0]},)")
    return Op("dense", weight, bias, (fan_in,), names=[node.name])


def conv_op(node: Node, shape: tuple[int, ...]) -> Op:
    weight = num(node, "weight")
    if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        raise NIRError(f"{node.where()}: weight has shape {weight.shape}; expected a square [cout, cin, k, k] kernel")
    if len(shape) != 3 or shape[0] != weight.shape[1]:
        raise NIRError(f"{node.where()}: expects {weight.shape[1]} input channels but receives shape {list(shape)}")
    if square(node, "dilation", 1) != 1 or square(node, "groups", 1) != 1:
        raise NIRError(f"{node.where()}: dilation and groups other than 1 are not supported by the core")
    stride, padding = max(square(node, "stride", 1), 1), square(node, "padding", 0)
    given = node.fields.get("input_shape")
    if given is not None and np.asarray(given).size and tuple(np.asarray(given).ravel().astype(int)) != shape[1:]:
        raise NIRError(f"{node.where()}: input_shape {np.asarray(given).ravel().tolist()} "
                       f"but it receives {list(shape)}")
    bias = np.broadcast_to(num(node, "bias", 0.0), (weight.shape[0],)).copy()
    op = Op("conv", weight, bias, tuple(shape), stride, padding, [node.name])
    if min(op.out_shape()[1:]) < 1:
        raise NIRError(f"{node.where()}: the {weight.shape[-1]}x{weight.shape[-1]} kernel does not fit {list(shape)}")
    return op


def pool_spec(node: Node, shape: tuple[int, ...]) -> PoolSpec:
    if len(shape) != 3:
        raise NIRError(f"{node.where()} receives a flat shape {list(shape)}; pools need a [c, h, w] map")
    k = square(node, "kernel_size")
    s = square(node, "stride", k) or k
    if square(node, "padding", 0) != 0:
        raise NIRError(f"{node.where()}: padded pooling is not supported by the core; use padding 0")
    if not 1 <= k <= min(shape[1:]):
        raise NIRError(f"{node.where()}: kernel {k} does not fit the {shape[1]}x{shape[2]} map")
    return PoolSpec(k, s, 1.0 if node.type == "SumPool2d" else 1.0 / (k * k), tuple(shape), node.name)


def conv_then_pool(op: Op, pool: PoolSpec) -> Op:
    """pool(conv(x)) is one conv: kernel K + (k-1) S, stride S s, same padding, bias * k^2 * factor."""
    co, ci, kk, _ = op.weight.shape
    size = kk + (pool.kernel - 1) * op.stride
    weight = np.zeros((co, ci, size, size))
    for dy in range(pool.kernel):
        for dx in range(pool.kernel):
            oy, ox = dy * op.stride, dx * op.stride
            weight[:, :, oy:oy + kk, ox:ox + kk] += op.weight * pool.factor
    bias = op.bias * pool.factor * pool.kernel ** 2
    return Op("conv", weight, bias, op.in_shape, op.stride * pool.stride, op.padding, op.names + [pool.name])


def pool_then_conv(pool: PoolSpec, op: Op) -> Op:
    """conv(pool(x)) without padding is one conv on x: kernel (K-1) s + k, stride S s."""
    if op.padding:
        raise NIRError(f"NIR node {op.names[0]!r} (Conv2d) pads a pooled map; the core can only merge a pool into "
                       "an unpadded conv after it: use padding 0 or put a neuron between them")
    co, ci, kk, _ = op.weight.shape
    size = (kk - 1) * pool.stride + pool.kernel
    weight = np.zeros((co, ci, size, size))
    for ey in range(kk):
        for ex in range(kk):
            y, x = ey * pool.stride, ex * pool.stride
            weight[:, :, y:y + pool.kernel, x:x + pool.kernel] += op.weight[:, :, ey:ey + 1, ex:ex + 1] * pool.factor
    return Op("conv", weight, op.bias.copy(), pool.in_shape, op.stride * pool.stride, 0, [pool.name] + op.names)


def pool_then_dense(pool: PoolSpec, op: Op) -> Op:
    """W . pool(x): each pooled coefficient spread over its window of x."""
    c, h, w = pool.in_shape
    _, oh, ow = pool.out_shape()
    rows = op.weight.reshape(-1, c, oh, ow)
    weight = np.zeros((rows.shape[0], c, h, w))
    for oy in range(oh):
        for ox in range(ow):
            y, x = oy * pool.stride, ox * pool.stride
            weight[:, :, y:y + pool.kernel, x:x + pool.kernel] += rows[:, :, oy:oy + 1, ox:ox + 1] * pool.factor
    return Op("dense", weight.reshape(rows.shape[0], -1), op.bias.copy(), (c * h * w,), names=[pool.name] + op.names)


def compose(items: list[Op | PoolSpec]) -> Op | PoolSpec | None:
    """The linear nodes between two neurons as one op (or a lone pool); refuse what does not merge."""
    acc: Op | PoolSpec | None = None
    for item in items:
        if acc is None:
            acc = item
        elif isinstance(item, PoolSpec):
            if isinstance(acc, Op) and acc.kind == "conv":
                acc = conv_then_pool(acc, item)
            else:
                before = acc.names[-1] if isinstance(acc, Op) else acc.name
                raise NIRError(f"NIR node {item.name!r}: a pool after {before!r} with no neuron between cannot be "
                               "merged; put a neuron before the pool")
        elif isinstance(acc, PoolSpec):
            acc = pool_then_conv(acc, item) if item.kind == "conv" else pool_then_dense(acc, item)
        elif acc.kind == "dense" and item.kind == "dense":
            acc = Op("dense", item.weight @ acc.weight, item.weight @ acc.bias + item.bias, acc.in_shape,
                     names=acc.names + item.names)
        else:
            raise NIRError(f"NIR node {item.names[0]!r} follows {acc.names[-1]!r} with no neuron between; the core "
                           "merges consecutive Affine/Linear layers only: put a neuron between them")
    return acc
