"""PNG plots of a trained model: per-layer spike rates, and potentials relative to the threshold."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from spikeforge.model.layers import HeavisideSpike, HoyerSpike
from spikeforge.model.nets import SNN


def _save(fig, path: Path) -> None:
    from spikeforge import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_spike_rates(metrics: dict, path: str | Path, title: str = "") -> None:
    """Bar chart of the fraction of neurons firing per sample, one bar per spiking layer."""
    plt = _plt()
    rates = metrics["spike_rates"]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * len(rates) + 2), 3))
    ax.bar([f"L{i + 1}" for i in range(len(rates))], rates, color="tab:blue")
    ax.axhline(
        metrics["spike_rate_mean"], color="k", ls="--", lw=1, label=f"mean {metrics['spike_rate_mean']:.3f}"
    )
    ax.set_ylabel("spike rate (fraction firing)")
    ax.set_title(title)
    ax.legend()
    _save(fig, Path(path))
    plt.close(fig)


@torch.no_grad()
def normalised_potentials(model: SNN, x, layer: int = 0) -> np.ndarray:
    """u / threshold of spiking layer `layer` (0 = first spiking layer) over the inputs `x`.

    The neuron fires exactly when the value is >= 1 (eval mode, fixed threshold). A Hoyer
    conv layer's per-channel threshold divides its own channel.
    """
    model.eval()
    _, traces = model.forward_traced(torch.as_tensor(x))
    spiking = [
        (b, t)
        for b, t in zip(model.blocks, traces, strict=True)
        if isinstance(b.act, HoyerSpike | HeavisideSpike)
    ]
    block, tr = spiking[layer]
    thr = block.act.threshold_value()
    u = tr.potential
    if thr.dim() == 1:
        thr = thr.view(1, -1, *([1] * (u.dim() - 2)))
    return (u / thr).flatten().numpy()


def plot_membrane_histogram(models: dict[str, SNN], x, path: str | Path, layer: int = 0) -> None:
    """Histogram of u/threshold of one spiking layer for one or two models, threshold at 1.

    Shows the distribution shift of the Hoyer paper: its regulariser pushes potentials away
    from the threshold, so fewer neurons sit where noise flips a spike.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bins = np.linspace(-3, 4, 141)
    for (name, model), color in zip(models.items(), ["tab:orange", "tab:blue", "tab:green"], strict=False):
        z = normalised_potentials(model, x, layer)
        near = float(np.mean(np.abs(z - 1) < 0.1))
        ax.hist(
            np.clip(z, bins[0], bins[-1]),
            bins=bins,
            alpha=0.55,
            color=color,
            density=True,
            label=f"{name} (|z-1|<0.1: {near:.1%})",
        )
    ax.axvline(1.0, color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel(f"u / threshold, spiking layer {layer + 1}")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    _save(fig, Path(path))
    plt.close(fig)
