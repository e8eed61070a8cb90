"""Network builders: every model is a list of `SpikeBlock`s (see docs/INTERFACES.md section 1).

A block computes ``u = bn(pool(op(x)))`` (plus a shortcut for ResNets) and emits ``act(u)``.
All blocks but the last are spiking (or ReLU for the float baseline); the last is a
non-spiking Linear readout whose potentials are the logits. The first block receives the
analog pixels in [0, 1] directly (direct encoding).

Architectures (``arch`` dicts; missing keys take the defaults below, and the checkpoint stores
the resolved dict so `build_from_checkpoint` rebuilds exactly):

- ``{"name": "mlp", "hidden": [128], "bn": True}``
- ``{"name": "lenet", "channels": [16, 32], "kernel": 5|3, "hidden": [128], "bn": True}``
  conv-pool-conv-pool-fc-readout (wider than LeNet-5's 6/16 channels, which reached only
  81 % on digits as a Hoyer SNN); kernel 3 (padding 1) for inputs under 16 px, else the
  classic 5 (first conv padded by 2).
- ``{"name": "vgg", "cfg": [32, "M", 64, "M"], "hidden": [128], "bn": True}``: 3x3 convs,
  "M" puts a 2x2 max-pool into the preceding conv block (conv -> pool -> BN -> spike).
- ``{"name": "resnet", "stem": 16, "stages": [16, 32], "blocks": 1, "hidden": []}``: basic
  blocks (two 3x3 convs); the second conv's potential gets the block input added
  (``shortcut_from``), through a 1x1 conv + BN projection when the shape changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from spikeforge import SpikeforgeError
from spikeforge.model.layers import HeavisideSpike, HoyerSpike

# hoyer: Hoyer spike + regulariser; fixed: the authors' fixed-threshold ablation (E = 1, v_th trained);
# heaviside: spikeforge's theta = 1 baseline; relu: the float ANN of the same shape.
METHODS = ("hoyer", "fixed", "heaviside", "relu")
ARCHS = ("mlp", "lenet", "vgg", "resnet")

# How the first layer sees its input; quant/ reads this to quantize pixels to integers.
INPUT_QUANT = {"encoding": "direct", "low": 0.0, "high": 1.0}


class ArchError(SpikeforgeError):
    """An architecture spec or checkpoint that cannot be built."""


class SpikeBlock(nn.Module):
    """One layer: ``op`` (Linear/Conv2d), then optional ``pool``, ``bn``, ``act``.

    ``shortcut_from = k`` adds block k's output (through ``shortcut`` if not None) to this
    block's potential before ``act``. A Linear op flattens a 4-d input itself.
    """

    def __init__(
        self,
        op: nn.Module,
        pool: nn.Module | None = None,
        bn: nn.Module | None = None,
        act: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.op, self.pool, self.bn, self.act = op, pool, bn, act
        self.shortcut_from: int | None = None
        self.shortcut: nn.Module | None = None

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """u = bn(pool(op(x))), without the shortcut or the activation."""
        if isinstance(self.op, nn.Linear) and x.dim() > 2:
            x = x.flatten(1)
        u = self.op(x)
        if self.pool is not None:
            u = self.pool(u)
        if self.bn is not None:
            u = self.bn(u)
        return u


@dataclass
class BlockTrace:
    """What one block saw and produced on a batch (detached), for metrics and plots."""

    input: torch.Tensor
    potential: torch.Tensor
    output: torch.Tensor


class SNN(nn.Module):
    """A chain of SpikeBlocks; ``forward`` returns logits."""

    def __init__(
        self, blocks: list[SpikeBlock], method: str, arch: dict, input_shape, num_classes: int
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.method = method
        self.arch = arch
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.input_quant = dict(INPUT_QUANT)

    def _run(self, x: torch.Tensor, traces: list[BlockTrace] | None) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        h = x
        for block in self.blocks:
            u = block.potential(h)
            if block.shortcut_from is not None:
                s = outs[block.shortcut_from]
                u = u + (block.shortcut(s) if block.shortcut is not None else s)
            o = block.act(u) if block.act is not None else u
            if traces is not None:
                traces.append(BlockTrace(h.detach(), u.detach(), o.detach()))
            outs.append(o)
            h = o
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def forward_traced(self, x: torch.Tensor) -> tuple[torch.Tensor, list[BlockTrace]]:
        """Logits plus every block's input, potential and output."""
        traces: list[BlockTrace] = []
        return self._run(x, traces), traces

    def spike_layers(self) -> list[nn.Module]:
        return [b.act for b in self.blocks if isinstance(b.act, HoyerSpike | HeavisideSpike)]

    def hoyer_loss(self) -> torch.Tensor:
        """Sum of the Hoyer regulariser over the Hoyer layers of the last forward pass."""
        terms = [b.act.hoyer_loss() for b in self.blocks if isinstance(b.act, HoyerSpike)]
        return torch.stack(terms).sum() if terms else torch.zeros(())


def _act(method: str, conv_channels: int | None) -> nn.Module:
    if method in ("hoyer", "fixed"):
        extremum = method == "hoyer"
        if conv_channels:
            return HoyerSpike("cw", conv_channels, extremum=extremum)
        return HoyerSpike("sum", extremum=extremum)
    if method == "heaviside":
        return HeavisideSpike()
    if method == "relu":
        return nn.ReLU()
    raise ArchError(f"method={method!r} has no spike layer here; use one of {', '.join(METHODS)}")


def _conv_block(method: str, cin: int, cout: int, k: int, pad: int, stride: int, pool: bool, bn: bool):
    return SpikeBlock(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=not bn),
        nn.MaxPool2d(2) if pool else None,
        nn.BatchNorm2d(cout) if bn else None,
        _act(method, cout),
    )


