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
from spikeforge.sim.cycle import uses_events
from spikeforge.sim.schedule import back_to_back_cycles, dense_slots, event_slots, scan_slots_batch

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
    "product_adds",
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


def _extra_product_adds(vec: np.ndarray, input_bits: int) -> np.ndarray:
    """Per input value, the adds of its W * value beyond the first: set bits - 1 (0 for a zero)."""
    popcount = np.zeros(vec.shape, dtype=np.int64)
    for bit in range(input_bits):
        popcount += (vec >> bit) & 1
    return np.maximum(popcount - 1, 0)


def scan_counts(cfg: CoreConfig, layer, vec: np.ndarray) -> dict[str, np.ndarray]:
    """Per image [images, vectors], for one layer's input vectors [images, vectors, fan_in]: the scan
    slots S of a command, the tokens every used PE slot reads and adds, the ideal (non-zero) ops,
    the extra adds of the value tokens' shifted copies, the plane doublings and the input bits
    streamed. Event layers (sim/cycle.py `uses_events`): one token per non-zero pixel (a zero event
    for an empty input); mask layers: one per set bit of every plane."""
    vec = np.asarray(vec, dtype=np.int64)
    if uses_events(layer):
        slots = event_slots(vec)
        nonzero = (vec != 0).sum(axis=-1)
        return {"slots": slots, "tokens": slots, "active": nonzero,
                "product_adds": _extra_product_adds(vec, layer.input_bits).sum(axis=-1),
                "doubles": np.zeros_like(slots), "input_bits": slots * cfg.event_bits}
    s, active, words = scan_slots_batch(vec, layer.input_bits, cfg.skip_window)
    return {"slots": s, "tokens": active, "active": active, "product_adds": np.zeros_like(s),
            "doubles": np.full_like(s, layer.input_bits - 1),
            "input_bits": np.full_like(s, words * layer.input_bits * cfg.skip_window)}


def conv_event_counts(cfg: CoreConfig, layer, tiling, act: np.ndarray) -> dict[str, np.ndarray]:
    """Per image [images], an event conv layer's counts (hw/conv_tiling.py) from its input maps
    [images, cin, h, w]: `slots` [images, commands] (S of each command in driver order: the
    window's non-zero inputs, or one zero event), `dense` [images, commands] (every window input an
    event), and the totals `tokens`, `active`, `hits` (the (event, PE) pairs inside a used PE's
    receptive field: its reads and adds), `product_adds`."""
    act = np.asarray(act, dtype=np.int64)
    p, s = tiling.padding, tiling.stride
    padded = np.pad(act, ((0, 0), (0, 0), (p, p), (p, p)))
    nonzero = (padded != 0).astype(np.int64)
    active, dense = [], []
    for _, oy0, ox0, _, _ in tiling.tiles():
        y0, x0 = oy0 * s, ox0 * s
        active.append(nonzero[:, :, y0: y0 + tiling.window_h, x0: x0 + tiling.window_w].sum(axis=(1, 2, 3)))
        dense.append(np.full(len(act), tiling.window_inputs(act.shape[2], act.shape[3], oy0, ox0)))
    active = np.stack(active, axis=1)
    slots = np.maximum(active, 1)
    vec = layer.im2col(act)
    return {"slots": slots, "dense": np.stack(dense, axis=1), "tokens": slots.sum(axis=1), "active": active.sum(axis=1),
            "hits": (vec != 0).sum(axis=(1, 2)) * layer.outputs,
            "product_adds": _extra_product_adds(vec, layer.input_bits).sum(axis=(1, 2)) * layer.outputs}


