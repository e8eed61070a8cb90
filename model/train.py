"""The one training loop of every method: hoyer, fixed, heaviside, relu, bntt, convert.

    for epoch:                                   # fit()
        for batch of a seeded shuffle:
            loss, logits = recipe.loss(model, shift(x), y, cfg, gen)
            Adam step; learning-rate schedule step (cosine to 0, or constant)
        optional: validation accuracy, keep the best weights, stop after `patience` bad epochs

A method is a `Recipe`: its defaults, how to build its module, its loss on a batch, its logits
for validation, and what it measures and stores at the end. The one-step SNNs (hoyer, the
authors' fixed-threshold ablation, heaviside) and the ReLU ANN are here; bntt and convert
register theirs in model/bntt.py and model/convert.py. `train(cfg)` seeds everything, loads the
data, runs `fit`, evaluates, and writes OUT/checkpoint.pt + OUT/metrics.json (model/checkpoint.py).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import SpikeforgeError
from spikeforge.model.checkpoint import FORMAT, VERSION, save_run
from spikeforge.model.data import Dataset, load_dataset

ONE_STEP = ("hoyer", "fixed", "heaviside", "relu")
METHODS = (*ONE_STEP, "bntt", "convert")
SCHEDULES = ("cosine", "constant")
HOYER_REGULARISERS = ("layer", "detached")


class TrainError(SpikeforgeError):
    """A training config that cannot run."""


@dataclass
class TrainConfig:
    """Every option of every method; None takes the method's (and the dataset's) default."""

    method: str = "hoyer"  # one of METHODS
    dataset: str = "digits"
    arch: dict = field(default_factory=lambda: {"name": "mlp"})  # + "hidden", "bn", "channels", ...
    epochs: int | None = None
    lr: float | None = None  # Adam learning rate
    batch_size: int | None = None
    lam: float | None = None  # regulariser weight (Hoyer for hoyer/fixed, activity for convert)
    weight_decay: float | None = None
    schedule: str | None = None  # cosine (to 0 over all steps) | constant
    shift: int | None = None  # augmentation: random shifts of up to `shift` pixels in x and y
    input_bits: int | None = None  # train and test on the k-bit pixel grid the hardware sees
    val_size: int = 0  # hold out this many training images for validation (early stopping)
    patience: int | None = None  # stop after this many epochs without a better validation score
    monitor: str = "accuracy"  # validation score: accuracy (higher is better) | loss (cross-entropy, lower)
    seed: int = 0
    split_seed: int = 0
    data_dir: str | None = None
    out: str | None = None
    # Small models train fastest on one thread: a second thread on a loaded 2-core machine
    # made each step 10-20x slower. The same thread count gives the same bits.
    num_threads: int = 1
    device: str | None = None  # None: cuda if available else cpu
    plots: bool = True
    max_train: int | None = None  # use only the first N training images (tests)
    hoyer_regulariser: str = "layer"  # layer (HoyerBiAct: v_th gets its gradient) | detached (VGG16 file)
    timesteps: int | None = None  # bntt, convert
    leak: float | None = None  # bntt
    reg: str | None = None  # convert: l1 | l2 | lp | hoyer | hoyer-square
    p: float = 0.5  # convert: exponent of lp
    desc: str | None = None  # progress label


@dataclass
class Split:
    """The tensors one run trains, validates and tests on."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None


@dataclass(frozen=True)
class Recipe:
    """What one method adds to the loop."""

    defaults: Callable[[TrainConfig], dict[str, Any]]  # values for the config's None fields
    build: Callable[[TrainConfig, Dataset], nn.Module]
    loss: Callable[[nn.Module, torch.Tensor, torch.Tensor, TrainConfig, torch.Generator], tuple]
    logits: Callable[[nn.Module, torch.Tensor, TrainConfig], torch.Tensor]  # eval mode, for validation
    # (trained module, data, config) -> (module to store, metrics, extra checkpoint fields)
    finish: Callable[[nn.Module, Split, TrainConfig], tuple[nn.Module, dict, dict]]
    summary: Callable[[dict, TrainConfig], str]  # the CLI's one line


