"""Activity regularizers of Narduzzi et al., "Optimizing the consumption of spiking neural networks
with activity regularization" (seed paper, Sec. 3.2, Eqs. 2-4).

`psi(X)` is computed per sample over all neurons of one layer's ReLU activation map (the paper's
``sum_i`` runs over "the activation value of neuron i in a layer"), then averaged over the batch.
The loss is ``CE + lambda * sum_l psi(X_l)`` (Eq. 4). Every choice and its quote is recorded in
docs/BNTT_AND_CONVERSION.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from spikeforge import SpikeforgeError

REGULARIZERS = ("l1", "l2", "lp", "hoyer", "hoyer-square")

# Guards the Hoyer ratios against an all-zero activation map (common with ReLU): 0/0 is taken as 0.
_EPS = 1e-12


class RegularizerError(SpikeforgeError):
    """Unknown regularizer name or bad parameter."""


def _flat(x: torch.Tensor) -> torch.Tensor:
    # One row per sample: the paper sums over the neurons of a layer, not over the batch.
    return x.reshape(x.shape[0], -1)


def l1(x: torch.Tensor) -> torch.Tensor:
    """L1 = sum_i |x_i| per sample (the paper: "the sum of all neurons values")."""
    return _flat(x).abs().sum(dim=1)


def l2(x: torch.Tensor) -> torch.Tensor:
    """L2 = sum_i x_i^2 per sample: Eq. 2 with p = 2 (squared, no square root)."""
    return _flat(x).pow(2).sum(dim=1)


def lp(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """L_p = sum_i |x_i|^p per sample (Eq. 2), 0 < p < 1: a surrogate of L0.

    |x|^p has an infinite slope at 0; zeros (most of a ReLU map) contribute 0 with gradient 0,
    which is also ReLU's own gradient there, so nothing is lost and no NaN appears.
    """
    if not 0.0 < p < 1.0:
        raise RegularizerError(f"p={p}: the Lp regularizer needs 0 < p < 1; pass --p 0.5 (or 0.01)")
    a = _flat(x).abs()
    nz = a > 0
    safe = torch.where(nz, a, torch.ones_like(a))
    return torch.where(nz, safe.pow(p), torch.zeros_like(a)).sum(dim=1)


def hoyer(x: torch.Tensor) -> torch.Tensor:
    """H = sum_i |x_i| / sqrt(sum_i x_i^2) per sample (Eq. 3)."""
    f = _flat(x)
    return f.abs().sum(dim=1) / torch.sqrt(f.pow(2).sum(dim=1) + _EPS)


def hoyer_square(x: torch.Tensor) -> torch.Tensor:
    """H_S = (sum_i |x_i|)^2 / sum_i x_i^2 per sample (Eq. 3)."""
    f = _flat(x)
    return f.abs().sum(dim=1).pow(2) / (f.pow(2).sum(dim=1) + _EPS)


def get_regularizer(name: str, p: float = 0.5) -> Callable[[torch.Tensor], torch.Tensor]:
    """The per-sample psi for `name` in REGULARIZERS (p is used by "lp" only)."""
    if name == "lp":
        lp(torch.zeros(1, 1), p)  # validates p once, here, with a one-line error
        return lambda x: lp(x, p)
    table = {"l1": l1, "l2": l2, "hoyer": hoyer, "hoyer-square": hoyer_square}
    if name not in table:
        raise RegularizerError(f"reg={name!r} is unknown; choose one of {', '.join(REGULARIZERS)}")
    return table[name]


def activity_penalty(acts: Sequence[torch.Tensor], name: str, p: float = 0.5) -> torch.Tensor:
    """sum_l psi(X_l), each psi averaged over the batch (the term lambda multiplies in Eq. 4)."""
    psi = get_regularizer(name, p)
    return torch.stack([psi(a).mean() for a in acts]).sum()
