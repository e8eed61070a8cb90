"""Placement of an integer network in the core's memories.

Each PE owns one output neuron of a tile of R*C outputs: PE (r, c) holds slot s = r*C + c.
A compute layer with `outputs` neurons needs ceil(outputs / (R*C)) tiles; tile t of a layer
stores, in every PE, the weights W[t*R*C + s, 0..fan_in-1] at addresses base .. base+fan_in-1,
and, in every column c, the thresholds of slots (r, c) at threshold addresses tbase + r.
Unused slots of the last tile hold zero weights and threshold 0; the driver ignores them.

On a conv core (`conv_coord_bits > 0`) an event-capable conv layer is placed by its tiling
(hw/conv_tiling.py) instead: one tile per channel tile of `group` channels; PE slot s stores the
kernels of its channel ch = s mod group, [ci][ky][kx] with a row pitch of 2^pitch_shift words, and
its column the channel's threshold at tbase + r. Every position slot of a channel repeats them.
The layout is the single source for the generator's memory init, the driver's commands and the
estimators' memory sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge import atomic_write_text
from spikeforge.hw.config import ConfigError, CoreConfig
from spikeforge.hw.conv_tiling import ConvTiling, choose_tiling, conv_coord_bits_for
from spikeforge.integer_network import IntegerNetwork, signed_bits_for_range


@dataclass(frozen=True)
class TilePlacement:
    layer: int  # index into network.layers
    tile: int
    first_output: int
    outputs: int  # valid outputs in this tile (<= R*C)
    weight_base: int
    threshold_base: int


@dataclass(frozen=True)
class Layout:
    cfg: CoreConfig
    tiles: tuple[TilePlacement, ...]
    weight_words: int  # PE weight-memory words used
    threshold_words: int
    conv_tilings: tuple[tuple[int, ConvTiling], ...] = ()  # (layer index, tiling) of the event conv layers

    def tiles_of(self, layer: int) -> list[TilePlacement]:
        return [t for t in self.tiles if t.layer == layer]

    def conv_tiling(self, layer: int) -> ConvTiling | None:
        """The event tiling of layer `layer`, or None when it runs one command per position (or is dense)."""
        return dict(self.conv_tilings).get(layer)


def constant_blocks(net: IntegerNetwork, index: int) -> int:
    """Blocks of R threshold (and neuron-constant) words a tile of layer `index` stores: one, or
    on a multi-step network with per-step constants (BNTT) one per time step."""
    if net.multistep is None:
        return 1
    neuron = net.multistep.neurons[[i for i, lay in enumerate(net.layers) if lay.kind != "pool"].index(index)]
    return int(neuron.scale.shape[0]) if neuron.per_step else 1


def conv_tilings(net: IntegerNetwork, rows: int, cols: int, conv_coord_bits: int = 0) -> dict[int, ConvTiling]:
    """The event tiling of every conv layer that runs as events on such a core (none at 0 bits, or
    on a multi-step network)."""
    if conv_coord_bits <= 0 or net.multistep is not None:
        return {}
    probe = CoreConfig(rows=rows, cols=cols, conv_coord_bits=conv_coord_bits)
    found = {}
    for index, layer in enumerate(net.layers):
        t = choose_tiling(layer, probe)
        if t is not None:
            found[index] = t
    return found


def place_tiles(net: IntegerNetwork, rows: int, cols: int,
                conv_coord_bits: int = 0) -> tuple[tuple[TilePlacement, ...], int, int]:
    """(tiles, weight words per PE, threshold words per column) of `net` on an R x C array: the
    placement rule of the module docstring, with no check of any memory or width. On a multi-step
    network with per-step constants, a tile's block for step t is at threshold_base + t*R."""
    slots = rows * cols
    tiles: list[TilePlacement] = []
    wbase = tbase = 0
    tilings = conv_tilings(net, rows, cols, conv_coord_bits)
    for index, layer in enumerate(net.layers):
        if layer.kind == "pool":
            continue
        if index in tilings:
            tiling = tilings[index]
            for t in range(tiling.channel_tiles):
                first = t * tiling.group
                tiles.append(TilePlacement(index, t, first, min(tiling.group, layer.outputs - first), wbase, tbase))
                wbase += tiling.words
                tbase += rows
            continue
        for t in range(-(-layer.outputs // slots)):
            first = t * slots
            tiles.append(TilePlacement(index, t, first, min(slots, layer.outputs - first), wbase, tbase))
            wbase += layer.fan_in
            tbase += rows * constant_blocks(net, index)
    return tuple(tiles), wbase, tbase


def membrane_base(net: IntegerNetwork, rows: int, cols: int, index: int, position: int, tile: int) -> int:
    """Membrane address of (output position, tile) of layer `index`: R words per column each. The
    driver runs one layer's steps before the next layer's, so every layer starts at address 0."""
    tiles = -(-net.layers[index].outputs // (rows * cols))
    return (position * tiles + tile) * rows


def membrane_words(net: IntegerNetwork, rows: int, cols: int) -> int:
    """Membrane words per column: the largest layer's positions x tiles x R."""
    words = 1
    for layer in net.compute_layers:
        positions = 1 if layer.kind == "dense" else layer.positions
        words = max(words, positions * -(-layer.outputs // (rows * cols)) * rows)
    return words


def plan_layout(net: IntegerNetwork, cfg: CoreConfig) -> Layout:
    """Place every compute layer's tiles; refuse configs whose memories or widths are too small."""
    tilings = conv_tilings(net, cfg.rows, cfg.cols, cfg.conv_coord_bits)
    for index, layer in enumerate(net.layers):
        if layer.kind == "pool":
            continue
        if index in tilings and tilings[index].words > cfg.max_inputs:
            raise ConfigError(
                f"max_inputs={cfg.max_inputs} is smaller than layer {index}'s event index range "
                f"{tilings[index].words} (cin x kernel rows x pitch); use max_inputs >= {tilings[index].words}"
            )
        if layer.fan_in > cfg.max_inputs:
            raise ConfigError(
                f"max_inputs={cfg.max_inputs} is smaller than layer {index}'s fan-in {layer.fan_in}; "
                f"use max_inputs >= {layer.fan_in}"
            )
        if layer.input_bits > cfg.max_input_bits:
            raise ConfigError(
                f"max_input_bits={cfg.max_input_bits} is smaller than layer {index}'s input_bits "
                f"{layer.input_bits}; use max_input_bits >= {layer.input_bits}"
            )
    tiles, wbase, tbase = place_tiles(net, cfg.rows, cfg.cols, cfg.conv_coord_bits)
    if wbase > cfg.weight_depth:
        raise ConfigError(
            f"weight_depth={cfg.weight_depth} is too small: the model needs {wbase} words per PE "
            f"on a {cfg.rows}x{cfg.cols} array; use --weight-depth {wbase} or a larger array"
        )
    if tbase > cfg.threshold_depth:
        raise ConfigError(
            f"threshold_depth={cfg.threshold_depth} is too small: the model needs {tbase} words per column; "
            f"use --threshold-depth {tbase}"
        )
    need_w = net.required_weight_bits()
    if need_w > cfg.weight_bits:
        raise ConfigError(f"weight_bits={cfg.weight_bits} is too narrow: the model's weights need {need_w} bits; "
                          f"use --weight-bits {need_w} or more, or quantize the model to {cfg.weight_bits} bits")
    need_acc = net.required_acc_bits()
    if need_acc > cfg.acc_bits:
        raise ConfigError(
            f"acc_bits={cfg.acc_bits} is too narrow: the model's worst-case accumulator needs {need_acc} bits; "
            f"use --acc-bits {need_acc} or more"
        )
    check_neuron_unit(net, cfg)
    thr_need = max(int(np.abs(layer.threshold).max(initial=0)) for layer in net.compute_layers)
    if thr_need > cfg.threshold_max + 1:
        raise ConfigError(f"threshold_bits={cfg.threshold_bits} cannot hold threshold {thr_need}; "
                          f"use threshold_bits >= {thr_need.bit_length() + 1}")
    return Layout(cfg, tiles, wbase, tbase, tuple(sorted(tilings.items())))


def check_neuron_unit(net: IntegerNetwork, cfg: CoreConfig) -> None:
    """Refuse a multi-step network on a core without (or with too small) a neuron unit, and back."""
    if net.multistep is None:
        if cfg.multistep:
            raise ConfigError("membrane_bits > 0 but the network is one-time-step; use membrane_bits=0")
        return
    if not cfg.multistep:
        raise ConfigError("the network is multi-step (T steps with membrane state) but membrane_bits=0; "
                          "build the core with config_for_network (membrane_bits > 0)")
    need = multistep_fields(net, cfg.rows, cfg.cols, cfg.acc_bits)
    for name in ("membrane_bits", "scale_bits", "offset_bits", "membrane_depth", "max_steps"):
        if getattr(cfg, name) < need[name]:
            raise ConfigError(f"{name}={getattr(cfg, name)} is too small: the model needs {need[name]}; "
                              f"use {name} >= {need[name]}")
    if need["leak_shift"] != cfg.leak_shift and need["leak_shift"]:
        raise ConfigError(f"leak_shift={cfg.leak_shift} but the model leaks with shift {need['leak_shift']}; "
                          f"use leak_shift={need['leak_shift']}")


def memory_images(net: IntegerNetwork, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """The init contents: weights[R*C, weight_depth] and thresholds[C, threshold_depth] (int64)."""
    cfg = layout.cfg
    weights = np.zeros((cfg.pes, cfg.weight_depth), dtype=np.int64)
    thresholds = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
    for tile in layout.tiles:
        layer = net.layers[tile.layer]
        tiling = layout.conv_tiling(tile.layer)
        if tiling is not None:
            _place_conv_tile(cfg, layer, tiling, tile, weights, thresholds)
            continue
        wm = layer.weight_matrix()
        for s in range(tile.outputs):
            out = tile.first_output + s
            weights[s, tile.weight_base: tile.weight_base + layer.fan_in] = wm[out]
            r, c = divmod(s, cfg.cols)
            for block in range(constant_blocks(net, tile.layer)):
                thresholds[c, tile.threshold_base + block * cfg.rows + r] = layer.threshold[out]
    return weights, thresholds


def _place_conv_tile(cfg: CoreConfig, layer, tiling: ConvTiling, tile: TilePlacement, weights: np.ndarray,
                     thresholds: np.ndarray) -> None:
    """One channel tile of an event conv layer (the module docstring's rule)."""
    ch, _, _ = tiling.slot_geometry(cfg.pes)
    kernels = np.zeros((layer.outputs, tiling.cin, tiling.kernel_h, 1 << tiling.pitch_shift), dtype=np.int64)
    kernels[..., : tiling.kernel_w] = layer.weight
    kernels = kernels.reshape(layer.outputs, -1)
    for s in range(min(tiling.slots, cfg.pes)):
        if ch[s] < tile.outputs:
            out = tile.first_output + int(ch[s])
            weights[s, tile.weight_base: tile.weight_base + tiling.words] = kernels[out]
            r, c = divmod(s, cfg.cols)
            thresholds[c, tile.threshold_base + r] = layer.threshold[out]


def neuron_images(net: IntegerNetwork, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """A multi-step network's neuron constants: scales[C, threshold_depth], offsets[C, threshold_depth],
    at the threshold addresses (one block per step when per-step)."""
    cfg = layout.cfg
    scales = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
    offsets = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
    compute = [i for i, lay in enumerate(net.layers) if lay.kind != "pool"]
    for tile in layout.tiles:
        neuron = net.multistep.neurons[compute.index(tile.layer)]
        for s in range(tile.outputs):
            r, c = divmod(s, cfg.cols)
            for block in range(constant_blocks(net, tile.layer)):
                addr = tile.threshold_base + block * cfg.rows + r
                scales[c, addr] = neuron.scale[block, tile.first_output + s]
                offsets[c, addr] = neuron.offset[block, tile.first_output + s]
    return scales, offsets


def to_hex_lines(values: np.ndarray, bits: int) -> list[str]:
    """Two's-complement hex words for Verilog $readmemh."""
    digits = -(-bits // 4)
    mask = (1 << bits) - 1
    return [format(int(v) & mask, f"0{digits}x") for v in values]


def memory_file_texts(net: IntegerNetwork, cfg: CoreConfig) -> dict[str, str]:
    """The $readmemh files by name: weights_pe<r>_<c>.hex per PE and thresholds_col<c>.hex per column
    (quant/artifact_io.py checks an artifact's mem/ files against these)."""
    layout = plan_layout(net, cfg)
    weights, thresholds = memory_images(net, layout)
    texts = {}
    for s in range(cfg.pes):
        r, c = divmod(s, cfg.cols)
        texts[f"weights_pe{r}_{c}.hex"] = "\n".join(to_hex_lines(weights[s], cfg.weight_bits)) + "\n"
    for c in range(cfg.cols):
        texts[f"thresholds_col{c}.hex"] = "\n".join(to_hex_lines(thresholds[c], cfg.threshold_bits)) + "\n"
    if cfg.multistep:
        scales, offsets = neuron_images(net, layout)
        for c in range(cfg.cols):
            for name, image, bits in (("scales", scales, cfg.scale_bits), ("offsets", offsets, cfg.offset_bits)):
                if bits:
                    texts[f"{name}_col{c}.hex"] = "\n".join(to_hex_lines(image[c], bits)) + "\n"
    return texts


def write_memory_files(net: IntegerNetwork, cfg: CoreConfig, out_dir: str | os.PathLike) -> list[Path]:
    """Write the $readmemh files of `memory_file_texts` into `out_dir`."""
    out = Path(out_dir)
    written = []
    for name, text in memory_file_texts(net, cfg).items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written


def _pow2(n: int) -> int:
    return 1 << max(0, (max(1, n) - 1).bit_length())


def multistep_fields(net: IntegerNetwork, rows: int, cols: int, acc_bits: int) -> dict:
    """The neuron-unit fields of CoreConfig for a multi-step network ({} for a one-step one)."""
    if net.multistep is None:
        return {}
    from spikeforge.integer_multistep import required_widths

    widths = required_widths(net)
    shifts = {n.leak_shift for n in net.multistep.neurons} - {0}
    if len(shifts) > 1:
        raise ConfigError(f"the network's layers leak with different shifts {sorted(shifts)}; "
                          "the neuron unit has one leak shift: retrain with one leak")
    return {"membrane_bits": max(widths["membrane_bits"], acc_bits), "scale_bits": widths["scale_bits"],
            "offset_bits": widths["offset_bits"], "leak_shift": shifts.pop() if shifts else 0,
            "membrane_depth": _pow2(membrane_words(net, rows, cols)), "max_steps": widths["max_steps"]}


def config_for_network(
    net: IntegerNetwork,
    rows: int,
    cols: int,
    weight_bits: int | None = None,
    skip_window: int = 32,
    acc_bits: int | None = None,
    fault: str | None = None,
    conv_events: bool = True,
) -> CoreConfig:
    """The smallest valid CoreConfig that runs `net` on an R x C array: the one config that
    generate, verify, estimate, sweep and the flow all build for a model.

    Widths come from the network (weights, worst-case accumulator, thresholds) unless given;
    memory depths are the layout's word counts rounded up to a power of two (the address width
    is the same, and block RAMs come in powers of two). A width narrower than the model needs is
    refused with the field and the fix. `conv_events` (one-step networks with conv layers): run the
    conv layers as input events (hw/conv_tiling.py) rather than one command per output position.
    """
    net.validate()
    CoreConfig(rows=rows, cols=cols, skip_window=skip_window)  # range checks first, one-line errors
    wb = net.required_weight_bits() if weight_bits is None else weight_bits
    acc = max(net.required_acc_bits(), wb) if acc_bits is None else acc_bits
    t_lo = min(int(layer.threshold.min(initial=0)) for layer in net.compute_layers)
    t_hi = max(int(layer.threshold.max(initial=0)) for layer in net.compute_layers)
    tb = min(acc, max(2, signed_bits_for_range(t_lo, t_hi)))
    coord = conv_coord_bits_for(net, rows, cols) if conv_events and net.multistep is None else 0
    tilings = conv_tilings(net, rows, cols, coord)
    _, wwords, twords = place_tiles(net, rows, cols, coord)
    steps = multistep_fields(net, rows, cols, acc)
    if steps:
        tb = min(steps["membrane_bits"], max(2, signed_bits_for_range(t_lo, t_hi)))
    cfg = CoreConfig(
        rows=rows,
        cols=cols,
        weight_bits=wb,
        acc_bits=acc,
        threshold_bits=tb,
        skip_window=skip_window,
        max_input_bits=max(max(layer.input_bits for layer in net.compute_layers), 1),
        max_inputs=max([layer.fan_in for layer in net.compute_layers] + [t.words for t in tilings.values()]),
        weight_depth=_pow2(wwords),
        threshold_depth=_pow2(twords),
        fault=fault,
        conv_coord_bits=coord,
        **steps,
    )
    plan_layout(net, cfg)  # the one place that refuses what does not fit (weight_bits or acc_bits too narrow, ...)
    return cfg
