"""Multi-step integer export (quant/multistep.py) and its functional model (integer_multistep.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.integer_multistep import (
    MultiStep,
    NeuronSteps,
    forward_multistep,
    leak,
    membrane_bounds,
    neuron_step,
    poisson_spikes,
    required_widths,
)
from spikeforge.integer_network import Dense, IntegerNetwork
from spikeforge.quant.fold import QuantError
from spikeforge.quant.multistep import bntt_network, convert_network, leak_shift_of

DATASET = {"input_shape": [1, 4, 4], "num_classes": 3}


def test_leak_is_shift_and_subtract() -> None:
    assert leak(100, 4) == 100 - 6 and leak(-100, 4) == -100 + 7  # floor shift: -100 >> 4 = -7
    assert leak(np.array([33]), 0)[0] == 33
    assert leak_shift_of(0.9375) == 4 and leak_shift_of(1.0) == 0
    with pytest.raises(QuantError, match="not 1 - 2"):
        leak_shift_of(0.95)


def test_neuron_step_reset_modes_and_readout() -> None:
    common = {"leak_shift": 0, "first": False, "membrane_bits": 16}
    stored, value, spike = neuron_step(5, 4, 2, 1, 10, reset_zero=False, readout=False, **common)
    assert (value, bool(spike), stored) == (4, True, 4)  # 5 + 2*4 + 1 = 14 >= 10: U <- 14 - 10
    stored, _, _ = neuron_step(5, 4, 2, 1, 10, reset_zero=True, readout=False, **common)
    assert stored == 0
    stored, value, _ = neuron_step(5, 4, 2, 1, 10, reset_zero=False, readout=True, **common)
    assert stored == 14 and value == 4
    stored, _, spike = neuron_step(5, 1, 2, 1, 10, reset_zero=False, readout=False, **common)
    assert stored == 8 and not spike
    stored, _, _ = neuron_step(999, 1, 1, 0, 10, leak_shift=0, first=True, reset_zero=False, readout=False,
                               membrane_bits=16)
    assert stored == 1  # first step: U_{-1} = 0


def _random_net(rng: np.random.Generator, steps: int) -> IntegerNetwork:
    layers = [Dense(rng.integers(-20, 21, (6, 16)), rng.integers(1, 60, 6), spiking=True, input_bits=1),
              Dense(rng.integers(-20, 21, (3, 6)), np.zeros(3, np.int64), spiking=False, input_bits=1)]
    neurons = [NeuronSteps(rng.integers(-9, 10, (steps, 6)), rng.integers(-30, 31, (steps, 6)), 2, "subtract"),
               NeuronSteps(np.ones((1, 3), np.int64), rng.integers(-5, 6, (1, 3)), 0, "subtract")]
    return IntegerNetwork(layers, (1, 4, 4), 1, 3, multistep=MultiStep(steps, steps, "poisson", neurons))


def test_membrane_bound_is_sound() -> None:
    """No membrane value on random inputs (simulated 48 bits wide) leaves the proven interval."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        net = _random_net(rng, 6)
        bounds = membrane_bounds(net)
        x = rng.random((200, 1, 4, 4))
        _, _, outs = forward_multistep(net, x, 40, 48, collect=True)
        readout_lo, readout_hi = bounds[-1]
        values = np.stack(outs[-1])  # readout values = U (threshold 0)
        assert readout_lo <= values.min() and values.max() <= readout_hi
        widths = required_widths(net)
        narrow = forward_multistep(net, x, 40, widths["membrane_bits"])[1]
        assert np.array_equal(narrow, forward_multistep(net, x, 40, 48)[1])  # the proven width never wraps


def test_poisson_spikes_do_not_depend_on_the_batch() -> None:
    x = np.random.default_rng(0).random((5, 1, 4, 4))
    both = poisson_spikes(x, 4, 2.0, 7, [10, 11, 12, 13, 14])
    alone = poisson_spikes(x[2:3], 4, 2.0, 7, [12])
    assert np.array_equal(both[2], alone[0]) and both.dtype == np.uint8
    assert not poisson_spikes(np.zeros((1, 1, 4, 4)), 4, 2.0, 7, [0]).any()


