"""Reading and writing an artifact's files: the manifest, weights.npz, the memory init files.

Writing builds the whole directory in a stamped temp folder beside the target and renames it
into place (spikeforge.outputs.staged_dir), so a reader never sees half an artifact and only an
earlier spikeforge output is replaced. The manifest binds its parts: `files` records the sha256
and size of weights.npz and of every memory file.

Reading trusts nothing. Symlinks are refused; a file's hash is checked before it is parsed;
weights.npz is opened as a zip whose central directory is read first, and a member is
decompressed only when the manifest names it and its declared size is exactly what the shape
and dtype in its .npy header imply (never `np.load` of the whole archive, never a pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError, __version__
from spikeforge.integer_network import IntegerNetwork
from spikeforge.quant.artifact_checks import (
    MANIFEST,
    MEMORY_DIR,
    SCHEMA,
    SCHEMA_VERSION,
    WEIGHTS,
    ArtifactError,
    _fail,
    _get,
)

MAX_MANIFEST_BYTES = 16 << 20
MAX_FILE_BYTES = 1 << 30  # no artifact file is larger: weights of 2^28 int64 values at most
MAX_MEMBERS = 4 * 4096 + 16
NPY_HEADER_MAX = 4096  # bytes of .npy magic + header before the data


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



def file_record(path: Path) -> dict[str, Any]:
    """{"sha256", "bytes"} of one file, as the manifest's `files` holds it."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_artifact(
    out_dir: str | os.PathLike,
    net: IntegerNetwork,
    weight_bits: int,
    extra: dict[str, Any] | None = None,
    core: Any = None,
    files: dict[str, str] | None = None,
    writers: list[Callable[[Path], Any]] | None = None,
    force: bool = False,
) -> Path:
    """Write the artifact directory atomically; `core` (a CoreConfig) adds RTL memory init files.

    `files` are extra text files (report.json, report.md) written into the same directory so they
    appear together with the artifact; `writers` are called with the temp directory to add more
    files (the NIR export) before the rename. `out_dir` must be new, empty or an earlier
    `spikeforge quantize` output (`force`: any earlier spikeforge output).
    """
    from spikeforge.outputs import check_out, staged_dir

    target = check_out(out_dir, "quantize", force=force)
    manifest = build_manifest(net, weight_bits, extra)
    with staged_dir(target, "quantize", force=force) as tmp:
        arrays: dict[str, np.ndarray] = {}
        for index, layer in enumerate(net.layers):
            arrays.update(layer_arrays(index, layer))
        if net.multistep is not None:
            from spikeforge.quant.multistep_artifact import multistep_section

            arrays.update(multistep_section(net)[1])
        with open(tmp / WEIGHTS, "wb") as handle:
            np.savez(handle, **arrays)
        records = {WEIGHTS: file_record(tmp / WEIGHTS)}
        if core is not None:
            from spikeforge.hw.layout import write_memory_files

            written = write_memory_files(net, core, tmp / MEMORY_DIR)
            manifest["core"] = core.to_dict()
            manifest["memory_files"] = sorted(p.relative_to(tmp).as_posix() for p in written)
            records.update({name: file_record(tmp / name) for name in manifest["memory_files"]})
        manifest["files"] = records
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
        for writer in writers or []:
            writer(tmp)
    return target


# --- reading ------------------------------------------------------------------------------------


def check_no_symlinks(root: Path) -> None:
    """Refuse an artifact with a symbolic link in it (at the top or in mem/): its parts are plain files."""
    for folder in (root, root / MEMORY_DIR):
        if folder != root and folder.is_symlink():
            raise _fail(f"{MEMORY_DIR}/", "is a symbolic link; an artifact holds plain files only")
        if not folder.is_dir():
            continue
        try:
            with os.scandir(folder) as entries:
                for count, entry in enumerate(entries):
                    if count > MAX_MEMBERS:
                        raise _fail(folder.name, f"holds more than {MAX_MEMBERS} entries")
                    if entry.is_symlink():
                        rel = entry.name if folder == root else f"{MEMORY_DIR}/{entry.name}"
                        raise _fail(rel, "is a symbolic link; an artifact holds plain files only")
        except OSError as exc:
            raise ArtifactError(f"artifact {root} cannot be read ({exc.strerror}); "
                                "give a folder you can read, written by `spikeforge quantize`") from None


