"""The one network driver: sequences whole networks on the core, one tile command at a time.

The golden model, the Amaranth simulation and the cocotb testbenches all use this driver, so a
network means the same commands everywhere. For each compute layer it builds the commands (one
per output tile for a dense layer; one per output position and tile for a conv layer, from the
spike im2col of the input), hands them to a backend, and assembles the output beats into the
next layer's input. Max-pooling (OR/AND of spikes) runs here, between commands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.conv_tiling import ConvTiling, window_events
from spikeforge.hw.layout import Layout, memory_images, plan_layout
from spikeforge.integer_network import IntegerNetwork
from spikeforge.sim.cycle import (
    Command,
    NeuronMemories,
    OutputBeat,
    decode_conv_event,
    decode_event,
    encode_conv_events,
    encode_events,
    encode_input,
    run_tile,
    uses_events,
)
from spikeforge.sim.schedule import back_to_back_cycles, command_slots, dense_slots, tile_timing


def ideal_slots(cfg: CoreConfig, cmd: Command, beats: list[int]) -> int:
    """The accumulate ops a command needs: its non-zero events, or the set bits of its masks."""
    if cmd.conv and cmd.events:
        return sum(1 for b in beats[:cmd.n_words] if decode_conv_event(cfg, b)[1])
    if cmd.events:
        return sum(1 for b in beats[:cmd.n_words] if decode_event(cfg, b)[1])
    return sum(int(b).bit_count() for b in beats)


@dataclass
class TileOutcome:
    accept_cycle: int
    beats: list[OutputBeat]


# A backend runs a list of (command, beats) back to back and returns one outcome per command,
# with cycles counted from the start of that call.
Backend = Callable[[list[tuple[Command, list[int]]]], list[TileOutcome]]


@dataclass
class LayerTrace:
    layer: int
    kind: str
    commands: int
    cycles: int  # first command accepted .. last beat, both included
    ideal_cycles: int  # active (input, plane) bits over all commands: the spike-count bound
    dense_cycles: int  # the same core without zero-skipping (every input bit costs a cycle)
    output: np.ndarray  # spikes (bool) or readout values (int64), in the layer's output shape
    outcomes: list[TileOutcome] = field(repr=False, default_factory=list)


@dataclass
class ImageTrace:
    layers: list[LayerTrace]
    prediction: int
    logits: np.ndarray

    @property
    def cycles(self) -> int:
        return sum(layer.cycles for layer in self.layers if layer.kind != "pool")


class NetworkDriver:
    def __init__(self, net: IntegerNetwork, cfg: CoreConfig):
        net.validate()
        self.net = net
        self.cfg = cfg
        self.layout: Layout = plan_layout(net, cfg)
        self.weights, self.thresholds = memory_images(net, self.layout)
        self.neuron: NeuronMemories | None = None  # a multi-step core's neuron unit (sim/multistep_driver.py)
        if net.multistep is not None:
            from spikeforge.sim.multistep_driver import neuron_memories

            self.neuron = neuron_memories(self)

    # --- the steps, usable one at a time by an event-driven testbench -------------------------
    def layer_commands(self, index: int, act: np.ndarray) -> list[tuple[Command, list[int]]]:
        """Commands for compute layer `index` given its input activation (ints)."""
        layer = self.net.layers[index]
        cfg = self.cfg
        tiles = self.layout.tiles_of(index)
        tiling = self.layout.conv_tiling(index)
        if tiling is not None:
            return self._conv_commands(tiling, tiles, act)
        if layer.kind == "dense":
            vectors = [act.reshape(-1)]
        else:
            vectors = list(layer.im2col(act[None].astype(np.int64))[0])
        commands = []
        events = uses_events(layer)
        for vec in vectors:
            if events:
                n_words, beats = encode_events(vec, cfg.index_bits)
            else:
                n_words, beats = encode_input(vec, layer.input_bits, cfg.skip_window)
            for tile in tiles:
                commands.append((Command(n_words, 1 if events else layer.input_bits, tile.weight_base,
                                         tile.threshold_base, events=events, slots=tile.outputs), beats))
        return commands

    def _conv_commands(self, tiling: ConvTiling, tiles, act: np.ndarray) -> list[tuple[Command, list[int]]]:
        """An event conv layer: one command per (channel tile, output tile), its window's events."""
        p = tiling.padding
        padded = np.pad(np.asarray(act, dtype=np.int64), ((0, 0), (p, p), (p, p)))
        commands = []
        for t, oy0, ox0, n_y, n_x in tiling.tiles():
            n, beats = encode_conv_events(self.cfg, window_events(tiling, padded, oy0, ox0))
            placement = tiles[t]
            commands.append((Command(n, 1, placement.weight_base, placement.threshold_base, events=True,
                                     slots=tiling.slots, conv=True, group_shift=tiling.group_shift,
                                     width_shift=tiling.width_shift, stride_shift=tiling.stride_shift,
                                     pitch_shift=tiling.pitch_shift, kernel_h=tiling.kernel_h,
                                     kernel_w=tiling.kernel_w, n_ch=placement.outputs, n_y=n_y, n_x=n_x), beats))
        return commands

    def _assemble_conv(self, index: int, tiling: ConvTiling, outcomes: Sequence[TileOutcome]) -> np.ndarray:
        cfg = self.cfg
        layer = self.net.layers[index]
        tiles = self.layout.tiles_of(index)
        ch, ly, lx = tiling.slot_geometry(cfg.pes)
        out = np.zeros((layer.outputs, *layer.out_hw), dtype=np.int64)
        for (t, oy0, ox0, n_y, n_x), outcome in zip(tiling.tiles(), outcomes, strict=True):
            placement = tiles[t]
            for beat in outcome.beats:
                for c in range(cfg.cols):
                    slot = beat.row * cfg.cols + c
                    if slot < tiling.slots and ch[slot] < placement.outputs and ly[slot] < n_y and lx[slot] < n_x:
                        value = beat.values[c]
                        out[placement.first_output + ch[slot], oy0 + ly[slot], ox0 + lx[slot]] = \
                            value >= 0 if layer.spiking else value
        return out.astype(bool) if layer.spiking else out

    def assemble(self, index: int, outcomes: Sequence[TileOutcome]) -> np.ndarray:
        """Output beats of layer `index`'s commands -> the layer's output map."""
        layer = self.net.layers[index]
        cfg = self.cfg
        tiling = self.layout.conv_tiling(index)
        if tiling is not None:
            return self._assemble_conv(index, tiling, outcomes)
        tiles = self.layout.tiles_of(index)
        positions = 1 if layer.kind == "dense" else layer.positions
        flat = np.zeros((positions, layer.outputs), dtype=np.int64)
        for n, outcome in enumerate(outcomes):
            pos, tile = divmod(n, len(tiles))
            placement = tiles[tile]
            for beat in outcome.beats:
                for c in range(cfg.cols):
                    slot = beat.row * cfg.cols + c
                    if slot < placement.outputs:
                        value = beat.values[c]
                        flat[pos, placement.first_output + slot] = value >= 0 if layer.spiking else value
        if layer.kind == "dense":
            out = flat[0]
        else:
            oh, ow = layer.out_hw
            out = flat.T.reshape(layer.outputs, oh, ow)
        return out.astype(bool) if layer.spiking else out

    # --- a whole image on a synchronous backend ------------------------------------------------
    def run_image(self, image: np.ndarray, backend: Backend, image_id: int = 0) -> ImageTrace:
        """`image_id` seeds a multi-step network's host-side input spikes (its test-set index)."""
        if self.net.multistep is not None:
            from spikeforge.sim.multistep_driver import run_image

            return run_image(self, image, backend, image_id)
        act = self.net.quantize_input(np.asarray(image)[None])[0]
        traces = []
        for index, layer in enumerate(self.net.layers):
            if layer.kind == "pool":
                act = layer.apply(act[None].astype(bool))[0]
                traces.append(LayerTrace(index, "pool", 0, 0, 0, 0, act))
                continue
            commands = self.layer_commands(index, act)
            outcomes = backend(commands)
            act = self.assemble(index, outcomes)
            traces.append(self.trace(index, commands, outcomes, act))
        logits = act.reshape(-1)
        return ImageTrace(traces, int(np.argmax(logits)), logits)

    def trace(self, index: int, commands, outcomes: Sequence[TileOutcome], output: np.ndarray) -> LayerTrace:
        cfg = self.cfg
        layer = self.net.layers[index]
        ideal = sum(ideal_slots(cfg, cmd, beats) for cmd, beats in commands)
        tiling = self.layout.conv_tiling(index)
        if tiling is not None:  # without zero-skipping every input of the window is an event
            _, in_h, in_w = layer.in_shape
            per_command = [tiling.window_inputs(in_h, in_w, oy0, ox0) for _, oy0, ox0, _, _ in tiling.tiles()]
        else:
            per_command = [dense_slots(layer.fan_in, cmd.n_planes) for cmd, _ in commands]
        dense = int(back_to_back_cycles(cfg, per_command, [cmd.n_steps for cmd, _ in commands]))
        cycles = outcomes[-1].beats[-1].cycle - outcomes[0].accept_cycle + 1
        return LayerTrace(index, layer.kind, len(commands), cycles, ideal, dense, output, list(outcomes))

    # --- the golden backend --------------------------------------------------------------------
    def golden_backend(self, commands: list[tuple[Command, list[int]]]) -> list[TileOutcome]:
        return golden_run(self.cfg, self.weights, self.thresholds, commands, self.neuron)

    def amaranth_backend(self, commands: list[tuple[Command, list[int]]]) -> list[TileOutcome]:
        from spikeforge.sim.rtl.amaranth_sim import simulate_commands

        return simulate_commands(self.cfg, self.weights, self.thresholds, commands, neuron=self.neuron)


