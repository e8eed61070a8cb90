"""Energy per inference from counted operations times per-operation energies (45 nm, 0.9 V).

Sources (all Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm; the project's methods sheet, section 4):
- integer add: 8 bit 0.03 pJ, 32 bit 0.1 pJ. An adder's energy grows linearly with its width,
  so other widths are interpolated linearly through those two points.
- integer multiply: 8 bit 0.2 pJ, 32 bit 3.1 pJ; an array multiplier grows with the square of
  the width, 0.2 * (b / 8)^2 (gives 3.2 pJ at 32 bits, within 3 % of the table).
- SRAM: an 8 KB cache read of 64 bits costs 10 pJ, i.e. 0.156 pJ per bit. The PE weight memories
  are smaller than 8 KB, so this is an upper bound for them; writes are taken at the read cost.

What is counted (sim/estimate/ `operation_counts`): accumulates performed by the array (every
ACC token adds in each PE slot its tile uses; unused slots are gated) and the useful ones, plane
doublings (charged as an add: an upper bound, a shift is a mux), the value tokens' shifted-copy adds
(one add of weight + 8 bits per set bit of a pixel beyond the first), weight-memory reads (one word
per used PE slot per ACC token: the read port is enabled only for those), threshold reads
and comparisons (one per PE slot per tile), input-beat reads (every command streams its input
words) and output writes (one bit per spike, acc_bits + 1 per readout value). A multi-step core
adds, per PE slot and drain, a membrane read and write (membrane_bits each), the scale and offset
reads, three membrane-wide adds and, with a scale, one multiply. Not counted: clock tree, token and
pipeline registers, control, leakage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spikeforge.hw.config import CoreConfig

E_ADD8_PJ = 0.03
E_ADD32_PJ = 0.1
E_MULT8_PJ = 0.2
E_SRAM_BIT_PJ = 10.0 / 64  # 8 KB SRAM, 64-bit read = 10 pJ


def e_add(bits: int) -> float:
    """pJ of one `bits`-wide integer add (linear through Horowitz's 8- and 32-bit points)."""
    return max(0.005, E_ADD8_PJ + (bits - 8) * (E_ADD32_PJ - E_ADD8_PJ) / 24)


def e_mult(bits: int) -> float:
    """pJ of one bits x bits integer multiply (quadratic through Horowitz's 8-bit point)."""
    return E_MULT8_PJ * (bits / 8) ** 2


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies (pJ); override a field to model another process."""

    sram_bit_pj: float = E_SRAM_BIT_PJ
    dnn_act_bits: int = 8
    dnn_weight_bits: int = 8
    dnn_acc_bits: int = 24  # the int8 MAC PE baseline of sim/estimate/synth.py

    def to_dict(self) -> dict:
        return asdict(self) | {"source": "Horowitz ISSCC 2014, 45 nm (see spikeforge.sim.estimate.energy)"}


def snn_energy(
    counts: dict[str, float],
    acc_bits: int,
    weight_bits: int,
    threshold_bits: int,
    model: EnergyModel = EnergyModel(),
    neuron: dict[str, int] | None = None,
) -> dict[str, float]:
    """pJ per inference by component, from mean operation counts of one inference. `neuron`
    (membrane_bits, scale_bits, offset_bits) adds a multi-step core's membrane reads and writes,
    constant reads, adds and multiplies (a multiply scale_bits x acc_bits is charged as a square
    one of their mean width)."""
    bit = model.sram_bit_pj
    parts = {
        "accumulate": counts["adds_performed"] * e_add(acc_bits),
        "double": counts["doubles_performed"] * e_add(acc_bits),
        # the value tokens' shifted copies of W: one (weight + input)-bit add per set bit beyond the first
        "product": counts.get("product_adds", 0.0) * e_add(weight_bits + 8),
        "weight_read": counts["weight_reads"] * weight_bits * bit,
        "compare": counts["compares_performed"] * e_add(acc_bits + 1),
        "threshold_read": counts["threshold_reads"] * threshold_bits * bit,
        "input_read": counts["input_bits_read"] * bit,
        "output_write": counts["output_bits_written"] * bit,
    }
    if neuron is not None:  # a multi-step core's neuron unit (sim/estimate/multistep_counts.py)
        parts["membrane"] = (counts["membrane_reads"] + counts["membrane_writes"]) * neuron["membrane_bits"] * bit
        parts["neuron_constants"] = counts["constant_reads"] * (neuron["scale_bits"] + neuron["offset_bits"]) * bit
        parts["neuron_add"] = counts["neuron_adds"] * e_add(neuron["membrane_bits"])
        parts["neuron_multiply"] = counts["neuron_multiplies"] * e_mult((neuron["scale_bits"] + acc_bits) / 2)
    total = sum(parts.values())
    useful = max(counts["adds_useful"], 1.0)
    return {
        "parts_pj": parts,
        "total_pj": total,
        "compute_pj": parts["accumulate"] + parts["double"] + parts["product"] + parts["compare"],
        "pj_per_synop": total / useful,
        # The convention of SNN papers: useful synaptic ops times one add, no memory.
        "synops_x_add_pj": counts["adds_useful"] * e_add(acc_bits),
    }


def dnn_energy(
    counts: dict[str, float], model: EnergyModel = EnergyModel(), skip_zeros: bool = False
) -> dict[str, float]:
    """The same network as an int8 MAC DNN. Dense: every input costs a MAC, whatever its value.
    `skip_zeros`: a zero-skipping DNN (the honest baseline for sparse inputs) spends a MAC and a
    weight read only on non-zero input activations; it still reads every activation once to test it,
    and that test (an 8-bit OR) is not charged."""
    bit = model.sram_bit_pj
    macs = counts["dnn_macs_nonzero"] if skip_zeros else counts["dnn_macs"]
    parts = {
        "mac": macs * (e_mult(max(model.dnn_act_bits, model.dnn_weight_bits)) + e_add(model.dnn_acc_bits)),
        "weight_read": macs * model.dnn_weight_bits * bit,
        "input_read": counts["dnn_input_reads"] * model.dnn_act_bits * bit,
        "output_write": counts["dnn_outputs"] * model.dnn_act_bits * bit,
    }
    total = sum(parts.values())
    return {
        "parts_pj": parts,
        "total_pj": total,
        "compute_pj": parts["mac"],
        "pj_per_mac": total / max(macs, 1.0),
        "macs": macs,
    }


def energy_report(counts: dict[str, np.ndarray], cfg: CoreConfig, model: EnergyModel = EnergyModel()) -> dict:
    mean = {k: float(v.sum(axis=1).mean()) for k, v in counts.items()}
    neuron = ({"membrane_bits": cfg.membrane_bits, "scale_bits": cfg.scale_bits, "offset_bits": cfg.offset_bits}
              if cfg.multistep else None)
    snn = snn_energy(mean, cfg.acc_bits, cfg.weight_bits, cfg.threshold_bits, model, neuron)
    dnn = dnn_energy(mean, model)
    sparse_dnn = dnn_energy(mean, model, skip_zeros=True)
    return {
        "model": model.to_dict(),
        "counts_mean": mean,
        "snn": snn,
        "dnn_int8": dnn,
        "dnn_over_snn": dnn["total_pj"] / max(snn["total_pj"], 1e-12),
        "dnn_int8_zero_skip": sparse_dnn,
        "zero_skip_dnn_over_snn": sparse_dnn["total_pj"] / max(snn["total_pj"], 1e-12),
        "useful_fraction_of_adds": mean["adds_useful"] / max(mean["adds_performed"], 1.0),
    }
