"""Multi-time-step SNN trained from scratch with Batch Normalisation Through Time (BNTT; Kim & Panda,
arXiv 2010.01729; facts from the authors' code, Intelligent-Computing-Lab-Yale/BNTT-Batch-
Normalization-Through-Time `model.py`, summarised in methods.md §2).

Per hidden layer l and step t:  U_t = leak * U_{t-1} + BN_{l,t}(W_l x_t);  spike = U_t > 1;
U_t -= spike (reset by subtraction). Inputs are signed Poisson spikes drawn every step; the readout
integrates W x_t without leak or spikes and logits = U_T / T. `early_exit_step` implements the
paper's gamma-based temporal early exit. Choices and sources: docs/BNTT_AND_CONVERSION.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import SpikeforgeError
from spikeforge.model.train import Recipe

THRESHOLD = 1.0
BN_EPS = 1e-4
BN_MOMENTUM = 0.1
DEFAULT_LEAK = 0.95  # the code's CIFAR-10 value; also what worked on digits (docs)
DEFAULT_INPUT_GAIN = 2.0  # P(spike) = pixel value for pixels in [0, 1] (docs)
DEFAULT_EXIT_THRESHOLD = 0.85  # layer-averaged gamma below which later steps are skipped (docs)
DEFAULT_WEIGHT_DECAY = 1e-4  # train.py: SGD(momentum=0.9, weight_decay=1e-4); shrinks late gammas (docs)
# Defaults of the options the user leaves out (tuned on digits, docs).
DEFAULTS = {"epochs": 30, "lr": 1e-3, "batch_size": 64, "timesteps": 8}


class BNTTError(SpikeforgeError):
    """Bad BNTT configuration or checkpoint."""


class SurrogateSpike(torch.autograd.Function):
    """Heaviside on U > theta forward; triangle 0.3 * max(0, 1 - |U/theta - 1|) backward (the code's)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(u)
        return (u > THRESHOLD).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        (u,) = ctx.saved_tensors
        return grad * 0.3 * torch.clamp(1.0 - (u / THRESHOLD - 1.0).abs(), min=0.0)


def poisson_encode(x: torch.Tensor, generator: torch.Generator | None = None,
                   gain: float = 1.0) -> torch.Tensor:
    """Signed Poisson spikes, the code's rule sign(x) * [rand * 2 <= gain * |x|] (P = gain * |x| / 2).

    The code feeds mean/std-normalised pixels (|x| up to about 2.5, so bright pixels fire almost
    every step); our pixels are in [0, 1], and gain 2 restores "a white pixel fires every step"."""
    r = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.sign(x) * (r * 2.0 <= gain * x.abs()).to(x.dtype)


def _bn_list(kind: type[nn.Module], features: int, timesteps: int) -> nn.ModuleList:
    bns = nn.ModuleList()
    for _ in range(timesteps):
        bn = kind(features, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True)
        bn.bias = None  # BNTT keeps the scale gamma only: no shift beta
        bns.append(bn)
    return bns


class BNTTNet(nn.Module):
    """BNTT SNN: `mlp` (Linear layers) or `conv` (3x3 convs, 2x2 average pooling of spikes, FC head).

    `layers[l]` is the bias-free op of layer l, `bntt[l]` its list of T BatchNorms; the last layer is
    the integrating readout (no BN, no spike).
    """

    def __init__(self, arch: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int,
                 timesteps: int, leak: float = DEFAULT_LEAK, input_gain: float = DEFAULT_INPUT_GAIN):
        super().__init__()
        if timesteps < 1:
            raise BNTTError(f"timesteps={timesteps}: BNTT needs at least 1 step, e.g. --timesteps 8")
        if not 0.0 < leak <= 1.0:
            raise BNTTError(f"leak={leak}: must be in (0, 1], e.g. 0.95")
        if input_gain <= 0:
            raise BNTTError(f"input_gain={input_gain}: must be > 0, e.g. 2.0")
        self.arch, self.timesteps, self.leak = dict(arch), int(timesteps), float(leak)
        self.input_gain = float(input_gain)
        self.input_shape = tuple(input_shape)
        c, h, w = input_shape
        layers: list[nn.Module] = []
        bntt: list[nn.ModuleList] = []
        self.pool_after: list[bool] = []
        if arch["name"] == "mlp":
            widths = [c * h * w, *arch["hidden"]]
            for i in range(len(widths) - 1):
                layers.append(nn.Linear(widths[i], widths[i + 1], bias=False))
                bntt.append(_bn_list(nn.BatchNorm1d, widths[i + 1], timesteps))
                self.pool_after.append(False)
            feat = widths[-1]
        elif arch["name"] == "conv":
            ch = [c, *arch["channels"]]
            for i in range(len(ch) - 1):
                layers.append(nn.Conv2d(ch[i], ch[i + 1], 3, padding=1, bias=False))
                bntt.append(_bn_list(nn.BatchNorm2d, ch[i + 1], timesteps))
                self.pool_after.append(True)
                h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise BNTTError(f"channels={arch['channels']}: too many pooled layers for {input_shape}")
            feat = ch[-1] * h * w
        else:
            raise BNTTError(f"arch={arch['name']!r} is unknown for --method bntt; use mlp or conv")
        layers.append(nn.Linear(feat, num_classes, bias=False))
        self.layers = nn.ModuleList(layers)
        self.bntt = nn.ModuleList(bntt)
        for m in self.layers:
            nn.init.xavier_uniform_(m.weight, gain=2.0)  # the code's init

    def gammas(self) -> torch.Tensor:
        """[layers, T]: mean BNTT scale gamma of each hidden layer at each step."""
        return torch.stack([torch.stack([bn.weight.detach().mean() for bn in bns]) for bns in self.bntt])

    def forward(self, x: torch.Tensor, steps: int | None = None, generator: torch.Generator | None = None,
                return_all: bool = False):
        """Logits U_out / steps after `steps` (default T) steps. With `return_all`, also the list of
        per-step logits (U_out_t / t) and the per-layer spike counts summed over steps."""
        steps = self.timesteps if steps is None else int(steps)
        if not 1 <= steps <= self.timesteps:
            raise BNTTError(f"steps={steps}: must be between 1 and the trained T={self.timesteps}")
        mems = [None] * len(self.bntt)
        counts = [None] * len(self.bntt)
        u_out = None
        per_step = []
        if self.arch["name"] == "mlp":
            x = x.reshape(x.shape[0], -1)
        for t in range(steps):
            h = poisson_encode(x, generator, self.input_gain)
            for l, op in enumerate(self.layers[:-1]):
                z = self.bntt[l][t](op(h))
                u = z if mems[l] is None else self.leak * mems[l] + z
                s = SurrogateSpike.apply(u)
                # The reset is not differentiated through, as in the code (a constant subtraction).
                mems[l] = u - s.detach() * THRESHOLD
                counts[l] = s.detach() if counts[l] is None else counts[l] + s.detach()
                h = F.avg_pool2d(s, 2) if self.pool_after[l] else s
            z = self.layers[-1](h.reshape(h.shape[0], -1))
            u_out = z if u_out is None else u_out + z
            if return_all:
                per_step.append(u_out / (t + 1))
        logits = u_out / steps
        return (logits, per_step, counts) if return_all else logits


def early_exit_step(layer_avg_gamma: Sequence[float], threshold: float = DEFAULT_EXIT_THRESHOLD) -> int:
    """Number of steps to run: the first step t (1-based) after which the layer-averaged gamma stays
    below `threshold` for every later step (BNTT paper, temporal early exit). T if none qualifies."""
    g = list(layer_avg_gamma)
    steps = len(g)
    while steps > 1 and g[steps - 1] < threshold:
        steps -= 1
    return steps


# ------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(net: BNTTNet, x: torch.Tensor, y: torch.Tensor, seed: int = 0, batch_size: int = 500,
             exit_threshold: float = DEFAULT_EXIT_THRESHOLD) -> dict[str, Any]:
    """Accuracy after every step 1..T (one seeded Poisson draw), the early-exit step and its accuracy,
    and spikes per sample of the hidden layers over the full T steps."""
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    correct = torch.zeros(net.timesteps)
    spikes = 0.0
    for i in range(0, len(x), batch_size):
        _, per_step, counts = net(x[i : i + batch_size], generator=gen, return_all=True)
        yb = y[i : i + batch_size]
        correct += torch.tensor([(lg.argmax(1) == yb).sum().item() for lg in per_step], dtype=torch.float)
        spikes += sum(c.sum().item() for c in counts)
    acc_t = (correct / len(x)).tolist()
    layer_avg = net.gammas().mean(dim=0).tolist()
    t_exit = early_exit_step(layer_avg, exit_threshold)
    sweep = {f"{thr:g}": [early_exit_step(layer_avg, thr), acc_t[early_exit_step(layer_avg, thr) - 1]]
             for thr in (0.95, 0.9, 0.85, 0.8, 0.5, 0.1)}
    return {"test_accuracy": acc_t[-1], "accuracy_per_step": acc_t, "layer_avg_gamma": layer_avg,
            "exit_threshold": exit_threshold, "exit_step": t_exit, "avg_exit_step": float(t_exit),
            "test_accuracy_early_exit": acc_t[t_exit - 1], "early_exit_sweep": sweep,
            "spikes_per_sample": spikes / len(x)}


