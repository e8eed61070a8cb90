"""The artifact's `multistep` section: T, the early-exit step, the input coding, per layer the leak,
the reset mode and the neuron constants (arrays in weights.npz). An artifact without the section
is a one-time-step network, exactly as before (old artifacts load unchanged)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeforge.integer_multistep import INPUT_CODINGS, RESETS, MultiStep, NeuronSteps

MAX_STEPS = 1 << 12


def multistep_section(net: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest section, arrays) of a multi-step network."""
    ms: MultiStep = net.multistep
    layers, arrays = [], {}
    for n, neuron in enumerate(ms.neurons):
        arrays[f"neuron{n}_scale"] = np.asarray(neuron.scale, dtype=np.int64)
        arrays[f"neuron{n}_offset"] = np.asarray(neuron.offset, dtype=np.int64)
        layers.append({"leak_shift": int(neuron.leak_shift), "leak": 1.0 - 2.0 ** -neuron.leak_shift
                       if neuron.leak_shift else 1.0, "reset": neuron.reset, "per_step": bool(neuron.per_step),
                       "arrays": {"scale": f"neuron{n}_scale", "offset": f"neuron{n}_offset"}})
    section = {"timesteps": int(ms.timesteps), "exit_step": int(ms.exit_step), "input_coding": ms.input_coding,
               "input_gain": float(ms.input_gain), "input_seed": int(ms.input_seed),
               "fire": "U >= threshold (integers)", "layers": layers, "notes": ms.notes}
    return section, arrays


def parse_multistep(section: Any, arrays: dict[str, np.ndarray], net: Any, fail) -> MultiStep:
    """Check the section against the network and the arrays; `fail(field, problem)` makes the error."""
    where = "multistep"
    if not isinstance(section, dict):
        raise fail(where, f"is {type(section).__name__}, expected an object")

    def integer(key: str, lo: int, hi: int) -> int:
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise fail(f"{where}.{key}", f"={value!r} is not an integer in [{lo}, {hi}]")
        return value

    timesteps = integer("timesteps", 1, MAX_STEPS)
    exit_step = integer("exit_step", 1, timesteps)
    seed = integer("input_seed", 0, (1 << 63) - 1)
    coding = section.get("input_coding")
    if coding not in INPUT_CODINGS:
        raise fail(f"{where}.input_coding", f"={coding!r} is not one of {INPUT_CODINGS}")
    gain = section.get("input_gain")
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain) or gain <= 0:
        raise fail(f"{where}.input_gain", f"={gain!r} is not a positive number")
    entries = section.get("layers")
    compute = net.compute_layers
    if not isinstance(entries, list) or len(entries) != len(compute):
        raise fail(f"{where}.layers", f"must list one entry per compute layer ({len(compute)})")
    neurons = []
    for n, (entry, layer) in enumerate(zip(entries, compute, strict=True)):
        at = f"{where}.layers[{n}]"
        if not isinstance(entry, dict):
            raise fail(at, "is not an object")
        shift = entry.get("leak_shift")
        if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= 32:
            raise fail(f"{at}.leak_shift", f"={shift!r} is not an integer in [0, 32]")
        if entry.get("reset") not in RESETS:
            raise fail(f"{at}.reset", f"={entry.get('reset')!r} is not one of {RESETS}")
        refs = entry.get("arrays")
        if not isinstance(refs, dict):
            raise fail(f"{at}.arrays", "is not an object")
        got = []
        for key in ("scale", "offset"):
            name = refs.get(key)
            if hasattr(arrays, "read") and isinstance(name, str) and isinstance(entry.get("per_step"), bool):
                # weights.npz read member by member (quant/artifact_io.NpzMembers): the shape is
                # declared before the member is decompressed.
                rows = timesteps if entry["per_step"] else 1
                arr = arrays.read(name, (rows, layer.outputs), f"{at}.arrays.{key}")
            elif not isinstance(name, str) or name not in arrays:
                raise fail(f"{at}.arrays.{key}", f"={name!r} names no array in weights.npz")
            else:
                arr = arrays[name]
            if arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[1] != layer.outputs \
                    or arr.shape[0] not in (1, timesteps) or (arr.shape[0] > 1) != bool(entry.get("per_step")):
                raise fail(f"weights.npz[{name}]", f"has shape {arr.shape} / dtype {arr.dtype}; expected int "
                           f"[1 or T={timesteps}, {layer.outputs}] matching per_step")
            if arr.size and int(np.abs(arr.astype(np.int64)).max()) >= 1 << 47:
                raise fail(f"weights.npz[{name}]", "holds values beyond 48-bit signed")
            got.append(arr.astype(np.int64))
        neurons.append(NeuronSteps(got[0], got[1], shift, entry["reset"]))
    notes = section.get("notes") if isinstance(section.get("notes"), dict) else {}
    return MultiStep(timesteps, exit_step, coding, neurons, float(gain), seed, notes)