@dataclass
class Result:
    model: nn.Module
    metrics: dict
    checkpoint: dict
    out: Path | None
    config: TrainConfig  # with every default resolved


# ----------------------------------------------------------------------------------------- the loop
def seed_everything(seed: int, num_threads: int = 1) -> None:
    """Seed torch and numpy, fix the thread count, ask for deterministic kernels."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.set_num_threads(max(1, num_threads))
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except RuntimeError:
        pass


def shift_images(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image of [n, c, h, w] moved by its own random (dy, dx) in [-shift, shift], zero-filled."""
    n, c, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, c, h, w + 2 * shift)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows.to(x.device)).gather(3, cols.to(x.device))


@torch.no_grad()
def validate(recipe: Recipe, model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
             batch_size: int = 500) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of `model` in eval mode (leaves it in eval mode)."""
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        logits = recipe.logits(model, x[i : i + batch_size], cfg)
        correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
        loss += float(F.cross_entropy(logits, y[i : i + batch_size], reduction="sum"))
    return correct / len(x), loss / len(x)


def fit(model: nn.Module, recipe: Recipe, data: Split, cfg: TrainConfig) -> list[dict]:
    """Train `model` in place per `cfg` (defaults resolved); return the per-epoch history.

    With a validation set, the weights of the best validation epoch are restored at the end,
    and `patience` epochs without improvement end training early."""
    from spikeforge.progress import Progress

    x, y = data.x, data.y
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
    cosine = cfg.schedule == "cosine"
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if cosine else 1.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    best: tuple[float, int, dict] | None = None
    with Progress() as bar:
        task = bar.add_task(cfg.desc or f"train {cfg.method} {cfg.dataset}", total=cfg.epochs)
        for epoch in range(cfg.epochs):
            model.train()
            perm = torch.randperm(len(x), generator=gen).to(x.device)
            tot_loss, tot_correct = 0.0, 0
            for i in range(0, len(x), cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on one sample
                    continue
                xb = shift_images(x[idx], cfg.shift, gen) if cfg.shift else x[idx]
                loss, logits = recipe.loss(model, xb, y[idx], cfg, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot_loss += float(loss.detach()) * len(idx)
                tot_correct += int((logits.argmax(1) == y[idx]).sum())
            row = {"epoch": epoch + 1, "loss": tot_loss / len(x), "train_accuracy": tot_correct / len(x)}
            if data.x_val is not None:
                row["val_accuracy"], row["val_loss"] = validate(recipe, model, data.x_val, data.y_val, cfg)
                score = row["val_accuracy"] if cfg.monitor == "accuracy" else -row["val_loss"]
                if best is None or score > best[0]:
                    best = (score, epoch + 1, copy.deepcopy(model.state_dict()))
            history.append(row)
            info = f"loss {row['loss']:.3f} acc {row['train_accuracy']:.3f}"
            bar.update(task, advance=1, info=info + (f" val {row['val_accuracy']:.3f}" if "val_accuracy" in row
                                                     else ""))
            if best is not None and cfg.patience is not None and epoch + 1 - best[1] >= cfg.patience:
                break
    if best is not None:
        model.load_state_dict(best[2])
        history[-1]["best_epoch"] = best[1]
    model.eval()
    return history


# ------------------------------------------------------------------------------------------ driver
def get_recipe(method: str) -> Recipe:
    if method in ONE_STEP:
        return ONE_STEP_RECIPE
    if method in ("bntt", "convert"):
        return importlib.import_module(f"spikeforge.model.{method}").RECIPE
    raise TrainError(f"method={method!r} is unknown; use one of {', '.join(METHODS)}")


def resolve(cfg: TrainConfig, recipe: Recipe) -> TrainConfig:
    """A copy of `cfg` with every None option that has a default filled in."""
    given = {k: v for k, v in dataclasses.asdict(cfg).items() if v is not None}
    base = {"schedule": "cosine", "shift": 0, "weight_decay": 0.0, "lam": 0.0, "batch_size": 64,
            **recipe.defaults(cfg)}
    out = TrainConfig(**{**{k: v for k, v in base.items() if k != "arch"}, **given})
    out.arch = {**base.get("arch", {}), **cfg.arch}
    return out


def check(cfg: TrainConfig) -> None:
    """One line naming the option and the fix for a config that cannot run."""
    if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.lr > 0:
        raise TrainError("epochs, batch_size and lr must be positive; e.g. --epochs 40 --batch-size 64 --lr 3e-3")
    if cfg.lam < 0 or cfg.weight_decay < 0:
        raise TrainError(f"lambda={cfg.lam}, weight_decay={cfg.weight_decay}: must be >= 0")
    if cfg.schedule not in SCHEDULES:
        raise TrainError(f"schedule={cfg.schedule!r} is unknown; use one of {', '.join(SCHEDULES)}")
    if cfg.shift < 0 or cfg.val_size < 0 or (cfg.patience is not None and cfg.patience < 1):
        raise TrainError("--shift and --val-size must be >= 0 and --patience >= 1; e.g. --shift 1")
    if cfg.patience is not None and cfg.val_size == 0:
        raise TrainError("--patience needs a validation split; add e.g. --val-size 500")
    if cfg.input_bits is not None and not 1 <= cfg.input_bits <= 8:
        raise TrainError(f"--input-bits {cfg.input_bits} is outside 1..8; use e.g. --input-bits 8")
    if cfg.monitor not in ("accuracy", "loss"):
        raise TrainError(f"monitor={cfg.monitor!r}; use accuracy or loss")
    if cfg.hoyer_regulariser not in HOYER_REGULARISERS:
        raise TrainError(f"hoyer_regulariser={cfg.hoyer_regulariser!r}; use one of {', '.join(HOYER_REGULARISERS)}")


def pixel_grid(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Pixels in [0, 1] snapped to the k-bit grid j / (2^k - 1), as quant/ feeds the core."""
    levels = (1 << bits) - 1
    return torch.clamp(torch.round(x * levels), 0, levels) / levels