def golden_run(cfg: CoreConfig, weights: np.ndarray, thresholds: np.ndarray,
               commands: Sequence[tuple[Command, list[int]]],
               neuron: NeuronMemories | None = None) -> list[TileOutcome]:
    """The golden model of one backend call: the commands back to back, no stalls, cycles
    counted from the call's first command (the contract every backend keeps). A multi-step core's
    neuron memories (its membrane) carry over from command to command."""
    outcomes = []
    cycle = 0
    for cmd, beats in commands:
        result = run_tile(cfg, weights, thresholds, cmd, beats, accept_cycle=cycle, neuron=neuron)
        outcomes.append(TileOutcome(result.accept_cycle, list(result.beats)))
        cycle = result.next_accept
    return outcomes


def layer_cycles_fast(net: IntegerNetwork, cfg: CoreConfig, images: np.ndarray) -> np.ndarray:
    """Per image and compute layer, the exact cycles of the timing contract, without running
    the datapath: used by the estimators on whole datasets. [images, compute layers]."""
    driver = NetworkDriver(net, cfg)
    if net.multistep is not None:
        from spikeforge.sim.multistep_driver import layer_cycles

        return layer_cycles(driver, images)
    _, _, outputs = net.forward(images, acc_bits=cfg.acc_bits, collect=True)
    quantized = net.quantize_input(images)
    result = np.zeros((len(images), len(net.compute_layers)), dtype=np.int64)
    for img in range(len(images)):
        act = quantized[img]
        column = 0
        for index, layer in enumerate(net.layers):
            if layer.kind != "pool":
                total = 0
                cycle = 0
                for cmd, beats in driver.layer_commands(index, act):
                    beat_cycles, cycle = tile_timing(cfg, command_slots(cmd, beats), cycle)
                    total = beat_cycles[-1] + 1
                result[img, column] = total
                column += 1
            act = outputs[index][img]
    return result
