"""The one checkpoint format of every training method: save and load, never executing code.

A checkpoint is a `torch.save` of a dict that holds only tensors, numbers, strings, lists and
dicts (docs/INTERFACES.md section 1), written atomically. Loading uses
`torch.load(weights_only=True)`: PyTorch's restricted unpickler, which admits tensors and plain
containers and refuses every other global, so a crafted file cannot run code. Whatever it
refuses, and every malformed file, becomes a `CheckpointError` whose message is one line naming
the problem and the fix.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

from spikeforge import SpikeforgeError, atomic_write_bytes

FORMAT = "spikeforge-checkpoint"
VERSION = 1
FIX = "pass a checkpoint.pt written by `spikeforge train`"
# Fields every method writes, with the type each must have.
REQUIRED = {"format": str, "version": int, "method": str, "arch": dict, "dataset": dict, "state_dict": dict}


class CheckpointError(SpikeforgeError):
    """A checkpoint that cannot be used. One line: the file, the problem, the fix."""


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write `ckpt` to `path` atomically; refuse content that a safe load could not read back."""
    path = Path(path)
    buf = io.BytesIO()
    import torch

    torch.save(ckpt, buf)
    # Refuse at write time what load_checkpoint would refuse later (e.g. a numpy array or a
    # custom class slipped into the dict): a checkpoint that cannot be loaded is worthless.
    try:
        torch.load(io.BytesIO(buf.getvalue()), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"checkpoint content is not plain data (it needs {_refused_global(exc)}); "
                              "store only tensors, numbers, strings, lists and dicts") from None
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_run(out: str | os.PathLike, ckpt: dict[str, Any]) -> Path:
    """Write OUT/checkpoint.pt and OUT/metrics.json (the checkpoint's "metrics") atomically."""
    import json

    out = Path(out)
    path = save_checkpoint(ckpt, out / "checkpoint.pt")
    atomic_write_bytes(out / "metrics.json", (json.dumps(ckpt.get("metrics", {}), indent=2) + "\n").encode())
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a checkpoint without executing anything in it."""
    import torch

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; {FIX} (e.g. {path / 'checkpoint.pt'})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {FIX}")
    try:
        with warnings.catch_warnings():  # torch warns about a hostile file's pickle protocol: we refuse it anyway
            warnings.simplefilter("ignore")
            ckpt = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _refused_global(exc)
        if name is None:
            raise CheckpointError(f"checkpoint {path} cannot be read (not a torch checkpoint); {FIX}") from None
        raise CheckpointError(
            f"checkpoint {path} was refused unread: it asks to import {name}, and a checkpoint holds only "
            f"plain data; {FIX}"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, KeyError, TypeError,
            AttributeError, IndexError, UnicodeDecodeError, MemoryError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}); {FIX}") from None
    check_fields(ckpt, path)
    return ckpt


def check_fields(ckpt: Any, path: str | os.PathLike = "checkpoint") -> None:
    """The top-level fields every loader relies on, with their types."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a dict; {FIX}")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: field 'format' is not {FORMAT!r}; {FIX}")
    for key, kind in REQUIRED.items():
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path}: field {key!r} is missing; {FIX}")
        value = ckpt[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(
                f"checkpoint {path}: field {key!r} is {type(value).__name__}, expected {kind.__name__}; {FIX}"
            )
    if ckpt["version"] != VERSION:
        raise CheckpointError(
            f"checkpoint {path}: version={ckpt['version']} is unsupported (this spikeforge reads {VERSION}); "
            "retrain with this spikeforge"
        )
    check_nested(ckpt, path)


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_nested(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> None:
    """The nested fields the loaders index: dataset.{name, input_shape, num_classes, split_seed},
    arch.name and the state_dict's keys and values (every value a tensor)."""
    import torch

    def bad(field: str, problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: field {field!r} {problem}; {FIX}")

    dataset = ckpt["dataset"]
    if not isinstance(dataset.get("name"), str):
        raise bad("dataset.name", f"is {type(dataset.get('name')).__name__}, expected str")
    shape = dataset.get("input_shape")
    if not isinstance(shape, list | tuple) or len(shape) != 3 or \
            not all(_plain_int(v) and 1 <= v <= 1 << 16 for v in shape):
        raise bad("dataset.input_shape", f"={str(shape)[:60]} is not [channels, height, width] positive integers")
    classes = dataset.get("num_classes")
    if not _plain_int(classes) or not 1 <= classes <= 1 << 16:
        raise bad("dataset.num_classes", f"={str(classes)[:40]} is not a positive integer")
    split_seed = dataset.get("split_seed", 0)
    if not _plain_int(split_seed) or not 0 <= split_seed < 1 << 32:
        raise bad("dataset.split_seed", f"={str(split_seed)[:40]} is not an integer in [0, 2^32)")
    arch = ckpt["arch"]
    if not isinstance(arch.get("name"), str):
        raise bad("arch.name", f"is {type(arch.get('name')).__name__}, expected str")
    for key, value in arch.items():
        field = f"arch.{str(key)[:40]}"
        if key in ("hidden", "channels"):
            if not isinstance(value, list) or len(value) > 64 or not all(_plain_int(v) and 1 <= v <= 1 << 16
                                                                         for v in value):
                raise bad(field, f"={str(value)[:40]} is not a list of positive widths")
        elif key == "bn" and not isinstance(value, bool):
            raise bad(field, f"={str(value)[:40]} is not true or false")
        elif not isinstance(value, str | bool | int | float | type(None)) and not (
                isinstance(value, list) and all(isinstance(v, int | str) for v in value)):
            raise bad(field, f"is {type(value).__name__}, expected a number, string or list")
    for key, value in ckpt["state_dict"].items():
        field = f"state_dict[{str(key)[:60]!r}]"
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise bad(field, f"is {type(value).__name__}, expected a tensor")
        if value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                raise bad(field, "holds NaN or inf")
        elif not key.endswith("num_batches_tracked"):
            raise bad(field, f"is a {value.dtype} tensor, expected floating point")


def _refused_global(exc: BaseException) -> str | None:
    """The global a weights_only load refused ("GLOBAL os.system"), or None for other failures."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if match is None:
        match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return match.group(1) if match else None