def split_data(ds: Dataset, cfg: TrainConfig, device: torch.device) -> Split:
    """Train/validation/test tensors: k-bit grid, first `max_train` images, a seeded validation split."""
    x, y = torch.from_numpy(ds.x_train).float(), torch.from_numpy(ds.y_train).long()
    xt, yt = torch.from_numpy(ds.x_test).float(), torch.from_numpy(ds.y_test).long()
    if cfg.input_bits is not None:
        x, xt = pixel_grid(x, cfg.input_bits), pixel_grid(xt, cfg.input_bits)
    if cfg.max_train:
        x, y = x[: cfg.max_train], y[: cfg.max_train]
    xv = yv = None
    if cfg.val_size:
        if cfg.val_size >= len(x):
            raise TrainError(f"--val-size {cfg.val_size} leaves no training images (of {len(x)}); use fewer")
        perm = torch.from_numpy(np.random.default_rng(cfg.split_seed).permutation(len(x)))
        xv, yv = x[perm[-cfg.val_size :]].to(device), y[perm[-cfg.val_size :]].to(device)
        x, y = x[perm[: -cfg.val_size]], y[perm[: -cfg.val_size]]
    return Split(x.to(device), y.to(device), xt, yt, xv, yv)


def train(cfg: TrainConfig) -> Result:
    """Train per `cfg`; return the model (eval mode, on the CPU), its metrics and the checkpoint dict."""
    recipe = get_recipe(cfg.method)
    cfg = resolve(cfg, recipe)
    check(cfg)
    seed_everything(cfg.seed, cfg.num_threads)
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ds = load_dataset(cfg.dataset, cfg.data_dir, cfg.split_seed)
    data = split_data(ds, cfg, device)
    model = recipe.build(cfg, ds).to(device)
    t0 = time.perf_counter()
    history = fit(model, recipe, data, cfg)
    train_time = time.perf_counter() - t0
    stored, metrics, fields = recipe.finish(model, data, cfg)
    metrics.update(train_accuracy_final=history[-1]["train_accuracy"], train_time_s=train_time,
                   epochs_run=len(history), history=history)
    if "best_epoch" in history[-1]:
        metrics["best_epoch"] = history[-1]["best_epoch"]
    stored.cpu()
    skip = ("arch", "dataset", "out", "data_dir", "device", "plots", "lam", "desc", "method")
    hyper = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip and v is not None}
    ckpt = {"format": FORMAT, "version": VERSION, "method": cfg.method, "arch": stored.arch,
            "dataset": {"name": ds.name, "input_shape": list(ds.input_shape), "num_classes": ds.num_classes,
                        "split_seed": cfg.split_seed},
            "state_dict": stored.state_dict(), **hyper, "lambda": cfg.lam, **fields, "metrics": metrics}
    out = Path(cfg.out) if cfg.out else None
    if out is not None:
        save_run(out, ckpt)
        if cfg.plots and cfg.method in ONE_STEP:
            from spikeforge.model import plots

            plots.plot_spike_rates(metrics, out / "spike_rates.png", title=f"{cfg.method} {ds.name}")
            if cfg.method != "relu":
                plots.plot_membrane_histogram({cfg.method: stored}, data.x_test, out / "membrane_hist.png")
    return Result(model=stored, metrics=metrics, checkpoint=ckpt, out=out, config=cfg)


