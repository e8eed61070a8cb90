"""The decision rules of the results scripts (seed claims, activity-regularisation table)."""

from __future__ import annotations

import pytest

from spikeforge.scripts import reproduce_ar, seed_claims


def _stats(values: list[float]) -> dict:
    return seed_claims.summarise([{"row": "r", "dataset": "d", "seed": i, "float_accuracy": v}
                                  for i, v in enumerate(values)])


def test_a_difference_is_shown_only_above_two_images_and_two_standard_errors() -> None:
    n_test = 360  # two images = 0.0056
    a, b = _stats([0.975, 0.978, 0.972]), _stats([0.972, 0.975, 0.969])  # 0.3 pp: under two images
    assert seed_claims.compare(a, b, "float_accuracy", n_test)["sign"] == 0
    a, b = _stats([0.99, 0.90, 0.99]), _stats([0.96, 0.96, 0.96])  # 1 pp but noisy: under 2 SE
    assert seed_claims.compare(a, b, "float_accuracy", n_test)["sign"] == 0
    a, b = _stats([0.990, 0.991, 0.989]), _stats([0.970, 0.971, 0.969])  # 2 pp, tight
    c = seed_claims.compare(a, b, "float_accuracy", n_test)
    assert c["sign"] == 1 and c["diff"] == pytest.approx(0.02)
    assert seed_claims.compare(b, a, "float_accuracy", n_test)["sign"] == -1


def test_table_one_selection_uses_means_and_the_tolerance() -> None:
    base = {"snn_accuracy": 0.97}
    models = [{"snn_accuracy": 0.968, "synops": 100.0}, {"snn_accuracy": 0.96, "synops": 10.0},
              {"snn_accuracy": 0.972, "synops": 300.0}]
    assert reproduce_ar.select(models, base, 0.5) is models[0]  # 0.96 is 1 pp below: out
    assert reproduce_ar.select(models, base, 2.0) is models[1]
    assert reproduce_ar.select([{"snn_accuracy": 0.5, "synops": 1.0}], base, 0.5) is None


def test_auc_of_a_flat_curve_is_its_height() -> None:
    assert reproduce_ar.auc([(0.2, 0.9), (0.8, 0.9)]) == pytest.approx((0.9, 0.9))
    original, smooth = reproduce_ar.auc([(0.2, 0.9), (0.5, 0.8), (0.8, 0.9)])
    assert original < smooth == pytest.approx(0.9)
