"""The artifact directory: manifest.json + weights.npz + RTL memory init files.

`write_artifact` builds the whole directory beside the target and renames it into place, so a
reader never sees half an artifact and an old artifact is replaced only by a complete new one.
`load_artifact` trusts nothing: every field is checked and any problem becomes an
`ArtifactError` whose message is one line naming the field and the fix.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError, __version__
from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool

SCHEMA = "spikeforge-artifact"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
MEMORY_DIR = "mem"
WEIGHT_BITS = (2, 3, 4, 5, 6, 7, 8, 16)
LAYER_TYPES = ("dense", "conv", "pool")
MAX_DIM = 1 << 20  # sanity bound on any declared size, so a hostile manifest cannot ask for huge arrays


class ArtifactError(SpikeforgeError):
    """A malformed or inconsistent artifact directory. One line: field, problem, fix."""


FIX = "re-run `spikeforge quantize` to regenerate the artifact"


# --- writing -----------------------------------------------------------------------------------


def layer_arrays(index: int, layer: Any) -> dict[str, np.ndarray]:
    """The arrays of one layer, under the names the manifest refers to."""
    if layer.kind == "pool":
        return {f"layer{index}_mode": np.asarray(layer.mode, dtype=np.uint8)}
    return {
        f"layer{index}_weight": np.asarray(layer.weight, dtype=np.int64),
        f"layer{index}_threshold": np.asarray(layer.threshold, dtype=np.int64),
    }


def layer_manifest(
    index: int, layer: Any, shape_in: tuple[int, ...], weight_bits: int, acc_bits: int | None
) -> dict[str, Any]:
    """One manifest entry; shapes are stated so a reader can check the chain without the arrays."""
    if layer.kind == "pool":
        c, h, w = layer.in_shape
        oh, ow = layer.out_hw
        return {
            "type": "pool",
            "kernel": layer.kernel,
            "stride": layer.stride,
            "in_shape": [c, h, w],
            "out_shape": [c, oh, ow],
            "arrays": {"mode": f"layer{index}_mode"},
            "mode": ["or" if m == 0 else "and" for m in np.asarray(layer.mode)],
        }
    entry: dict[str, Any] = {
        "type": layer.kind,
        "spiking": bool(layer.spiking),
        "input_bits": int(layer.input_bits),
        "weight_bits": int(weight_bits),
        "acc_bits": acc_bits,
        "weight_shape": [int(v) for v in layer.weight.shape],
        "arrays": {"weight": f"layer{index}_weight", "threshold": f"layer{index}_threshold"},
    }
    if layer.kind == "dense":
        entry["in_shape"] = [int(v) for v in shape_in]
        entry["out_shape"] = [layer.outputs]
    else:
        oh, ow = layer.out_hw
        entry.update(
            in_shape=[int(v) for v in layer.in_shape],
            out_shape=[layer.outputs, oh, ow],
            stride=int(layer.stride),
            padding=int(layer.padding),
        )
    return entry


def build_manifest(
    net: IntegerNetwork, weight_bits: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest of `net`; `extra` adds provenance, fold notes, core config, ..."""
    acc = net.layer_required_acc_bits()
    layers = []
    shape: tuple[int, ...] = tuple(net.input_shape)
    ci = 0
    for index, layer in enumerate(net.layers):
        need = None
        if layer.kind != "pool":
            need = acc[ci]
            ci += 1
        entry = layer_manifest(index, layer, shape, weight_bits, need)
        layers.append(entry)
        shape = tuple(entry["out_shape"])
    manifest: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_by": {"tool": "spikeforge", "version": __version__},
        "dataset": {
            "name": net.meta.get("dataset", "unknown"),
            "input_shape": list(net.input_shape),
            "num_classes": int(net.num_classes),
        },
        "input": {
            "bits": int(net.input_bits),
            "scale": 1.0 / ((1 << net.input_bits) - 1),
            "range": [0.0, 1.0],
            "rounding": "nearest",
        },
        "weight_bits": int(weight_bits),
        "acc_bits_required": int(net.required_acc_bits()),
        "layers": layers,
        "weights_file": WEIGHTS,
    }
    if net.multistep is not None:
        from spikeforge.quant.multistep_artifact import multistep_section

        manifest["multistep"] = multistep_section(net)[0]
    if extra:
        manifest.update(extra)
    return manifest