def arch_spec(arch: str, hidden: Any) -> dict[str, Any]:
    """Builder spec for a BNTT net (`hidden` = widths for mlp, channels for conv)."""
    if arch == "lenet":  # the CLI's conv option name; ours is a small VGG-like conv net
        arch = "conv"
    from spikeforge.model.convert import parse_hidden

    hid = parse_hidden(hidden) or ([256] if arch == "mlp" else [16, 32])
    if not hid or any(int(n) < 1 for n in hid):
        raise BNTTError(f"hidden={hidden!r}: give positive widths, e.g. --hidden 256")
    if arch == "mlp":
        return {"name": "mlp", "hidden": [int(n) for n in hid], "neuron": "lif-bntt"}
    if arch == "conv":
        return {"name": "conv", "channels": [int(n) for n in hid], "pool": "avg", "neuron": "lif-bntt"}
    raise BNTTError(f"arch={arch!r} is unknown for --method bntt; use mlp or lenet (small conv)")


def build_from_checkpoint(ckpt: dict[str, Any]) -> BNTTNet:
    """Rebuild a BNTT net from a `--method bntt` checkpoint."""
    if ckpt.get("format") != "spikeforge-checkpoint" or ckpt.get("method") != "bntt":
        raise BNTTError("checkpoint: not a spikeforge 'bntt' checkpoint; train with --method bntt")
    ds = ckpt["dataset"]
    net = BNTTNet(ckpt["arch"], tuple(ds["input_shape"]), ds["num_classes"], ckpt["timesteps"], ckpt["leak"],
                  ckpt.get("input_gain", DEFAULT_INPUT_GAIN))
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


