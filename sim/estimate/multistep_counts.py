"""Operation counts of a multi-step network (counts.py's keys, plus the neuron unit's), per image
and compute layer, vectorised over images and steps.

The commands are the driver's (sim/multistep_driver.py): per layer, per step (once, with
n_steps = T, for an analog first layer) every input vector once per output tile; their cycles come
from sim/schedule.py. Every drain of a command costs, per PE slot, one membrane read and write,
one constant read (threshold, offset, scale) and one compare, and with `scale_bits > 0` one
multiply; the neuron unit's adds (leak, input, offset) are three per slot and drain.
"""

from __future__ import annotations

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import IntegerNetwork
from spikeforge.sim.cycle import uses_events
from spikeforge.sim.estimate.counts import scan_counts
from spikeforge.sim.schedule import back_to_back_cycles, dense_slots

NEURON_KEYS = ("membrane_reads", "membrane_writes", "constant_reads", "neuron_multiplies", "neuron_adds")


def multistep_counts(net: IntegerNetwork, cfg: CoreConfig, images: np.ndarray, chunk: int = 64,
                     keys: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    from spikeforge.hw.layout import plan_layout
    from spikeforge.integer_multistep import forward_multistep, poisson_spikes

    layout = plan_layout(net, cfg)
    ms = net.multistep
    steps = ms.exit_step
    n = len(images)
    out = {k: np.zeros((n, len(net.compute_layers)), dtype=np.int64) for k in (*keys, *NEURON_KEYS)}
    pes = cfg.pes
    for lo in range(0, n, chunk):
        batch = np.asarray(images[lo: lo + chunk])
        ids = np.arange(lo, lo + len(batch))
        _, _, outputs = forward_multistep(net, batch, cfg.acc_bits, cfg.membrane_bits, ids, collect=True)
        if ms.input_coding == "poisson":
            spikes = poisson_spikes(batch, steps, ms.input_gain, ms.input_seed, ids)
            acts = [spikes[:, t].astype(np.int64) for t in range(steps)]
        else:
            acts = [net.quantize_input(batch)] * steps
        column = 0
        for index, layer in enumerate(net.layers):
            if layer.kind == "pool":
                acts = [np.asarray(a) for a in outputs[index]]
                continue
            once = ms.input_coding == "analog" and index == 0
            passes, drains = (1, steps) if once else (steps, 1)
            planes = 1 if uses_events(layer) else layer.input_bits
            tiles = len(layout.tiles_of(index))
            slots, active, tokens, vectors, nonzero = [], 0, 0, 0, 0
            scan_sum = {"doubles": 0, "product_adds": 0, "input_bits": 0}
            for t in range(passes):
                vec = acts[t].reshape(len(batch), 1, -1) if layer.kind == "dense" else layer.im2col(acts[t])
                scan = scan_counts(cfg, layer, vec)
                slots.append(np.repeat(scan["slots"], tiles, axis=1))
                active = active + scan["active"].sum(axis=1)
                tokens = tokens + scan["tokens"].sum(axis=1)
                for key in scan_sum:
                    scan_sum[key] = scan_sum[key] + scan[key].sum(axis=1)
                nonzero = nonzero + (vec != 0).sum(axis=(1, 2))
                vectors = vec.shape[1]
            s_all = np.concatenate(slots, axis=1)
            commands = s_all.shape[1]
            sel = (slice(lo, lo + len(batch)), column)
            dense = np.full(s_all.shape, dense_slots(layer.fan_in, planes))
            drain_total = commands * drains  # drains of R beats, each touching every PE slot once
            width = 1 if layer.spiking else cfg.value_bits
            o = np.stack(outputs[index], axis=1).reshape(len(batch), steps, -1)
            values = {
                "cycles": back_to_back_cycles(cfg, s_all, drains),
                "ideal_cycles": tiles * active,
                "dense_cycles": back_to_back_cycles(cfg, dense, drains),
                "commands": np.full(len(batch), commands),
                # gating: a tile's tokens are read and added by its used slots only
                "adds_performed": tokens * layer.outputs,
                "adds_useful": active * layer.outputs,
                "doubles_performed": scan_sum["doubles"] * layer.outputs,
                "product_adds": scan_sum["product_adds"] * layer.outputs,
                "weight_reads": tokens * layer.outputs,
                "compares_performed": np.full(len(batch), drain_total * pes),
                "compares_useful": np.full(len(batch), vectors * steps * layer.outputs),
                "threshold_reads": np.full(len(batch), drain_total * pes),
                "input_bits_read": scan_sum["input_bits"] * tiles,
                "output_bits_written": np.full(len(batch), vectors * steps * layer.outputs * width),
                "spikes_out": o.sum(axis=(1, 2)) if layer.spiking else np.zeros(len(batch), np.int64),
                "dnn_macs": np.full(len(batch), vectors * layer.fan_in * layer.outputs),
                # the zero-skipping DNN baseline, on the inputs of an average step
                "dnn_macs_nonzero": nonzero * layer.outputs // passes,
                "dnn_input_reads": np.full(len(batch), vectors * tiles * layer.fan_in),
                "dnn_outputs": np.full(len(batch), vectors * layer.outputs),
                "membrane_reads": np.full(len(batch), drain_total * pes),
                "membrane_writes": np.full(len(batch), drain_total * pes),
                "constant_reads": np.full(len(batch), drain_total * pes),
                "neuron_multiplies": np.full(len(batch), drain_total * pes if cfg.scale_bits else 0),
                "neuron_adds": np.full(len(batch), 3 * drain_total * pes),
            }
            for key in out:
                out[key][sel] = values[key]
            acts = [np.asarray(a) for a in outputs[index]]
            column += 1
    return out
