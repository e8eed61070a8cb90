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


def _refused_global(exc: BaseException) -> str | None:
    """The global a weights_only load refused ("GLOBAL os.system"), or None for other failures."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if match is None:
        match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return match.group(1) if match else None
