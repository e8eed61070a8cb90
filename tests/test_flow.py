"""spikeforge flow: every stage runs, a rerun is all cache, an interrupted run resumes where it stopped."""

from __future__ import annotations

import json

import pytest

from spikeforge import flow_stages as flow_module
from spikeforge.scripts.cli import main

ARGS = ["flow", "--epochs", "2", "--rows", "2", "--cols", "3", "--samples", "3"]


def stage_lines(out: str) -> dict[str, str]:
    lines = {}
    for line in out.splitlines():
        if line.startswith("[") and "] " in line and ":" in line:
            name, _, state = line.split("] ", 1)[1].partition(": ")
            lines[name] = state
    return lines


@pytest.mark.cocotb
def test_flow_runs_caches_and_resumes_after_interrupt(tmp_path, capsys, monkeypatch, verilator_tool):
    out = tmp_path / "flow"
    real_verify = flow_module.Flow.verify_stage

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(flow_module.Flow, "verify_stage", interrupted)
    assert main([*ARGS, "--out", str(out)]) == 130
    capsys.readouterr()
    from spikeforge.outputs import STAMP

    assert {p.name for p in out.iterdir()} == {STAMP, "train", "quantize", "generate"}  # nothing half-written

    monkeypatch.setattr(flow_module.Flow, "verify_stage", real_verify)
    assert main([*ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    stages = stage_lines(printed.out)
    assert ".tmp-" not in printed.out + printed.err  # no path that the stage's rename removed
    assert all(stages[s].startswith("cached") for s in ("train", "quantize", "generate")), stages
    assert stages["verify"].startswith("done")

    report = json.loads((out / "report.json").read_text())
    h = report["headline"]
    assert h["rtl_samples"] == 3 and h["rtl_matches"] == 3 and h["rtl_bit_exact"] and h["rtl_cycle_exact"]
    assert (out / "report.md").is_file() and (out / "report" / "cycles_per_layer.png").is_file()
    assert (out / "generate" / "rtl" / "spikeforge_core_r2c3.v").is_file()
    assert (out / "generate" / "rtl" / "spikeforge_core_r2c3.core").is_file()
    manifest = json.loads((out / "generate" / "rtl" / "core.json").read_text())
    assert all((out / "generate" / "rtl" / f).is_file() for f in manifest["files"].values())

    assert main([*ARGS, "--out", str(out)]) == 0
    stages = stage_lines(capsys.readouterr().out)
    assert all(state.startswith("cached") for state in stages.values()), stages


def test_flow_refuses_bad_arguments(tmp_path, capsys):
    assert main(["flow", "--rows", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rows=0" in err[0]
    assert main(["flow", "--samples", "0", "--out", str(tmp_path)]) == 2
