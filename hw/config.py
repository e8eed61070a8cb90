"""The one generator config shared by hw/, sim/, quant/ and estimation.

Every knob of the accelerator core lives here. The RTL generator, the golden models, the
quantizer's width checks and the estimators all derive their numbers from a `CoreConfig`,
so nothing is stated twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from spikeforge import SpikeforgeError

MAX_ROWS = 64
MAX_COLS = 64
MIN_WEIGHT_BITS = 2
MAX_WEIGHT_BITS = 16
MAX_ACC_BITS = 48
MAX_INPUT_BITS = 8
SKIP_WINDOWS = (1, 2, 4, 8, 16, 32, 64)
MAX_INPUTS = 1 << 16
MAX_WEIGHT_DEPTH = 1 << 20
MAX_THRESHOLD_DEPTH = 1 << 16
# Stream-protocol faults (hw/faults.py): the `out` beats and their cycles stay right, only the
# valid/ready rules break while `out` is stalled, so only the benches' protocol monitors see them.
PROTOCOL_FAULTS = ("out_valid_drops_while_stalled", "out_payload_changes_while_stalled")
FAULTS = ("comparator_off_by_one", "drop_first_index", "no_double", *PROTOCOL_FAULTS)
# Faults of the neuron unit (multi-step cores only; tests/test_multistep_rtl.py).
NEURON_FAULTS = ("leak_off_by_one", "reset_to_zero", "wrong_step_constant")
MAX_MEMBRANE_BITS = 48
MAX_SCALE_BITS = 24
MAX_STEPS = 1 << 12
MAX_CONV_COORD_BITS = 8
# Pipeline registers a token passes beyond its hop chain (docs/ARCHITECTURE.md, "Timing contract"):
# the two front-end registers (the scanner's index, then the token with its address), the
# registered weight read and the two product registers (the shift-add tree is split after its
# first level). The RTL's flush counters and sim/schedule.py both read this one number.
TOKEN_PIPELINE = 5


class ConfigError(SpikeforgeError, ValueError):
    """A config or artifact that cannot be built. The message is one line: field, problem, fix."""


def _check_range(name: str, value: Any, lo: int, hi: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} is not an integer; {fix}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is outside [{lo}, {hi}]; {fix}")


@dataclass(frozen=True)
class CoreConfig:
    """Parameters of one generated accelerator core.

    rows, cols          the R x C PE array; each PE owns one output neuron of a tile of R*C.
    weight_bits         signed weight width (two's complement).
    acc_bits            signed accumulator width; the datapath wraps at this width, and
                        quant/ refuses models whose worst case does not fit.
    threshold_bits      signed threshold width stored per output neuron (<= acc_bits).
    skip_window         spike-mask bits the zero-skip scanner takes per input beat.
    max_input_bits      the widest multi-bit (bit-serial) input of a first layer.
    max_inputs          the largest fan-in N of one layer (sets the index width).
    weight_depth        words in each PE's local weight memory (all layers and tiles).
    threshold_depth     words in each column's threshold memory.
    fault               test-only RTL fault injection (see FAULTS); None in real designs.

    Multi-step neuron unit (hw/neuron.py); membrane_bits = 0 is the one-time-step core, whose
    RTL, cycles and area do not depend on the fields below:
    membrane_bits       signed membrane potential width U (0: no neuron unit).
    scale_bits          signed per-step scale width (0: scale is 1, no multiplier).
    offset_bits         signed per-step offset width (bias / BN offset added every step).
    leak_shift          k of the leak U - (U >> k) (a constant shift; 0: no leak hardware).
    membrane_depth      membrane words per column.
    max_steps           the most time steps one command may run (the analog first layer).

    Event-driven convolution (hw/conv_tiling.py); 0 is the core without it, whose RTL, cycles and
    area do not change:
    conv_coord_bits     bits of an input event's window coordinates y, x (0: conv layers run
                        one command per output position, from the spike im2col).
    """

    rows: int = 8
    cols: int = 8
    weight_bits: int = 8
    acc_bits: int = 24
    threshold_bits: int = 24
    skip_window: int = 32
    max_input_bits: int = 8
    max_inputs: int = 1024
    weight_depth: int = 1024
    threshold_depth: int = 64
    fault: str | None = None
    membrane_bits: int = 0
    scale_bits: int = 0
    offset_bits: int = 0
    leak_shift: int = 0
    membrane_depth: int = 1
    max_steps: int = 1
    conv_coord_bits: int = 0

    def __post_init__(self) -> None:
        _check_range("rows", self.rows, 1, MAX_ROWS, f"use 1 <= --rows <= {MAX_ROWS}")
        _check_range("cols", self.cols, 1, MAX_COLS, f"use 1 <= --cols <= {MAX_COLS}")
        _check_range(
            "weight_bits", self.weight_bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS,
            f"use {MIN_WEIGHT_BITS} <= --weight-bits <= {MAX_WEIGHT_BITS}",
        )
        _check_range("acc_bits", self.acc_bits, self.weight_bits, MAX_ACC_BITS,
                     f"use weight_bits <= --acc-bits <= {MAX_ACC_BITS}")
        _check_range("threshold_bits", self.threshold_bits, 2, self.membrane_bits or self.acc_bits,
                     "use 2 <= threshold_bits <= acc_bits (membrane_bits on a multi-step core)")
        if self.skip_window not in SKIP_WINDOWS:
            raise ConfigError(f"skip_window={self.skip_window!r} is not one of {SKIP_WINDOWS}; pick one of those")
        _check_range("max_input_bits", self.max_input_bits, 1, MAX_INPUT_BITS,
                     f"use 1 <= max_input_bits <= {MAX_INPUT_BITS}")
        _check_range("max_inputs", self.max_inputs, 1, MAX_INPUTS, f"use 1 <= max_inputs <= {MAX_INPUTS}")
        _check_range("weight_depth", self.weight_depth, 1, MAX_WEIGHT_DEPTH,
                     f"use 1 <= weight_depth <= {MAX_WEIGHT_DEPTH}")
        _check_range("threshold_depth", self.threshold_depth, 1, MAX_THRESHOLD_DEPTH,
                     f"use 1 <= threshold_depth <= {MAX_THRESHOLD_DEPTH}")
        self._check_neuron_unit()
        _check_range("conv_coord_bits", self.conv_coord_bits, 0, MAX_CONV_COORD_BITS,
                     f"use 0 (no event-driven conv) <= conv_coord_bits <= {MAX_CONV_COORD_BITS}")
        if self.conv_coord_bits and self.multistep:
            raise ConfigError("conv_coord_bits > 0 needs a one-time-step core (membrane_bits=0); "
                              "use conv_coord_bits=0 on a multi-step core")
        if self.fault is not None and self.fault not in FAULTS + NEURON_FAULTS:
            raise ConfigError(f"fault={self.fault!r} is unknown; use one of {FAULTS + NEURON_FAULTS} "
                              "(test-only) or none")

    def _check_neuron_unit(self) -> None:
        if self.membrane_bits == 0:
            extra = {k: getattr(self, k) for k in ("scale_bits", "offset_bits", "leak_shift")
                     if getattr(self, k)} | {k: getattr(self, k) for k in ("membrane_depth", "max_steps")
                                              if getattr(self, k) != 1}
            if extra:
                raise ConfigError(f"{sorted(extra)} are multi-step fields but membrane_bits=0; "
                                  "set membrane_bits or leave them at their defaults")
            if self.fault in NEURON_FAULTS:
                raise ConfigError(f"fault={self.fault!r} is a neuron-unit fault; it needs membrane_bits > 0")
            return
        _check_range("membrane_bits", self.membrane_bits, 2, MAX_MEMBRANE_BITS,
                     f"use 2 <= membrane_bits <= {MAX_MEMBRANE_BITS}")
        _check_range("scale_bits", self.scale_bits, 0, MAX_SCALE_BITS, f"use 0 <= scale_bits <= {MAX_SCALE_BITS}")
        if self.scale_bits == 1:
            raise ConfigError("scale_bits=1 holds no positive scale; use 0 (no multiplier) or >= 2")
        _check_range("offset_bits", self.offset_bits, 2, self.membrane_bits, "use 2 <= offset_bits <= membrane_bits")
        _check_range("leak_shift", self.leak_shift, 0, self.membrane_bits - 1, "use 0 <= leak_shift < membrane_bits")
        _check_range("membrane_depth", self.membrane_depth, 1, MAX_THRESHOLD_DEPTH,
                     f"use 1 <= membrane_depth <= {MAX_THRESHOLD_DEPTH}")
        _check_range("max_steps", self.max_steps, 1, MAX_STEPS, f"use 1 <= max_steps <= {MAX_STEPS}")

    @property
    def multistep(self) -> bool:
        """True when the core has the neuron unit (membrane state, hw/neuron.py)."""
        return self.membrane_bits > 0

    @property
    def value_bits(self) -> int:
        """Width of an output beat's values: acc - T (one step) or U - T (multi-step), exact."""
        return (self.membrane_bits if self.multistep else self.acc_bits) + 1

    @property
    def slot_bits(self) -> int:
        """Width of a command's used-slot count (0 = every PE; else 1 .. R*C)."""
        return max(1, self.pes.bit_length())

    @property
    def conv(self) -> bool:
        """True when the core runs conv layers as input events (hw/conv_tiling.py)."""
        return self.conv_coord_bits > 0

    @property
    def conv_shift_bits(self) -> int:
        """Width of a conv command's shift fields (group, width: 0 .. log2(R*C); pitch: 0 .. coord bits)."""
        return max(1, max(self.pes.bit_length() - 1, self.conv_coord_bits).bit_length())

    @property
    def event_bits(self) -> int:
        """Bits of one value event on the input stream: index (LSB), value, then (conv cores) y and x."""
        return self.index_bits + self.max_input_bits + 2 * self.conv_coord_bits

    @property
    def beat_bits(self) -> int:
        """Width of the `spikes` input stream: a skip-window mask, or one value event."""
        return max(self.skip_window, self.event_bits)

    @property
    def membrane_addr_bits(self) -> int:
        return max(1, (self.membrane_depth - 1).bit_length())

    @property
    def step_bits(self) -> int:
        """Width of a command's step index (0 .. max_steps - 1) and of its step count (1 .. max_steps)."""
        return max(1, self.max_steps.bit_length())

    # Derived widths: one place, used by the RTL, the models and the estimators.
    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def index_bits(self) -> int:
        return max(1, (self.max_inputs - 1).bit_length())

    @property
    def weight_addr_bits(self) -> int:
        return max(1, (self.weight_depth - 1).bit_length())

    @property
    def threshold_addr_bits(self) -> int:
        return max(1, (self.threshold_depth - 1).bit_length())

    @property
    def words_bits(self) -> int:
        """Width of the command's beat count: mask words per plane, or value events (<= max_inputs)."""
        return max(1, self.max_inputs.bit_length())

    @property
    def plane_bits(self) -> int:
        return max(1, self.max_input_bits.bit_length())

    @property
    def weight_min(self) -> int:
        return -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def acc_min(self) -> int:
        return -(1 << (self.acc_bits - 1))

    @property
    def acc_max(self) -> int:
        return (1 << (self.acc_bits - 1)) - 1

    @property
    def threshold_min(self) -> int:
        return -(1 << (self.threshold_bits - 1))

    @property
    def threshold_max(self) -> int:
        return (1 << (self.threshold_bits - 1)) - 1

    @property
    def top_name(self) -> str:
        """Verilog top module name; never equal to a port name (Verilator rejects that)."""
        return f"spikeforge_core_r{self.rows}c{self.cols}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoreConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"core config has unknown field(s) {unknown}; remove them")
        return cls(**data)

    def digest(self) -> str:
        """Content hash of the config, used to cache builds and synthesis runs."""
        fields = self.to_dict()
        if not self.conv_coord_bits:  # a core without conv events hashes as it did before the field existed
            del fields["conv_coord_bits"]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> CoreConfig:
        return dataclasses.replace(self, **changes)