def test_bntt_export_matches_float_and_records_steps() -> None:
    from spikeforge.model.bntt import BNTTNet

    torch.manual_seed(0)
    net = BNTTNet({"name": "mlp", "hidden": [12]}, (1, 4, 4), 3, timesteps=4, leak=0.9375).eval()
    for bn in net.bntt[0]:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    inet = bntt_network(net, DATASET, 8, per_channel=False)
    ms = inet.multistep
    assert ms.timesteps == 4 and ms.input_coding == "poisson" and ms.neurons[0].leak_shift == 4
    assert ms.neurons[0].scale.shape == (4, 12) and not ms.neurons[1].per_step
    assert required_widths(inet)["scale_bits"] == 12
    from spikeforge.quant.multistep import bntt_float_predict, integer_predict

    x = np.random.default_rng(1).random((300, 1, 4, 4))
    ids = np.arange(300)
    agree = (bntt_float_predict(net, x, ms, ids) == integer_predict(inet, x, ids)).mean()
    assert agree >= 0.95
    with pytest.raises(QuantError, match="not 1 - 2"):
        bntt_network(BNTTNet({"name": "mlp", "hidden": [4]}, (1, 4, 4), 3, 2, leak=0.95), DATASET, 8, False)


def test_convert_export_folds_pooling_and_matches_float() -> None:
    from spikeforge.model.convert import ReLUNet, convert
    from spikeforge.quant.multistep import convert_float_predict, integer_predict

    torch.manual_seed(0)
    relu = ReLUNet({"name": "lenet"}, (1, 8, 8), 3).eval()
    x = np.random.default_rng(2).random((120, 1, 8, 8)).astype(np.float32)
    snn, _ = convert(relu, torch.as_tensor(x))
    inet = convert_network(snn, {"input_shape": [1, 8, 8], "num_classes": 3}, 16, 8, 8)
    kinds = [(layer.kind, layer.input_bits) for layer in inet.layers]
    assert kinds == [("conv", 8), ("conv", 1), ("dense", 1), ("dense", 1), ("dense", 1)]
    assert inet.layers[1].stride == 2 and inet.layers[1].weight.shape[2:] == (10, 10)  # 5x5 after a 2x2 pool
    assert inet.layers[2].fan_in == 16 * 4 * 4 and required_widths(inet)["scale_bits"] == 0
    agree = (convert_float_predict(snn, x, 16) == integer_predict(inet, x, np.arange(len(x)))).mean()
    assert agree >= 0.9


def test_multistep_artifact_round_trip(tmp_path) -> None:
    from spikeforge.quant.artifact import load_artifact, write_artifact
    from spikeforge.quant.pipeline import core_for

    net = _random_net(np.random.default_rng(5), 3)
    core = core_for(net, 2, 3, 8)  # the core quantize records (the artifact reader checks it is that one)
    assert core.multistep and core.leak_shift == 2 and core.max_steps == 3
    write_artifact(tmp_path / "a", net, 8, core=core)
    back, manifest = load_artifact(tmp_path / "a")
    assert manifest["multistep"]["timesteps"] == 3 and manifest["multistep"]["input_coding"] == "poisson"
    x = np.random.default_rng(0).random((20, 1, 4, 4))
    assert np.array_equal(back.forward(x, acc_bits=core.acc_bits)[1], net.forward(x, acc_bits=core.acc_bits)[1])
    manifest["multistep"]["exit_step"] = 9
    import json

    (tmp_path / "a" / "manifest.json").write_text(json.dumps(manifest))
    from spikeforge.quant.artifact import ArtifactError

    with pytest.raises(ArtifactError, match="multistep.exit_step"):
        load_artifact(tmp_path / "a")
