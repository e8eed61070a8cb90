"""Spike layers for one-time-step SNNs.

`HoyerSpike` follows Datta, Liu & Beerel (arXiv 2212.10170) as the authors' code
(`HoyerBiAct` in godatta/Ultra-Low-Latency-SNN, read for facts) does it. With
``extremum=False`` it is the authors' fixed-threshold ablation (E = 1, v_th still trained,
the same surrogate). `HeavisideSpike` is spikeforge's plain fixed-threshold baseline.

In eval mode both fire on ``u >= threshold_value()`` where ``u`` is the potential they
receive (after pooling and BN), which is the form quant/ folds into an integer comparator.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class _HoyerSpikeFn(torch.autograd.Function):
    """o = (z >= E); do/dz = 0.5 on 0 < z < 1 (the clipped window), nothing to E."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return (z >= threshold).to(z.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (z,) = ctx.saved_tensors
        window = ((z > 0) & (z < 1)).to(grad_out.dtype)
        return 0.5 * window * grad_out, None


class _BoxcarSpikeFn(torch.autograd.Function):
    """o = (u >= theta); do/du = 1 on |u - theta| < 1/2 (rectangular surrogate, width 1)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(u, theta)
        return (u >= theta).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        u, theta = ctx.saved_tensors
        window = ((u - theta).abs() < 0.5).to(grad_out.dtype)
        grad_u = window * grad_out
        grad_theta = -grad_u.sum().reshape(theta.shape) if ctx.needs_input_grad[1] else None
        return grad_u, grad_theta


def hoyer_extremum(c: torch.Tensor, mode: str) -> torch.Tensor:
    """E = sum(c^2) / sum(c) of a non-negative tensor `c`.

    mode "sum": one scalar over the whole tensor; "cw": one value per channel (dim 1), summed
    over batch and spatial axes. A channel (or tensor) whose sum is zero gets E = 1, the
    largest possible value of E for c in [0, 1]. The authors' code does this for "cw"; for
    "sum" it would divide by zero, which we avoid the same way.
    """
    if mode == "sum":
        num, den = (c * c).sum(), c.sum()
    elif mode == "cw":
        dims = [d for d in range(c.dim()) if d != 1]
        num, den = (c * c).sum(dim=dims), c.sum(dim=dims)
    else:
        raise ValueError(f"mode={mode!r}; use 'sum' or 'cw'")
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(c.dtype).tiny), torch.ones_like(num))


def _per_input_extremum(c: torch.Tensor, mode: str) -> torch.Tensor:
    """E for each input of the batch separately, shaped to broadcast against `c`."""
    if mode == "sum":
        dims = list(range(1, c.dim()))
        num, den = (c * c).sum(dim=dims, keepdim=True), c.sum(dim=dims, keepdim=True)
    else:
        dims = list(range(2, c.dim()))
        num, den = (c * c).sum(dim=dims, keepdim=True), c.sum(dim=dims, keepdim=True)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(c.dtype).tiny), torch.ones_like(num))


class HoyerSpike(nn.Module):
    """Hoyer spike layer: fires on z = u/|v_th| >= E, E the Hoyer extremum of clamp(z, 0, 1).

    Training: E comes from the current batch (detached) and updates the running threshold
    ``E_run = 0.9 E_run + 0.1 E``. Eval: E = ``running_threshold`` (a fixed hardware threshold),
    or, with ``per_input_threshold=True``, E recomputed for each input (reporting only).
    ``mode`` is "sum" (one E for the layer; FC layers) or "cw" (one E per channel; conv).

    ``extremum=False`` is the authors' fixed-threshold ablation: E = 1 always (the running
    threshold stays 1), so the layer fires on u >= |v_th| with v_th trained through z and the
    same 0.5 surrogate on 0 < z < 1.

    ``detach_vth_in_regulariser=True`` computes the regulariser on clamp(u/|v_th|.detach(), 0, 1),
    so v_th gets no gradient from it: the variant of the authors' CIFAR VGG16 model file. The
    default follows `HoyerBiAct`, where the regulariser's gradient also reaches v_th.

    ``running_threshold`` starts at 0 like the authors' code, but an untrained layer in eval
    mode does not fire like theirs: their code clamps z to [0, 1] before comparing, so with
    E_run = 0 every neuron fires (0 >= 0), while this layer compares the unclamped z and fires
    only where z >= 0 (about half the neurons). After one training step E_run is in (0, 1], where
    clamping does not change ``z >= E``, and the two agree.
    """

    def __init__(self, mode: str = "sum", num_channels: int = 1, momentum: float = 0.1,
                 extremum: bool = True, detach_vth_in_regulariser: bool = False) -> None:
        super().__init__()
        if mode not in ("sum", "cw"):
            raise ValueError(f"mode={mode!r}; use 'sum' or 'cw'")
        self.mode = mode
        self.momentum = momentum
        self.extremum = extremum
        self.detach_vth_in_regulariser = detach_vth_in_regulariser
        self.per_input_threshold = False
        self.v_th = nn.Parameter(torch.tensor(1.0))
        shape = (num_channels,) if mode == "cw" else ()
        # E_run: the Hoyer layer's starts at 0 (as the authors'); the fixed ablation's is E = 1.
        self.register_buffer("running_threshold", torch.zeros(shape) if extremum else torch.ones(shape))
        self._zc: torch.Tensor | None = None

    def _broadcast(self, e: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self.mode == "cw" and e.dim() == 1:
            return e.view(1, -1, *([1] * (like.dim() - 2)))
        return e

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = u / self.v_th.abs()
        if not self.extremum:
            e = self.running_threshold
        elif self.training:
            e = hoyer_extremum(z.detach().clamp(0, 1), self.mode)
            with torch.no_grad():
                self.running_threshold.mul_(1 - self.momentum).add_(self.momentum * e)
        elif self.per_input_threshold:
            e = _per_input_extremum(z.detach().clamp(0, 1), self.mode)
        else:
            e = self.running_threshold
        # Keep the clipped potential (with its graph) for the regulariser of this step only.
        if not torch.is_grad_enabled():
            self._zc = None
        elif self.detach_vth_in_regulariser:
            self._zc = (u / self.v_th.detach().abs()).clamp(0, 1)
        else:
            self._zc = z.clamp(0, 1)
        return _HoyerSpikeFn.apply(z, self._broadcast(e, z))

    def hoyer_loss(self) -> torch.Tensor:
        """H = (sum|zc|)^2 / sum(zc^2) over the last forward's batch tensor (0 if no activity)."""
        if self._zc is None:
            raise RuntimeError("hoyer_loss() needs a forward pass with gradients enabled first")
        zc = self._zc
        l1, l2sq = zc.abs().sum(), (zc * zc).sum()
        return torch.where(l2sq > 0, l1 * l1 / l2sq.clamp_min(torch.finfo(zc.dtype).tiny), l2sq * 0)

    def threshold_value(self) -> torch.Tensor:
        """Eval-mode firing threshold on u: fires on u >= |v_th| * E_run (scalar or per channel)."""
        return self.v_th.detach().abs() * self.running_threshold

    def extra_repr(self) -> str:
        kind = "" if self.extremum else ", extremum=False (E = 1)"
        return f"mode={self.mode}, channels={self.running_threshold.numel()}, momentum={self.momentum}{kind}"


class HeavisideSpike(nn.Module):
    """Baseline spike: o = (u >= theta), rectangular straight-through gradient of width 1.

    theta is a scalar initialised to 1.0, fixed by default (the BN before the layer already
    learns the scale and shift, so a trainable theta is redundant); ``trainable=True`` makes it
    a parameter.
    """

    def __init__(self, threshold: float = 1.0, trainable: bool = False) -> None:
        super().__init__()
        t = torch.tensor(float(threshold))
        if trainable:
            self.threshold = nn.Parameter(t)
        else:
            self.register_buffer("threshold", t)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _BoxcarSpikeFn.apply(u, self.threshold)

    def threshold_value(self) -> torch.Tensor:
        """Firing threshold on u (fires on u >= value)."""
        return self.threshold.detach().clone()
