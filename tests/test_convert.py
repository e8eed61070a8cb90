"""EFLOPS / SynOps counters on hand-computed nets, and DNN-to-SNN conversion fidelity."""

import json

import pytest
import torch
from torch import nn

from spikeforge import SpikeforgeError
from spikeforge.model import ar_metrics as M
from spikeforge.model import convert as C
from spikeforge.model.checkpoint import load_checkpoint


def test_eflops_linear_by_hand():
    op = nn.Linear(3, 2)
    with torch.no_grad():
        op.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
        op.bias.copy_(torch.tensor([0.0, 5.0]))
    a = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    # sample 0: row0 hits input 0 only (1 MAC), row1 none; one non-zero bias -> 2
    # sample 1: row0 inputs 0 and 2 (2), row1 input 2 (1), + 1 bias -> 4
    assert M.eflops_layer(op, a).tolist() == [2.0, 4.0]


def test_eflops_conv_counts_bias_per_position():
    op = nn.Conv2d(1, 1, 2, bias=True)
    with torch.no_grad():
        op.weight.copy_(torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]))
        op.bias.fill_(1.0)
    a = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])
    # 2x2 outputs; diagonal taps: (0,0): a00,a11 -> 2; (0,1): a01,a12 -> 0; (1,0): a10,a21 -> 0;
    # (1,1): a11,a22 -> 1. Plus 4 biases.
    assert M.eflops_layer(op, a).tolist() == [7.0]


def test_fanout_and_synops_by_hand():
    fan = M.fanout(nn.Linear(4, 3), None, (4,))
    assert fan.tolist() == [3, 3, 3, 3]
    # A 1->2 channel 3x3 conv (pad 1) after 2x2 sum pooling of a 1x4x4 map: each input pixel feeds
    # one pooled pixel (2x2 map), which reaches every output position of its 3x3 window, x2 channels.
    fan = M.fanout(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2), (1, 4, 4))
    assert fan.shape == (1, 4, 4) and torch.all(fan == 8)
    spikes = torch.tensor([[2.0, 0.0, 1.0, 0.0]])
    assert M.synops(spikes, torch.tensor([3.0, 3.0, 1.0, 5.0])).tolist() == [7.0]


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    net = C.ReLUNet({"name": "mlp", "hidden": [6, 5]}, (1, 2, 2), 3)
    return net.eval()


def test_conversion_rates_approach_activations_as_T_grows():
    net = _tiny_net()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 1, 2, 2, generator=g)
    snn, scales = C.convert(net, x, percentile=100.0)  # max-norm: no clipping, rates = a / lambda
    logits, acts = net(x, return_acts=True)
    errs = []
    for T in (10, 100, 1000):
        sim = C.simulate_batch(snn, x, T)
        e_out = (sim.potential / T - logits).abs().max().item()
        e_hid = max((c / T - a / s).abs().max().item()
                    for c, a, s in zip(sim.counts, acts, scales, strict=True))
        errs.append(max(e_out, e_hid))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.02


def test_convert_scales_are_percentiles_of_nonzero_activations():
    net = _tiny_net()
    x = torch.rand(50, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    _, acts = net(x, return_acts=True)
    scales = C.layer_scales(net, x, 50.0)
    for a, s in zip(acts, scales, strict=True):
        v = a.detach().reshape(-1)
        assert s == pytest.approx(torch.quantile(v[v > 0], 0.5).item(), rel=1e-5)


def test_lenet_shapes_and_metrics_run():
    net = C.ReLUNet(C.arch_spec("lenet", None), (1, 8, 8), 10).eval()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert net(x).shape == (4, 10)
    snn, _ = C.convert(net, x)
    out = C.evaluate_snn(snn, x, torch.zeros(4, dtype=torch.long), timesteps=5)
    assert out["spikes"] >= 0 and out["synops"] >= out["spikes"]
    assert C.eflops(net, x) > 0


def test_same_seed_same_training():
    from spikeforge.model.train import Split, TrainConfig, fit, resolve

    x = torch.rand(40, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    y = torch.arange(40) % 3
    cfg = resolve(TrainConfig(method="convert", reg="l1", lam=1e-2, epochs=2, batch_size=8, seed=5), C.RECIPE)
    w = []
    for _ in range(2):
        net = _tiny_net()
        fit(net, C.RECIPE, Split(x, y, x, y), cfg)
        w.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
    assert torch.equal(w[0], w[1])


def test_bad_arch_and_args(tmp_path):
    with pytest.raises(SpikeforgeError, match="arch="):
        C.arch_spec("resnet", None)
    with pytest.raises(SpikeforgeError, match="hidden="):
        C.arch_spec("mlp", [0])
    from spikeforge.model.train import TrainConfig, train

    with pytest.raises(SpikeforgeError, match="lambda="):
        train(TrainConfig(method="convert", reg="l1", lam=-1.0))
    with pytest.raises(SpikeforgeError, match="reg="):
        train(TrainConfig(method="convert", reg="l3", lam=1.0, epochs=1))


def test_checkpoint_roundtrip(tmp_path):
    net = _tiny_net()
    ckpt = {"format": "spikeforge-checkpoint", "version": 1, "method": "convert", "arch": net.arch,
            "dataset": {"name": "x", "input_shape": [1, 2, 2], "num_classes": 3, "split_seed": 0},
            "state_dict": net.state_dict(), "metrics": {"test_accuracy": 0.5}}
    from spikeforge.model.checkpoint import save_run

    path = save_run(tmp_path, ckpt)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"test_accuracy": 0.5}
    again = C.build_from_checkpoint(load_checkpoint(path))
    x = torch.rand(3, 1, 2, 2)
    torch.testing.assert_close(again(x), net(x))