def _fc_blocks(method: str, n_in: int, hidden: list[int], num_classes: int, bn: bool) -> list[SpikeBlock]:
    blocks = []
    for width in hidden:
        blocks.append(
            SpikeBlock(
                nn.Linear(n_in, width, bias=not bn),
                None,
                nn.BatchNorm1d(width) if bn else None,
                _act(method, None),
            )
        )
        n_in = width
    blocks.append(SpikeBlock(nn.Linear(n_in, num_classes)))
    return blocks


DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [128], "bn": True},
    "lenet": {"channels": [16, 32], "hidden": [128], "bn": True},
    "vgg": {"cfg": [32, "M", 64, "M"], "hidden": [128], "bn": True},
    "resnet": {"stem": 16, "stages": [16, 32], "blocks": 1, "hidden": [], "bn": True},
}


def resolve_arch(arch: dict, input_shape) -> dict:
    """Fill in defaults (and input-dependent choices) so the dict alone rebuilds the model."""
    name = arch.get("name")
    if name not in DEFAULTS:
        raise ArchError(f"arch name={name!r} is unknown; use one of {', '.join(ARCHS)}")
    out = {"name": name, **DEFAULTS[name], **{k: v for k, v in arch.items() if v is not None}}
    if name == "lenet" and "kernel" not in out:
        out["kernel"] = 3 if min(input_shape[1:]) < 16 else 5
    return out


def build(arch: dict, method: str, input_shape, num_classes: int) -> SNN:
    """Build the module for `arch` (see the module docstring) with spike layers of `method`."""
    if method not in METHODS:
        raise ArchError(f"method={method!r} cannot be built by nets.build; use one of {', '.join(METHODS)}")
    arch = resolve_arch(arch, input_shape)
    c, h, w = input_shape
    bn = bool(arch["bn"])
    blocks: list[SpikeBlock] = []
    name = arch["name"]
    if name == "mlp":
        blocks = _fc_blocks(method, c * h * w, list(arch["hidden"]), num_classes, bn)
    elif name == "lenet":
        k = int(arch["kernel"])
        c1, c2 = arch["channels"]
        pad1 = 1 if k == 3 else 2
        pad2 = 1 if k == 3 else 0
        blocks.append(_conv_block(method, c, c1, k, pad1, 1, True, bn))
        h, w = (h + 2 * pad1 - k + 1) // 2, (w + 2 * pad1 - k + 1) // 2
        blocks.append(_conv_block(method, c1, c2, k, pad2, 1, True, bn))
        h, w = (h + 2 * pad2 - k + 1) // 2, (w + 2 * pad2 - k + 1) // 2
        if h < 1 or w < 1:
            raise ArchError(f"arch lenet: input {input_shape} is too small for kernel {k}; use kernel 3")
        blocks += _fc_blocks(method, c2 * h * w, list(arch["hidden"]), num_classes, bn)
    elif name == "vgg":
        cin = c
        for item in arch["cfg"]:
            if item == "M":
                if not blocks or blocks[-1].pool is not None:
                    raise ArchError("arch vgg cfg: 'M' must follow a conv width; e.g. [32, 'M', 64, 'M']")
                blocks[-1].pool = nn.MaxPool2d(2)
                h, w = h // 2, w // 2
                continue
            blocks.append(_conv_block(method, cin, int(item), 3, 1, 1, False, bn))
            cin = int(item)
        if h < 1 or w < 1:
            raise ArchError(f"arch vgg: too many 'M' for input {input_shape}; remove some")
        blocks += _fc_blocks(method, cin * h * w, list(arch["hidden"]), num_classes, bn)
    else:  # resnet
        cin = int(arch["stem"])
        blocks.append(_conv_block(method, c, cin, 3, 1, 1, False, bn))
        for si, cout in enumerate(arch["stages"]):
            for bi in range(int(arch["blocks"])):
                stride = 2 if (si > 0 and bi == 0) else 1
                entry = len(blocks) - 1
                blocks.append(_conv_block(method, cin, cout, 3, 1, stride, False, bn))
                second = _conv_block(method, cout, cout, 3, 1, 1, False, bn)
                second.shortcut_from = entry
                if stride != 1 or cin != cout:
                    second.shortcut = nn.Sequential(
                        nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
                    )
                    h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
                blocks.append(second)
                cin = cout
        blocks += _fc_blocks(method, cin * h * w, list(arch["hidden"]), num_classes, bn)
    return SNN(blocks, method, arch, input_shape, num_classes)


def build_from_checkpoint(ckpt: dict) -> SNN:
    """Rebuild a trained module from a checkpoint dict (docs/INTERFACES.md section 1), in eval mode."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != "spikeforge-checkpoint":
        raise ArchError(
            "checkpoint format is not 'spikeforge-checkpoint'; pass a checkpoint.pt from spikeforge train"
        )
    if ckpt.get("version") != 1:
        raise ArchError(
            f"checkpoint version={ckpt.get('version')!r} is unsupported; retrain with this spikeforge"
        )
    method = ckpt.get("method")
    if method in ("bntt", "convert"):
        import importlib

        mod = importlib.import_module(f"spikeforge.model.{method}")
        return mod.build_from_checkpoint(ckpt)
    ds = ckpt["dataset"]
    model = build(ckpt["arch"], method, tuple(ds["input_shape"]), int(ds["num_classes"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ArchError(f"checkpoint state_dict does not fit arch {ckpt['arch']}: {first}; retrain") from e
    return model.eval()
