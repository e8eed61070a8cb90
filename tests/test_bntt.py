"""BNTT SNN: shapes, per-step BN, surrogate, determinism, early-exit rule."""

import pytest
import torch

from spikeforge import SpikeforgeError
from spikeforge.model import bntt as B
from spikeforge.model.checkpoint import load_checkpoint


def _net(T=4, arch=None):
    torch.manual_seed(0)
    return B.BNTTNet(arch or {"name": "mlp", "hidden": [16]}, (1, 4, 4), 3, T, leak=0.95)


def test_forward_shapes_mlp_and_conv():
    x = torch.rand(5, 1, 4, 4)
    net = _net()
    logits, per_step, counts = net(x, return_all=True)
    assert logits.shape == (5, 3) and len(per_step) == 4 and counts[0].shape == (5, 16)
    torch.testing.assert_close(per_step[-1], logits)
    conv = _net(3, {"name": "conv", "channels": [4, 8]})
    assert conv(x).shape == (5, 3)
    assert len(conv.bntt) == 2 and len(conv.bntt[1]) == 3


def test_per_step_bn_are_distinct_and_have_no_shift():
    net = _net()
    bns = net.bntt[0]
    assert len(bns) == 4 and len({id(b.weight) for b in bns}) == 4
    assert all(b.bias is None and b.eps == 1e-4 and b.momentum == 0.1 for b in bns)
    assert all(m.bias is None for m in net.layers)
    net.train()
    net(torch.rand(8, 1, 4, 4), generator=torch.Generator().manual_seed(0)).sum().backward()
    grads = [b.weight.grad for b in bns]
    assert not torch.equal(grads[0], grads[1])  # each step trains its own gamma
    means = [b.running_mean.clone() for b in bns]
    assert not torch.equal(means[0], means[1])  # and keeps its own statistics


def test_same_seed_same_result_and_different_seed_differs():
    x = torch.rand(6, 1, 4, 4)
    net = _net().eval()
    a = net(x, generator=torch.Generator().manual_seed(3))
    b = net(x, generator=torch.Generator().manual_seed(3))
    c = net(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_surrogate_and_threshold_direction():
    u = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], requires_grad=True)
    s = B.SurrogateSpike.apply(u)
    assert s.tolist() == [0, 0, 0, 1, 1, 1]  # fires on U > 1, not >=
    s.sum().backward()
    assert u.grad.tolist() == pytest.approx([0.0, 0.15, 0.3, 0.15, 0.0, 0.0])


def test_poisson_rate_and_sign():
    g = torch.Generator().manual_seed(0)
    x = torch.full((20000,), 0.6)
    assert B.poisson_encode(x, g, gain=1.0).mean().item() == pytest.approx(0.3, abs=0.02)
    assert B.poisson_encode(-x, g, gain=2.0).mean().item() == pytest.approx(-0.6, abs=0.02)


def test_lif_reset_by_subtraction():
    # One neuron, BN ~ identity (eval, running stats 0/1, gamma 1), leak 1, constant drive 0.7:
    # U = 0.7, 1.4* -> 0.4, 1.1* -> 0.1, 0.8, 1.5*: 3 spikes (a reset to zero would give 2).
    net = B.BNTTNet({"name": "mlp", "hidden": [1]}, (1, 1, 1), 1, 5, leak=1.0, input_gain=2.0).eval()
    with torch.no_grad():
        net.layers[0].weight.fill_(0.7)
        net.layers[1].weight.fill_(1.0)
        for bn in net.bntt[0]:
            bn.weight.fill_(1.0)
            bn.running_var.fill_(1.0 - 1e-4)
    _, _, counts = net(torch.ones(1, 1, 1, 1), return_all=True)  # gain 2, x = 1: spikes every step
    assert counts[0].item() == 3.0


def test_early_exit_rule_on_crafted_gammas():
    assert B.early_exit_step([1.0, 0.8, 0.05, 0.02], 0.1) == 2
    assert B.early_exit_step([1.0, 0.05, 0.5, 0.02], 0.1) == 3  # a later rise resets the exit
    assert B.early_exit_step([1.0, 0.9, 0.8], 0.1) == 3
    assert B.early_exit_step([0.01, 0.01], 0.1) == 1


def test_train_is_deterministic_and_checkpoint_roundtrip(tmp_path):
    from spikeforge.model.checkpoint import save_checkpoint
    from spikeforge.model.train import Split, TrainConfig, fit, resolve

    x, y = torch.rand(16, 1, 4, 4), torch.arange(16) % 3
    cfg = resolve(TrainConfig(method="bntt", epochs=1, batch_size=8, seed=1), B.RECIPE)
    nets = []
    for _ in range(2):
        net = _net(2)
        fit(net, B.RECIPE, Split(x, y, x, y), cfg)
        nets.append(net)
    for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(p, q)
    ckpt = {"format": "spikeforge-checkpoint", "version": 1, "method": "bntt", "arch": nets[0].arch,
            "dataset": {"name": "x", "input_shape": [1, 4, 4], "num_classes": 3, "split_seed": 0},
            "state_dict": nets[0].state_dict(), "timesteps": 2, "leak": 0.95, "input_gain": 2.0,
            "metrics": {}}
    path = save_checkpoint(ckpt, tmp_path / "ckpt.pt")
    again = B.build_from_checkpoint(load_checkpoint(path))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(again(x, generator=g()), nets[0](x, generator=g()))


def test_bad_config_raises():
    with pytest.raises(SpikeforgeError, match="timesteps="):
        B.BNTTNet({"name": "mlp", "hidden": [4]}, (1, 2, 2), 2, 0)
    with pytest.raises(SpikeforgeError, match="leak="):
        B.BNTTNet({"name": "mlp", "hidden": [4]}, (1, 2, 2), 2, 4, leak=1.5)
    with pytest.raises(SpikeforgeError, match="steps="):
        _net()(torch.rand(2, 1, 4, 4), steps=9)
