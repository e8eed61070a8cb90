"""The one statement of every option's valid range, for the argparse types and the library API.

`RANGES` names each numeric option with its bounds and the fix; `check(name, value)` refuses a
value outside them with one line (`ArgumentError`, exit 2), so `spikeforge train --lr inf` and
`api.train(lr=float("inf"))` fail the same way. `arg_type(name)` is the argparse `type=` that
parses a string and applies the same check; `parse_widths` parses --hidden.

Seeds are bounded by what every consumer accepts: scikit-learn's `random_state` and NumPy's
legacy seeding take [0, 2^32 - 1].
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from spikeforge import SpikeforgeError


class ArgumentError(SpikeforgeError):
    """An option value outside its range (one line: the option, the value, the valid range)."""


@dataclass(frozen=True)
class Range:
    kind: type  # int or float
    low: float
    high: float
    low_open: bool = False  # low itself is not allowed
    fix: str = ""

    def describe(self) -> str:
        def show(v: float) -> str:
            return str(int(v)) if self.kind is int else f"{v:g}"

        return f"{'(' if self.low_open else '['}{show(self.low)}, {show(self.high)}]"


SEED_MAX = 2**32 - 1
RANGES: dict[str, Range] = {
    "seed": Range(int, 0, SEED_MAX, fix="use a seed in [0, 2^32 - 1]"),
    "split_seed": Range(int, 0, SEED_MAX, fix="use a seed in [0, 2^32 - 1]"),
    "lr": Range(float, 0.0, 10.0, low_open=True, fix="use a learning rate such as 1e-3"),
    "lam": Range(float, 0.0, 1e6, fix="use 0 (no regulariser) or a positive weight such as 1e-4"),
    "p": Range(float, 0.0, 16.0, low_open=True, fix="use an exponent such as 0.5"),
    "weight_decay": Range(float, 0.0, 1.0, fix="use 0 or a small decay such as 1e-4"),
    "leak": Range(float, 0.0, 1.0, low_open=True, fix="use a membrane leak in (0, 1], e.g. 0.95"),
    "epochs": Range(int, 1, 100_000, fix="use at least 1 epoch"),
    "qat_epochs": Range(int, 0, 100_000, fix="use 0 (no fine-tuning) or more"),
    "batch_size": Range(int, 1, 1 << 16, fix="use a batch size such as 64"),
    "threads": Range(int, 1, 1024, fix="use 1 or more CPU threads"),
    "timesteps": Range(int, 1, 4096, fix="use at least 1 time step"),
    "fmax": Range(float, 0.0, 10_000.0, low_open=True, fix="give the clock in MHz, e.g. 100"),
    "freq": Range(float, 0.0, 10_000.0, low_open=True, fix="give the clock in MHz, e.g. 100"),
    "dt": Range(float, 0.0, 1.0, low_open=True, fix="give the Euler step in seconds, e.g. 1e-4"),
    "images": Range(int, 1, 1 << 31, fix="use 1 or more images"),
    "samples": Range(int, 1, 1 << 20, fix="use 1 or more samples"),
    "vectors": Range(int, 1, 1 << 20, fix="use 1 or more vectors"),
    "width": Range(int, 1, 1 << 16, fix="use positive widths, e.g. 128 or 256,128"),
}


def option(name: str) -> str:
    return "--" + {"lam": "lambda"}.get(name, name).replace("_", "-")


def _problem(name: str, value: Any) -> str | None:
    """Why `value` is not valid for option `name`, or None."""
    spec = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is {type(value).__name__}, expected a number"
    if spec.kind is int and not isinstance(value, int):
        return "is not a whole number"
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    if value < spec.low or value > spec.high or (spec.low_open and value == spec.low):
        return f"is outside {spec.describe()}"
    return None


def check(name: str, value: Any) -> Any:
    """Return `value` when it is in the range of option `name`, else raise ArgumentError. None passes
    (the option was not given)."""
    if value is None:
        return value
    problem = _problem(name, value)
    if problem is not None:
        raise ArgumentError(f"{option(name)} {value!r} {problem}; {RANGES[name].fix}")
    return value


def check_all(**values: Any) -> None:
    """check() each keyword (name=value)."""
    for name, value in values.items():
        check(name, value)


def arg_type(name: str):
    """The argparse `type=` for option `name`: parse, then check the range (an ArgumentTypeError
    becomes argparse's one-line "argument --x: ..." error, exit 2)."""
    spec = RANGES[name]

    def parse(text: str) -> Any:
        try:
            value = int(text, 10) if spec.kind is int else float(text)
        except ValueError:
            kind = "a whole number" if spec.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}; {spec.fix}") from None
        problem = _problem(name, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{text} {problem}; {spec.fix}")
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def parse_widths(text: str | None) -> list[int] | None:
    """'256,128' -> [256, 128]; None -> None (the arch's default); 'none' -> [] (no hidden layer)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    parts = [w for w in str(text).replace(" ", "").split(",")]
    try:
        widths = [int(w, 10) for w in parts]
    except ValueError:
        widths = []
    if not widths or any(_problem("width", w) for w in widths):
        raise ArgumentError(f"--hidden {text!r} is not a list of positive widths; use e.g. --hidden 128 or "
                            "--hidden 256,128 (at most 65536 each)")
    return widths
