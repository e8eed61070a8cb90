"""Output folders: spikeforge replaces only what spikeforge itself wrote.

Every folder a command writes carries a small stamp file (`STAMP`, JSON: tool, command,
version). A command may write into `--out` when it is new, an empty folder, or a folder whose
stamp says the same command wrote it; a folder stamped by another spikeforge command needs
`--force`. Nothing overrides the other refusals, because each of them would lose data that
spikeforge did not write: a non-empty folder without the stamp, an existing file, a folder that
is or contains one of the command's inputs, the working directory or one of its parents, the
home folder, and `/`. Every refusal is one line with the fix (`OutputError`, exit 2).

Replacing a folder is atomic (`staged_dir`): the new content is built in a temp folder beside
the target, the old folder is moved aside, the new one renamed into place, then the old one
removed, so a crash leaves either the old output or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from spikeforge import SpikeforgeError, __version__

STAMP = ".spikeforge-output.json"
TOOL = "spikeforge"
FIX = "give a new or empty folder, or --force to replace an earlier spikeforge output"
NEW = "give a new or empty folder"


class OutputError(SpikeforgeError):
    """An output path that spikeforge must not write (one line: the path, why, the fix)."""


def _abs(path: str | os.PathLike) -> Path:
    """The absolute, symlink-resolved path (a symlinked --out is judged by where it points)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def read_stamp(folder: str | os.PathLike) -> dict | None:
    """The stamp of a spikeforge output folder, or None when `folder` carries none (or a bad one)."""
    path = Path(folder) / STAMP
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4096:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL or not isinstance(data.get("command"), str):
        return None
    return data


def write_stamp(folder: str | os.PathLike, command: str) -> Path:
    """Mark `folder` as an output of `spikeforge <command>`."""
    path = Path(folder) / STAMP
    path.write_text(json.dumps({"tool": TOOL, "command": command, "version": __version__}) + "\n")
    return path


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_out(
    out: str | os.PathLike, command: str, *, force: bool = False, inputs: Iterable[str | os.PathLike | None] = ()
) -> Path:
    """Refuse an `out` that `command` must not write or replace; return its absolute path."""
    shown = os.fspath(out)
    if not shown.strip():
        raise OutputError(f"--out is empty; {NEW}")
    target = _abs(out)
    if target == Path(target.anchor):
        raise OutputError(f"--out {shown} is the file system root; {NEW}")
    cwd = _abs(os.getcwd())
    if _is_within(cwd, target):
        raise OutputError(f"--out {shown} is the working directory or one of its parents; {NEW}")
    home = _abs(Path.home())
    if target == home:
        raise OutputError(f"--out {shown} is the home folder; {NEW}")
    for given in inputs:
        if given is None:
            continue
        source = _abs(given)
        if _is_within(source, target):
            what = "is" if source == target else "contains"
            raise OutputError(f"--out {shown} {what} the input {os.fspath(given)}; writing it would destroy "
                              "that input: give a new or empty folder")
    # The nearest existing ancestor decides whether the folder can be made.
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"--out {shown} lies under {parent}, which is a file, not a folder; give a folder path")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputError(f"--out {shown} is an existing file, not a directory; {NEW}")
    if target.is_dir():
        try:
            entries = [p.name for p in target.iterdir()]
        except OSError as exc:
            raise OutputError(f"--out {shown} cannot be read ({exc.strerror}); {NEW}") from None
        if entries:
            stamp = read_stamp(target)
            if stamp is None:
                raise OutputError(f"--out {shown} is a non-empty folder that spikeforge did not write "
                                  f"(it holds {sorted(entries)[0]!r}); {FIX}")
            if stamp["command"] != command and not force:
                raise OutputError(f"--out {shown} holds the output of `spikeforge {stamp['command']}`; {FIX}")
    writable = target if target.is_dir() else parent
    if not os.access(writable, os.W_OK | os.X_OK):
        raise OutputError(f"--out {shown}: the folder {writable} is not writable; give a folder you can write to")
    return target


def claim_dir(
    out: str | os.PathLike, command: str, *, force: bool = False, inputs: Iterable[str | os.PathLike | None] = ()
) -> Path:
    """Check `out` (check_out), create it and stamp it for `command`; return its absolute path.

    For commands that write files into a folder they keep (train, estimate, verify, sweep, bench,
    search): the folder stays, each file in it is written atomically.
    """
    target = check_out(out, command, force=force, inputs=inputs)
    try:
        target.mkdir(parents=True, exist_ok=True)
        if read_stamp(target) is None or read_stamp(target)["command"] != command:
            write_stamp(target, command)
    except OSError as exc:
        raise OutputError(f"--out {os.fspath(out)} cannot be created ({exc.strerror}); "
                          "give a folder you can write to") from None
    return target


def claim_file(out: str | os.PathLike, what: str, *, looks_ours=None) -> Path:
    """Check a single output FILE: not a folder, not under a file, and an existing file only when
    `looks_ours(path)` says spikeforge wrote it (e.g. an earlier report of the same command)."""
    shown = os.fspath(out)
    target = _abs(out)
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"--out {shown} lies under {parent}, which is a file, not a folder; give a file path")
    if target.is_dir():
        raise OutputError(f"--out {shown} is a folder; give the path of the {what} file to write")
    if target.exists() and not (looks_ours is not None and looks_ours(target)):
        raise OutputError(f"--out {shown} is an existing file that spikeforge did not write; give a new path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"--out {shown}: the folder {parent} is not writable; give a folder you can write to")
    return target


def replace_dir(staging: Path, target: Path, command: str, *, force: bool = False) -> None:
    """Rename the finished `staging` folder onto `target`, atomically; the old target (if any) must
    be a spikeforge output that `command` may replace (checked again now: time has passed)."""
    check_out(target, command, force=force)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.replace(target, old / "previous")
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old / "previous", target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike, command: str, *, force: bool = False) -> Iterator[Path]:
    """Build an output folder in a stamped temp folder beside `out`; on success it replaces `out`
    atomically (replace_dir), on failure it is removed and `out` is left as it was."""
    target = _abs(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as exc:
        raise OutputError(f"--out {os.fspath(out)} cannot be created ({exc.strerror}); "
                          "give a folder you can write to") from None
    try:
        write_stamp(tmp, command)
        yield tmp
        replace_dir(tmp, target, command, force=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
