"""Reproduce Narduzzi et al.'s Table 1 / Fig. 3 / Table 3 at small scale, with the paper's protocol:
activity-regularised ReLU MLP (or LeNet-5) -> rate-coded IF SNN, every model (baseline included)
trained with a validation split and early stopping, every figure a mean over seeds.

    python -m spikeforge.scripts.reproduce_ar --dataset digits --out docs/results

Writes OUT/activity-regularization.{md,json,png}. Also --dataset mnist5k, or mnist --data-dir DIR.
Before the sweep, the unregularised model is trained at each learning rate of --baseline-lrs with
the same budget; the one with the best mean validation loss sets the learning rate of every model
of the table, and the table's baseline is compared with the best of them on the test set.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.model.ar_metrics import relative_change
from spikeforge.scripts.results_files import run_cli, write_results

# (label, regularizer, p): the paper's six rows of Table 1.
REGS = [("L2", "l2", 0.5), ("L1", "l1", 0.5), ("L0.5", "lp", 0.5), ("L0.01", "lp", 0.01),
        ("H", "hoyer", 0.5), ("Hs", "hoyer-square", 0.5)]
# Per-sample psi values differ by orders of magnitude between regularisers, so each has its own grid,
# chosen on digits to run from "barely any effect" to "accuracy starts to fall" (docs/results).
GRIDS = {
    "L2": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "L1": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "L0.5": [3e-4, 1e-3, 3e-3, 6e-3, 1e-2],
    "L0.01": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "H": [1e-3, 1e-2, 3e-2, 1e-1, 3e-1],
    "Hs": [1e-4, 1e-3, 3e-3, 1e-2, 3e-2],
}
KEYS = ("dnn_accuracy", "snn_accuracy", "spikes", "synops", "eflops", "epochs_run", "val_loss")


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one DNN (early stopping on the validation loss), convert, simulate: one seed's figures."""
    from spikeforge.model.train import TrainConfig, train

    cfg = TrainConfig(method="convert", dataset=job["dataset"], data_dir=job["data_dir"],
                      arch={"name": job["arch"], "hidden": job["hidden"]}, epochs=job["max_epochs"], lr=job["lr"],
                      batch_size=job["batch_size"], lam=job["lambda"], reg=job["reg"], p=job["p"],
                      seed=job["seed"], timesteps=job["timesteps"], val_size=job["val_size"],
                      patience=job["patience"], monitor="loss", schedule="constant", plots=False,
                      desc=f"{job['label']} @ {job['lambda']:g} seed {job['seed']}")
    m = train(cfg).metrics
    best = m["history"][m["best_epoch"] - 1]
    return {**{k: job[k] for k in ("label", "reg", "p", "lambda", "seed", "lr")},
            "dnn_accuracy": m["dnn_test_accuracy"], "snn_accuracy": m["snn_test_accuracy"],
            "spikes": m["spikes_per_sample"], "synops": m["synops_per_sample"], "eflops": m["eflops_per_sample"],
            "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"], "val_loss": best["val_loss"],
            "val_accuracy": best["val_accuracy"]}