def _conv_event_layer(out: dict, sel, cfg: CoreConfig, layer, tiling, act: np.ndarray, output: np.ndarray) -> None:
    """Fill one event conv layer's column of `operation_counts`."""
    scan = conv_event_counts(cfg, layer, tiling, act)
    commands = scan["slots"].shape[1]
    n = len(act)
    positions = layer.positions
    out["cycles"][sel] = back_to_back_cycles(cfg, scan["slots"])
    out["ideal_cycles"][sel] = scan["active"]
    out["dense_cycles"][sel] = back_to_back_cycles(cfg, scan["dense"])
    out["commands"][sel] = commands
    out["adds_performed"][sel] = scan["hits"]
    out["adds_useful"][sel] = scan["hits"]
    out["doubles_performed"][sel] = 0
    out["product_adds"][sel] = scan["product_adds"]
    out["weight_reads"][sel] = scan["hits"]
    out["compares_performed"][sel] = commands * cfg.pes
    out["compares_useful"][sel] = positions * layer.outputs
    out["threshold_reads"][sel] = commands * cfg.pes
    out["input_bits_read"][sel] = scan["tokens"] * cfg.event_bits
    width = 1 if layer.spiking else cfg.acc_bits + 1
    out["output_bits_written"][sel] = positions * layer.outputs * width
    out["spikes_out"][sel] = output.reshape(n, -1).sum(axis=1) if layer.spiking else 0
    out["dnn_macs"][sel] = positions * layer.fan_in * layer.outputs
    # a MAC per (output neuron, non-zero input of its field): the event path's hits exactly
    out["dnn_macs_nonzero"][sel] = scan["hits"]
    out["dnn_input_reads"][sel] = positions * layer.fan_in
    out["dnn_outputs"][sel] = positions * layer.outputs


def operation_counts(net: IntegerNetwork, cfg: CoreConfig, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image and compute layer ([images, layers] int64), every count latency and energy need."""
    from spikeforge.hw.layout import plan_layout

    if net.multistep is not None:
        from spikeforge.sim.estimate.multistep_counts import multistep_counts

        return multistep_counts(net, cfg, images, CHUNK, COUNT_KEYS)
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
            tiling = layout.conv_tiling(index)
            if tiling is not None:
                _conv_event_layer(out, (slice(lo, lo + len(batch)), column), cfg, layer, tiling, act, outputs[index])
                column += 1
            elif layer.kind != "pool":
                if layer.kind == "dense":
                    vec = act.reshape(len(batch), 1, -1).astype(np.int64)
                else:
                    vec = layer.im2col(act.astype(np.int64))
                scan = scan_counts(cfg, layer, vec)
                s = scan["slots"]
                v = vec.shape[1]
                tiles = len(layout.tiles_of(index))
                a = scan["active"].sum(axis=1)
                tokens = scan["tokens"].sum(axis=1)
                sel = (slice(lo, lo + len(batch)), column)
                # Commands in driver order: each input vector once per output tile. Gating: a tile's
                # tokens are read and added only by its used slots, layer.outputs over all tiles.
                out["cycles"][sel] = back_to_back_cycles(cfg, np.repeat(s, tiles, axis=1))
                out["ideal_cycles"][sel] = tiles * a
                planes = 1 if uses_events(layer) else layer.input_bits
                dense = np.full((len(batch), v * tiles), dense_slots(layer.fan_in, planes))
                out["dense_cycles"][sel] = back_to_back_cycles(cfg, dense)
                out["commands"][sel] = v * tiles
                out["adds_performed"][sel] = tokens * layer.outputs
                out["adds_useful"][sel] = a * layer.outputs
                out["doubles_performed"][sel] = scan["doubles"].sum(axis=1) * layer.outputs
                out["product_adds"][sel] = scan["product_adds"].sum(axis=1) * layer.outputs
                out["weight_reads"][sel] = tokens * layer.outputs
                out["compares_performed"][sel] = v * tiles * pes
                out["compares_useful"][sel] = v * layer.outputs
                out["threshold_reads"][sel] = v * tiles * pes
                out["input_bits_read"][sel] = scan["input_bits"].sum(axis=1) * tiles
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
