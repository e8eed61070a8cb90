"""Progress of long work, on a terminal and in a plain log (CI, a pipe, a file).

    from spikeforge.progress import Progress, activity

    with Progress() as bar:                         # a loop with a known length
        task = bar.add_task("images on verilator", total=len(images))
        for ...:
            bar.advance(task)                        # or bar.update(task, advance=1, info="loss 0.31")

    with activity("building spikeforge_core_r8c8 for verilator"):   # one long step
        ...

`Progress` takes the part of `rich.progress.Progress` that spikeforge uses (columns, add_task,
advance, update), so a loop written for rich switches by changing its constructor.

- On a terminal it is rich's bar (on stderr, transient by default).
- Anywhere else it writes one line per unfinished task every `interval` seconds (default 15,
  SPIKEFORGE_PROGRESS_S overrides) and, for work that lasted that long, one closing line with the
  time taken. A log never stays silent for minutes and never fills with redrawn bars; work that
  finishes within the interval prints nothing.
- Only one rich display can be live at once, so a `Progress` or `activity` opened inside another
  one on a terminal shows nothing of its own (the outer bar is still moving).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

INTERVAL_ENV = "SPIKEFORGE_PROGRESS_S"
DEFAULT_INTERVAL_S = 15.0

_live_lock = threading.Lock()
_live_depth = 0  # rich displays open in this process (at most one is drawn)


def interval_s() -> float:
    """Seconds between two log lines of one task (SPIKEFORGE_PROGRESS_S, default 15)."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    lines: int = 0  # log lines written for it

    def status(self) -> str:
        elapsed = _fmt_s(time.monotonic() - self.started)
        if self.total:
            pct = 100.0 * self.completed / self.total
            text = f"{self.description}: {self.completed:g}/{self.total:g} ({pct:.0f} %) after {elapsed}"
        else:
            text = f"{self.description}: running for {elapsed}"
        info = " ".join(str(v) for v in self.fields.values() if str(v).strip())
        return f"{text}, {info}" if info else text


class Progress:
    """rich.progress.Progress on a terminal, periodic one-line updates elsewhere (see the module doc)."""

    def __init__(self, *columns: Any, transient: bool = True, disable: bool = False,
                 interval: float | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval if interval is not None else interval_s()
        self.disable = disable
        self._columns, self._transient = columns, transient
        self._rich: Any = None
        self._tasks: dict[int, _Task] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counted = False

    # --- context ---------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        global _live_depth
        if self.disable:
            return self
        if _isatty(self.stream):
            with _live_lock:
                outer = _live_depth > 0
                _live_depth += 1
                self._counted = True
            if not outer:
                from rich.console import Console
                from rich.progress import Progress as RichProgress

                self._rich = RichProgress(*self._columns, console=Console(file=self.stream),
                                          transient=self._transient)
                self._rich.__enter__()
            return self
        self._thread = threading.Thread(target=self._heartbeat, name="spikeforge-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        global _live_depth
        if self._rich is not None:
            self._rich.__exit__(*exc)
            self._rich = None
        if self._counted:
            with _live_lock:
                _live_depth -= 1
            self._counted = False
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            with self._lock:
                for task in self._tasks.values():
                    if task.lines:
                        self._write(f"{task.description}: done"
                                    + (f" {task.completed:g}/{task.total:g}" if task.total else "")
                                    + f" in {_fmt_s(time.monotonic() - task.started)}")

    # --- the rich subset -------------------------------------------------------------------------
    def add_task(self, description: str, total: float | None = 100.0, **fields: Any) -> int:
        with self._lock:
            task_id = len(self._tasks)
            self._tasks[task_id] = _Task(description, total, fields=dict(fields))
        if self._rich is not None:
            return self._rich.add_task(description, total=total, **fields)
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               total: float | None = None, description: str | None = None, **fields: Any) -> None:
        if self._rich is not None:
            kwargs = {k: v for k, v in (("advance", advance), ("completed", completed), ("total", total),
                                        ("description", description)) if v is not None}
            self._rich.update(task_id, **kwargs, **fields)
            return
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            if total is not None:
                task.total = total
            if description is not None:
                task.description = description
            task.fields.update(fields)

    # --- log mode --------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                for task in self._tasks.values():
                    if not task.total or task.completed < task.total:
                        task.lines += 1
                        self._write(task.status())

    def _write(self, line: str) -> None:
        try:
            self.stream.write(f"  {line}\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream must never break the work itself
            pass


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@contextmanager
def activity(description: str, *, interval: float | None = None, stream: TextIO | None = None) -> Iterator[None]:
    """One long step without a count (a build, a synthesis run, a simulation): a spinner on a
    terminal, "<description>: running for N s" lines in a log."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, interval=interval, stream=stream) as bar:
        bar.add_task(description, total=None)
        yield
