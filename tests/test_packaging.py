"""Issue 19: the installed package works from anywhere (package data, cache, python -m), builds and
progress behave, and nothing names a machine's paths. The generated IP in FuseSoC (lint, sim,
synth targets, the smoke testbench) is tests/test_fusesoc.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from spikeforge import cache, tool_checks
from spikeforge.hw.config import CoreConfig

REPO = Path(__file__).resolve().parent.parent
# The package folders of pyproject's package-dir: every file tracked under them must be installed.
PACKAGE_DIRS = ("hw", "model", "quant", "sim", "scripts")
ROOT_FILES_NOT_INSTALLED = {".gitignore", "Makefile", "README.md", "constraints.txt", "pyproject.toml", "LICENSE"}


def _tracked_files() -> list[str]:
    """Files of the checkout that git tracks or would track (untracked but not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [line for line in out.stdout.splitlines() if (REPO / line).is_file()]


# --- no machine-specific absolute paths ----------------------------------------------------------

# Written in pieces so that this file does not match itself.
_HOMES = "|".join(["wo" + "rk", "ro" + "ot", "ho" + "me", "Us" + "ers"])
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:" + _HOMES + r")/[\w.-]|[A-Za-z]:\\\\Users\\\\")


def test_no_machine_specific_absolute_path_in_code_or_docs() -> None:
    hits = []
    for name in _tracked_files():
        path = REPO / name
        if path.suffix in (".png", ".pdf", ".npz", ".pt", ".nir", ".h5", ".whl"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                hits.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not hits, "machine-specific absolute paths (cite by name, or use a relative path):\n" + "\n".join(hits)


def test_the_path_check_catches_one() -> None:
    assert MACHINE_PATH.search("see /" + "work/shared/methods.md")
    assert MACHINE_PATH.search("cached in /" + "root/.cache/spikeforge")
    assert not MACHINE_PATH.search("spikeforge quantize ckpt --out /tmp/a8; ~/.cache/spikeforge")


# --- the wheel -----------------------------------------------------------------------------------


def test_wheel_holds_every_package_file_and_the_license(tmp_path: Path) -> None:
    """Build the wheel from a copy of the checkout; every tracked file of the package folders
    (benches, waivers, calibration JSON, ...) and of the package root must be in it."""
    src = tmp_path / "src"
    tracked = _tracked_files()
    for name in tracked:
        dest = src / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((REPO / name).read_bytes())
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("spikeforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    want = [n for n in tracked if n.split("/")[0] in PACKAGE_DIRS
            or ("/" not in n and n not in ROOT_FILES_NOT_INSTALLED)]
    missing = [n for n in want if f"spikeforge/{n}" not in names]
    assert not missing, f"files the installed package would lack: {missing}"
    for data in tool_checks.PACKAGE_DATA:
        assert f"spikeforge/{data}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_package_data_list_names_real_files() -> None:
    root = REPO
    assert all((root / p).is_file() for p in tool_checks.PACKAGE_DATA)
    assert "Apache License" in (REPO / "LICENSE").read_text()


def test_python_dash_m_spikeforge_runs_the_cli(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "spikeforge", "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: spikeforge") and "doctor" in out.stdout and "synth" in out.stdout


# --- the cache -----------------------------------------------------------------------------------


def test_cache_root_follows_xdg_and_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikeforge.sim.estimate import synth
    from spikeforge.sim.rtl import build_root

    monkeypatch.delenv(cache.BUILD_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "spikeforge"
    assert build_root() == tmp_path / "xdg" / "spikeforge" / "cocotb"
    assert synth.build_dir() == tmp_path / "xdg" / "spikeforge" / "synth"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative values are invalid
    assert cache.cache_root() == Path.home() / ".cache" / "spikeforge"
    monkeypatch.setenv(cache.BUILD_ENV, str(tmp_path / "mine"))
    assert build_root() == tmp_path / "mine" / "cocotb"
    assert synth.build_dir() == tmp_path / "mine" / "synth"


def test_two_synthesis_runs_of_one_design_run_the_tools_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthesis cache is written under a lock on its key: the second caller waits and reuses.
    (The tools are replaced by a slow fake: this is about the cache, not Yosys.)"""
    from spikeforge.sim.estimate import synth

    monkeypatch.setenv(cache.BUILD_ENV, str(tmp_path))
    calls: list[str] = []

    def fake(verilog: str, top: str, flow: str, *args) -> dict:
        calls.append(top)
        time.sleep(0.5)
        return {"target": flow, "cells": {}, "mul_cells": 0}

    monkeypatch.setattr(synth, "_synthesize_uncached", fake)
    results: list[dict] = []

    def one(top: str) -> None:
        results.append(synth.synthesize("module m; endmodule\n", top, "mulcheck", "test:1"))

    threads = [threading.Thread(target=one, args=("m",)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["m"]
    assert sorted(r["cached"] for r in results) == [False, True]
    assert results[0]["key"] == results[1]["key"]


# --- progress --------------------------------------------------------------------------------------


class _Log:
    """A stream that is not a terminal and records what it got."""

    def __init__(self) -> None:
        self.text = ""
        self.lock = threading.Lock()

    def write(self, s: str) -> None:
        with self.lock:
            self.text += s

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_progress_in_a_log_is_periodic_one_line_updates() -> None:
    from spikeforge.progress import Progress, activity

    log = _Log()
    with Progress(interval=0.05, stream=log) as bar:
        task = bar.add_task("images on verilator", total=4)
        for i in range(4):
            time.sleep(0.08)
            bar.update(task, advance=1, info=f"step {i}")
    lines = log.text.splitlines()
    assert len(lines) >= 3 and all("\r" not in ln and "\x1b" not in ln for ln in lines)
    assert re.search(r"images on verilator: \d/4 \(\d+ %\) after \d+ s", log.text)
    assert lines[-1].strip().startswith("images on verilator: done 4/4 in")

    quiet = _Log()
    with activity("quick step", interval=5.0, stream=quiet):
        pass
    assert quiet.text == ""  # work within the interval prints nothing

    slow = _Log()
    with activity("building core", interval=0.05, stream=slow):
        time.sleep(0.2)
    assert "building core: running for" in slow.text and "building core: done in" in slow.text


def test_progress_on_a_terminal_nests_without_error() -> None:
    import io

    from spikeforge.progress import Progress, activity

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with Progress(stream=out) as bar:
        task = bar.add_task("outer", total=2)
        with activity("inner", stream=out):  # a second live display would raise in rich
            bar.advance(task)
        bar.advance(task)


# --- builds: real time after a cold build, two processes at once -----------------------------------

CONCURRENT_BUILD = """
import json, sys
from spikeforge.hw.config import CoreConfig
from spikeforge.sim.rtl import build
b = build(CoreConfig(rows=2, cols=2), sys.argv[1], kind=sys.argv[2])
print(json.dumps({"seconds": b.seconds, "cached": b.cached, "dir": str(b.directory)}))
"""


def _two_builds_at_once(tmp_path: Path, sim: str, kind: str) -> list[dict]:
    env = dict(os.environ, **{cache.BUILD_ENV: str(tmp_path / "cache")})
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_BUILD, sim, kind], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check_one_built_one_reused(results: list[dict]) -> None:
    assert sorted(r["cached"] for r in results) == [False, True]
    assert results[0]["dir"] == results[1]["dir"]
    assert results[0]["seconds"] == results[1]["seconds"] > 0  # the reuse reports the real build time


def test_two_processes_build_one_icarus_design_once(tmp_path: Path, icarus_tool) -> None:
    _check_one_built_one_reused(_two_builds_at_once(tmp_path, "icarus", "pe"))


@pytest.mark.slow  # two processes, one Verilator build of a 2x2 core (30-90 s on 2 cores)
def test_two_processes_build_one_verilator_design_once(tmp_path: Path, verilator_tool) -> None:
    _check_one_built_one_reused(_two_builds_at_once(tmp_path, "verilator", "core"))


def test_verify_json_reports_the_real_build_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 icarus_tool) -> None:
    from spikeforge.api import verify

    monkeypatch.setenv(cache.BUILD_ENV, str(tmp_path / "cache"))
    cold = verify(rows=2, cols=2, vectors=4, sim="icarus", out=tmp_path / "v1").payload
    warm = verify(rows=2, cols=2, vectors=4, sim="icarus", out=tmp_path / "v2").payload
    assert cold["ok"] and warm["ok"]
    assert cold["build_seconds"] > 0 and cold["build_cached"] is False
    assert warm["build_cached"] is True and warm["build_seconds"] == cold["build_seconds"]
    assert cold["checks"][0]["build_seconds"] == cold["build_seconds"]
    assert json.loads((tmp_path / "v1" / "verify.json").read_text())["build_seconds"] > 0


def test_stale_cache_entries_are_pruned_but_not_one_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    monkeypatch.setenv(cache.MAX_AGE_ENV, "30")
    folder = tmp_path / "verilator"
    old = time.time() - 31 * 86400
    entries = {}
    for name in ("old-free", "old-busy", "fresh"):
        d = folder / name
        d.mkdir(parents=True)
        (d / "built.json").write_text("{}")
        if name.startswith("old"):
            os.utime(d / "built.json", (old, old))
        entries[name] = d
    (folder / "building").mkdir()  # no stamp yet: never touched

    def lock_of(d: Path) -> Path:
        return d.with_name(d.name + ".lock")

    with open(lock_of(entries["old-busy"]), "a+") as busy:
        fcntl.flock(busy, fcntl.LOCK_SH)  # a simulation is using it
        removed = cache.prune_stale(folder, lambda d: d / "built.json", lock_of)
    assert removed == [entries["old-free"]]
    assert {p.name for p in folder.iterdir() if p.is_dir()} == {"old-busy", "fresh", "building"}
    assert cache.prune_stale(folder, lambda d: d / "built.json", lock_of) == []  # once a day at most


def test_verify_table_keeps_its_headers_in_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.scripts.cmd_verify import _print_table
    from spikeforge.sim.rtl.scoreboard import CheckReport

    cfg = CoreConfig(rows=8, cols=8)
    _print_table([("tile vectors", CheckReport("verilator", "8x8", vectors=64)),
                  ("images", CheckReport("verilator", "8x8", vectors=900, images=20))], "verilator", cfg)
    out = capsys.readouterr().out
    for header in ("check", "vectors", "images", "bit-exact", "cycle-exact", "classes equal", "sim cycles/s"):
        assert header in out, out
    assert "…" not in out


def test_flow_help_is_whole_sentences() -> None:
    from spikeforge.scripts import cmd_flow

    # It used to stop at "... report) on the default".
    assert cmd_flow.HELP.endswith("on an 8x8 core") and cmd_flow.DESCRIPTION.endswith("cycle for cycle.")


def test_bench_json_and_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.scripts import bench_core
    from spikeforge.scripts.cli import main

    real = bench_core.measure
    monkeypatch.setattr(bench_core, "measure", lambda seed=0: real(vectors=5, seed=seed))  # small: plumbing
    assert main(["bench", "--which", "core", "--json", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "bench.json").read_text())
    assert printed["schema"] == "spikeforge-bench" and len(printed["core"]["densities"]) == 6
    assert printed["core"]["golden"]["inferences_per_s"] > 0
