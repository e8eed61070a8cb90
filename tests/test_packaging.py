"""Issue 19: the installed package works from anywhere (package data, cache, python -m), its
generated IP drops into FuseSoC (lint, sim, synth targets), and nothing names a machine's paths."""

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


# --- FuseSoC --------------------------------------------------------------------------------------

SMALL = {"rows": 2, "cols": 2}


@pytest.fixture
def digits_artifact_small(tmp_path: Path) -> Path:
    """A small random integer MLP 64-16-10 on 8-bit pixels as an artifact (no training needed)."""
    import numpy as np

    from spikeforge.integer_network import Dense, IntegerNetwork
    from spikeforge.quant.artifact import write_artifact

    rng = np.random.default_rng(0)
    net = IntegerNetwork([Dense(rng.integers(-127, 128, (16, 64)), rng.integers(0, 2000, 16), input_bits=8),
                          Dense(rng.integers(-127, 128, (10, 16)), rng.integers(-50, 50, 10), spiking=False)],
                         input_shape=(1, 8, 8), input_bits=8)
    return write_artifact(tmp_path / "artifact", net, 8)


def _generate(out: Path, **given) -> dict:
    from spikeforge.api import generate

    return generate(out, lint=False, **{**SMALL, **given}).manifest


def test_generated_core_describes_filesets_and_targets(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    manifest = _generate(tmp_path / "rtl")
    core = yaml.safe_load((tmp_path / "rtl" / manifest["files"]["fusesoc_core"]).read_text())
    sets = core["filesets"]
    assert sets["rtl"]["files"] == [manifest["verilog"]] and sets["rtl"]["file_type"] == "verilogSource"
    assert sets["waivers"] == {"files": ["lint_waivers.vlt"], "file_type": "vlt"}
    for fs in sets.values():
        for f in fs["files"]:
            assert (tmp_path / "rtl" / f).is_file(), f
    targets = core["targets"]
    assert targets["lint"]["tools"]["verilator"]["mode"] == "lint-only" and "waivers" in targets["lint"]["filesets"]
    assert targets["sim"]["toplevel"] == f"tb_{manifest['top']}"
    assert targets["synth"]["parameters"] == ["part", "package"] and core["parameters"]["part"]["default"] == "25k"
    assert core["scripts"]["spikeforge_synth"]["cmd"][:3] == ["spikeforge", "synth", "--fusesoc"]


def test_generated_core_of_a_model_carries_its_memory_files(tmp_path: Path, digits_artifact_small) -> None:
    yaml = pytest.importorskip("yaml")
    manifest = _generate(tmp_path / "rtl", rows=3, cols=5, model=digits_artifact_small)
    core = yaml.safe_load((tmp_path / "rtl" / manifest["files"]["fusesoc_core"]).read_text())
    mem = core["filesets"]["mem"]
    assert mem["file_type"] == "user" and len(mem["files"]) == 3 * 5 + 5
    assert "mem" in core["targets"]["default"]["filesets"]


def _icarus_smoke(rtl: Path, manifest: dict, tb_text: str | None = None) -> subprocess.CompletedProcess:
    tb = rtl / manifest["files"]["testbench"]
    if tb_text is not None:
        tb = rtl / "tb" / "mutated.v"
        tb.write_text(tb_text)
    exe = rtl / "smoke.vvp"
    core = rtl / manifest["files"]["icarus_verilog"]
    comp = subprocess.run(["iverilog", "-g2012", "-o", str(exe), str(tb), str(core)],
                          capture_output=True, text=True, timeout=120)
    assert comp.returncode == 0, comp.stderr
    return subprocess.run(["vvp", "-n", str(exe)], capture_output=True, text=True, timeout=120, cwd=rtl)


def test_smoke_testbench_passes_and_catches_a_wrong_beat(tmp_path: Path, icarus_tool) -> None:
    rtl = tmp_path / "rtl"
    manifest = _generate(rtl)
    ok = _icarus_smoke(rtl, manifest)
    assert ok.returncode == 0 and "PASS" in ok.stdout, ok.stdout[-1000:]
    text = (rtl / manifest["files"]["testbench"]).read_text()
    # Flip the expected value of beat 0 (its lowest value bit) and move beat 1 a cycle later:
    # each must fail the run.
    m = re.search(r"want\[0\] = (\d+)'h([0-9a-f]+);", text)
    assert m
    flipped = f"want[0] = {m.group(1)}'h{int(m.group(2), 16) ^ (1 << 8):x};"
    bad = _icarus_smoke(rtl, manifest, text.replace(m.group(0), flipped))
    assert bad.returncode != 0 and "FAIL: beat 0" in bad.stdout
    late = re.sub(r"want_cycle\[1\] = (\d+);", lambda k: f"want_cycle[1] = {int(k.group(1)) + 1};", text)
    bad = _icarus_smoke(rtl, manifest, late)
    assert bad.returncode != 0 and "FAIL: beat 1" in bad.stdout


def _fusesoc(tmp_path: Path, rtl: Path, manifest: dict, target: str, tool: str | None = None,
             params: tuple[str, ...] = (), timeout: int = 600) -> subprocess.CompletedProcess:
    """`fusesoc --cores-root RTL run --target=T [--tool=X] VLNV [params]` in tmp_path, with the tool
    environment `spikeforge doctor --env` prints (what a user gives FuseSoC)."""
    pytest.importorskip("fusesoc")
    from spikeforge.hw.fusesoc import vlnv
    from spikeforge.toolchain import configure_environment, find_script

    exe = find_script("fusesoc")
    if exe is None:
        pytest.skip("fusesoc is not installed (pip install -e '.[dev]')")
    cmd = [exe, "--cores-root", str(rtl), "run", f"--target={target}", *([f"--tool={tool}"] if tool else []),
           vlnv(manifest["top"]), *params]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                          env=configure_environment(apply=False), stdin=subprocess.DEVNULL)


def test_fusesoc_lint_target_passes(tmp_path: Path, verilator_tool) -> None:
    manifest = _generate(tmp_path / "rtl")
    run = _fusesoc(tmp_path, tmp_path / "rtl", manifest, "lint")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "%Warning" not in run.stdout + run.stderr


def test_fusesoc_sim_target_on_icarus(tmp_path: Path, icarus_tool) -> None:
    manifest = _generate(tmp_path / "rtl")
    run = _fusesoc(tmp_path, tmp_path / "rtl", manifest, "sim", tool="icarus")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "PASS" in run.stdout


@pytest.mark.slow  # Verilator --binary build of the testbench (~15 s CPU)
def test_fusesoc_sim_target_on_verilator(tmp_path: Path, verilator_tool, digits_artifact_small) -> None:
    manifest = _generate(tmp_path / "rtl", rows=3, cols=5, model=digits_artifact_small)
    run = _fusesoc(tmp_path, tmp_path / "rtl", manifest, "sim")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "PASS" in run.stdout


@pytest.mark.slow  # Yosys + nextpnr on the YoWASP tools (about a minute of CPU)
def test_fusesoc_synth_target_runs_spikeforge_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.BUILD_ENV, str(tmp_path / "cache"))
    manifest = _generate(tmp_path / "rtl")
    run = _fusesoc(tmp_path, tmp_path / "rtl", manifest, "synth", params=("--part=12k",))
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    (report,) = tmp_path.glob("build/*/synth-verilator/synth.json")
    result = json.loads(report.read_text())
    assert result["routed"] and result["out_of_context"] and result["device"].startswith("12k")
    assert result["lut4"] > 0 and result["fmax_mhz"] > 0
    cfg = CoreConfig(**manifest["config"])
    assert result["top"] == cfg.top_name


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
