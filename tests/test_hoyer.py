"""Hoyer spike layer, regulariser, baseline spike, builders and op counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from spikeforge.model.layers import HeavisideSpike, HoyerSpike, hoyer_extremum
from spikeforge.model.metrics import accumulate_count
from spikeforge.model.nets import ArchError, build, build_from_checkpoint


def test_extremum_sum_mode_by_hand() -> None:
    c = torch.tensor([[0.5, 1.0, 0.0, 0.25]])
    # (0.25 + 1 + 0 + 0.0625) / (0.5 + 1 + 0 + 0.25)
    assert float(hoyer_extremum(c, "sum")) == pytest.approx(1.3125 / 1.75)
    assert float(hoyer_extremum(torch.zeros(3, 4), "sum")) == 1.0


def test_extremum_cw_mode_with_empty_channel() -> None:
    c = torch.zeros(2, 3, 1, 2)
    c[0, 0, 0] = torch.tensor([1.0, 0.5])
    c[1, 0, 0] = torch.tensor([0.5, 0.0])  # channel 0: (1 + .25 + .25) / 2 = 0.75
    c[:, 2] = 0.2  # channel 2: constant -> E = 0.2
    e = hoyer_extremum(c, "cw")
    assert e.shape == (3,)
    assert e.tolist() == pytest.approx([0.75, 1.0, 0.2])


def test_forward_fires_on_extremum_and_updates_running_threshold() -> None:
    layer = HoyerSpike("sum")
    with torch.no_grad():
        layer.v_th.fill_(-2.0)  # |v_th| is used, so the sign must not matter
    u = torch.tensor([[1.0, 2.0, 4.0, -2.0, 0.5]])  # z = [.5, 1, 2, -1, .25] -> c = [.5, 1, 1, 0, .25]
    e = (0.25 + 1 + 1 + 0.0625) / 2.75
    layer.train()
    out = layer(u)
    assert out.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0]]
    assert float(layer.running_threshold) == pytest.approx(0.1 * e)
    layer(u)
    assert float(layer.running_threshold) == pytest.approx(0.1 * e * 0.9 + 0.1 * e)
    # eval: the fixed threshold on u is |v_th| * E_run, and firing is exactly u >= that
    layer.eval()
    thr = layer.threshold_value()
    assert float(thr) == pytest.approx(2.0 * 0.19 * e)
    probe = torch.linspace(-1, 2, 301).view(1, -1)
    assert torch.equal(layer(probe), (probe >= thr).float())


def test_eval_cw_threshold_and_per_input() -> None:
    layer = HoyerSpike("cw", num_channels=2)
    layer.running_threshold.copy_(torch.tensor([0.3, 0.8]))
    layer.eval()
    u = torch.full((1, 2, 1, 1), 0.5)
    assert layer(u).flatten().tolist() == [1.0, 0.0]
    assert layer.threshold_value().tolist() == pytest.approx([0.3, 0.8])
    # per-input: sample 0 channel 0 has c = [1, .5] -> E = 1.25/1.5;
    # sample 1 is all 0.5 -> E = 0.5 (exact in binary)
    layer.per_input_threshold = True
    u = torch.zeros(2, 2, 1, 2)
    u[0, 0, 0] = torch.tensor([1.0, 0.5])
    u[1] = 0.5
    out = layer(u)
    assert out[0, 0, 0].tolist() == [1.0, 0.0] and out[1].eq(1).all()
    assert out[0, 1].eq(0).all()  # all-zero channel: E = 1, z = 0 stays silent


def test_surrogate_gradient_window() -> None:
    layer = HoyerSpike("sum")
    layer.train()
    u = torch.tensor([-0.5, 0.0, 0.2, 0.7, 0.999, 1.0, 1.5], requires_grad=True)
    layer(u).sum().backward()
    assert u.grad.tolist() == pytest.approx([0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0])
    # v_th gets its gradient through z = u / |v_th|: dz/dv_th = -u / v_th^2 at v_th = 1
    window = torch.tensor([0, 0, 1, 1, 1, 0, 0.0])
    expected = float((0.5 * window * -u.detach()).sum())
    assert float(layer.v_th.grad) == pytest.approx(expected)


def _analytic_hoyer_grad(zc: torch.Tensor) -> torch.Tensor:
    l1, l2 = zc.abs().sum(), (zc * zc).sum()
    return 2 * l1 / l2 * torch.sign(zc) - 2 * l1**2 * zc / l2**2


def test_hoyer_loss_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    # keep values away from the clamp kinks at 0 and 1, but include some outside [0, 1]
    u = (torch.rand(4, 6, generator=gen, dtype=torch.float64) * 1.6 - 0.3).requires_grad_()
    u.data[(u.data - 0).abs() < 0.02] += 0.05
    u.data[(u.data - 1).abs() < 0.02] += 0.05
    layer = HoyerSpike("sum").double()
    layer.train()
    layer(u)
    h = layer.hoyer_loss()
    zc = u.detach().clamp(0, 1)
    assert float(h.detach()) == pytest.approx(float(zc.sum() ** 2 / (zc * zc).sum()))
    (g,) = torch.autograd.grad(h, u, retain_graph=True)
    inside = ((u > 0) & (u < 1)).double()
    assert torch.allclose(g, _analytic_hoyer_grad(zc) * inside)

    def f(x: torch.Tensor) -> torch.Tensor:
        layer(x)
        return layer.hoyer_loss()

    assert torch.autograd.gradcheck(f, (u,), eps=1e-6, atol=1e-6)


def test_hoyer_loss_is_zero_without_activity_and_needs_forward() -> None:
    layer = HoyerSpike("sum")
    with pytest.raises(RuntimeError, match="forward"):
        layer.hoyer_loss()
    u = torch.full((3, 4), -1.0, requires_grad=True)
    layer(u)
    h = layer.hoyer_loss()
    assert float(h.detach()) == 0.0
    h.backward()
    assert torch.all(u.grad == 0)


def test_heaviside_spike() -> None:
    layer = HeavisideSpike(threshold=1.0)
    u = torch.tensor([0.4, 0.6, 1.0, 1.4, 1.6], requires_grad=True)
    out = layer(u)
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    out.sum().backward()
    assert u.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert float(layer.threshold_value()) == 1.0
    assert not any(p.requires_grad for p in layer.parameters())
    trainable = HeavisideSpike(0.5, trainable=True)
    trainable(torch.tensor([0.2, 0.6, 2.0])).sum().backward()
    assert float(trainable.threshold.grad) == -2.0


@pytest.mark.parametrize("name", ["mlp", "lenet", "vgg", "resnet"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_builders_forward_and_round_trip(name: str, shape) -> None:
    torch.manual_seed(0)
    model = build({"name": name}, "hoyer", shape, 10)
    model.train()
    x = torch.rand(4, *shape)
    model(x)  # one training step's statistics so eval differs from init
    model.eval()
    logits, traces = model.forward_traced(x)
    assert logits.shape == (4, 10)
    blocks = list(model.blocks)
    assert blocks[-1].act is None and isinstance(blocks[-1].op, nn.Linear)
    assert all(isinstance(b.act, HoyerSpike) for b in blocks[:-1])
    for b, t in zip(blocks[:-1], traces[:-1], strict=True):
        assert set(t.output.unique().tolist()) <= {0.0, 1.0}
        assert b.act.mode == ("cw" if isinstance(b.op, nn.Conv2d) else "sum")
    if name == "resnet":
        assert any(b.shortcut_from is not None for b in blocks)
    ckpt = {
        "format": "spikeforge-checkpoint",
        "version": 1,
        "method": "hoyer",
        "arch": model.arch,
        "dataset": {"name": "x", "input_shape": list(shape), "num_classes": 10},
        "state_dict": model.state_dict(),
    }
    again = build_from_checkpoint(ckpt)
    assert not again.training and torch.equal(again(x), logits)


def test_build_errors() -> None:
    with pytest.raises(ArchError, match="unknown"):
        build({"name": "transformer"}, "hoyer", (1, 8, 8), 10)
    with pytest.raises(ArchError, match="'M'"):
        build({"name": "vgg", "cfg": ["M"]}, "hoyer", (1, 8, 8), 10)
    with pytest.raises(ArchError, match="format"):
        build_from_checkpoint({"format": "other"})


def test_accumulate_count_matches_brute_force() -> None:
    gen = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    x = (torch.rand(2, 2, 5, 5, generator=gen) < 0.3).float()
    counts = accumulate_count(conv, x)
    for n in range(2):
        brute = 0
        for oy in range(3):
            for ox in range(3):
                for ky in range(3):
                    for kx in range(3):
                        iy, ix = oy * 2 - 1 + ky, ox * 2 - 1 + kx
                        if 0 <= iy < 5 and 0 <= ix < 5:
                            brute += int(x[n, :, iy, ix].sum()) * 3
        assert int(counts[n]) == brute
    fc = nn.Linear(50, 7)
    assert accumulate_count(fc, x).tolist() == [float(x[0].sum() * 7), float(x[1].sum() * 7)]


def test_fixed_ablation_fires_on_vth_and_trains_it() -> None:
    """The authors' fixed-threshold ablation: E = 1 in training and eval, v_th trained through z."""
    layer = HoyerSpike("sum", extremum=False)
    with torch.no_grad():
        layer.v_th.fill_(0.5)
    u = torch.tensor([[0.1, 0.3, 0.5, 0.7, -0.2]], requires_grad=True)  # z = [.2, .6, 1, 1.4, -.4]
    layer.train()
    out = layer(u)
    assert out.tolist() == [[0.0, 0.0, 1.0, 1.0, 0.0]]  # z >= 1, not the Hoyer extremum
    assert float(layer.running_threshold) == 1.0  # never moves
    out.sum().backward()
    # do/dz = 0.5 on 0 < z < 1 (z = .2 and .6 only); dz/du = 1/|v_th| = 2; dz/dv_th = -u/v_th^2
    assert u.grad[0].tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.0])
    assert float(layer.v_th.grad) == pytest.approx(-0.5 * (0.1 + 0.3) / 0.25)
    layer.eval()
    assert float(layer.threshold_value()) == pytest.approx(0.5)


