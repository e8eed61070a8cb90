"""A whole quantized digits network on the RTL, image by image, against the golden backend.

The network is a real artifact: SPIKEFORGE_DIGITS_ARTIFACT names one, otherwise the fixture runs
the project's flow once (`spikeforge train --method hoyer --dataset digits --arch mlp`, then
`spikeforge quantize`) and caches the artifact under the build folder. The RTL runs every layer
on its own previous outputs, sequenced by the one NetworkDriver; each command's beats and
cycles, each layer's output and cycle count and the predicted class must equal the golden
backend's, and the prediction must equal the functional model's (`IntegerNetwork.forward`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from core_stimulus import stimulus_seed

from spikeforge.sim import rtl

pytestmark = pytest.mark.cocotb

ARTIFACT_ENV = "SPIKEFORGE_DIGITS_ARTIFACT"
TRAIN_EPOCHS = 12  # enough for ~95 % on digits; the artifact is cached, so this runs once


def digits_artifact() -> Path:
    """The digits artifact to verify with: $SPIKEFORGE_DIGITS_ARTIFACT, or one made by the flow."""
    named = os.environ.get(ARTIFACT_ENV)
    if named:
        return Path(named)
    from spikeforge import flow_stages
    from spikeforge.scripts import cli

    # The cache is the user's (shared by checkouts and versions): key the artifact by the code
    # that trains and quantizes it, as the flow keys its stages.
    code = flow_stages.code_digest(Path(flow_stages.__file__).parent, flow_stages.STAGE_CODE["quantize"])
    root = rtl.build_root() / "artifacts"
    art = root / f"digits-mlp-hoyer-e{TRAIN_EPOCHS}-{code}"
    with rtl._locked(root / "digits.lock"):
        if not (art / "manifest.json").is_file():
            ckpt = root / f"{art.name}-ckpt"
            rc = cli.main(["train", "--method", "hoyer", "--dataset", "digits", "--arch", "mlp", "--epochs",
                           str(TRAIN_EPOCHS), "--seed", "0", "--out", str(ckpt)])
            assert rc == 0, "spikeforge train failed"
            rc = cli.main(["quantize", str(ckpt / "checkpoint.pt"), "--rows", "3", "--cols", "5", "--out", str(art)])
            assert rc == 0, "spikeforge quantize failed"
    return art


@pytest.fixture(scope="session")
def digits():
    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import load_artifact

    net, manifest = load_artifact(digits_artifact())
    ds = load_dataset(manifest["dataset"]["name"])
    return net, manifest, ds


def network_config(net, manifest, rows: int, cols: int):
    from spikeforge.quant.pipeline import core_for

    return core_for(net, rows, cols, int(manifest["weight_bits"]))


def pick_images(ds, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds.x_test), size=min(count, len(ds.x_test)), replace=False))
    return np.asarray(ds.x_test[idx], dtype=np.float64), np.asarray(ds.y_test[idx])


def check(report: rtl.CheckReport, net, images: np.ndarray, cfg) -> None:
    assert report.ok, f"{report.sim} {report.shape}: {report.mismatch.message() if report.mismatch else report}"
    assert report.images == len(images)
    pred, _ = net.forward(images, acc_bits=cfg.acc_bits)
    rtl = [p["rtl"] for p in report.details["per_image"]]
    assert rtl == [int(p) for p in pred], "RTL classes differ from IntegerNetwork.forward"


@pytest.mark.parametrize("rows,cols,count", [
    pytest.param(3, 5, 8, id="3x5-8img"),
    pytest.param(3, 5, 50, id="3x5-50img", marks=pytest.mark.slow),
    pytest.param(8, 8, 20, id="8x8-20img", marks=pytest.mark.slow),
])
def test_network_matches_golden(digits, rows: int, cols: int, count: int, verilator_tool) -> None:
    net, manifest, ds = digits
    cfg = network_config(net, manifest, rows, cols)
    seed = stimulus_seed() + count
    images, _ = pick_images(ds, count, seed)
    report = rtl.check_network(cfg, net, images, "verilator", seed=seed)
    check(report, net, images, cfg)


def test_network_with_stalls(digits, verilator_tool) -> None:
    """Random stalls on every stream: same outputs and classes; cycles are not compared."""
    net, manifest, ds = digits
    cfg = network_config(net, manifest, 3, 5)
    seed = stimulus_seed() + 5
    images, _ = pick_images(ds, 3, seed)
    report = rtl.check_network(cfg, net, images, "verilator", seed=seed, stall_seed=seed)
    check(report, net, images, cfg)
    rtl_cycles = [p["rtl_cycles"] for p in report.details["per_image"]]
    golden_cycles = [p["golden_cycles"] for p in report.details["per_image"]]
    assert all(r > g for r, g in zip(rtl_cycles, golden_cycles, strict=True)), "stalls must cost cycles"


@pytest.mark.parametrize("sim", [
    pytest.param("icarus", id="icarus"),
    pytest.param("verilator", id="verilator", marks=pytest.mark.slow),
])
def test_network_with_baked_weights(digits, sim: str, request) -> None:
    """The `generate --model` path: weights and thresholds in the Verilog's memory init, nothing
    loaded through the load port; cycle 0 is the first cycle after reset."""
    request.getfixturevalue("icarus_tool" if sim == "icarus" else "verilator_tool")
    net, manifest, ds = digits
    cfg = network_config(net, manifest, 3, 5)
    seed = stimulus_seed() + 9
    images, _ = pick_images(ds, 3, seed)
    report = rtl.check_network(cfg, net, images, sim, seed=seed, baked=True)
    check(report, net, images, cfg)


@pytest.mark.slow
def test_network_icarus_agrees_with_verilator(digits, verilator_tool, icarus_tool) -> None:
    net, manifest, ds = digits
    cfg = network_config(net, manifest, 3, 5)
    seed = stimulus_seed() + 13
    images, _ = pick_images(ds, 5, seed)
    reports = {sim: rtl.check_network(cfg, net, images, sim, seed=seed) for sim in ("verilator", "icarus")}
    for report in reports.values():
        check(report, net, images, cfg)
    assert reports["verilator"].details["per_image"] == reports["icarus"].details["per_image"]


def test_verify_command_end_to_end(digits, tmp_path, capsys, verilator_tool) -> None:
    """`spikeforge verify` on the digits model: exit 0, and a JSON report that says why."""
    import json

    from spikeforge.scripts import cli

    art = digits_artifact()
    rc = cli.main(["verify", "--rows", "3", "--cols", "5", "--model", str(art), "--samples", "3",
                   "--vectors", "12", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["ok"] is True
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["tile vectors"]["vectors"] == 12 and checks["tile vectors"]["cycle_exact"]
    assert checks["images"]["images"] == 3 and checks["images"]["bit_exact"] and checks["images"]["cycle_exact"]
    assert "bit-exact" in out or "bit-ex" in out


def test_verify_missing_simulator_is_one_line(monkeypatch, capsys) -> None:
    from spikeforge import toolchain
    from spikeforge.scripts import cli

    missing = toolchain.ToolInfo("icarus", False, required=False, problem="Icarus Verilog not found (iverilog is "
                                 "not on PATH)", fix="apt-get install iverilog")
    monkeypatch.setitem(toolchain.FINDERS, "icarus", lambda: missing)
    rc = cli.main(["verify", "--sim", "icarus", "--rows", "1", "--cols", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == cli.EXIT_USER_ERROR
    assert len(err.splitlines()) == 1 and "apt-get install iverilog" in err, err


def test_verify_refuses_samples_without_model(capsys) -> None:
    from spikeforge.scripts import cli

    rc = cli.main(["verify", "--samples", "5"])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_USER_ERROR and "--samples needs --model" in err
