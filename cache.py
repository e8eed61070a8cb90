"""Where spikeforge keeps what it builds once and reuses: the user's cache directory.

    cache_root()  $SPIKEFORGE_BUILD_DIR when set, else $XDG_CACHE_HOME/spikeforge, else
                  ~/.cache/spikeforge (the XDG Base Directory default)
    cache_dir(k)  one cache under it: "cocotb" (Verilator/Icarus builds), "synth" (Yosys/nextpnr)

An installed package has no source checkout to write into, and a command run from any folder
must find the builds of an earlier run, so nothing is cached relative to the package or the
working directory. Every cache entry is written under `file_lock`, so two processes that build
the same design at once build it once: the second waits and reuses the first one's result.

Entries are named by everything that shapes them (sources, recipe, tool versions), so several
spikeforge versions and checkouts share one cache without ever reusing each other's entries; the
price is that old entries stay. `prune_stale` bounds that: an entry not used for
SPIKEFORGE_CACHE_DAYS days (default 30) is deleted the next time something new is built there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

BUILD_ENV = "SPIKEFORGE_BUILD_DIR"
MAX_AGE_ENV = "SPIKEFORGE_CACHE_DAYS"
DEFAULT_MAX_AGE_DAYS = 30.0
PRUNE_EVERY_S = 24 * 3600.0  # look for stale entries at most once a day per cache folder


def cache_root() -> Path:
    """The root of spikeforge's caches (absolute; not created here)."""
    given = os.environ.get(BUILD_ENV)
    if given:
        return Path(given).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "spikeforge"


def cache_dir(kind: str) -> Path:
    """One cache under cache_root(), e.g. cache_dir("synth")."""
    return cache_root() / kind


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False, waiting: str | None = None) -> Iterator[None]:
    """An flock on `path` (created if needed): exclusive while an entry is (re)built, shared
    while one is used, so nobody uses an entry that another process is replacing. flock locks
    belong to the open file, so two threads of one process exclude each other too. When the lock
    is busy and `waiting` is given, the wait shows as progress with that description."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is None:
                fcntl.flock(handle, mode)
            else:
                from spikeforge.progress import activity

                with activity(waiting):
                    fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def folder_size(path: Path) -> int:
    """Bytes of the regular files under `path` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def touch(path: Path) -> None:
    """Mark a cache entry as used now (its stamp's mtime is its last use)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def max_age_s() -> float:
    try:
        days = float(os.environ.get(MAX_AGE_ENV, DEFAULT_MAX_AGE_DAYS))
    except ValueError:
        days = DEFAULT_MAX_AGE_DAYS
    return max(days, 0.0) * 86400.0


def prune_stale(folder: Path, stamp_of, lock_of, now: float | None = None) -> list[Path]:
    """Delete the entries of `folder` (files or folders) whose stamp (`stamp_of(entry)`) was last
    used more than SPIKEFORGE_CACHE_DAYS ago. Each is deleted under its own lock (`lock_of(entry)`)
    taken without waiting, so an entry in use right now is skipped. Runs at most once a day per
    folder; returns what it deleted."""
    now = time.time() if now is None else now
    marker = folder / ".pruned"
    try:
        if now - marker.stat().st_mtime < PRUNE_EVERY_S:
            return []
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    marker.touch()
    limit, removed = max_age_s(), []
    for entry in folder.iterdir():
        if entry.name.startswith(".") or entry.suffix == ".lock":
            continue
        try:
            if now - stamp_of(entry).stat().st_mtime <= limit:
                continue
        except OSError:
            continue  # no stamp: being built, or not an entry
        with open(lock_of(entry), "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            try:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return removed