def aggregate(runs: list[dict]) -> dict[str, Any]:
    """Mean and sd over seeds of every figure of one model."""
    out: dict[str, Any] = {k: runs[0][k] for k in ("label", "reg", "p", "lambda", "lr")}
    out["seeds"] = [r["seed"] for r in runs]
    for k in KEYS:
        vals = [float(r[k]) for r in runs]
        out[k] = statistics.fmean(vals)
        out[k + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    out["runs"] = runs
    return out


def select(models: list[dict], base: dict, tol_pp: float) -> dict | None:
    """The paper's rule (Sec. 4.1), on means over seeds: the model with the fewest SynOps among those
    whose SNN accuracy is less than `tol_pp` points below the baseline SNN's."""
    ok = [r for r in models if 100 * (base["snn_accuracy"] - r["snn_accuracy"]) < tol_pp]
    return min(ok, key=lambda r: r["synops"]) if ok else None


def auc(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Area under accuracy vs normalised SynOps on [0, 1], original and smoothed (Table 3).

    The curve is extended flat to x = 0 and x = 1 from its end points; the smoothed curve is the
    monotone upper envelope (accuracy may only grow with SynOps), which removes the non-monotone
    wiggles the paper mentions."""
    pts = sorted(points)
    xs = np.array([0.0] + [x for x, _ in pts] + [1.0])
    ys = np.array([pts[0][1]] + [y for _, y in pts] + [pts[-1][1]])
    smooth = np.maximum.accumulate(ys)
    return float(np.trapezoid(ys, xs)), float(np.trapezoid(smooth, xs))


def _pm(r: dict, key: str, scale: float = 100.0, fmt: str = ".2f") -> str:
    return f"{scale * r[key]:{fmt}} ± {scale * r[key + '_sd']:{fmt}}"


def plot(out: Path, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base, cfg, smax = result["baseline"], result["config"], result["synops_max"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, models in result["sweeps"].items():
        pts = sorted([base, *models], key=lambda r: r["synops"])
        o, s = result["auc"][label]
        ax1.errorbar([r["synops"] / smax for r in pts], [100 * r["snn_accuracy"] for r in pts],
                     yerr=[100 * r["snn_accuracy_sd"] for r in pts], fmt="o-", ms=3, capsize=2,
                     label=f"{label} (AUC {o:.3f}/{s:.3f})")
        ax2.semilogx([r["lambda"] for r in models],
                     [100 + relative_change(r["synops"], base["synops"]) for r in models], "o-", ms=3, label=label)
    ax1.set(xlabel="SynOps / max SynOps", ylabel="SNN test accuracy (%), mean ± sd",
            title="Accuracy vs SynOps (cf. Fig. 3)")
    ax2.set(xlabel="lambda", ylabel="SynOps (% of baseline)", title="SynOps vs lambda (cf. Fig. 2)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{cfg['arch']} on {cfg['dataset']}, T={cfg['timesteps']}, seeds {cfg['seeds']}")
    fig.tight_layout()
    png = out / "activity-regularization.png"
    tmp = out / ".activity-regularization.png.tmp"
    fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    tmp.replace(png)


def markdown(result: dict[str, Any]) -> str:
    base, cfg, check = result["baseline"], result["config"], result["baseline_check"]
    n = len(cfg["seeds"])
    L = [f"# Activity regularisation and DNN-to-SNN conversion ({cfg['dataset']}, {cfg['arch']})", "",
         "Made by:", "", "```", result["command"], "```", "",
         f"Protocol (the paper's, Sec. 4): {cfg['arch']} {cfg['hidden'] if cfg['arch'] == 'mlp' else ''} ReLU "
         f"net, Adam at a constant learning rate {cfg['lr']:g}, batch {cfg['batch_size']}; {cfg['val_size']} "
         f"training images held out for validation; every model, baseline included, keeps the epoch with "
         f"the smallest validation loss and stops {cfg['patience']} epochs after it (at most "
         f"{cfg['max_epochs']}). Conversion with the {cfg['percentile']}th percentile of non-zero "
         "activations of all training images, IF neurons (threshold 1, reset by subtraction), analog input "
         f"every step, T = {cfg['timesteps']}; readout = accumulated potential. {cfg['n_train']} training "
         f"(validation included) / {cfg['n_test']} test images (one image = {100 / cfg['n_test']:.2f} pp). "
         f"Every figure is a mean ± sd over {n} seeds ({', '.join(map(str, cfg['seeds']))}); counters "
         f"are per test sample (Spikes and SynOps over the whole simulation). Wall time "
         f"{result['wall_s']:.0f} s on {result['host']}.", "",
         "## The baseline against the best unregularised model of the same budget", "",
         "| learning rate | mean validation loss | DNN test acc | SNN test acc | epochs run |",
         "|---:|---:|---:|---:|---:|"]
    for r in check["models"]:
        L.append(f"| {r['lr']:g} | {r['val_loss']:.4f} | {_pm(r, 'dnn_accuracy')} % | {_pm(r, 'snn_accuracy')} % | "
                 f"{r['epochs_run']:.0f} |")
    L += ["", check["text"], "",
          "## Table 1 (best trade-off per regulariser)", "",
          f"Selection as the paper (Sec. 4.1), on the means: per regulariser, the lambda with the fewest SynOps "
          f"whose mean SNN accuracy is less than {cfg['acc_tol_pp']} pp below the baseline's. ΔAcc is relative "
          "to the baseline's DNN / SNN accuracy; % columns are relative to the baseline's means.", "",
          "| | Spikes | EFLOPS | SynOps | Accuracy DNN / SNN (%) |", "|---|---:|---:|---:|---:|",
          f"| {cfg['arch']} baseline | {base['spikes']:,.0f} ± {base['spikes_sd']:,.0f} | "
          f"{base['eflops']:,.0f} ± {base['eflops_sd']:,.0f} | {base['synops']:,.0f} ± {base['synops_sd']:,.0f} | "
          f"{_pm(base, 'dnn_accuracy')} / {_pm(base, 'snn_accuracy')} |", "",
          "| regularizer | lambda | DNN acc (%) | SNN acc (%) | ΔAcc DNN/SNN (pp) | %Spikes | %EFLOPS | %SynOps |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label in result["sweeps"]:
        r = result["table"][label]
        if r is None:
            L.append(f"| {label} | – | no lambda within {cfg['acc_tol_pp']} pp | | | | | |")
            continue
        L.append(f"| {label} | {r['lambda']:.0e} | {_pm(r, 'dnn_accuracy')} | {_pm(r, 'snn_accuracy')} | "
                 f"{100 * (r['dnn_accuracy'] - base['dnn_accuracy']):+.2f} / "
                 f"{100 * (r['snn_accuracy'] - base['snn_accuracy']):+.2f} | "
                 f"{relative_change(r['spikes'], base['spikes']):+.1f}% | "
                 f"{relative_change(r['eflops'], base['eflops']):+.1f}% | "
                 f"{relative_change(r['synops'], base['synops']):+.1f}% |")
    L += ["", "## Table 3 (AUC of mean SNN accuracy vs normalised mean SynOps, original / smoothed)", "",
          "SynOps normalised by the largest mean over all models of this run (baseline included in every "
          "curve); curves extended flat to 0 and 1; smoothed = monotone upper envelope.", "",
          "| " + " | ".join(result["auc"]) + " |", "|" + "---:|" * len(result["auc"]),
          "| " + " | ".join(f"{o:.3f}/{s:.3f}" for o, s in result["auc"].values()) + " |", "",
          "![accuracy vs SynOps](activity-regularization.png)", "", "## Full sweep (mean ± sd over seeds)", "",
          "| regularizer | lambda | DNN acc (%) | SNN acc (%) | Spikes | EFLOPS | SynOps | %SynOps | epochs |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, models in result["sweeps"].items():
        for r in models:
            L.append(f"| {label} | {r['lambda']:.0e} | {_pm(r, 'dnn_accuracy')} | {_pm(r, 'snn_accuracy')} | "
                     f"{r['spikes']:,.0f} | {r['eflops']:,.0f} | {r['synops']:,.0f} | "
                     f"{relative_change(r['synops'], base['synops']):+.1f}% | {r['epochs_run']:.0f} |")
    acc = result["acceptance"]
    L += ["", "## Acceptance (issue 7)", "", f"L1 at the selected lambda: {acc['text']}", ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with one line on a bad option)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="docs/results")
    ap.add_argument("--arch", default="mlp", choices=("mlp", "lenet"))
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--patience", type=int, default=20, help="epochs after the best validation loss (paper: 20)")
    ap.add_argument("--val-size", type=int, default=287, help="held-out training images (digits: 20 %%)")
    ap.add_argument("--baseline-lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3],
                    help="learning rates tried for the unregularised model; the best validation loss wins")
    ap.add_argument("--batch-size", type=int, default=128, help="paper: 128")
    ap.add_argument("--timesteps", type=int, default=100)
    ap.add_argument("--acc-tol", type=float, default=0.5, help="Table 1 selection tolerance in pp (paper: 0.5)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--regs", nargs="+", default=[r[0] for r in REGS], help="subset of " + " ".join(GRIDS))
    ap.add_argument("--jobs", type=int, default=1, help="parallel training processes (one thread each)")
    a = ap.parse_args(argv)
    return run_cli(lambda: _run(a, argv))


def _run(a: argparse.Namespace, argv: list[str] | None) -> int:
    bad = [r for r in a.regs if r not in GRIDS]
    if bad:
        raise SpikeforgeError(f"--regs {' '.join(bad)}: unknown; choose from {' '.join(GRIDS)}")
    if a.timesteps < 1 or a.max_epochs < 1 or a.patience < 1 or a.jobs < 1:
        raise SpikeforgeError("--timesteps, --max-epochs, --patience and --jobs must be >= 1")
    from spikeforge.model.data import load_dataset

    ds = load_dataset(a.dataset, data_dir=a.data_dir, split_seed=0)
    t0 = time.time()
    common = {"dataset": a.dataset, "data_dir": a.data_dir, "arch": a.arch, "hidden": a.hidden,
              "max_epochs": a.max_epochs, "batch_size": a.batch_size, "timesteps": a.timesteps,
              "val_size": a.val_size, "patience": a.patience}

    def jobs(label: str, reg: str | None, p: float, lam: float, lr: float) -> list[dict]:
        return [{**common, "label": label, "reg": reg, "p": p, "lambda": lam, "lr": lr, "seed": s}
                for s in a.seeds]

    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        def run_models(specs: list[tuple]) -> list[dict]:
            batch = [j for spec in specs for j in jobs(*spec)]
            done = list(pool.map(run_one, batch))
            k = len(a.seeds)
            return [aggregate(done[i : i + k]) for i in range(0, len(done), k)]

        check_models = run_models([("baseline", None, 0.5, 0.0, lr) for lr in a.baseline_lrs])
        base = min(check_models, key=lambda r: r["val_loss"])
        best_test = max(check_models, key=lambda r: r["snn_accuracy"])
        gap = 100 * (best_test["snn_accuracy"] - base["snn_accuracy"])
        print(f"baseline lr {base['lr']:g}: DNN {base['dnn_accuracy']:.4f} SNN {base['snn_accuracy']:.4f} "
              f"SynOps {base['synops']:.0f}; best unregularised on test: lr {best_test['lr']:g} (+{gap:.2f} pp)")
        specs = [(label, reg, p, lam, base["lr"]) for label, reg, p in REGS if label in a.regs
                 for lam in GRIDS[label]]
        swept = run_models(specs)
    sweeps: dict[str, list[dict]] = {}
    for r in swept:
        sweeps.setdefault(r["label"], []).append(r)
    smax = max([base["synops"]] + [r["synops"] for r in swept])
    aucs = {label: auc([(r["synops"] / smax, r["snn_accuracy"]) for r in [base, *models]])
            for label, models in sweeps.items()}
    table = {label: select(models, base, a.acc_tol) for label, models in sweeps.items()}
    check = {"models": check_models, "selected_lr": base["lr"], "best_test_lr": best_test["lr"], "gap_pp": gap,
             "pass": gap <= 0.5,
             "text": f"The table's baseline is the learning rate with the best mean validation loss "
                     f"({base['lr']:g}). The best unregularised model on the test set (lr {best_test['lr']:g}) "
                     f"is {gap:.2f} pp above it in mean SNN accuracy (need <= 0.5 pp): "
                     f"{'PASS' if gap <= 0.5 else 'FAIL'}."}
    l1 = table.get("L1")
    if l1 is None:
        acc = {"pass": False, "text": "no L1 model within the tolerance (or L1 not run)"}
    else:
        gap_l1 = 100 * abs(l1["snn_accuracy"] - l1["dnn_accuracy"])
        red = -relative_change(l1["synops"], base["synops"])
        ok = gap_l1 <= 1.0 and red >= 50.0
        acc = {"pass": ok, "snn_dnn_gap_pp": gap_l1, "synops_reduction_pct": red, "lambda": l1["lambda"],
               "text": f"lambda {l1['lambda']:g}: |SNN − DNN| = {gap_l1:.2f} pp (need <= 1), SynOps "
                       f"−{red:.1f}% vs baseline (need >= 50%): {'PASS' if ok else 'FAIL'}"}
    words = argv if argv is not None else sys.argv[1:]
    cmd = "python -m spikeforge.scripts.reproduce_ar " + " ".join(shlex.quote(s) for s in words)
    result = {"command": cmd.strip(),
              "config": {**{k: v for k, v in common.items() if k != "data_dir"}, "lr": base["lr"],
                         "percentile": 99.9, "acc_tol_pp": a.acc_tol, "seeds": a.seeds,
                         "grids": {k: GRIDS[k] for k in sweeps}, "n_train": len(ds.y_train),
                         "n_test": len(ds.y_test)},
              "baseline": base, "baseline_check": check, "sweeps": sweeps, "table": table,
              "synops_max": smax, "auc": aucs, "acceptance": acc, "wall_s": time.time() - t0,
              "host": f"{platform.machine()}, {a.jobs} process(es) of 1 thread"}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(out, result)
    print(check["text"])
    print(acc["text"])
    write_results(out, "activity-regularization", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