# ------------------------------------------------------- what BNTT adds to the one training loop
def _defaults(cfg) -> dict[str, Any]:
    # Adam + cosine instead of the code's SGD (docs); coupled L2 1e-4 as the code's SGD, on the gammas
    # too: it is what makes the gammas of late, little-needed steps shrink, which the early exit reads.
    return {**DEFAULTS, "weight_decay": DEFAULT_WEIGHT_DECAY, "leak": DEFAULT_LEAK, "schedule": "cosine"}


def _build(cfg, ds) -> BNTTNet:
    spec = arch_spec(cfg.arch.get("name", "mlp"), cfg.arch.get("hidden"))
    return BNTTNet(spec, tuple(ds.input_shape), ds.num_classes, int(cfg.timesteps), float(cfg.leak))


def _loss(net: BNTTNet, x: torch.Tensor, y: torch.Tensor, cfg, gen: torch.Generator):
    # CE(U_T / T) through time with the triangle surrogate; the Poisson draws come from the loop's generator.
    logits = net(x, generator=gen)
    return F.cross_entropy(logits, y), logits


def _logits(net: BNTTNet, x: torch.Tensor, cfg) -> torch.Tensor:
    return net(x, generator=torch.Generator().manual_seed(cfg.seed))


def _finish(net: BNTTNet, data, cfg):
    metrics = evaluate(net, data.x_test, data.y_test, seed=cfg.seed)
    fields = {"timesteps": net.timesteps, "leak": net.leak, "threshold": THRESHOLD, "input_gain": net.input_gain,
              "neuron": {"model": "LIF", "fire": "U > 1", "reset": "subtract", "bn": "per-step, gamma only",
                         "input": "signed Poisson, P = gain*|x|/2", "readout": "U_T / T"}}
    return net, metrics, fields


def _summary(m: dict, cfg) -> str:
    return (f"T={cfg.timesteps} leak={cfg.leak}: test {m['test_accuracy']:.4f}  early exit at step "
            f"{m['exit_step']} -> {m['test_accuracy_early_exit']:.4f}  spikes/sample {m['spikes_per_sample']:.0f}")


RECIPE = Recipe(defaults=_defaults, build=_build, loss=_loss, logits=_logits, finish=_finish, summary=_summary)
