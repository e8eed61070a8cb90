"""Input bits as a co-design knob (issue 18): how many bits per pixel the first layer reads.

The core reads the first layer's pixels bit-serially, one plane per input bit, so fewer input
bits make that layer proportionally cheaper. `spikeforge flow --input-bits auto` trains and
quantizes at each width of `CANDIDATES` (8 first, then downwards), measures each integer model on
a held-out validation split of the training images (never the test set: choosing on the test set
would report a test accuracy that was used to pick the model), and keeps the smallest width whose
validation integer accuracy is within `TOLERANCE_PP` percentage points of the 8-bit one
(`choose_width`). It stops descending at the first width that misses the rule.

    choose_width({8: 0.97, 6: 0.97, 4: 0.968, 3: 0.95})  -> 4
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikeforge.arguments import ArgumentError

CANDIDATES = (8, 6, 5, 4, 3, 2)  # tried in this order; 8 is the reference
TOLERANCE_PP = 0.3  # a width is kept when its validation integer accuracy is >= the 8-bit one - 0.3 pp
VAL_FRACTION = 0.2  # the validation split: this share of the training images ...
VAL_MAX = 5000  # ... at most this many
FIX = "use --input-bits K with K in 1..8, or --input-bits auto"


def check_input_bits(value: Any) -> int | str | None:
    """None (not given), "auto" or a width 1..8; anything else -> one line (ArgumentError, exit 2)."""
    if value is None or value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise ArgumentError(f"--input-bits {value!r} is not a width in 1..8 or auto; {FIX}")
    return value


def parse_input_bits(text: str) -> int | str:
    """The argparse `type=` of flow's --input-bits: "auto" or a whole number 1..8."""
    text = text.strip().lower()
    if text == "auto":
        return text
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a width nor auto; {FIX}") from None
    if not 1 <= value <= 8:
        raise argparse.ArgumentTypeError(f"{value} is outside 1..8; {FIX}")
    return value


parse_input_bits.__name__ = "input_bits"


def validation_size(n_train: int) -> int:
    """How many training images the auto rule holds out (VAL_FRACTION of them, at most VAL_MAX)."""
    return max(1, min(VAL_MAX, round(VAL_FRACTION * n_train)))


def passes(accuracy: float, reference: float, tolerance_pp: float = TOLERANCE_PP) -> bool:
    """Whether `accuracy` (a fraction) is within `tolerance_pp` percentage points of `reference`.
    Exactly on the boundary counts as within (1e-9 pp of slack for float rounding)."""
    return 100.0 * (reference - accuracy) <= tolerance_pp + 1e-9


def choose_width(val_accuracy: Mapping[int, float], tolerance_pp: float = TOLERANCE_PP) -> int:
    """The smallest width, descending from 8, whose validation accuracy passes against the 8-bit
    one; the walk stops at the first width that fails, and 8 wins when nothing
    below it passes. Accuracies are fractions in [0, 1]."""
    if 8 not in val_accuracy:
        raise ValueError("choose_width needs the 8-bit reference accuracy")
    reference = val_accuracy[8]
    chosen = 8
    for width in sorted((w for w in val_accuracy if w < 8), reverse=True):
        if not passes(val_accuracy[width], reference, tolerance_pp):
            break
        chosen = width
    return chosen


def validation_split(dataset: str, data_dir: str | os.PathLike | None, val_size: int, split_seed: int | None = None):
    """The validation images and labels that `spikeforge train --val-size N --split-seed S` holds
    out (model.train.split_data), as float pixels in [0, 1]; split_seed None: the trainer's default,
    the one the flow trains with."""
    import torch

    from spikeforge.model.data import load_dataset
    from spikeforge.model.train import TrainConfig, split_data

    if split_seed is None:
        split_seed = TrainConfig.split_seed
    ds = load_dataset(dataset, None if data_dir is None else str(data_dir), split_seed)
    split = split_data(ds, TrainConfig(dataset=dataset, val_size=val_size, split_seed=split_seed),
                       torch.device("cpu"))
    return split.x_val.numpy(), split.y_val.numpy()


def integer_accuracy(artifact: str | os.PathLike, x, y) -> float:
    """Top-1 accuracy of an artifact's integer golden model on images x (float, [0, 1]) and labels y."""
    import numpy as np

    from spikeforge.quant.artifact import load_artifact

    net, _ = load_artifact(Path(artifact))
    pred = np.concatenate([net.forward(x[i : i + 500])[0] for i in range(0, len(x), 500)])
    return float(np.mean(pred == np.asarray(y)))


def selection_table(candidates: Mapping[int, Mapping[str, float]], chosen: int,
                    tolerance_pp: float = TOLERANCE_PP) -> dict[str, Any]:
    """The flow report's record of the choice: per width the validation and test integer accuracy
    (fractions) and whether it passes the rule against the 8-bit reference."""
    reference = candidates[8]["val_accuracy"]
    rows = [{"input_bits": w, "val_accuracy": c["val_accuracy"], "test_accuracy": c["test_accuracy"],
             "passes": passes(c["val_accuracy"], reference, tolerance_pp)}
            for w, c in sorted(candidates.items(), reverse=True)]
    return {"rule": f"smallest width, descending from 8, whose validation integer accuracy is within "
                    f"{tolerance_pp} pp of the 8-bit one (stops at the first width that misses)",
            "tolerance_pp": tolerance_pp, "reference_bits": 8, "reference_val_accuracy": reference,
            "candidates": rows, "chosen": chosen, "tried": sorted(candidates, reverse=True)}