def write_artifact(
    out_dir: str | os.PathLike,
    net: IntegerNetwork,
    weight_bits: int,
    extra: dict[str, Any] | None = None,
    core: Any = None,
    files: dict[str, str] | None = None,
    writers: list[Callable[[Path], Any]] | None = None,
) -> Path:
    """Write the artifact directory atomically; `core` (a CoreConfig) adds RTL memory init files.

    `files` are extra text files (report.json, report.md) written into the same directory so they
    appear together with the artifact; `writers` are called with the temp directory to add more
    files (the NIR export) before the rename.
    """
    target = Path(out_dir).resolve()
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"--out {target} exists and is not a directory; choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(net, weight_bits, extra)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        arrays: dict[str, np.ndarray] = {}
        for index, layer in enumerate(net.layers):
            arrays.update(layer_arrays(index, layer))
        if net.multistep is not None:
            from spikeforge.quant.multistep_artifact import multistep_section

            arrays.update(multistep_section(net)[1])
        with open(tmp / WEIGHTS, "wb") as handle:
            np.savez(handle, **arrays)
        if core is not None:
            from spikeforge.hw.layout import write_memory_files

            written = write_memory_files(net, core, tmp / MEMORY_DIR)
            manifest["core"] = core.to_dict()
            manifest["memory_files"] = sorted(str(p.relative_to(tmp)) for p in written)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
        for writer in writers or []:
            writer(tmp)
        # Swap in: move any old artifact aside first, so a failure leaves either the old or the new.
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
            os.replace(target, old / "a")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# --- loading and validation -------------------------------------------------------------------


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


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not root.is_dir():
        raise ArtifactError(
            f"artifact {root} is not a directory; pass the --out DIR of `spikeforge quantize`"
        )
    if not path.is_file():
        raise _fail(MANIFEST, f"is missing in {root}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(MANIFEST, f"is not valid JSON ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise _fail(MANIFEST, f"cannot be read ({exc.strerror})") from None
    if not isinstance(manifest, dict):
        raise _fail(MANIFEST, f"top level is {type(manifest).__name__}, expected an object")
    return manifest


def _read_arrays(root: Path, name: str) -> dict[str, np.ndarray]:
    path = root / name
    if not path.is_file():
        raise _fail(name, f"is missing in {root}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise _fail(name, "is a single .npy array, not an .npz archive")
        with npz:
            return {key: npz[key] for key in npz.files}
    except ArtifactError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zipfile.LargeZipFile) as exc:
        raise _fail(
            name, f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
        ) from None


def _int_array(arrays: dict, name: Any, field: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(name, str):
        raise _fail(field, f"is {type(name).__name__}, expected the name of an array in {WEIGHTS}")
    if name not in arrays:
        raise _fail(field, f"names array {name!r}, which is missing from {WEIGHTS}")
    arr = arrays[name]
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise _fail(f"{WEIGHTS}[{name}]", "contains NaN or inf")
    if arr.dtype.kind not in "iu":
        raise _fail(f"{WEIGHTS}[{name}]", f"has dtype {arr.dtype}, expected an integer dtype")
    if tuple(arr.shape) != tuple(shape):
        raise _fail(f"{WEIGHTS}[{name}]", f"has shape {tuple(arr.shape)}, expected {tuple(shape)}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise _fail(f"{WEIGHTS}[{name}]", "holds values beyond int64")
    return arr.astype(np.int64)


def validate_manifest_and_build(manifest: dict, arrays: dict[str, np.ndarray]) -> IntegerNetwork:
    """Check every field of `manifest` against `arrays`; return the IntegerNetwork they describe."""
    schema = _get(manifest, "schema", str, "manifest")
    if schema != SCHEMA:
        raise _fail("manifest.schema", f"is {schema!r}, expected {SCHEMA!r}")
    version = _get(manifest, "schema_version", int, "manifest")
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
    if "multistep" in manifest:  # absent: a one-time-step artifact, as before
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


def _pool(entry: dict, refs: dict, arrays: dict, where: str, shape: tuple[int, ...]) -> Pool:
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
    return Pool(kernel, stride, mode.astype(np.uint8), in_shape=in_shape)


def _compute(
    entry: dict,
    refs: dict,
    arrays: dict,
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


def load_artifact(path: str | os.PathLike) -> tuple[IntegerNetwork, dict]:
    """Validate the artifact at `path` and return (IntegerNetwork, manifest)."""
    root = Path(path)
    manifest = _read_manifest(root)
    name = manifest.get("weights_file", WEIGHTS)
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise _fail("manifest.weights_file", f"={name!r} is not a file name inside the artifact")
    arrays = _read_arrays(root, name)
    try:
        net = validate_manifest_and_build(manifest, arrays)
    except ArtifactError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # A check above missed a malformed combination: still one line, never a traceback.
        raise ArtifactError(
            f"manifest.json: inconsistent artifact ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}); {FIX}"
        ) from None
    return net, manifest