@pytest.mark.parametrize("detached", [False, True])
def test_regulariser_variant_decides_whether_vth_gets_its_gradient(detached: bool) -> None:
    layer = HoyerSpike("sum", detach_vth_in_regulariser=detached)
    layer.train()
    u = torch.tensor([[0.2, 0.4, 0.9, 0.05]], requires_grad=True)
    layer(u)
    layer.hoyer_loss().backward()
    assert u.grad.abs().sum() > 0  # the potentials get the regulariser's gradient either way
    vth_grad = layer.v_th.grad
    if detached:
        assert vth_grad is None or float(vth_grad) == 0.0
    else:
        assert abs(float(vth_grad)) > 0


def test_untrained_eval_fires_where_z_is_non_negative() -> None:
    """E_run = 0 before training: this layer fires on z >= 0 (the authors' clamped code fires all)."""
    layer = HoyerSpike("sum").eval()
    u = torch.linspace(-1, 1, 24).view(1, -1)
    assert int(layer(u).sum()) == 12


def test_fixed_method_builds_and_quantizes_like_hoyer() -> None:
    model = build({"name": "mlp", "hidden": [8]}, "fixed", (1, 4, 4), 3)
    act = model.blocks[0].act
    assert isinstance(act, HoyerSpike) and not act.extremum
    conv = build({"name": "lenet"}, "fixed", (1, 8, 8), 3)
    assert conv.blocks[0].act.running_threshold.tolist() == [1.0] * 16
