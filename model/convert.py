"""Activity-regularised ReLU DNNs (Narduzzi et al.) and their conversion to rate-coded IF SNNs
(Rueckauer et al. 2017, data-based normalisation as in snn_toolbox).

Flow: `ReLUNet` (MLP or LeNet-5 with average pooling) is trained with CE + lambda * sum_l psi(X_l)
(`loss`, trained by the one loop of model/train.py), `convert` rescales every layer by the 99.9th
percentile of its non-zero training activations, and `simulate` runs the IF network for T steps
with the analog image injected as a current at every step.
Counters (Spikes, SynOps, EFLOPS) come from `spikeforge.model.ar_metrics`.
Choices and sources: docs/BNTT_AND_CONVERSION.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import SpikeforgeError
from spikeforge.model import ar_metrics
from spikeforge.model.regularizers import activity_penalty, get_regularizer
from spikeforge.model.train import Recipe

ARCHS = ("mlp", "lenet")
# Defaults of the options the user leaves out (tuned on digits, docs).
DEFAULTS = {"epochs": 40, "lr": 1e-3, "batch_size": 64, "lam": 0.0, "timesteps": 100}
PERCENTILE = 99.9  # data-based normalisation (Rueckauer et al. 2017; snn_toolbox's default)
# snn_toolbox caps the number of activations it sorts; we cap the values fed to np.percentile per
# layer the same way (deterministic stride subsample) so full MNIST LeNet fits in memory.
_MAX_PERCENTILE_VALUES = 20_000_000


class ConvertError(SpikeforgeError):
    """Bad conversion/training input (architecture, hyper-parameter, checkpoint)."""


# --------------------------------------------------------------------------------------- networks
class ReLUNet(nn.Module):
    """Feed-forward ReLU net as a list of stages; stage l computes op_l(pre_l(a_{l-1})).

    `pre_l` is the average pooling that precedes the op (LeNet-5's subsampling), or None. Every stage
    but the last is followed by ReLU; its output is an activation map X_l that the regulariser sees
    and that becomes a layer of IF neurons after conversion.
    """

    def __init__(self, arch: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.arch = dict(arch)
        c, h, w = input_shape
        ops: list[nn.Module] = []
        pres: list[nn.Module | None] = []
        if arch["name"] == "mlp":
            widths = [c * h * w, *arch["hidden"], num_classes]
            for i in range(len(widths) - 1):
                ops.append(nn.Linear(widths[i], widths[i + 1]))
                pres.append(None)
        elif arch["name"] == "lenet":
            # LeNet-5 (LeCun 1998) with average pooling, which converts exactly (a linear map of spikes).
            # Small inputs (8x8 digits) keep their size through both convs with padding 2.
            pad2 = 2 if h < 16 else 0
            ops += [nn.Conv2d(c, 6, 5, padding=2), nn.Conv2d(6, 16, 5, padding=pad2)]
            pres += [None, nn.AvgPool2d(2)]
            h2 = (h // 2 + 2 * pad2 - 4) // 2
            w2 = (w // 2 + 2 * pad2 - 4) // 2
            if h2 < 1 or w2 < 1:
                raise ConvertError(f"input_shape={input_shape}: too small for lenet; use --arch mlp")
            ops += [nn.Linear(16 * h2 * w2, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)]
            pres += [nn.AvgPool2d(2), None, None]
        else:
            raise ConvertError(f"arch={arch['name']!r} is unknown for --method convert; use one of {ARCHS}")
        self.ops = nn.ModuleList(ops)
        self.pres = nn.ModuleList([p if p is not None else nn.Identity() for p in pres])
        self.input_shape = tuple(input_shape)

    def stage_input(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """Input of op l given the previous activation map (pooling, then implicit flatten)."""
        a = self.pres[l](a)
        if isinstance(self.ops[l], nn.Linear):
            a = a.reshape(a.shape[0], -1)
        return a

    def forward(self, x: torch.Tensor, return_acts: bool = False):
        """Logits, and with `return_acts` the list of hidden ReLU maps X_l."""
        acts = []
        a = x
        for l, op in enumerate(self.ops):
            z = op(self.stage_input(l, a))
            if l == len(self.ops) - 1:
                return (z, acts) if return_acts else z
            a = F.relu(z)
            acts.append(a)
        raise AssertionError("unreachable")

    @torch.no_grad()
    def hidden_shapes(self) -> list[tuple[int, ...]]:
        """Per-sample shape of every hidden activation map."""
        _, acts = self(torch.zeros(1, *self.input_shape), return_acts=True)
        return [tuple(a.shape[1:]) for a in acts]


def parse_hidden(hidden: Any) -> list[int] | None:
    """Widths from an int, a list, or the CLI's text form "256,128" (None when not given)."""
    if hidden is None or hidden == "":
        return None
    if isinstance(hidden, int):
        return [hidden]
    if isinstance(hidden, str):
        try:
            return [int(w) for w in hidden.replace(" ", ",").split(",") if w]
        except ValueError:
            raise ConvertError(f"hidden={hidden!r}: give widths like --hidden 128,64") from None
    return [int(w) for w in hidden]


def arch_spec(arch: str, hidden: Any) -> dict[str, Any]:
    """The checkpoint's builder spec for a ReLU net."""
    if arch not in ARCHS:
        raise ConvertError(f"arch={arch!r} is unknown for --method convert; use one of {', '.join(ARCHS)}")
    if arch == "lenet":
        return {"name": "lenet", "activation": "relu", "pool": "avg"}
    hid = parse_hidden(hidden) or [128, 64]
    if not hid or any(int(n) < 1 for n in hid):
        raise ConvertError(f"hidden={hidden!r}: give positive layer widths, e.g. --hidden 128 64")
    return {"name": "mlp", "hidden": [int(n) for n in hid], "activation": "relu"}


# --------------------------------------------------------------------------------------- training
@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of a DNN in eval mode."""
    net.eval()
    correct = sum((net(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def loss(net: ReLUNet, x: torch.Tensor, y: torch.Tensor, cfg, gen: torch.Generator | None = None):
    """CE + lambda * sum_l psi(X_l) (Eq. 4); reg=None or lambda=0 is the unregularised baseline."""
    logits, acts = net(x, return_acts=True)
    value = F.cross_entropy(logits, y)
    if cfg.reg is not None and cfg.lam > 0:
        value = value + cfg.lam * activity_penalty(acts, cfg.reg, cfg.p)
    return value, logits


# ------------------------------------------------------------------------------------- conversion
@torch.no_grad()
def layer_scales(net: ReLUNet, x: torch.Tensor, percentile: float = 99.9,
                 batch_size: int = 1000) -> list[float]:
    """lambda_l = the `percentile` of the non-zero activations of hidden layer l on `x`
    (Rueckauer et al. 2017 Sec. 2.3; snn_toolbox drops zeros before taking the percentile)."""
    if not 0 < percentile <= 100:
        raise ConvertError(f"percentile={percentile}: must be in (0, 100], e.g. 99.9")
    net.eval()
    chunks: list[list[np.ndarray]] = [[] for _ in net.ops[:-1]]
    for i in range(0, len(x), batch_size):
        _, acts = net(x[i : i + batch_size], return_acts=True)
        for l, a in enumerate(acts):
            v = a.reshape(-1)
            chunks[l].append(v[v > 0].numpy())
    scales = []
    for parts in chunks:
        v = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if v.size > _MAX_PERCENTILE_VALUES:
            v = v[:: -(-v.size // _MAX_PERCENTILE_VALUES)]
        # A layer that never fires keeps scale 1 (nothing to normalise), as snn_toolbox does.
        scales.append(float(np.percentile(v, percentile)) if v.size else 1.0)
    return scales


@torch.no_grad()
def convert(net: ReLUNet, x_calib: torch.Tensor, percentile: float = 99.9) -> tuple[ReLUNet, list[float]]:
    """Data-normalised copy for IF simulation: W_l <- W_l * lam_{l-1} / lam_l, b_l <- b_l / lam_l,
    lam_0 = 1 (pixels in [0, 1]). The readout layer is only rescaled by lam_{L-1}, so its
    accumulated potential / T approximates the DNN's logits."""
    scales = layer_scales(net, x_calib, percentile)
    snn = copy.deepcopy(net).eval()
    prev = 1.0
    for l, op in enumerate(snn.ops):
        lam = scales[l] if l < len(scales) else 1.0
        op.weight.mul_(prev / lam)
        op.bias.div_(lam)
        prev = lam
    return snn, scales


@dataclass
class SimOut:
    """One batch of an IF simulation."""

    potential: torch.Tensor  # [batch, classes]: readout membrane potential summed over the steps
    counts: list[torch.Tensor]  # per hidden layer, spikes per neuron over the steps [batch, *shape]
    predictions: dict[int, torch.Tensor] = field(default_factory=dict)  # step -> argmax at that step


@torch.no_grad()
def simulate_batch(snn: ReLUNet, x: torch.Tensor, timesteps: int, record_at: tuple[int, ...] = ()) -> SimOut:
    """Integrate-and-fire simulation, threshold 1, reset by subtraction, membranes start at 0.

    The analog image is injected as a constant current every step (so the first op is evaluated
    once); biases are added every step; a neuron fires when u >= 1 (Rueckauer Eq. 2). The readout
    layer integrates without firing and the class is the argmax of its potential.
    """
    n_hidden = len(snn.ops) - 1
    z0 = snn.ops[0](snn.stage_input(0, x))
    u = [torch.zeros_like(z0)]
    counts = [torch.zeros_like(z0)]
    out = SimOut(potential=torch.zeros(0), counts=counts)
    s = None
    for t in range(1, timesteps + 1):
        for l in range(len(snn.ops)):
            z = z0 if l == 0 else snn.ops[l](snn.stage_input(l, s))
            if l == n_hidden:
                out.potential = z if t == 1 else out.potential + z
                break
            if t == 1 and l > 0:
                u.append(torch.zeros_like(z))
                counts.append(torch.zeros_like(z))
            u[l] += z
            s = (u[l] >= 1.0).to(z.dtype)
            u[l] -= s
            counts[l] += s
        if t in record_at:
            out.predictions[t] = out.potential.argmax(1)
    return out


@torch.no_grad()
def evaluate_snn(snn: ReLUNet, x: torch.Tensor, y: torch.Tensor, timesteps: int = 100, batch_size: int = 500,
                 record_at: tuple[int, ...] = ()) -> dict[str, Any]:
    """SNN accuracy at T, mean Spikes and SynOps per sample, and accuracy at the `record_at` steps."""
    fans = [ar_metrics.fanout(snn.ops[l + 1], snn.pres[l + 1] if isinstance(snn.pres[l + 1], nn.AvgPool2d)
                              else None, shp) for l, shp in enumerate(snn.hidden_shapes())]
    correct, spikes, syn = 0, 0.0, 0.0
    correct_at = dict.fromkeys(record_at, 0)
    per_layer = [0.0] * len(fans)
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        sim = simulate_batch(snn, xb, timesteps, record_at)
        correct += (sim.potential.argmax(1) == yb).sum().item()
        for t, pred in sim.predictions.items():
            correct_at[t] += (pred == yb).sum().item()
        for l, c in enumerate(sim.counts):
            per_layer[l] += c.sum().item()
            spikes += c.sum().item()
            syn += ar_metrics.synops(c, fans[l]).sum().item()
    n = len(x)
    return {"snn_accuracy": correct / n, "spikes": spikes / n, "synops": syn / n, "timesteps": timesteps,
            "spikes_per_layer": [s / n for s in per_layer],
            "accuracy_at": {int(t): c / n for t, c in correct_at.items()}}


@torch.no_grad()
def eflops(net: ReLUNet, x: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean EFLOPS per sample of the DNN on `x` (Eq. 1 summed over layers)."""
    net.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        a = x[i : i + batch_size]
        for l, op in enumerate(net.ops):
            inp = net.stage_input(l, a)
            total += ar_metrics.eflops_layer(op, inp).sum().item()
            a = F.relu(op(inp))
    return total / len(x)


# ------------------------------------------------------------------------------------ checkpoints
def build_from_checkpoint(ckpt: dict[str, Any]) -> ReLUNet:
    """Rebuild the converted (normalised) IF network of a `--method convert` checkpoint."""
    if ckpt.get("format") != "spikeforge-checkpoint" or ckpt.get("method") != "convert":
        raise ConvertError("checkpoint: not a spikeforge 'convert' checkpoint; train with --method convert")
    ds = ckpt["dataset"]
    net = ReLUNet(ckpt["arch"], tuple(ds["input_shape"]), ds["num_classes"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


# ---------------------------------------------------- what conversion adds to the one training loop
def _defaults(cfg) -> dict[str, Any]:
    return {**DEFAULTS, "schedule": "constant"}  # Adam at a constant rate, as the paper


def _build(cfg, ds) -> ReLUNet:
    if cfg.reg is not None:
        get_regularizer(cfg.reg, cfg.p)  # one-line error for an unknown name or a bad p, before training
    if cfg.timesteps < 1:
        raise ConvertError(f"timesteps={cfg.timesteps}: the IF simulation needs at least 1 step, e.g. --timesteps 100")
    spec = arch_spec(cfg.arch.get("name", "mlp"), cfg.arch.get("hidden"))
    return ReLUNet(spec, tuple(ds.input_shape), ds.num_classes)


def _finish(net: ReLUNet, data, cfg):
    """Convert with every training image (validation ones too, as the paper), simulate on the test set."""
    x_calib = data.x.cpu() if data.x_val is None else torch.cat([data.x.cpu(), data.x_val.cpu()])
    net.cpu()
    dnn_acc = accuracy(net, data.x_test, data.y_test)
    snn, scales = convert(net, x_calib, PERCENTILE)
    sim = evaluate_snn(snn, data.x_test, data.y_test, cfg.timesteps)
    metrics = {"test_accuracy": sim["snn_accuracy"], "dnn_test_accuracy": dnn_acc,
               "snn_test_accuracy": sim["snn_accuracy"], "spikes_per_sample": sim["spikes"],
               "synops_per_sample": sim["synops"], "eflops_per_sample": eflops(net, data.x_test),
               "spikes_per_layer": sim["spikes_per_layer"]}
    fields = {"dnn_state_dict": net.state_dict(), "reg": cfg.reg, "p": cfg.p, "timesteps": cfg.timesteps,
              "percentile": PERCENTILE, "scales": scales,
              "neuron": {"model": "IF", "threshold": 1.0, "reset": "subtract", "fire": "u >= 1",
                         "input": "analog current every step", "readout": "accumulated potential"}}
    return snn, metrics, fields


def _summary(m: dict, cfg) -> str:
    return (f"DNN {m['dnn_test_accuracy']:.4f}  SNN(T={cfg.timesteps}) {m['snn_test_accuracy']:.4f}  "
            f"spikes/sample {m['spikes_per_sample']:.0f}  SynOps/sample {m['synops_per_sample']:.0f}")


RECIPE = Recipe(defaults=_defaults, build=_build, loss=loss, logits=lambda net, x, cfg: net(x), finish=_finish,
                summary=_summary)
