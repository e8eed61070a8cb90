"""Fuzz the loaders: generated mutants of a real artifact and of a real checkpoint, and the
argument abuses of issue 14. Every mutant ends in a one-line error that names the field (exit 2),
or is a change the loader may accept, listed here by kind. A traceback or a generic internal
error fails the test. The default tier runs a fixed sample; the slow tier runs every mutant and
prints the counts (docs/SECURITY.md).

The file is longer than 400 lines on purpose: the mutant generators, the kinds they may produce
and the lists of accepted kinds must be read together to judge what the fuzz claims.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikeforge import SpikeforgeError
from spikeforge.scripts.cli import main

DEFAULT_ARTIFACT_SAMPLE = 70
DEFAULT_CHECKPOINT_SAMPLE = 12
# A refusal names the field or file it is about.
FIELD = re.compile(r"(manifest|weights\.npz|mem/|dataset|layers\[|input\.|files\[|core|memory_files|artifact |"
                   r"schema|weight_bits|acc_bits|checkpoint|--[a-z]|field|state_dict|arch|method|labels|pixels|"
                   r"images|IDX|CIFAR|data_batch|test_batch)")
# What an artifact's loader accepts unchanged (the network is bit-identical to the original):
# fields it does not interpret, optional fields, and bytes nothing reads.
ACCEPTED_UNCHANGED = ("manifest created_by", "manifest provenance", "manifest folding", "manifest per_channel",
                      "manifest nir_file", "manifest layers[*].acc_bits:null",
                      "manifest layers[*].acc_bits:delete", "manifest acc_bits_required:null",
                      "manifest acc_bits_required:delete", "manifest weights_file:delete",
                      "extra file in mem/", "extra file in the artifact", "zip bytes the reader skips",
                      "array stored in Fortran order", "array stored as another integer dtype")
# What may change the network and still load: a complete, self-consistent other model.
ACCEPTED_CHANGED = ("weight within range, resealed with its memory files",)
# Checkpoint fields quantize does not read (training records) or reads as legitimate choices.
CHECKPOINT_ACCEPTED = ("metrics", "epochs", "batch_size", "weight_decay", "seed", "split_seed", "num_threads",
                       "max_train", "lambda", "lr", "dataset.split_seed", "state_dict:scaled", "arch:default")


# The fields quantize reads (model/, quant/): a change to any other top-level field (a training
# record such as val_size or schedule) is accepted as the record it is.
CHECKPOINT_READ = ("format", "version", "method", "arch", "dataset", "state_dict", "data_dir", "input_gain",
                   "leak", "timesteps")


@dataclass
class Mutant:
    kind: str  # what class of change it is (the summary groups by it)
    label: str  # this mutant
    apply: Any  # function(root: Path) -> None


class Tally:
    def __init__(self) -> None:
        self.tried = 0
        self.refused = 0
        self.accepted: Counter[str] = Counter()
        self.problems: list[str] = []

    def summary(self) -> str:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.accepted.items()))
        return (f"tried {self.tried}, refused cleanly {self.refused}, accepted {sum(self.accepted.values())} "
                f"({kinds}); problems {len(self.problems)}")


def check_refusal(message: str, label: str, tally: Tally) -> None:
    if "\n" in message.strip() or len(message) > 400 or not FIELD.search(message) or "internal error" in message \
            or "Traceback" in message:
        tally.problems.append(f"{label}: not a one-line field error: {message[:300]!r}")
    else:
        tally.refused += 1


# --- the artifact -----------------------------------------------------------------------------

BAD_VALUES: list[tuple[str, Any]] = [("null", None), ("true", True), ("str", "x"), ("neg", -1), ("zero", 0),
                                     ("huge", 2**70), ("big float", 1e308), ("list", []), ("dict", {}),
                                     ("traversal", "../../../../etc/passwd")]


def json_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    found = [path] if path else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += json_paths(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj[:3]):  # the first entries of long lists (memory_files)
            found += json_paths(value, (*path, index))
    return found


def path_kind(path: tuple, op: str) -> str:
    """The kind of a manifest edit: its top-level field, or the optional field it nulls/deletes."""
    name = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    name = re.sub(r"^layers\[\d+\]", "layers[*]", name)
    if name in ("layers[*].acc_bits", "acc_bits_required", "weights_file") and op in ("null", "delete"):
        return f"manifest {name}:{op}"
    if name.startswith("input.rounding"):
        return "manifest input.rounding"
    return "manifest " + re.split(r"[.\[]", name)[0]


def manifest_mutants(manifest: dict) -> list[Mutant]:
    muts: list[Mutant] = []
    for path in json_paths(manifest):
        parent_path, key = path[:-1], path[-1]

        def edit(fn, parent_path=parent_path, key=key):
            def apply(root: Path) -> None:
                m = json.loads((root / "manifest.json").read_text())
                obj = m
                for part in parent_path:
                    obj = obj[part]
                fn(obj, key)
                (root / "manifest.json").write_text(json.dumps(m))

            return apply

        value = _get(manifest, path)
        muts.append(Mutant(path_kind(path, "delete"), f"delete {path}", edit(lambda o, k: o.pop(k))))
        for name, bad in BAD_VALUES:
            if bad != value:
                muts.append(Mutant(path_kind(path, name), f"{path} = {name}",
                                   edit(lambda o, k, bad=bad: o.__setitem__(k, bad))))
        if isinstance(value, int) and not isinstance(value, bool):
            for delta in (1, -1):
                muts.append(Mutant(path_kind(path, "step"), f"{path} {delta:+d}",
                                   edit(lambda o, k, d=delta: o.__setitem__(k, o[k] + d))))
        if isinstance(value, str) and value:
            muts.append(Mutant(path_kind(path, "suffix"), f"{path} + 'x'",
                               edit(lambda o, k: o.__setitem__(k, o[k] + "x"))))
    return muts


def _get(obj: Any, path: tuple) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def reseal(root: Path, names: list[str] | None = None) -> None:
    """Record the current sha256/size of the named files (default weights.npz) in the manifest."""
    from spikeforge.quant.artifact_io import file_record

    m = json.loads((root / "manifest.json").read_text())
    for name in names or ["weights.npz"]:
        if (root / name).is_file():
            m["files"][name] = file_record(root / name)
    (root / "manifest.json").write_text(json.dumps(m))


def edit_arrays(fn, seal: bool = True):
    def apply(root: Path) -> None:
        with np.load(root / "weights.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        fn(arrays)
        np.savez(root / "weights.npz", **arrays)
        if seal:
            reseal(root)

    return apply


def flip(name: str, fraction: float, seal: bool):
    def apply(root: Path) -> None:
        path = root / name
        data = bytearray(path.read_bytes())
        data[min(len(data) - 1, int(len(data) * fraction))] ^= 0x5A
        path.write_bytes(bytes(data))
        if seal:
            reseal(root, [name])

    return apply


def consistent_weight_edit(root: Path) -> None:
    """Another valid model: one weight moved within range, the memory files and hashes rewritten."""
    from spikeforge.hw.config import CoreConfig
    from spikeforge.hw.layout import memory_file_texts
    from spikeforge.quant.artifact import load_artifact

    net, manifest = load_artifact(root)
    layer = net.layers[0]
    layer.weight.flat[3] = 0 if layer.weight.flat[3] != 0 else 1

    def set_weight(arrays):
        arrays["layer0_weight"] = layer.weight.astype(np.int64)

    edit_arrays(set_weight)(root)
    for name, text in memory_file_texts(net, CoreConfig.from_dict(manifest["core"])).items():
        (root / "mem" / name).write_text(text)
    reseal(root, ["weights.npz", *manifest["memory_files"]])


def add_member(name: str, data: bytes, compress: bool = False):
    def apply(root: Path) -> None:
        mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(root / "weights.npz", "a", compression=mode) as z:
            z.writestr(name, data)
        reseal(root)

    return apply


def zip_bomb_member(root: Path) -> None:
    with zipfile.ZipFile(root / "weights.npz", "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("layer0_weight_bomb.npy", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(b"\0" * (1 << 20))
    reseal(root)


def rename_member_to_bomb(root: Path) -> None:
    """A referenced member whose declared size is far beyond what its shape needs."""
    with np.load(root / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["layer0_weight"] = np.zeros((4096, 4096), np.int64)
    with zipfile.ZipFile(root / "weights.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key, value in arrays.items():
            with z.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
    reseal(root)


def file_mutants(manifest: dict) -> list[Mutant]:
    mem0 = manifest["memory_files"][0]
    muts = [Mutant("weights.npz byte flipped", f"flip weights {f:.2f}", flip("weights.npz", f, False))
            for f in np.linspace(0.0, 0.999, 25)]
    muts += [Mutant("weights.npz byte flipped, resealed", f"flip+reseal weights {f:.2f}", flip("weights.npz", f, True))
             for f in np.linspace(0.0, 0.999, 40)]
    muts += [Mutant("memory file byte flipped", f"flip {mem0} {f:.2f}", flip(mem0, f, False)) for f in (0, 0.5, 0.99)]
    muts += [Mutant("memory file byte flipped, resealed", f"flip+reseal {mem0} {f:.2f}", flip(mem0, f, True))
             for f in (0, 0.5, 0.99)]
    w = "layer0_weight"
    muts += [
        Mutant("array edit", "weight out of range", edit_arrays(lambda a: a.__setitem__(w, a[w] * 1000))),
        Mutant("array edit", "weight float", edit_arrays(lambda a: a.__setitem__(w, a[w].astype(np.float64)))),
        Mutant("array edit", "weight bool", edit_arrays(lambda a: a.__setitem__(w, a[w] > 0))),
        Mutant("array stored as another integer dtype", "weight int8",
               edit_arrays(lambda a: a.__setitem__(w, a[w].astype(np.int8)))),
        Mutant("array edit", "weight transposed", edit_arrays(lambda a: a.__setitem__(w, a[w].T.copy()))),
        Mutant("array edit", "weight row dropped", edit_arrays(lambda a: a.__setitem__(w, a[w][:-1]))),
        Mutant("array stored in Fortran order", "weight fortran order",
               edit_arrays(lambda a: a.__setitem__(w, np.asfortranarray(a[w])))),
        Mutant("array edit", "weight objects", edit_arrays(lambda a: a.__setitem__(w, a[w].astype(object)))),
        Mutant("array edit", "weight removed", edit_arrays(lambda a: a.pop(w))),
        Mutant("array edit", "threshold beyond 48 bits",
               edit_arrays(lambda a: a.__setitem__("layer0_threshold", a["layer0_threshold"] + (1 << 50)))),
        Mutant("array edit", "weight moved within range, memory files stale",
               edit_arrays(lambda a: a[w].__setitem__((0, 0), 0 if a[w][0, 0] else 1))),
        Mutant("array edit", "weight edited, not resealed",
               edit_arrays(lambda a: a[w].__setitem__((0, 0), 0 if a[w][0, 0] else 1), seal=False)),
        Mutant("array edit", "extra array", edit_arrays(lambda a: a.__setitem__("extra", np.zeros(3, np.int64)))),
        Mutant(ACCEPTED_CHANGED[0], "consistent weight edit", consistent_weight_edit),
        Mutant("zip member", "zip bomb in an unreferenced member", zip_bomb_member),
        Mutant("zip member", "referenced member far larger than its shape", rename_member_to_bomb),
        Mutant("zip member", "member in a folder", add_member("sub/x.npy", b"\x93NUMPY")),
        Mutant("zip member", "member that is no .npy", add_member("notes.txt", b"hello")),
        Mutant("zip member", "duplicate member", add_member(f"{w}.npy", b"\x93NUMPY")),
        Mutant("zip member", "a pickle member", add_member("p.npy", b"\x80\x04\x95" + b"\0" * 20)),
        Mutant("file system", "weights.npz a symlink",
               lambda r: ((r / "weights.npz").rename(r / "w"), (r / "weights.npz").symlink_to("w"))),
        Mutant("file system", "manifest a symlink",
               lambda r: ((r / "manifest.json").rename(r / "m"), (r / "manifest.json").symlink_to("m"))),
        Mutant("file system", "mem/ a symlink", lambda r: ((r / "mem").rename(r / "m2"), (r / "mem").symlink_to("m2"))),
        Mutant("file system", "memory file a symlink",
               lambda r: ((r / mem0).rename(r / "x.hex"), (r / mem0).symlink_to(r / "x.hex"))),
        Mutant("file system", "memory file removed", lambda r: (r / mem0).unlink()),
        Mutant("file system", "weights.npz removed", lambda r: (r / "weights.npz").unlink()),
        Mutant("file system", "weights.npz a folder",
               lambda r: ((r / "weights.npz").unlink(), (r / "weights.npz").mkdir())),
        Mutant("file system", "manifest a folder",
               lambda r: ((r / "manifest.json").unlink(), (r / "manifest.json").mkdir())),
        Mutant("file system", "weights.npz truncated",
               lambda r: (r / "weights.npz").write_bytes((r / "weights.npz").read_bytes()[:200])),
        Mutant("file system", "weights.npz empty, resealed",
               lambda r: ((r / "weights.npz").write_bytes(b""), reseal(r))),
        Mutant("file system", "manifest huge", lambda r: (r / "manifest.json").write_text(" " * (17 << 20) + "{}")),
        Mutant("file system", "manifest deeply nested", lambda r: (r / "manifest.json").write_text("[" * 100000)),
        Mutant("extra file in mem/", "extra hex file", lambda r: (r / "mem" / "extra.hex").write_text("00\n")),
        Mutant("extra file in the artifact", "notes file", lambda r: (r / "NOTES.txt").write_text("mine\n")),
    ]
    return muts


def zip_skipped_bytes(root: Path) -> None:
    """Change the timestamp in the first local header (zip readers use the central directory's)."""
    data = bytearray((root / "weights.npz").read_bytes())
    data[10] ^= 0x01  # local header: last-modified time
    (root / "weights.npz").write_bytes(bytes(data))
    reseal(root)


def artifact_mutants(root: Path) -> list[Mutant]:
    manifest = json.loads((root / "manifest.json").read_text())
    muts = manifest_mutants(manifest) + file_mutants(manifest)
    muts.append(Mutant("zip bytes the reader skips", "local header timestamp", zip_skipped_bytes))
    return muts


@pytest.fixture(scope="module")
def real_artifact(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("fuzz")
    assert main(["train", "--epochs", "2", "--out", str(base / "ck")]) == 0
    assert main(["quantize", str(base / "ck" / "checkpoint.pt"), "--rows", "3", "--cols", "5",
                 "--out", str(base / "art")]) == 0
    return base / "art", base / "ck" / "checkpoint.pt"


def run_artifact_mutants(source: Path, muts: list[Mutant], work: Path) -> Tally:
    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import check_dataset, load_artifact

    original, _ = load_artifact(source)
    digits = load_dataset("digits")
    x = digits.x_test[:64].astype(np.float64)
    reference = original.forward(x)[1]
    tally = Tally()
    for index, mut in enumerate(muts):
        root = work / f"m{index}"
        shutil.copytree(source, root, symlinks=True)
        mut.apply(root)
        tally.tried += 1
        try:
            net, manifest = load_artifact(root)
            ds = digits if manifest["dataset"]["name"] == "digits" else load_dataset(manifest["dataset"]["name"])
            check_dataset(manifest, ds)
        except SpikeforgeError as exc:
            check_refusal(str(exc), mut.label, tally)
        except Exception as exc:  # noqa: BLE001 - what the fuzz looks for
            tally.problems.append(f"{mut.label}: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            same = np.array_equal(net.forward(x)[1], reference)
            allowed = ACCEPTED_UNCHANGED if same else ACCEPTED_CHANGED
            if mut.kind in allowed or any(mut.kind.startswith(a + ".") for a in allowed):
                tally.accepted[mut.kind] += 1
            else:
                tally.problems.append(f"{mut.label}: accepted ({'same' if same else 'changed'} network), kind "
                                      f"{mut.kind!r} is not a change the loader may accept")
        shutil.rmtree(root, ignore_errors=True)
    return tally


def sample(muts: list, size: int, seed: int = 14) -> list:
    return muts if size >= len(muts) else random.Random(seed).sample(muts, size)


def test_artifact_fuzz_sample(real_artifact, tmp_path):
    muts = artifact_mutants(real_artifact[0])
    assert len(muts) >= 400
    tally = run_artifact_mutants(real_artifact[0], sample(muts, DEFAULT_ARTIFACT_SAMPLE), tmp_path)
    assert tally.problems == [], tally.problems
    print(tally.summary())


@pytest.mark.slow
def test_artifact_fuzz_full(real_artifact, tmp_path):
    muts = artifact_mutants(real_artifact[0])
    tally = run_artifact_mutants(real_artifact[0], muts, tmp_path)
    print(f"\nartifact fuzz: {tally.summary()}")
    _report("artifact", tally)
    assert tally.tried >= 400 and tally.problems == [], "\n".join(tally.problems)


def test_artifact_mutants_through_a_real_process(real_artifact, tmp_path):
    """A sample through `python -m spikeforge generate`: exit 2, one line, no traceback."""
    muts = artifact_mutants(real_artifact[0])
    picks = [m for m in muts if m.label in ("referenced member far larger than its shape",
                                             "('memory_files', 0) = traversal")]
    picks.append([m for m in muts if m.kind == "weights.npz byte flipped, resealed"][20])
    assert len(picks) == 3
    for index, mut in enumerate(picks):
        root = tmp_path / f"p{index}"
        shutil.copytree(real_artifact[0], root)
        mut.apply(root)
        proc = subprocess.run([sys.executable, "-m", "spikeforge", "generate", "--rows", "3", "--cols", "5",
                               "--no-lint", "--model", str(root), "--out", str(tmp_path / f"rtl{index}")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (mut.label, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


# --- the checkpoint ---------------------------------------------------------------------------


def checkpoint_mutants(ckpt: dict) -> list[tuple[str, str, Any]]:
    """(kind, label, function(dict) -> dict) over the checkpoint's fields and tensors."""
    import torch

    muts: list[tuple[str, str, Any]] = []

    def paths(obj: Any, path: tuple = ()) -> list[tuple]:
        out = [path] if path else []
        if isinstance(obj, dict):
            for k, v in obj.items():
                out += paths(v, (*path, k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj[:2]):
                out += paths(v, (*path, i))
        return out

    def setter(path, make):
        def fn(c):
            obj = c
            for part in path[:-1]:
                obj = obj[part]
            if make is None:
                obj.pop(path[-1])
            else:
                obj[path[-1]] = make(obj[path[-1]])
            return c

        return fn

    for path in paths(ckpt):
        if path[0] == "metrics" and len(path) > 2:
            continue
        if path[0] == "state_dict":
            kind = "state_dict"
        elif path[0] == "dataset" and path[-1] == "split_seed":
            kind = "dataset.split_seed"
        else:
            kind = str(path[0])
        value = _get(ckpt, path)
        # deleting arch.hidden / arch.bn leaves the arch's default, which is what this checkpoint used
        muts.append(("arch:default" if path in (("arch", "hidden"), ("arch", "bn")) else kind, f"delete {path}",
                     setter(path, None)))
        for name, bad in (("null", None), ("str", "x"), ("neg", -1), ("list", [1]), ("dict", {}), ("true", True)):
            if not (type(bad) is type(value) and bad == value):
                muts.append((kind, f"{path} = {name}", setter(path, lambda v, bad=bad: bad)))
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
            muts += [
                (kind, f"{path} NaN", setter(path, lambda v: torch.full_like(v, float("nan")))),
                (kind, f"{path} inf", setter(path, lambda v: torch.full_like(v, float("inf")))),
                (kind, f"{path} shape",
                 setter(path, lambda v: v.reshape(-1)[:-1] if v.numel() > 1 else v.reshape(1, 1))),
                (kind, f"{path} int", setter(path, lambda v: v.to(torch.int64))),
                ("state_dict:scaled", f"{path} scaled 1.01", setter(path, lambda v: v * 1.01)),
            ]
    return muts


def run_checkpoint_mutants(source: Path, muts: list, work: Path) -> Tally:
    import torch

    tally = Tally()
    for index, (kind, label, fn) in enumerate(muts):
        ckpt = fn(torch.load(source, weights_only=True))
        path = work / f"c{index}" / "checkpoint.pt"
        path.parent.mkdir(parents=True)
        torch.save(ckpt, path)
        tally.tried += 1
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["quantize", str(path), "--rows", "3", "--cols", "5", "--out", str(work / f"a{index}")])
        if code == 0:
            if kind in CHECKPOINT_ACCEPTED or kind not in CHECKPOINT_READ:
                tally.accepted[kind] += 1
            else:
                tally.problems.append(f"{label}: accepted, kind {kind!r} is not a change quantize may accept")
        elif code == 2:
            check_refusal(err.getvalue(), label, tally)
        else:
            tally.problems.append(f"{label}: exit {code}: {err.getvalue()[:300]}")
        shutil.rmtree(work / f"c{index}", ignore_errors=True)
        shutil.rmtree(work / f"a{index}", ignore_errors=True)
    return tally


def test_checkpoint_fuzz_sample(real_artifact, tmp_path):
    import torch

    muts = checkpoint_mutants(torch.load(real_artifact[1], weights_only=True))
    assert len(muts) >= 100
    tally = run_checkpoint_mutants(real_artifact[1], sample(muts, DEFAULT_CHECKPOINT_SAMPLE), tmp_path)
    assert tally.problems == [], tally.problems


@pytest.mark.slow
def test_checkpoint_fuzz_full(real_artifact, tmp_path):
    import torch

    muts = checkpoint_mutants(torch.load(real_artifact[1], weights_only=True))
    tally = run_checkpoint_mutants(real_artifact[1], muts, tmp_path)
    print(f"\ncheckpoint fuzz: {tally.summary()}")
    _report("checkpoint", tally)
    assert tally.tried >= 100 and tally.problems == [], "\n".join(tally.problems)


def _report(name: str, tally: Tally) -> None:
    """SPIKEFORGE_FUZZ_REPORT=FILE appends the counts as one JSON line (for the notes)."""
    target = os.environ.get("SPIKEFORGE_FUZZ_REPORT")
    if target:
        with open(target, "a") as handle:
            handle.write(json.dumps({"set": name, "tried": tally.tried, "refused": tally.refused,
                                     "accepted": dict(tally.accepted), "problems": tally.problems}) + "\n")


# --- argument abuses --------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def idx_folder(folder: Path, train: int = 4, test: int = 2, test_hw: int = 28, test_label: int = 3) -> Path:
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(train) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((test, test_hw, test_hw)))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.full(test, test_label))
    return folder


def cifar_folder(folder: Path, data: Any = None, labels: Any = None) -> Path:
    import pickle

    sub = folder / "cifar-10-batches-py"
    sub.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8) if data is None else data,
                 b"labels": [1, 2] if labels is None else labels}
        (sub / name).write_bytes(pickle.dumps(batch))
    return folder


def argument_abuses(tmp: Path, checkpoint: Path, artifact: Path) -> list[list[str]]:
    import torch

    (tmp / "file.txt").write_text("x")
    ck = torch.load(checkpoint, weights_only=True)
    bad_cks = []
    for name, change in (("dataset", "digits"), ("arch", ["mlp"]), ("dataset_shape", None)):
        bad = dict(ck)
        if name == "dataset_shape":
            bad["dataset"] = {**ck["dataset"], "input_shape": "8x8"}
        else:
            bad[name] = change
        path = tmp / f"ck_{name}" / "checkpoint.pt"
        path.parent.mkdir()
        torch.save(bad, path)
        bad_cks.append(path)
    train = ["train", "--epochs", "1", "--out", str(tmp / "t")]
    q = ["quantize", str(checkpoint)]
    return [
        [*q, "--out", str(tmp / "file.txt")], [*q, "--out", str(tmp / "file.txt" / "a")], [*q, "--out", "/"],
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--out", "."],
        ["train", "--seed", "-1", "--out", str(tmp / "t")], ["train", "--seed", str(2**64), "--out", str(tmp / "t")],
        ["train", "--split-seed", "-1", "--out", str(tmp / "t")], ["train", "--hidden", "", "--out", str(tmp / "t")],
        ["train", "--hidden", "a,b", "--out", str(tmp / "t")], ["train", "--hidden", "0", "--out", str(tmp / "t")],
        ["train", "--lr", "inf", "--out", str(tmp / "t")], ["train", "--lr", "0", "--out", str(tmp / "t")],
        ["train", "--lambda", "inf", "--out", str(tmp / "t")], ["train", "--lambda", "nan", "--out", str(tmp / "t")],
        ["train", "--lambda", "-1", "--out", str(tmp / "t")],
        ["train", "--method", "bntt", "--timesteps", "0", "--out", str(tmp / "t")],
        ["train", "--epochs", "0", "--out", str(tmp / "t")], ["train", "--batch-size", "0", "--out", str(tmp / "t")],
        ["train", "--threads", "0", "--out", str(tmp / "t")], ["train", "--p", "nan", "--out", str(tmp / "t")],
        ["estimate", "--model", str(artifact), "--rows", "2", "--cols", "2", "--fmax", "1e308"],
        ["estimate", "--model", str(artifact), "--rows", "2", "--cols", "2", "--fmax", "nan"],
        ["estimate", "--model", str(artifact), "--rows", "2", "--cols", "2", "--images", "0"],
        ["estimate", "--model", str(tmp / "file.txt"), "--rows", "2", "--cols", "2", "--out", str(tmp / "e")],
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--model", str(tmp / "missing"),
         "--out", str(tmp / "g")],
        [*q, "--seed", "-1", "--out", str(tmp / "q")], [*q, "--qat-epochs", "-1", "--out", str(tmp / "q")],
        *[["quantize", str(p), "--out", str(tmp / "q")] for p in bad_cks],
        [*train, "--dataset", "mnist", "--data-dir", str(idx_folder(tmp / "idx0", train=0))],
        [*train, "--dataset", "mnist", "--data-dir", str(idx_folder(tmp / "idx1", test_hw=20))],
        [*train, "--dataset", "mnist", "--data-dir", str(idx_folder(tmp / "idx2", test_label=200))],
        [*train, "--dataset", "cifar10", "--data-dir", str(cifar_folder(tmp / "c0", labels=["a", "b"]))],
        [*train, "--dataset", "cifar10", "--data-dir", str(cifar_folder(tmp / "c1", labels=[1, 99]))],
        [*train, "--dataset", "cifar10", "--data-dir",
         str(cifar_folder(tmp / "c2", data=np.zeros((2, 100), np.uint8)))],
        [*train, "--dataset", "cifar10", "--data-dir",
         str(cifar_folder(tmp / "c3", data=np.full((2, 3072), 1000, np.int64)))],
        [*train, "--dataset", "cifar10", "--data-dir", str(cifar_folder(tmp / "c4", data="not an array"))],
        ["flow", "--hidden", "", "--out", str(tmp / "f")], ["flow", "--seed", "-1", "--out", str(tmp / "f")],
        ["flow", "--epochs", "0", "--out", str(tmp / "f")],
    ]


def test_argument_abuses(real_artifact, tmp_path):
    cases = argument_abuses(tmp_path, real_artifact[1], real_artifact[0])
    problems = []
    for argv in cases:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        text = err.getvalue()
        if code != 2 or text.count("\n") != 1 or "internal error" in text or "Traceback" in text \
                or not FIELD.search(text):
            problems.append(f"{argv}: exit {code}: {text[:300]!r}")
    assert problems == [], problems
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").glob("checkpoint.pt"))
