"""Test settings shared by the Amaranth and cocotb tests: the printed seed, vector counts, a small config.

The stimulus itself is sim/rtl/stimulus.py (the one generator, also used by `spikeforge verify`).
"""

from __future__ import annotations

import os

from spikeforge.hw.config import CoreConfig


def stimulus_seed(default: int = 20261123) -> int:
    """The seed of a randomized test: SPIKEFORGE_SEED or a fixed default, printed for reruns."""
    seed = int(os.environ.get("SPIKEFORGE_SEED", default))
    print(f"[spikeforge] stimulus seed = {seed} (rerun with SPIKEFORGE_SEED={seed})")
    return seed


def vector_count(default: int) -> int:
    """Vectors per shape: SPIKEFORGE_VECTORS overrides (the slow tier uses 2,000)."""
    return int(os.environ.get("SPIKEFORGE_VECTORS", default))


def tile_config(rows: int, cols: int, weight_bits: int) -> CoreConfig:
    """A small-memory config that still exercises every width: long fan-in, 3-bit inputs."""
    return CoreConfig(
        rows=rows, cols=cols, weight_bits=weight_bits, acc_bits=weight_bits + 9, threshold_bits=weight_bits + 9,
        skip_window=8, max_input_bits=3, max_inputs=96, weight_depth=128, threshold_depth=4 * rows,
    )


# The mismatch each injected fault (hw/config.py FAULTS) must produce: the scoreboard's `what`
# for the data faults, the protocol monitor's for the stream faults.
FAULT_MISMATCH = {
    "comparator_off_by_one": "spike",
    "drop_first_index": "value",
    "no_double": "value",
    "out_valid_drops_while_stalled": "out valid dropped",
    "out_payload_changes_while_stalled": "out payload changed",
}
