"""The scoreboard: compare the RTL's output beats and cycles with the golden model's.

`compare_outcomes` finds the first difference (values, spikes, row/last, accept and output
cycles) between two lists of tile outcomes and names it as a `Mismatch` (layer, tile, output,
expected vs got, cycle, seed, waveform); `protocol_mismatch` names the first stream-rule
violation the bench's monitors saw. `CheckReport` collects the verdicts of one check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spikeforge.hw.config import CoreConfig
from spikeforge.sim.cycle import OutputBeat
from spikeforge.sim.driver import TileOutcome


@dataclass
class Mismatch:
    """The first difference between the RTL and the golden model."""

    what: str  # "value", "spike", "cycle", "row", "beats", "accept", "prediction", ...
    where: str  # "layer 1, tile 0 (command 3), output 17 (beat 2, row 0, column 4)"
    expected: Any
    got: Any
    cycle: int | None
    seed: int | None
    waves: str | None = None

    def message(self) -> str:
        text = f"{self.where}: {self.what} expected {self.expected}, got {self.got}"
        if self.cycle is not None:
            text += f" (model cycle {self.cycle})"
        text += f"; seed {self.seed}"
        if self.waves:
            text += f"; waveform: {self.waves}"
        return text


def outcome_from_json(raw: dict) -> TileOutcome:
    beats = [OutputBeat(int(r), bool(last), tuple(bool(s) for s in spikes), tuple(int(v) for v in values), int(cyc))
             for r, last, spikes, values, cyc in raw["beats"]]
    return TileOutcome(int(raw["accept_cycle"]), beats)


def compare_outcomes(cfg: CoreConfig, expected: Sequence[TileOutcome], got: Sequence[TileOutcome], cycles: bool,
                     seed: int | None, label=None) -> Mismatch | None:
    """First difference of two command lists' outcomes. `label(n, row, col)` -> (where-prefix,
    output index) names a command's output; cycles=False ignores timing (stalled runs)."""
    label = label or (lambda n, row, col: (f"tile (command {n})", row * cfg.cols + col))
    if len(got) != len(expected):
        return Mismatch("commands completed", f"{label(len(got), 0, 0)[0]}", len(expected), len(got), None, seed)
    for n, (want, have) in enumerate(zip(expected, got, strict=True)):
        prefix = label(n, 0, 0)[0]
        if cycles and want.accept_cycle != have.accept_cycle:
            return Mismatch("accept cycle", prefix, want.accept_cycle, have.accept_cycle, want.accept_cycle, seed)
        if len(have.beats) != len(want.beats):
            return Mismatch("output beats", prefix, len(want.beats), len(have.beats), None, seed)
        for k, (w, h) in enumerate(zip(want.beats, have.beats, strict=True)):
            if (w.row, w.last) != (h.row, h.last):
                return Mismatch("row/last", f"{prefix}, beat {k}", (w.row, w.last), (h.row, h.last), w.cycle, seed)
            for c in range(cfg.cols):
                where, index = label(n, w.row, c)
                if index is None:
                    continue  # an unused slot of a layer's last tile
                at = f"{where}, output {index} (beat {k}, row {w.row}, column {c})"
                if w.values[c] != h.values[c]:
                    return Mismatch("value", at, w.values[c], h.values[c], w.cycle, seed)
                if w.spikes[c] != h.spikes[c]:
                    return Mismatch("spike", at, w.spikes[c], h.spikes[c], w.cycle, seed)
            if cycles and w.cycle != h.cycle:
                return Mismatch("output cycle", f"{prefix}, beat {k} (row {w.row})", w.cycle, h.cycle, w.cycle, seed)
    return None


def protocol_mismatch(violations: Sequence[dict], where: str, seed: int | None) -> Mismatch | None:
    """The first stream-rule violation a bench's monitors recorded (sim/rtl/streams.py
    ProtocolViolation as JSON), as a Mismatch whose `what` is e.g. "out valid dropped"."""
    if not violations:
        return None
    v = min(violations, key=lambda v: int(v["cycle"]))
    got = "valid low" if v["what"] == "valid dropped" else f"payload {int(v['got']):#x}"
    expected = "valid high" if v["what"] == "valid dropped" else f"payload {int(v['expected']):#x}"
    return Mismatch(f"{v['stream']} {v['what']}", f"{where}, stream {v['stream']} (beat presented in cycle "
                    f"{v['held_since']}, not yet transferred)", expected, got, int(v["cycle"]), seed)


@dataclass
class CheckReport:
    sim: str
    shape: str
    vectors: int = 0
    images: int = 0
    bit_exact: bool = True
    cycle_exact: bool = True
    predictions_equal: bool = True
    protocol_clean: bool = True  # every stream kept valid and payload until the transfer
    sim_cycles: int = 0
    sim_seconds: float = 0.0
    build_seconds: float = 0.0
    mismatch: Mismatch | None = None
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.bit_exact and self.cycle_exact and self.predictions_equal and self.protocol_clean
                and self.mismatch is None)

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.sim_seconds if self.sim_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "sim": self.sim, "shape": self.shape, "vectors": self.vectors, "images": self.images,
            "bit_exact": self.bit_exact, "cycle_exact": self.cycle_exact,
            "predictions_equal": self.predictions_equal, "protocol_clean": self.protocol_clean, "ok": self.ok,
            "sim_cycles": self.sim_cycles, "sim_seconds": round(self.sim_seconds, 3),
            "sim_cycles_per_s": round(self.cycles_per_second, 1), "build_seconds": round(self.build_seconds, 2),
            "mismatch": None if self.mismatch is None
            else {**self.mismatch.__dict__, "message": self.mismatch.message()},
            **self.details,
        }

