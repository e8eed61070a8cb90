"""What `spikeforge search` searches and optimises: the space, the objectives, the constraints.

This module is the one statement of the co-design search space (SPACE): every dimension, its
side (model or hardware) and its choices. `spikeforge search --help` prints it from here, the
trials suggest from it, and `--space NAME=...` narrows it. It imports nothing heavy (the CLI
imports it to build the parser).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from spikeforge import SpikeforgeError


class SearchError(SpikeforgeError):
    """A search option that cannot run. One line: the option, the problem, the fix."""


@dataclass(frozen=True)
class Dim:
    """One dimension of the search space: a log-uniform float range or a list of choices."""

    name: str
    side: str  # "model" (trained/quantized) or "hardware" (the generated core)
    help: str
    choices: tuple[int, ...] = ()
    log_range: tuple[float, float] | None = None

    def describe(self) -> str:
        if self.log_range is not None:
            return f"{self.log_range[0]:g} .. {self.log_range[1]:g} (log-uniform)"
        return ", ".join(str(c) for c in self.choices)

    def to_dict(self) -> dict[str, Any]:
        if self.log_range is not None:
            return {"name": self.name, "log_range": list(self.log_range)}
        return {"name": self.name, "choices": list(self.choices)}


# The search space. Choices are the values the core and the quantizer accept (hw/config.py,
# quant/quantize.py); the hidden width list is small because each trial trains a network.
SPACE: tuple[Dim, ...] = (
    Dim("lam", "model", "Hoyer regulariser weight (fewer spikes as it grows)", log_range=(1e-6, 1e-2)),
    Dim("hidden_width", "model", "width of the first hidden layer", choices=(32, 48, 64, 96, 128, 192, 256)),
    Dim("hidden_layers", "model", "hidden layers; a second one is half as wide as the first", choices=(1, 2)),
    Dim("weight_bits", "model", "signed weight width after quantization", choices=(3, 4, 5, 6, 8)),
    Dim("input_bits", "model", "pixel bits (the first layer reads them bit-serially)", choices=(1, 2, 3, 4, 6, 8)),
    Dim("rows", "hardware", "PE array rows", choices=(1, 2, 4, 8, 16)),
    Dim("cols", "hardware", "PE array columns", choices=(1, 2, 4, 8, 16)),
    Dim("skip_window", "hardware", "spike-mask bits the zero-skip scanner takes per beat", choices=(8, 16, 32, 64)),
)

# name -> (direction, the trial figure it reads, what it is)
OBJECTIVES: dict[str, tuple[str, str, str]] = {
    "accuracy": ("maximize", "accuracy", "integer (golden-model = RTL) accuracy on the test set"),
    "latency": ("minimize", "latency_us", "mean latency per inference in us at the core's Fmax"),
    "cycles": ("minimize", "cycles_mean", "mean core cycles per inference"),
    "luts": ("minimize", "lut4", "ECP5 LUT4 of the core (calibrated area model)"),
    "energy": ("minimize", "energy_nj", "energy per inference in nJ (45 nm operation energies)"),
}

_LIMITS = {"hidden_width": (1, 4096), "hidden_layers": (1, 2), "weight_bits": (2, 8), "input_bits": (1, 8),
           "rows": (1, 64), "cols": (1, 64)}
_SKIP_WINDOWS = (1, 2, 4, 8, 16, 32, 64)  # hw/config.py SKIP_WINDOWS (not imported: keeps --help light)


def one_line(exc: BaseException) -> str:
    """An error message on one line (the CLI's contract)."""
    return " ".join(str(exc).split())


def space_help() -> str:
    """The search space and the objectives as --help text."""
    lines = ["search space (narrow it with --space NAME=V1,V2 or --space lam=LOW:HIGH):"]
    for d in SPACE:
        lines.append(f"  {d.name:<14} {d.side:<9} {d.describe()}")
        lines.append(f"  {'':<14} {'':<9} {d.help}")
    lines.append("objectives (--objectives, comma-separated):")
    for name, (direction, _, what) in OBJECTIVES.items():
        lines.append(f"  {name:<14} {direction:<9} {what}")
    lines.append("constraints (--constraint, repeatable): FIGURE>=VALUE or FIGURE<=VALUE on any objective")
    lines.append("  or recorded figure, e.g. accuracy>=0.97, lut4<=2000, latency_us<=5")
    return "\n".join(lines)


def narrow_space(overrides: list[str]) -> tuple[Dim, ...]:
    """SPACE with each `NAME=V1,V2` (choices) or `lam=LOW:HIGH` (range) override applied."""
    dims = {d.name: d for d in SPACE}
    for text in overrides:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or name not in dims:
            raise SearchError(f"--space {text!r}: use NAME=V1,V2 with NAME one of {', '.join(dims)}")
        dim = dims[name]
        if dim.log_range is not None:
            low, sep, high = value.partition(":")
            try:
                lo, hi = (float(low), float(high)) if sep else (float(value), float(value))
            except ValueError:
                lo = hi = math.nan
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise SearchError(f"--space {text!r}: give {name}=LOW:HIGH with 0 < LOW <= HIGH, e.g. {name}=1e-5:1e-3")
            dims[name] = replace(dim, log_range=(lo, hi))
            continue
        try:
            choices = tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
        except ValueError:
            choices = ()
        lo, hi = _LIMITS.get(name, (1, 1 << 30))
        bad = [c for c in choices if not lo <= c <= hi or (name == "skip_window" and c not in _SKIP_WINDOWS)]
        if not choices or bad:
            allowed = f"one of {_SKIP_WINDOWS}" if name == "skip_window" else f"integers in {lo}..{hi}"
            raise SearchError(f"--space {text!r}: {name} takes a comma-separated list of {allowed}")
        dims[name] = replace(dim, choices=choices)
    return tuple(dims[d.name] for d in SPACE)


def parse_objectives(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in OBJECTIVES]
    if not names or unknown or len(set(names)) != len(names):
        raise SearchError(f"--objectives {text!r}: give distinct names from {', '.join(OBJECTIVES)}, "
                          "e.g. accuracy,latency,luts")
    return names


@dataclass(frozen=True)
class Constraint:
    figure: str  # a trial figure (user attribute), e.g. accuracy or lut4
    op: str  # ">=" or "<="
    value: float

    def violation(self, figures: dict[str, Any]) -> float:
        """Optuna's convention: <= 0 when satisfied, else how far off."""
        v = figures.get(self.figure)
        if not isinstance(v, int | float) or not math.isfinite(v):
            return math.inf
        return self.value - v if self.op == ">=" else v - self.value

    def __str__(self) -> str:
        return f"{self.figure}{self.op}{self.value:g}"


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")


def parse_constraint(text: str) -> Constraint:
    m = _CONSTRAINT.match(text)
    try:
        value = float(m.group(3)) if m else math.nan
    except ValueError:
        value = math.nan
    if not m or not math.isfinite(value):
        raise SearchError(f"--constraint {text!r}: use FIGURE>=VALUE or FIGURE<=VALUE, e.g. accuracy>=0.97")
    figure = m.group(1)
    # An objective name stands for the figure it reads (luts -> lut4, latency -> latency_us).
    figure = OBJECTIVES[figure][1] if figure in OBJECTIVES else figure
    if figure not in FIGURES:
        raise SearchError(f"--constraint {text!r}: {figure!r} is not a recorded figure; use one of "
                          f"{', '.join(sorted(FIGURES))}")
    return Constraint(figure, m.group(2), value)


# Every figure a trial records as an Optuna user attribute (besides its parameters).
FIGURES = (
    "accuracy", "float_accuracy", "agreement", "hidden_spike_rate", "cycles_mean", "cycles_p99",
    "dense_cycles_mean", "speedup_vs_dense", "latency_us", "latency_us_p99", "fmax_mhz", "lut4", "ff", "ebr",
    "dpr16x4", "ge_logic", "energy_nj", "pj_per_synop", "dnn_energy_nj", "acc_bits", "weight_depth",
    "train_s", "quantize_s", "estimate_s", "trial_s", "trial_cpu_s",
)
