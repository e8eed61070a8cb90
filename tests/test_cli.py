"""The CLI: every subcommand parses, errors are one line, the package imports only as spikeforge.*."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import spikeforge
from spikeforge.scripts import cli

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", cli.SUBCOMMANDS)
def test_every_subcommand_help_exits_zero(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: spikeforge {name}" in capsys.readouterr().out


def test_train_is_listed() -> None:
    out = _run("-m", "spikeforge.scripts.cli", "--help")
    assert out.returncode == 0, out.stderr
    for name in cli.SUBCOMMANDS:
        assert name in out.stdout


def test_version() -> None:
    out = _run("-m", "spikeforge.scripts.cli", "--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"spikeforge {spikeforge.__version__}"


def test_subcommand_modules_import_and_follow_the_contract() -> None:
    """Each scripts/cmd_*.py that exists imports for real (not via the stand-in) and is listed."""
    files = sorted(p.stem.removeprefix("cmd_") for p in (REPO / "scripts").glob("cmd_*.py"))
    unlisted = set(files) - set(cli.SUBCOMMANDS)
    assert not unlisted, f"subcommand modules missing from cli.SUBCOMMANDS: {unlisted}"
    for name in files:
        mod = importlib.import_module(f"spikeforge.scripts.cmd_{name}")
        assert isinstance(mod.HELP, str) and mod.HELP
        assert callable(mod.add_arguments) and callable(mod.run)


def test_building_the_parser_imports_nothing_heavy() -> None:
    heavy = ("torch", "amaranth", "numpy", "cocotb", "sklearn")
    code = ("import sys; from spikeforge.scripts import cli; cli.build_parser(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = _run("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_subcommand_module_is_a_one_line_error() -> None:
    """A subcommand whose module has not landed: exit 2, one stderr line, no traceback."""
    code = ("import sys; from spikeforge.scripts import cli; "
            "cli.SUBCOMMANDS = cli.SUBCOMMANDS + ('nosuch',); sys.exit(cli.main(['nosuch', '--x', '1']))")
    out = _run("-c", code)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("spikeforge nosuch: error: spikeforge nosuch is not available yet")
    assert "Traceback" not in out.stderr


def _with_command(monkeypatch: pytest.MonkeyPatch, run) -> None:
    """Replace the `bench` subcommand by a module whose run() is `run`."""
    mod = types.ModuleType("fake_cmd")
    mod.HELP = "fake"
    mod.add_arguments = lambda parser: None
    mod.run = run
    real = cli.load_command
    monkeypatch.setattr(cli, "load_command", lambda name: mod if name == "bench" else real(name))


def test_user_error_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def run(args: argparse.Namespace) -> int:
        raise spikeforge.SpikeforgeError("rows=0 is outside [1, 64];\nuse 1 <= --rows <= 64")

    _with_command(monkeypatch, run)
    assert cli.main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err == "spikeforge bench: error: rows=0 is outside [1, 64]; use 1 <= --rows <= 64\n"


def test_internal_error_is_one_line_exit_70(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def run(args: argparse.Namespace) -> int:
        raise RuntimeError("boom")

    _with_command(monkeypatch, run)
    monkeypatch.delenv("SPIKEFORGE_DEBUG", raising=False)
    assert cli.main(["bench"]) == 70
    err = capsys.readouterr().err
    assert err == ("spikeforge bench: internal error: RuntimeError: boom "
                   "(set SPIKEFORGE_DEBUG=1 for the traceback)\n")
    monkeypatch.setenv("SPIKEFORGE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["bench"])


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def run(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    _with_command(monkeypatch, run)
    assert cli.main(["bench"]) == 130
    assert capsys.readouterr().err.strip() == "spikeforge bench: interrupted"


def test_run_return_value_is_the_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_command(monkeypatch, lambda args: 3)
    assert cli.main(["bench"]) == 3


def test_broken_subcommand_module_does_not_break_the_cli() -> None:
    """A module that exists but fails to import: other subcommands work; running it is an internal error."""
    stand_in = cli._missing_module("bench", ValueError("bad import"))
    with pytest.raises(ValueError, match="bad import"):
        stand_in.run(argparse.Namespace())


def test_subpackages_import_as_spikeforge() -> None:
    out = _run("-c", "import spikeforge.hw, spikeforge.sim, spikeforge.model, spikeforge.quant")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("where", ["tmp", "repo"])
def test_bare_subpackage_import_fails(where: str, tmp_path: Path) -> None:
    """`import model` must not work anywhere: the folders are only spikeforge.* subpackages."""
    cwd = tmp_path if where == "tmp" else REPO
    out = _run("-c", "import model", cwd=cwd)
    assert out.returncode != 0
    # From the repo root the folder is found and refuses itself; elsewhere there is nothing to find.
    if where == "tmp":
        expected = "ModuleNotFoundError: No module named 'model'"
    else:
        expected = "import spikeforge.model, not model"
    assert expected in out.stderr
