"""Validation of an artifact's manifest against its arrays (artifact.py loads, artifact_io.py reads).

Every field is checked and any problem becomes an `ArtifactError` whose message is one line
naming the field and the fix. Arrays are read through `members.read(name, shape, field)`
(artifact_io.NpzMembers), which knows the shape a member must have before it decompresses it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool

SCHEMA = "spikeforge-artifact"
# 2: the manifest binds weights.npz and the memory files by sha256 (`files`); pools state `mode`.
SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
MEMORY_DIR = "mem"
WEIGHT_BITS = (2, 3, 4, 5, 6, 7, 8, 16)
LAYER_TYPES = ("dense", "conv", "pool")
MAX_DIM = 1 << 20  # sanity bound on any declared size, so a hostile manifest cannot ask for huge arrays


class ArtifactError(SpikeforgeError):
    """A malformed or inconsistent artifact directory. One line: field, problem, fix."""


FIX = "re-run `spikeforge quantize` to regenerate the artifact"


def _fail(field: str, problem: str, fix: str = FIX) -> ArtifactError:
    return ArtifactError(f"{field}: {problem}; {fix}")


def _get(obj: dict, key: str, types: type | tuple, where: str) -> Any:
    if not isinstance(obj, dict):
        raise _fail(where, f"is {type(obj).__name__}, expected an object")
    if key not in obj:
        raise _fail(f"{where}.{key}", "is missing")
    value = obj[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _fail(f"{where}.{key}", f"is {value!r}, expected {_names(types)}")
    if not isinstance(value, types):
        raise _fail(f"{where}.{key}", f"is {type(value).__name__}, expected {_names(types)}")
    return value


def _names(types: type | tuple) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


def _int(obj: dict, key: str, where: str, lo: int, hi: int) -> int:
    value = _get(obj, key, int, where)
    if not lo <= value <= hi:
        raise _fail(f"{where}.{key}", f"={value} is outside [{lo}, {hi}]")
    return value


def _shape(obj: dict, key: str, where: str, ndim: int) -> tuple[int, ...]:
    value = _get(obj, key, list, where)
    if len(value) != ndim or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_DIM for v in value
    ):
        raise _fail(f"{where}.{key}", f"={value!r} is not {ndim} positive integers")
    return tuple(value)


def _int_array(members: Any, name: Any, field: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(name, str):
        raise _fail(field, f"is {type(name).__name__}, expected the name of an array in {WEIGHTS}")
    return members.read(name, tuple(shape), field)


def validate_manifest_and_build(manifest: dict, arrays: Any) -> IntegerNetwork:
    """Check every field of `manifest` against `arrays` (an NpzMembers); return the IntegerNetwork they describe."""
    schema = _get(manifest, "schema", str, "manifest")
    if schema != SCHEMA:
        raise _fail("manifest.schema", f"is {schema!r}, expected {SCHEMA!r}")
    version = _get(manifest, "schema_version", int, "manifest")
    if version == 1:
        raise _fail("manifest.schema_version", "is 1, an artifact of an earlier spikeforge whose parts are not "
                    "bound by hashes", "re-run `spikeforge quantize` on its checkpoint to write a version-2 artifact")
    if version != SCHEMA_VERSION:
        raise _fail("manifest.schema_version", f"is {version}, this spikeforge reads {SCHEMA_VERSION}")
    dataset = _get(manifest, "dataset", dict, "manifest")
    _get(dataset, "name", str, "dataset")
    input_shape = _shape(dataset, "input_shape", "dataset", 3)
    num_classes = _int(dataset, "num_classes", "dataset", 1, MAX_DIM)
    inp = _get(manifest, "input", dict, "manifest")
    input_bits = _int(inp, "bits", "input", 1, 8)
    scale = _get(inp, "scale", (int, float), "input")
    if not math.isfinite(scale) or not math.isclose(scale, 1.0 / ((1 << input_bits) - 1), rel_tol=1e-9):
        raise _fail("input.scale", f"={scale!r} does not equal 1/(2^bits - 1) for bits={input_bits}")
    rounding = _get(inp, "rounding", str, "input")
    if rounding != "nearest":
        raise _fail("input.rounding", f"={rounding[:40]!r}; the core rounds pixels to nearest")
    rng = _get(inp, "range", list, "input")
    if rng != [0.0, 1.0] and rng != [0, 1]:
        raise _fail("input.range", f"={rng!r}; the core takes pixels in [0, 1]")
    weight_bits = _get(manifest, "weight_bits", int, "manifest")
    if weight_bits not in WEIGHT_BITS:
        raise _fail("manifest.weight_bits", f"={weight_bits} is not one of {WEIGHT_BITS}")
    entries = _get(manifest, "layers", list, "manifest")
    if not entries:
        raise _fail("manifest.layers", "is empty")
    if len(entries) > 4096:
        raise _fail("manifest.layers", f"has {len(entries)} layers, more than 4096")
    layers: list = []
    shape: tuple[int, ...] = input_shape
    for index, entry in enumerate(entries):
        where = f"layers[{index}]"
        kind = _get(entry, "type", str, where)
        if kind not in LAYER_TYPES:
            raise _fail(f"{where}.type", f"={kind!r} is unknown; expected one of {LAYER_TYPES}")
        refs = _get(entry, "arrays", dict, where)
        if kind == "pool":
            layers.append(_pool(entry, refs, arrays, where, shape))
        else:
            layers.append(_compute(entry, refs, arrays, where, shape, kind, index, input_bits, weight_bits))
        shape = tuple(_shape(entry, "out_shape", where, len(_get(entry, "out_shape", list, where)) or 1))
        expect = _out_shape(layers[-1])
        if shape != expect:
            raise _fail(f"{where}.out_shape", f"={list(shape)} but the layer produces {list(expect)}")
    last = layers[-1]
    if last.kind == "pool" or last.spiking:
        raise _fail(
            f"layers[{len(layers) - 1}]", "the last layer must be the non-spiking readout (spiking=false)"
        )
    for index, layer in enumerate(layers[:-1]):
        if layer.kind != "pool" and not layer.spiking:
            raise _fail(
                f"layers[{index}].spiking",
                "is false but only the last layer (the readout) may be non-spiking",
            )
    if int(np.prod(shape)) != num_classes:
        raise _fail(
            "dataset.num_classes", f"={num_classes} but the readout has {int(np.prod(shape))} outputs"
        )
    net = IntegerNetwork(layers, input_shape, input_bits, num_classes, meta={"dataset": dataset["name"]})
    if "multistep" in manifest:  # absent: a one-time-step network
        from spikeforge.quant.multistep_artifact import parse_multistep

        net.multistep = parse_multistep(manifest["multistep"], arrays, net, _fail)
    need = iter(net.layer_required_acc_bits())
    for index, (entry, layer) in enumerate(zip(entries, layers, strict=True)):
        if layer.kind == "pool":
            continue
        want, stated = next(need), entry.get("acc_bits")
        if stated is not None and (isinstance(stated, bool) or stated != want):
            raise _fail(f"layers[{index}].acc_bits", f"={stated!r} but the layer's weights need {want} bits")
    declared = manifest.get("acc_bits_required")
    if declared is not None:
        if isinstance(declared, bool) or not isinstance(declared, int):
            raise _fail("manifest.acc_bits_required", f"is {type(declared).__name__}, expected int")
        if declared != net.required_acc_bits():
            raise _fail(
                "manifest.acc_bits_required",
                f"={declared} but the weights need {net.required_acc_bits()} bits",
            )
    return net


def _out_shape(layer: Any) -> tuple[int, ...]:
    if layer.kind == "dense":
        return (layer.outputs,)
    oh, ow = layer.out_hw
    return (layer.outputs if layer.kind == "conv" else layer.in_shape[0], oh, ow)


def _pool(entry: dict, refs: dict, arrays: Any, where: str, shape: tuple[int, ...]) -> Pool:
    if len(shape) != 3:
        raise _fail(f"{where}.type", f"pool follows a flat shape {list(shape)}; pools need a [c, h, w] map")
    kernel = _int(entry, "kernel", where, 1, MAX_DIM)
    stride = _int(entry, "stride", where, 1, MAX_DIM)
    in_shape = _shape(entry, "in_shape", where, 3)
    if in_shape != shape:
        raise _fail(f"{where}.in_shape", f"={list(in_shape)} but the previous layer outputs {list(shape)}")
    if kernel > min(shape[1:]):
        raise _fail(f"{where}.kernel", f"={kernel} is larger than the {shape[1]}x{shape[2]} map")
    mode = _int_array(arrays, refs.get("mode"), f"{where}.arrays.mode", (shape[0],))
    if mode.size and (mode.min() < 0 or mode.max() > 1):
        raise _fail(f"{WEIGHTS}[{refs['mode']}]", "holds values other than 0 (OR) and 1 (AND)")
    stated = _get(entry, "mode", list, where)
    implied = ["or" if m == 0 else "and" for m in mode.tolist()]
    if stated != implied:
        raise _fail(f"{where}.mode", f"={stated[:8]!r} disagrees with {WEIGHTS}[{refs['mode']}] ({implied[:8]!r})")
    return Pool(kernel, stride, mode.astype(np.uint8), in_shape=in_shape)


def _compute(
    entry: dict,
    refs: dict,
    arrays: Any,
    where: str,
    shape: tuple[int, ...],
    kind: str,
    index: int,
    input_bits: int,
    weight_bits: int,
) -> Dense | Conv:
    spiking = _get(entry, "spiking", bool, where)
    bits = _int(entry, "input_bits", where, 1, 8)
    if index == 0 and bits != input_bits:
        raise _fail(f"{where}.input_bits", f"={bits} but input.bits={input_bits}")
    if index > 0 and bits != 1:
        raise _fail(
            f"{where}.input_bits", f"={bits}; only the first layer takes multi-bit input, others take spikes"
        )
    wbits = _get(entry, "weight_bits", int, where)
    if wbits not in WEIGHT_BITS or wbits > weight_bits:
        raise _fail(
            f"{where}.weight_bits", f"={wbits} is not one of {WEIGHT_BITS} up to weight_bits={weight_bits}"
        )
    wshape = _shape(entry, "weight_shape", where, 2 if kind == "dense" else 4)
    if int(np.prod(wshape)) > 1 << 28:
        raise _fail(f"{where}.weight_shape", f"={list(wshape)} is implausibly large")
    if kind == "dense":
        declared = _shape(entry, "in_shape", where, len(shape))
        if declared != shape:
            raise _fail(
                f"{where}.in_shape", f"={list(declared)} but the previous layer outputs {list(shape)}"
            )
        fan_in = int(np.prod(shape))
        if wshape[1] != fan_in:
            raise _fail(f"{where}.weight_shape", f"={list(wshape)} but the layer receives {fan_in} inputs")
        conv_args: dict = {}
    else:
        in_shape = _shape(entry, "in_shape", where, 3)
        if len(shape) != 3 or in_shape != shape:
            raise _fail(
                f"{where}.in_shape", f"={list(in_shape)} but the previous layer outputs {list(shape)}"
            )
        if wshape[1] != in_shape[0]:
            raise _fail(
                f"{where}.weight_shape",
                f"={list(wshape)} expects {wshape[1]} channels, input has {in_shape[0]}",
            )
        stride = _int(entry, "stride", where, 1, MAX_DIM)
        padding = _int(entry, "padding", where, 0, MAX_DIM)
        if in_shape[1] + 2 * padding < wshape[2] or in_shape[2] + 2 * padding < wshape[3]:
            raise _fail(
                f"{where}.weight_shape", f"kernel {wshape[2]}x{wshape[3]} does not fit the padded input"
            )
        conv_args = {"in_shape": in_shape, "stride": stride, "padding": padding}
    weight = _int_array(arrays, refs.get("weight"), f"{where}.arrays.weight", wshape)
    lim = (1 << (wbits - 1)) - 1
    if weight.size and (weight.min() < -lim - 1 or weight.max() > lim):
        raise _fail(
            f"{WEIGHTS}[{refs['weight']}]",
            f"holds values in [{weight.min()}, {weight.max()}] beyond {wbits}-bit signed",
        )
    threshold = _int_array(arrays, refs.get("threshold"), f"{where}.arrays.threshold", (wshape[0],))
    if threshold.size and int(np.abs(threshold).max()) >= 1 << 47:
        raise _fail(f"{WEIGHTS}[{refs['threshold']}]", "holds thresholds beyond 48-bit signed")
    if kind == "dense":
        return Dense(weight, threshold, spiking=spiking, input_bits=bits)
    layer = Conv(weight, threshold, spiking=spiking, input_bits=bits, **conv_args)
    if min(layer.out_hw) < 1:
        raise _fail(f"{where}.stride", "the conv produces an empty map")
    return layer
