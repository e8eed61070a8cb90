"""Sequencing a multi-step network on the core: the step loop of sim/driver.py's NetworkDriver.

Layer-major order: every time step of layer l runs before layer l+1 (the network is feed-forward,
so layer l+1 at step t needs only layer l at step t). Per layer, one command per (step, output
position, tile), in that order, with `first` on step 0, the layer's constants (per-step blocks for
BNTT), leak, reset and readout flags, and the membrane words of its (position, tile); the analog
first layer of a converted net instead gets one command per (position, tile) with n_steps = T, its
current accumulated once (hw/step_loop.py). A layer's commands are one backend call. Inputs: BNTT's
Poisson spikes come from the host (integer_multistep.poisson_spikes, seeded by the image's index).
"""

from __future__ import annotations

import numpy as np

from spikeforge.hw.layout import membrane_base, neuron_images
from spikeforge.integer_multistep import MultiStep, poisson_spikes
from spikeforge.sim.cycle import Command, NeuronMemories, encode_events, encode_input, uses_events
from spikeforge.sim.schedule import command_slots, tile_timing


def neuron_memories(driver) -> NeuronMemories:
    """The neuron unit's initial contents for the driver's network (zero membrane)."""
    scales, offsets = neuron_images(driver.net, driver.layout)
    return NeuronMemories(scales, offsets, np.zeros((driver.cfg.cols, driver.cfg.membrane_depth), np.int64))


def input_steps(net, image: np.ndarray, image_id: int) -> list[np.ndarray]:
    """The first layer's input at every step run: host spikes, or the quantized image (analog)."""
    ms: MultiStep = net.multistep
    if ms.input_coding == "poisson":
        spikes = poisson_spikes(np.asarray(image)[None], ms.exit_step, ms.input_gain, ms.input_seed, [image_id])[0]
        return [spikes[t].astype(np.int64) for t in range(ms.exit_step)]
    return [net.quantize_input(np.asarray(image)[None])[0]] * ms.exit_step


def step_commands(driver, index: int, acts: list[np.ndarray]) -> list[tuple[Command, list[int]]]:
    """The commands of compute layer `index` for its per-step inputs `acts`."""
    net, cfg = driver.net, driver.cfg
    ms: MultiStep = net.multistep
    layer = net.layers[index]
    neuron = ms.neurons[[i for i, lay in enumerate(net.layers) if lay.kind != "pool"].index(index)]
    tiles = driver.layout.tiles_of(index)
    analog_once = ms.input_coding == "analog" and index == 0
    flags = {"per_step": neuron.per_step, "leak": neuron.leak_shift > 0, "reset_zero": neuron.reset == "zero",
             "readout": not layer.spiking}
    commands = []
    events = uses_events(layer)
    for t in range(1 if analog_once else ms.exit_step):
        act = acts[t]
        vectors = [act.reshape(-1)] if layer.kind == "dense" else list(layer.im2col(act[None].astype(np.int64))[0])
        for position, vec in enumerate(vectors):
            if events:
                n_words, beats = encode_events(vec, cfg.index_bits)
            else:
                n_words, beats = encode_input(vec, layer.input_bits, cfg.skip_window)
            for k, tile in enumerate(tiles):
                commands.append((Command(
                    n_words, 1 if events else layer.input_bits, tile.weight_base, tile.threshold_base,
                    events=events, slots=tile.outputs,
                    membrane_base=membrane_base(net, cfg.rows, cfg.cols, index, position, k), step=t,
                    n_steps=ms.exit_step if analog_once else 1, first=t == 0, **flags), beats))
    return commands


def assemble_steps(driver, index: int, commands, outcomes) -> list[np.ndarray]:
    """Output beats of a layer's commands -> the layer's output map at every step."""
    net, cfg = driver.net, driver.cfg
    layer = net.layers[index]
    steps = net.multistep.exit_step
    tiles = driver.layout.tiles_of(index)
    positions = 1 if layer.kind == "dense" else layer.positions
    flat = np.zeros((steps, positions, layer.outputs), dtype=np.int64)
    per_step = len(tiles) * positions
    for n, ((cmd, _), outcome) in enumerate(zip(commands, outcomes, strict=True)):
        pos, k = divmod(n % per_step, len(tiles))
        placement = tiles[k]
        for b, beat in enumerate(outcome.beats):
            t = cmd.step + b // cfg.rows
            for c in range(cfg.cols):
                slot = beat.row * cfg.cols + c
                if slot < placement.outputs:
                    value = beat.values[c]
                    flat[t, pos, placement.first_output + slot] = value >= 0 if layer.spiking else value
    outs = []
    for t in range(steps):
        out = flat[t, 0] if layer.kind == "dense" else flat[t].T.reshape(layer.outputs, *layer.out_hw)
        outs.append(out.astype(bool) if layer.spiking else out)
    return outs


def run_image(driver, image: np.ndarray, backend, image_id: int = 0):
    """One image through every layer and step on `backend`; returns the driver's ImageTrace."""
    from spikeforge.sim.driver import ImageTrace, LayerTrace

    net = driver.net
    acts = input_steps(net, image, image_id)
    traces = []
    for index, layer in enumerate(net.layers):
        if layer.kind == "pool":
            acts = [layer.apply(a[None].astype(bool))[0] for a in acts]
            traces.append(LayerTrace(index, "pool", 0, 0, 0, 0, np.stack(acts)))
            continue
        commands = step_commands(driver, index, acts)
        outcomes = backend(commands)
        acts = assemble_steps(driver, index, commands, outcomes)
        traces.append(driver.trace(index, commands, outcomes, np.stack(acts)))
    logits = acts[-1].reshape(-1)
    return ImageTrace(traces, int(np.argmax(logits)), logits)


def layer_cycles(driver, images: np.ndarray, image_ids=None) -> np.ndarray:
    """Per image and compute layer the exact cycles of the timing contract (the golden model's
    per-step activations, no datapath run): [images, compute layers]."""
    from spikeforge.integer_multistep import forward_multistep

    net, cfg = driver.net, driver.cfg
    ids = np.arange(len(images)) if image_ids is None else np.asarray(image_ids)
    _, _, outputs = forward_multistep(net, images, cfg.acc_bits, cfg.membrane_bits, ids, collect=True)
    result = np.zeros((len(images), len(net.compute_layers)), dtype=np.int64)
    for img in range(len(images)):
        acts = input_steps(net, images[img], int(ids[img]))
        column = 0
        for index, layer in enumerate(net.layers):
            if layer.kind != "pool":
                cycle = last = 0
                for cmd, beats in step_commands(driver, index, acts):
                    beat_cycles, cycle = tile_timing(cfg, command_slots(cmd, beats), cycle, cmd.n_steps)
                    last = beat_cycles[-1] + 1
                result[img, column] = last
                column += 1
            acts = [np.asarray(o[img]) for o in outputs[index]]
    return result
