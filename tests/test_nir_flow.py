"""Acceptance of NIR import (slow): snnTorch-trained digits networks, fresh from training, through the
whole flow, with the RTL checked on Verilator.

- Over seeds: each network's integer accuracy is within 1 pp of snnTorch's own float accuracy
  (snnTorch's forward, not spikeforge's reference executor), and spikeforge's export of it, loaded
  by snnTorch's import_from_nir, gives the golden model's class on all 360 test images.
- `spikeforge flow --nir`: imports, quantizes, generates, verifies 20 of 20 images bit- and
  cycle-exact on Verilator, estimates and reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nir_models import export_snntorch, train_snntorch_digits  # noqa: E402

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[object, Path]]:
    folder = tmp_path_factory.mktemp("snntorch")
    models = {}
    for seed in SEEDS:
        model = train_snntorch_digits(seed=seed)
        path = folder / f"seed{seed}.nir"
        nir.write(path, export_snntorch(model.net))
        models[seed] = (model, path)
    return models


def test_integer_accuracy_within_a_point_of_snntorch_over_seeds(trained, tmp_path: Path) -> None:
    from snntorch.import_nir import import_from_nir

    from spikeforge.api import quantize_nir
    from spikeforge.model.data import load_dataset

    ds = load_dataset("digits")
    drops, rows = [], []
    for seed, (model, path) in trained.items():
        result = quantize_nir(path, tmp_path / f"a{seed}")
        integer = float(np.mean(result.network.forward(ds.x_test)[0] == ds.y_test))
        drops.append(100 * (model.float_accuracy - integer))
        rows.append(f"seed {seed}: snnTorch {100 * model.float_accuracy:.2f} %, integer {100 * integer:.2f} %")
        assert abs(drops[-1]) <= 1.0, (seed, model.float_accuracy, integer)
        assert result.report["float_accuracy"] == pytest.approx(model.float_accuracy, abs=1 / 360)
        back = import_from_nir(nir.read(result.artifact / "network.nir"))
        with torch.no_grad():
            out, _ = back(torch.as_tensor(ds.x_test))
        assert np.mean(out.numpy().argmax(1) == result.network.forward(ds.x_test)[0]) == 1.0
    print("; ".join(rows), f"; drop mean {np.mean(drops):+.2f} pp, max {np.max(np.abs(drops)):.2f} pp")


def test_flow_nir_verifies_twenty_images_on_verilator(trained, tmp_path: Path, verilator_tool) -> None:
    from spikeforge.scripts.cli import main

    _, path = trained[0]
    out = tmp_path / "flow"
    assert main(["flow", "--nir", str(path), "--samples", "20", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    h = report["headline"]
    assert h["method"] == "nir" and h["rtl_samples"] == 20 and h["rtl_matches"] == 20
    assert h["rtl_bit_exact"] and h["rtl_cycle_exact"]
    verify = json.loads((out / "verify" / "verify.json").read_text())
    assert verify["ok"] and len(verify["per_image"]) == 20
    assert abs(h["float_accuracy"] - h["integer_accuracy"]) <= 1.0
