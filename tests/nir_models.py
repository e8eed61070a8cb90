"""Real NIR graphs for the tests: small models trained with snnTorch and built with Norse, exported
with those libraries' own exporters (snnTorch: export_to_nir(..., ignore_dims=[0]); Norse: to_nir).

The snnTorch digits network is the one of the acceptance criterion of docs/INTEROP.md: one time
step, Linear -> Leaky -> Linear -> Leaky with per-neuron (learned) beta and threshold, trained with
cross-entropy on the last layer's membrane, which is also how its class is read out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SnnTorchModel:
    net: Any  # torch.nn.Sequential of snnTorch modules
    float_accuracy: float  # snnTorch's own eval on the digits test set (argmax of the last membrane)
    predictions: np.ndarray
    membrane: np.ndarray  # [360, 10] last-layer membrane, snnTorch's own forward


def snntorch_mlp(hidden: int, seed: int) -> Any:
    import snntorch as snn
    import torch

    g = torch.Generator().manual_seed(seed)

    def leaky(n: int, output: bool) -> Any:
        beta = 0.5 + 0.45 * torch.rand(n, generator=g)  # per-neuron decay (irrelevant at one step)
        threshold = 0.5 + torch.rand(n, generator=g)  # per-neuron thresholds, learned further
        return snn.Leaky(beta=beta, threshold=threshold, learn_beta=True, learn_threshold=True,
                         init_hidden=True, output=output)

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), leaky(hidden, False), torch.nn.Linear(hidden, 10),
                               leaky(10, True))


def snntorch_forward(net: Any, x: Any) -> Any:
    """One time step from a cleared state: the last layer's membrane [batch, 10]."""
    from snntorch import utils

    utils.reset(net)
    _, mem = net(x.reshape(len(x), -1))
    return mem


def train_snntorch_digits(seed: int = 0, hidden: int = 64, epochs: int = 30, lr: float = 5e-3) -> SnnTorchModel:
    import torch

    from spikeforge.model.data import load_dataset

    torch.set_num_threads(1)
    ds = load_dataset("digits")
    net = snntorch_mlp(hidden, seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x = torch.as_tensor(ds.x_train)
    y = torch.as_tensor(ds.y_train)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            loss = torch.nn.functional.cross_entropy(snntorch_forward(net, x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mem = snntorch_forward(net, torch.as_tensor(ds.x_test)).numpy().astype(np.float64)
    pred = mem.argmax(1)
    return SnnTorchModel(net, float(np.mean(pred == ds.y_test)), pred, mem)


def export_snntorch(net: Any) -> Any:
    """snnTorch's own NIR export of the model (batch axis ignored), as users write it."""
    import torch
    from snntorch.export_nir import export_to_nir

    return export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
