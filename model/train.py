"""Train a one-time-step SNN (Hoyer spike + Hoyer regulariser), a Heaviside baseline, or a ReLU ANN.

    loss = cross_entropy(logits, y) + lam * sum over Hoyer layers of H(clamp(u/|v_th|, 0, 1))

Adam with a cosine learning-rate schedule, whole dataset in memory, one time step.
Writes OUT/checkpoint.pt (atomically), OUT/metrics.json and OUT/*.png.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spikeforge import SpikeforgeError, atomic_write_bytes
from spikeforge.model.checkpoint import save_checkpoint
from spikeforge.model.data import load_dataset
from spikeforge.model.metrics import accuracy, evaluate
from spikeforge.model.nets import SNN, build


class TrainError(SpikeforgeError):
    """A training config that cannot run."""


@dataclass
class TrainConfig:
    method: str = "hoyer"  # hoyer | heaviside | relu
    dataset: str = "digits"
    arch: dict = field(default_factory=lambda: {"name": "mlp", "hidden": [128]})
    epochs: int = 40
    lr: float | None = None  # None: 3e-3 for mlp, 1e-3 for conv nets (tuned on digits)
    batch_size: int = 64
    # Hoyer regulariser weight (hoyer only). None: 1e-4 for mlp, 1e-6 for conv nets, whose H sums
    # over far more elements per batch (tuned on digits, docs/TRAINING.md).
    lam: float | None = None
    weight_decay: float = 0.0
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


@dataclass
class Result:
    model: SNN
    metrics: dict
    checkpoint: dict
    out: Path | None


def _progress(total: int, desc: str):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from spikeforge.progress import Progress

    return Progress(
        TextColumn(desc),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        transient=False,
    )


def seed_everything(seed: int, num_threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(max(1, num_threads))
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except RuntimeError:
        pass


def train(cfg: TrainConfig) -> Result:
    """Train per `cfg`; return the model (eval mode), its metrics and the checkpoint dict."""
    if cfg.method not in ("hoyer", "heaviside", "relu"):
        raise TrainError(f"method={cfg.method!r} is not trained here; use hoyer, heaviside or relu")
    is_mlp = cfg.arch.get("name") == "mlp"
    lr = cfg.lr if cfg.lr is not None else (3e-3 if is_mlp else 1e-3)
    lam = cfg.lam if cfg.lam is not None else (1e-4 if is_mlp else 1e-6)
    lam = lam if cfg.method == "hoyer" else 0.0
    if cfg.epochs < 1 or cfg.batch_size < 1 or not lr > 0:
        raise TrainError(
            "epochs, batch_size and lr must be positive; e.g. --epochs 40 --batch-size 64 --lr 3e-3"
        )
    seed_everything(cfg.seed, cfg.num_threads)
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ds = load_dataset(cfg.dataset, cfg.data_dir, cfg.split_seed)
    x_tr, y_tr = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    if cfg.max_train:
        x_tr, y_tr = x_tr[: cfg.max_train], y_tr[: cfg.max_train]
    x_tr, y_tr = x_tr.to(device), y_tr.to(device)
    model = build(cfg.arch, cfg.method, ds.input_shape, ds.num_classes).to(device)

    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x_tr) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    gen = torch.Generator().manual_seed(cfg.seed)
    use_hoyer = cfg.method == "hoyer" and lam > 0

    t0 = time.perf_counter()
    history = []
    with _progress(cfg.epochs, f"train {cfg.method} {ds.name}") as bar:
        task = bar.add_task("epochs", total=cfg.epochs, info="")
        for epoch in range(cfg.epochs):
            model.train()
            perm = torch.randperm(len(x_tr), generator=gen).to(device)
            tot_loss, tot_correct = 0.0, 0
            for i in range(0, len(x_tr), cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on one sample
                    continue
                logits = model(x_tr[idx])
                loss = F.cross_entropy(logits, y_tr[idx])
                if use_hoyer:
                    loss = loss + lam * model.hoyer_loss()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot_loss += float(loss.detach()) * len(idx)
                tot_correct += int((logits.argmax(1) == y_tr[idx]).sum())
            history.append(
                {"epoch": epoch + 1, "loss": tot_loss / len(x_tr), "train_accuracy": tot_correct / len(x_tr)}
            )
            bar.update(
                task,
                advance=1,
                info=f"loss {history[-1]['loss']:.3f} acc {history[-1]['train_accuracy']:.3f}",
            )
    train_time = time.perf_counter() - t0

    model.eval()
    metrics = evaluate(model, ds.x_test, ds.y_test, device=device)
    metrics["test_accuracy"] = metrics["test_accuracy_fixed_threshold"]
    if cfg.method == "hoyer":
        metrics["test_accuracy_per_input_threshold"] = accuracy(
            model, ds.x_test, ds.y_test, device=device, per_input_threshold=True
        )
    metrics["train_accuracy_final"] = history[-1]["train_accuracy"]
    metrics["train_time_s"] = train_time
    metrics["history"] = history

    model.cpu()
    hyper = {
        k: v
        for k, v in asdict(cfg).items()
        if k not in ("arch", "dataset", "out", "data_dir", "device", "plots", "lam", "lr")
    }
    ckpt = {
        "format": "spikeforge-checkpoint",
        "version": 1,
        "method": cfg.method,
        "arch": model.arch,
        "dataset": {
            "name": ds.name,
            "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes,
            "split_seed": cfg.split_seed,
        },
        "state_dict": model.state_dict(),
        **hyper,
        "lambda": lam,
        "lr": lr,
        "metrics": metrics,
    }
    out = Path(cfg.out) if cfg.out else None
    if out is not None:
        save_checkpoint(ckpt, out / "checkpoint.pt")
        atomic_write_bytes(out / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
        if cfg.plots:
            from spikeforge.model import plots

            plots.plot_spike_rates(metrics, out / "spike_rates.png", title=f"{cfg.method} {ds.name}")
            if cfg.method != "relu":
                plots.plot_membrane_histogram({cfg.method: model}, ds.x_test, out / "membrane_hist.png")
    return Result(model=model, metrics=metrics, checkpoint=ckpt, out=out)
