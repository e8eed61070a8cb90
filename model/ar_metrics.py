"""Cost counters of Narduzzi et al. (seed paper, Sec. 3.1 and 3.3): EFLOPS for the DNN, Spikes and
SynOps for the converted SNN.

- ``EFLOPS_l = phi(W_l) x phi(A_{l-1}) + phi(B_l)`` (Eq. 1), phi = the non-zero mask. The product
  of masks is the layer's own operator (matrix product or convolution) applied to the masks, so
  it counts, per output activation, the multiply-accumulates whose weight *and* input are both
  non-zero, plus one if that activation's bias is non-zero. Summed over outputs and layers.
- Spikes = total spikes per sample over the whole simulation.
- SynOps = sum over spikes of the spiking neuron's fan-out (its number of outgoing synapses).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _apply(op: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`op`'s own linear map with other weights (so conv geometry is reused exactly)."""
    if isinstance(op, nn.Linear):
        return F.linear(x.reshape(x.shape[0], -1), weight, bias)
    if isinstance(op, nn.Conv2d):
        return F.conv2d(x, weight, bias, op.stride, op.padding, op.dilation, op.groups)
    raise TypeError(f"unsupported layer {type(op).__name__}; expected nn.Linear or nn.Conv2d")


@torch.no_grad()
def eflops_layer(op: nn.Module, a_prev: torch.Tensor) -> torch.Tensor:
    """EFLOPS of one layer for each sample of the batch `a_prev` (the layer's input): float [batch]."""
    wmask = (op.weight != 0).to(a_prev.dtype)
    amask = (a_prev != 0).to(a_prev.dtype)
    macs = _apply(op, amask, wmask, None)
    out = macs.reshape(macs.shape[0], -1).sum(dim=1)
    if op.bias is not None:
        # A bias is added once per output activation: per unit for Linear, per position for Conv.
        bmask = (op.bias != 0).to(a_prev.dtype)
        per_out = torch.ones_like(macs) * (bmask if macs.dim() == 2 else bmask[:, None, None])
        out = out + per_out.reshape(per_out.shape[0], -1).sum(dim=1)
    return out


@torch.no_grad()
def fanout(consumer: nn.Module, pre: nn.Module | None, in_shape: Sequence[int]) -> torch.Tensor:
    """Structural fan-out of every neuron of a layer whose output (shape `in_shape`, no batch) feeds
    `consumer` through the optional pooling `pre`: the number of downstream neurons it connects to.

    It is the column sum of the connection mask, obtained as the gradient of sum(consumer(pre(s)))
    with all weights set to 1 and the pooling turned into a sum pool. A synapse counts whether or not
    its trained weight is zero (the structure the hardware walks), as snn_toolbox does.
    """
    s = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        h = s
        if pre is not None:
            if not isinstance(pre, nn.AvgPool2d):
                raise TypeError(f"unsupported pooling {type(pre).__name__}; expected nn.AvgPool2d")
            k = pre.kernel_size if isinstance(pre.kernel_size, int) else pre.kernel_size[0]
            h = F.avg_pool2d(h, pre.kernel_size, pre.stride, pre.padding) * (k * k)  # indicator, not 1/k^2
        ones = torch.ones_like(consumer.weight, dtype=torch.float64)
        _apply(consumer, h, ones, None).sum().backward()
    return s.grad[0].detach().round()


def synops(spikes: torch.Tensor, fan: torch.Tensor) -> torch.Tensor:
    """SynOps per sample for a batch of spike tensors `spikes` [batch, *shape] and fan-out [*shape]."""
    return (spikes * fan.to(spikes.dtype)).reshape(spikes.shape[0], -1).sum(dim=1)


def relative_change(value: float, baseline: float) -> float:
    """(value - baseline) / baseline in percent, the paper's %Spikes / %EFLOPS / %SynOps."""
    return 100.0 * (value - baseline) / baseline if baseline else float("nan")