def read_manifest(root: Path) -> dict:
    """The manifest of the artifact folder `root` (a JSON object), after the folder checks."""
    if not root.is_dir():
        raise ArtifactError(f"artifact {root} is not a directory; pass the --out DIR of `spikeforge quantize`")
    check_no_symlinks(root)
    path = root / MANIFEST
    if not path.is_file():
        raise _fail(MANIFEST, f"is missing in {root}")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise _fail(MANIFEST, f"is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(MANIFEST, f"is not valid JSON ({' '.join(str(exc).split())[:120]})") from None
    except OSError as exc:
        raise _fail(MANIFEST, f"cannot be read ({exc.strerror})") from None
    if not isinstance(manifest, dict):
        raise _fail(MANIFEST, f"top level is {type(manifest).__name__}, expected an object")
    return manifest


def check_file(root: Path, manifest: dict, rel: str) -> Path:
    """The file `rel` of the artifact, after checking it is a plain file with the size and sha256
    that manifest["files"][rel] records."""
    files = _get(manifest, "files", dict, "manifest")
    record = files.get(rel)
    where = f"files[{rel!r}]"
    if not isinstance(record, dict):
        raise _fail(f"manifest.{where}", "is missing: the manifest does not bind this file")
    digest = _get(record, "sha256", str, where)
    size = _get(record, "bytes", int, where)
    path = root / rel
    try:
        info = path.lstat()
    except OSError as exc:
        raise _fail(rel, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _fail(rel, "is not a plain file")
    if info.st_size != size or size > MAX_FILE_BYTES:
        raise _fail(rel, f"is {info.st_size} bytes but the manifest records {size}")
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise _fail(rel, f"cannot be read ({exc.strerror})") from None
    if actual != digest:
        raise _fail(rel, "does not match the sha256 the manifest records (the file was changed or replaced)")
    return path


class NpzMembers:
    """The members of weights.npz, each read only when asked for with the shape it must have."""

    def __init__(self, path: Path):
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise _fail(WEIGHTS, f"is not a readable .npz archive ({type(exc).__name__})") from None
        if len(infos) > MAX_MEMBERS:
            raise _fail(WEIGHTS, f"holds {len(infos)} members, more than {MAX_MEMBERS}")
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            stem = info.filename[:-4] if info.filename.endswith(".npy") else None
            if not stem or "/" in stem or stem in self.members:
                raise _fail(WEIGHTS, f"holds member {info.filename[:60]!r}, which is not one array of the network")
            self.members[stem] = info
        self.used: set[str] = set()

    def __enter__(self) -> NpzMembers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def unused(self) -> list[str]:
        return sorted(set(self.members) - self.used)

    def read(self, name: str, shape: tuple[int, ...], field: str) -> np.ndarray:
        """Array `name` as int64, refused unless its stored size is exactly that of `shape`."""
        info = self.members.get(name)
        if info is None:
            raise _fail(field, f"names array {name!r}, which is missing from {WEIGHTS}")
        where = f"{WEIGHTS}[{name}]"
        count = int(np.prod(shape, dtype=np.int64))
        if info.file_size > NPY_HEADER_MAX + 8 * count:
            raise _fail(where, f"is {info.file_size} bytes uncompressed, more than a {list(shape)} array needs")
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _fail(where, "is encrypted or compressed with a method other than deflate")
        try:
            with self.zip.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    stored, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    stored, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise _fail(where, f"is a .npy of version {version}, expected 1.0 or 2.0")
                if dtype.hasobject or dtype.kind not in "iu":
                    raise _fail(where, f"has dtype {dtype}, expected an integer dtype")
                if tuple(stored) != tuple(shape):
                    raise _fail(where, f"has shape {tuple(stored)}, expected {tuple(shape)}")
                nbytes = count * dtype.itemsize
                if info.file_size != handle.tell() + nbytes:
                    raise _fail(where, f"is {info.file_size} bytes but a {list(shape)} {dtype} array takes "
                                f"{handle.tell() + nbytes}")
                raw = handle.read(nbytes)
        except SpikeforgeError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, SyntaxError, TypeError, NotImplementedError,
                zlib.error) as exc:
            raise _fail(where, f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})") from None
        if len(raw) != nbytes:
            raise _fail(where, "is truncated")
        arr = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise _fail(where, "holds values beyond int64")
        self.used.add(name)
        return arr.astype(np.int64)


def check_memory_files(root: Path, manifest: dict, net: IntegerNetwork) -> None:
    """`core` and `memory_files`: a valid CoreConfig that runs `net`, and exactly its mem/*.hex files,
    each bound by its hash and holding what the weights and thresholds imply."""
    from spikeforge.hw.config import CoreConfig
    from spikeforge.hw.layout import memory_file_texts
    from spikeforge.quant.pipeline import core_for

    if "core" not in manifest and "memory_files" not in manifest:
        return
    core = _get(manifest, "core", dict, "manifest")
    listed = _get(manifest, "memory_files", list, "manifest")
    try:
        cfg = CoreConfig.from_dict(core)
        # The core quantize records is the one it derives for the array (quant.pipeline.core_for).
        expected_core = core_for(net, cfg.rows, cfg.cols, int(manifest["weight_bits"])).to_dict()
        texts = memory_file_texts(net, cfg)
    except SpikeforgeError as exc:
        raise _fail("manifest.core", " ".join(str(exc).split())[:160]) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise _fail("manifest.core", f"is not a core config ({type(exc).__name__})") from None
    # conv_coord_bits came after the first artifacts: missing, it reads as 0 (as CoreConfig.from_dict
    # did above); a conv net quantized before conv events is then asked to be quantized again.
    stored = {"conv_coord_bits": 0, **core}
    changed = next((k for k in expected_core if k not in stored or stored[k] != expected_core[k]), None)
    if changed is not None:
        stated = str(stored[changed])[:40] if changed in stored else "missing"
        raise _fail(f"manifest.core.{changed}", f"is {stated} but the network on a {cfg.rows}x{cfg.cols} "
                    f"array needs {expected_core[changed]}; quantize the model again")
    expected = sorted(f"{MEMORY_DIR}/{name}" for name in texts)
    if listed != expected:
        odd = next((f for f in listed if f not in expected), None)
        problem = f"names {str(odd)[:60]!r}, not a memory file of this core" if odd is not None else \
            f"lists {len(listed)} files but the core has {len(expected)}"
        raise _fail("manifest.memory_files", problem)
    for rel in expected:
        path = check_file(root, manifest, rel)
        if path.read_bytes() != texts[rel.split("/", 1)[1]].encode():
            raise _fail(rel, "does not hold the weights/thresholds of weights.npz for manifest.core")


def check_all_named(members: NpzMembers) -> None:
    """Refuse arrays in weights.npz that no layer names (they are never decompressed)."""
    extra = members.unused()
    if extra:
        raise _fail(WEIGHTS, f"holds array {extra[0][:60]!r}, which the manifest does not name")