# ----------------------------------------------------------------- one-step SNNs and the ReLU ANN
# mnist5k recipe (docs/TRAINING.md, docs/results/mnist-class.md): one-pixel shifts, 40 epochs, Adam 1e-3
# (3e-3 let the MLP's |v_th| collapse towards 0, closing the surrogate window).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {"mnist5k": {"shift": 1, "epochs": 40, "lr": 1e-3}}


def _one_step_defaults(cfg: TrainConfig) -> dict[str, Any]:
    is_mlp = cfg.arch.get("name", "mlp") == "mlp"
    # Tuned on digits (docs/TRAINING.md): H sums over far more elements per batch in conv layers.
    lam = (1e-4 if is_mlp else 1e-6) if cfg.method == "hoyer" else 0.0
    base = {"epochs": 40, "lr": 3e-3 if is_mlp else 1e-3, "batch_size": 64, "lam": lam}
    return {**base, **DATASET_DEFAULTS.get(cfg.dataset, {})}


def _one_step_build(cfg: TrainConfig, ds: Dataset) -> nn.Module:
    from spikeforge.model.layers import HoyerSpike
    from spikeforge.model.nets import build

    model = build(cfg.arch, cfg.method, ds.input_shape, ds.num_classes)
    for m in model.modules():
        if isinstance(m, HoyerSpike):
            m.detach_vth_in_regulariser = cfg.hoyer_regulariser == "detached"
    return model


def _one_step_loss(model, xb, yb, cfg, gen):
    logits = model(xb)
    loss = F.cross_entropy(logits, yb)
    if cfg.lam > 0 and cfg.method in ("hoyer", "fixed"):
        loss = loss + cfg.lam * model.hoyer_loss()
    return loss, logits


def _one_step_finish(model, data: Split, cfg: TrainConfig):
    from spikeforge.model.metrics import accuracy, evaluate

    metrics = evaluate(model, data.x_test, data.y_test, device=data.x.device)
    metrics["test_accuracy"] = metrics["test_accuracy_fixed_threshold"]
    if cfg.method == "hoyer":
        metrics["test_accuracy_per_input_threshold"] = accuracy(
            model, data.x_test, data.y_test, device=data.x.device, per_input_threshold=True)
    return model, metrics, {}


def _one_step_summary(m: dict, cfg: TrainConfig) -> str:
    extra = ""
    if "test_accuracy_per_input_threshold" in m:
        extra = f" (per-input threshold {m['test_accuracy_per_input_threshold']:.4f})"
    rate_name = "activation density" if cfg.method == "relu" else "spike rate"
    return (f"test accuracy {m['test_accuracy']:.4f}{extra}  mean {rate_name} {m['spike_rate_mean']:.3f}  "
            f"synops/sample {m['synops']:.0f}  train {m['train_time_s']:.1f} s")


ONE_STEP_RECIPE = Recipe(defaults=_one_step_defaults, build=_one_step_build, loss=_one_step_loss,
                         logits=lambda model, x, cfg: model(x), finish=_one_step_finish,
                         summary=_one_step_summary)
