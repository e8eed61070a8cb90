"""The library API: the docs/API.md example runs and reproduces `spikeforge flow` on the default."""

from __future__ import annotations

import json
import os
import re
import runpy
from pathlib import Path

import pytest

import spikeforge

DOC = Path(__file__).resolve().parent.parent / "docs" / "API.md"


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/API.md should hold exactly one python example"
    return blocks[0]


def test_example_is_short_and_api_is_exported() -> None:
    lines = [line for line in example_code().splitlines() if line.strip()]
    assert len(lines) <= 20, f"the example has {len(lines)} lines; keep it to 20"
    for name in ("train", "quantize", "generate", "verify", "estimate", "flow"):
        assert callable(getattr(spikeforge, name)), name


@pytest.mark.cocotb
def test_example_reproduces_the_default_flow(tmp_path: Path, capsys, verilator_tool, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    scope = runpy.run_path(_write(tmp_path / "example.py", example_code()))
    art, proof, cost = scope["art"], scope["proof"], scope["cost"]
    assert proof.ok

    report = spikeforge.flow(tmp_path / "flow")  # the defaults of `spikeforge flow`
    assert report["ok"]
    h = report["headline"]
    assert 100 * art.report["float_accuracy"] == pytest.approx(h["float_accuracy"], abs=1e-9)
    assert 100 * art.report["integer_accuracy"] == pytest.approx(h["integer_accuracy"], abs=1e-9)
    assert cost["latency"]["cycles"]["mean"] == h["cycles_mean"]
    assert cost["latency"]["fmax_mhz"] == h["fmax_mhz"]
    assert cost["energy"]["snn"]["total_pj"] / 1000 == pytest.approx(h["energy_nj"], rel=1e-12)
    flow_estimate = json.loads((tmp_path / "flow" / "estimate" / "estimate.json").read_text())
    assert cost["area"]["fast"] == flow_estimate["area"]["fast"]
    assert cost["config_digest"] == flow_estimate["config_digest"]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return os.fspath(path)
