"""Operation counts of an integer network on an R x C core, per image and compute layer.

Every number that latency and energy need (cycles, ideal and dense cycles, adds, weight and
threshold reads, compares, input and output bits, spikes, and the int8 DNN's MACs), evaluated on
real inputs and vectorised over the dataset. The cycle figures come from sim/schedule.py, the one
statement of the timing contract.
"""

from __future__ import annotations

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import IntegerNetwork
from spikeforge.sim.schedule import back_to_back_cycles, dense_slots, scan_slots_batch

CHUNK = 64  # images per vectorised step (bounds the im2col memory of conv layers)


# --- operation counts ----------------------------------------------------------------------------


COUNT_KEYS = (
    "cycles",
    "ideal_cycles",
    "dense_cycles",
    "commands",
    "adds_performed",
    "adds_useful",
    "doubles_performed",
    "weight_reads",
    "compares_performed",
    "compares_useful",
    "threshold_reads",
    "input_bits_read",
    "output_bits_written",
    "spikes_out",
    "dnn_macs",
    "dnn_macs_nonzero",
    "dnn_input_reads",
    "dnn_outputs",
)


def operation_counts(net: IntegerNetwork, cfg: CoreConfig, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image and compute layer ([images, layers] int64), every count latency and energy need."""
    from spikeforge.hw.layout import plan_layout

    layout = plan_layout(net, cfg)
    layers = net.compute_layers
    n = len(images)
    out = {k: np.zeros((n, len(layers)), dtype=np.int64) for k in COUNT_KEYS}
    pes = cfg.pes
    for lo in range(0, n, CHUNK):
        batch = np.asarray(images[lo : lo + CHUNK])
        _, _, outputs = net.forward(batch, acc_bits=cfg.acc_bits, collect=True)
        act = net.quantize_input(batch)
        column = 0
        for index, layer in enumerate(net.layers):
            if layer.kind != "pool":
                if layer.kind == "dense":
                    vec = act.reshape(len(batch), 1, -1).astype(np.int64)
                else:
                    vec = layer.im2col(act.astype(np.int64))
                planes = layer.input_bits
                s, active, words = scan_slots_batch(vec, planes, cfg.skip_window)
                v = vec.shape[1]
                tiles = len(layout.tiles_of(index))
                a = active.sum(axis=1)
                sel = (slice(lo, lo + len(batch)), column)
                # Commands in driver order: each input vector once per output tile.
                out["cycles"][sel] = back_to_back_cycles(cfg, np.repeat(s, tiles, axis=1))
                out["ideal_cycles"][sel] = tiles * a
                dense = np.full((len(batch), v * tiles), dense_slots(layer.fan_in, planes))
                out["dense_cycles"][sel] = back_to_back_cycles(cfg, dense)
                out["commands"][sel] = v * tiles
                out["adds_performed"][sel] = a * tiles * pes
                out["adds_useful"][sel] = a * layer.outputs
                out["doubles_performed"][sel] = v * tiles * (planes - 1) * pes
                out["weight_reads"][sel] = a * tiles * pes
                out["compares_performed"][sel] = v * tiles * pes
                out["compares_useful"][sel] = v * layer.outputs
                out["threshold_reads"][sel] = v * tiles * pes
                out["input_bits_read"][sel] = v * tiles * words * planes * cfg.skip_window
                width = 1 if layer.spiking else cfg.acc_bits + 1
                out["output_bits_written"][sel] = v * layer.outputs * width
                o = outputs[index]
                out["spikes_out"][sel] = o.reshape(len(batch), -1).sum(axis=1) if layer.spiking else 0
                out["dnn_macs"][sel] = v * layer.fan_in * layer.outputs
                # A zero-skipping DNN of the same network: a MAC only for a non-zero input activation
                # (the pixel for the first layer, the previous layer's non-zero output after it).
                out["dnn_macs_nonzero"][sel] = (vec != 0).sum(axis=(1, 2)) * layer.outputs
                out["dnn_input_reads"][sel] = v * tiles * layer.fan_in
                out["dnn_outputs"][sel] = v * layer.outputs
                column += 1
            act = outputs[index]
    return out
