"""End to end: a tiny trained digits SNN -> `spikeforge quantize` -> artifact -> golden model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeforge.model.checkpoint import load_checkpoint
from spikeforge.scripts.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spikeforge.model.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt")
    train(
        TrainConfig(
            method="hoyer",
            dataset="digits",
            arch={"name": "mlp", "hidden": [32]},
            epochs=8,
            out=str(out),
            plots=False,
        )
    )
    return out / "checkpoint.pt"


def test_quantize_cli_end_to_end(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from spikeforge.model.data import load_dataset
    from spikeforge.model.nets import build_from_checkpoint
    from spikeforge.quant.artifact import load_artifact
    from spikeforge.quant.nir_io import read_nir

    out = tmp_path / "art"
    assert main(["quantize", str(checkpoint), "--out", str(out), "--rows", "2", "--cols", "4"]) == 0
    printed = capsys.readouterr().out
    assert "integer accuracy" in printed
    # The path it names is the artifact in place, not the temp folder it was built in.
    assert f"artifact written to {out.resolve()}\n" in printed and ".tmp" not in printed
    net, manifest = load_artifact(out)
    report = json.loads((out / "report.json").read_text())
    assert manifest["provenance"]["checkpoint_sha256"] and manifest["core"]["rows"] == 2
    ds = load_dataset("digits")
    pred, _ = net.forward(ds.x_test)
    model = build_from_checkpoint(load_checkpoint(checkpoint))
    with torch.no_grad():
        fpred = model(torch.as_tensor(ds.x_test)).argmax(1).numpy()
    agreement = float(np.mean(pred == fpred))
    assert agreement >= 0.95
    assert report["agreement"] == pytest.approx(agreement)
    assert report["integer_accuracy"] == pytest.approx(float(np.mean(pred == ds.y_test)))
    assert abs(report["float_accuracy"] - report["integer_accuracy"]) < 0.03
    nir_net = read_nir(out / "network.nir")
    assert np.array_equal(nir_net.forward(ds.x_test)[1], net.forward(ds.x_test)[1])


def test_quantize_cli_qat_4bit(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "art4"
    assert (
        main(
            [
                "quantize",
                str(checkpoint),
                "--weight-bits",
                "4",
                "--per-channel",
                "--qat-epochs",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert "folded_float_accuracy" in report and report["weight_bits"] == 4
    from spikeforge.quant.artifact import load_artifact

    net, _ = load_artifact(out)
    assert max(int(np.abs(layer.weight).max()) for layer in net.compute_layers) <= 7


def _one_line_error(capsys: pytest.CaptureFixture, code: int, needle: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err


def test_cli_rejects_bad_input(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    _one_line_error(capsys, main(["quantize", str(bad), "--out", str(tmp_path / "o")]), "cannot be read")
    _one_line_error(
        capsys, main(["quantize", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")]), "does not exist"
    )
    ckpt = load_checkpoint(checkpoint)
    for method, needle in (("relu", "relu nets need conversion"), ("convert", "is not a convert model")):
        path = tmp_path / f"{method}.pt"
        torch.save({**ckpt, "method": method}, path)
        _one_line_error(capsys, main(["quantize", str(path), "--out", str(tmp_path / "o")]), needle)
    _one_line_error(
        capsys,
        main(["quantize", str(checkpoint), "--weight-bits", "9", "--out", str(tmp_path / "o")]),
        "--weight-bits",
    )
    _one_line_error(
        capsys,
        main(["quantize", str(checkpoint), "--input-bits", "0", "--out", str(tmp_path / "o")]),
        "--input-bits",
    )
    _one_line_error(
        capsys, main(["quantize", str(checkpoint), "--rows", "0", "--out", str(tmp_path / "o")]), "rows"
    )
    (tmp_path / "file").write_text("x")
    _one_line_error(
        capsys, main(["quantize", str(checkpoint), "--out", str(tmp_path / "file")]), "not a directory"
    )
    assert not (tmp_path / "o").exists()
