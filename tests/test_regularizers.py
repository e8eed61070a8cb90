"""Activity regularizers (Narduzzi et al. Eqs. 2-4): values and gradients against direct formulas."""

import math

import pytest
import torch

from spikeforge import SpikeforgeError
from spikeforge.model import regularizers as R


def _x() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    # Positive, away from 0, as ReLU maps are where the gradient exists: [batch 3, 2x4 map].
    return (torch.rand(3, 2, 4, generator=g, dtype=torch.float64) + 0.1).requires_grad_()


def test_values_match_hand_formulas_per_sample():
    x = torch.tensor([[1.0, -2.0, 0.0, 4.0], [0.0, 0.0, 0.0, 3.0]], dtype=torch.float64)
    assert R.l1(x).tolist() == [7.0, 3.0]
    assert R.l2(x).tolist() == [21.0, 9.0]  # squared: Eq. 2 with p = 2
    assert R.lp(x, 0.5).tolist() == pytest.approx([1 + math.sqrt(2) + 2, math.sqrt(3)])
    assert R.hoyer(x).tolist() == pytest.approx([7 / math.sqrt(21), 1.0])
    assert R.hoyer_square(x).tolist() == pytest.approx([49 / 21, 1.0])


@pytest.mark.parametrize("name", R.REGULARIZERS)
def test_gradcheck(name):
    psi = R.get_regularizer(name, 0.5)
    assert torch.autograd.gradcheck(lambda x: psi(x), (_x(),))


def test_hand_gradients():
    x = _x()
    f = x.detach().reshape(3, -1)
    s1, s2 = f.sum(1, keepdim=True), (f * f).sum(1, keepdim=True)
    expect = {
        "l1": torch.ones_like(f),
        "l2": 2 * f,
        "lp": 0.5 * f.pow(-0.5),
        "hoyer": 1 / s2.sqrt() - s1 * f / s2.pow(1.5),
        "hoyer-square": 2 * s1 / s2 - 2 * s1 * s1 * f / (s2 * s2),
    }
    for name, g in expect.items():
        xx = x.detach().clone().requires_grad_()
        R.get_regularizer(name, 0.5)(xx).sum().backward()
        torch.testing.assert_close(xx.grad.reshape(3, -1), g)


def test_lp_zero_has_finite_zero_gradient_and_scale_invariance_of_hoyer():
    x = torch.tensor([[0.0, 0.5, 0.0]], requires_grad=True)
    R.lp(x, 0.01).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[0, 0] == 0 and x.grad[0, 2] == 0
    y = torch.rand(4, 10, dtype=torch.float64)
    torch.testing.assert_close(R.hoyer(3 * y), R.hoyer(y))
    torch.testing.assert_close(R.hoyer_square(3 * y), R.hoyer_square(y))
    assert R.hoyer(torch.zeros(2, 5)).tolist() == [0.0, 0.0]  # all-zero ReLU map: no NaN


def test_penalty_is_sum_over_layers_of_batch_mean():
    a, b = torch.rand(5, 7), torch.rand(5, 3, 2, 2)
    got = R.activity_penalty([a, b], "l1")
    expect = a.sum(1).mean().item() + b.reshape(5, -1).sum(1).mean().item()
    assert got.item() == pytest.approx(expect, rel=1e-6)


def test_bad_names_and_p_raise_one_line_errors():
    with pytest.raises(SpikeforgeError, match="reg="):
        R.get_regularizer("l3")
    with pytest.raises(SpikeforgeError, match="p="):
        R.get_regularizer("lp", 1.5)
