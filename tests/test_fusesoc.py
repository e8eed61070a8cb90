"""Issue 19: the generated IP drops into FuseSoC: the `.core` describes its filesets and targets,
a model's memory files travel with it, the smoke testbench passes (and catches a wrong beat), and
the lint, sim and synth targets run. (Split from tests/test_packaging.py.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from spikeforge import cache
from spikeforge.hw.config import CoreConfig

# --- generated cores --------------------------------------------------------------------------------------

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
