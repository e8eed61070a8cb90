"""spikeforge train: train a one-time-step SNN (hoyer, heaviside), a ReLU ANN, or dispatch to bntt/convert."""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type

HELP = "train an SNN (hoyer | heaviside | relu | bntt | convert) and write OUT/checkpoint.pt + metrics.json"

METHODS = ("hoyer", "heaviside", "relu", "bntt", "convert")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, default="hoyer", help="training method (default hoyer)")
    parser.add_argument(
        "--dataset",
        default="digits",
        help="digits | mnist5k | mnist | fashion-mnist | cifar10 | cifar100 (default digits)",
    )
    parser.add_argument(
        "--arch", choices=("mlp", "lenet", "vgg", "resnet"), default="mlp", help="default mlp"
    )
    parser.add_argument(
        "--hidden",
        default=None,
        metavar="W[,W...]",
        help="hidden widths of the fully connected part, e.g. 128 or 256,128 (default per arch)",
    )
    parser.add_argument(
        "--no-bn", action="store_true", help="leave out BatchNorm (it is folded into thresholds)"
    )
    parser.add_argument("--epochs", type=arg_type("epochs"), default=None,
                        help="default: the method's (40 for hoyer/heaviside/relu)")
    parser.add_argument(
        "--lambda",
        dest="lam",
        type=arg_type("lam"),
        default=None,
        metavar="X",
        help="regulariser weight (hoyer default: 1e-4 for mlp, 1e-6 for conv nets)",
    )
    parser.add_argument(
        "--lr", type=arg_type("lr"), default=None, help="Adam learning rate (default 3e-3 for mlp, 1e-3 for conv nets)"
    )
    parser.add_argument("--batch-size", type=arg_type("batch_size"), default=None, help="default 64")
    parser.add_argument("--seed", type=arg_type("seed"), default=0, help="training seed (default 0)")
    parser.add_argument("--split-seed", type=arg_type("split_seed"), default=0,
                        help="train/test split seed of digits/mnist5k")
    parser.add_argument(
        "--threads", type=arg_type("threads"), default=1, help="CPU threads (default 1; same count, same bits)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="dataset files for mnist/fashion-mnist/cifar (digits/mnist5k are bundled)",
    )
    parser.add_argument("--timesteps", type=arg_type("timesteps"), default=None, metavar="T",
                        help="time steps (bntt/convert)")
    parser.add_argument(
        "--reg",
        choices=("l1", "l2", "lp", "hoyer", "hoyer-square"),
        default=None,
        help="activity regulariser of the ReLU net (convert)",
    )
    parser.add_argument("--p", type=arg_type("p"), default=0.5, help="exponent of the lp regulariser (default 0.5)")
    parser.add_argument(
        "--compare-with",
        default=None,
        metavar="DIR",
        help="also plot this run's potentials against DIR/checkpoint.pt (membrane_compare.png)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier output of another spikeforge command in --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spikeforge import SpikeforgeError
    from spikeforge.api import train
    from spikeforge.arguments import parse_widths
    from spikeforge.outputs import check_out

    check_out(args.out, "train", force=args.force, inputs=[args.compare_with, args.data_dir])
    other = None
    if args.compare_with and args.method not in ("bntt", "convert"):
        from spikeforge.model.checkpoint import load_checkpoint
        from spikeforge.model.nets import build_from_checkpoint

        path = Path(args.compare_with) / "checkpoint.pt"
        if not path.is_file():
            raise SpikeforgeError(
                f"--compare-with: {path} not found; pass a folder written by spikeforge train"
            )
        other = build_from_checkpoint(load_checkpoint(path))  # before training: a bad file fails fast
    result = train(
        args.method, args.dataset, args.arch, out=args.out, hidden=parse_widths(args.hidden), bn=not args.no_bn,
        epochs=args.epochs, lr=args.lr, lam=args.lam, batch_size=args.batch_size, seed=args.seed,
        split_seed=args.split_seed, threads=args.threads, data_dir=args.data_dir, timesteps=args.timesteps,
        reg=args.reg, p=args.p, force=args.force,
    )
    if args.method in ("bntt", "convert"):
        return 0  # their trainers print their own summary line
    m = result.metrics
    if other is not None:
        from spikeforge.model.data import load_dataset
        from spikeforge.model.plots import plot_membrane_histogram

        ds = load_dataset(args.dataset, args.data_dir, args.split_seed)
        plot_membrane_histogram(
            {other.method: other, args.method: result.model},
            ds.x_test,
            Path(args.out) / "membrane_compare.png",
        )
    extra = ""
    if "test_accuracy_per_input_threshold" in m:
        extra = f" (per-input threshold {m['test_accuracy_per_input_threshold']:.4f})"
    rate_name = "activation density" if args.method == "relu" else "spike rate"
    print(
        f"{args.method} {result.model.arch['name']} on {args.dataset}: "
        f"test accuracy {m['test_accuracy']:.4f}{extra}  "
        f"mean {rate_name} {m['spike_rate_mean']:.3f}  synops/sample {m['synops']:.0f}  "
        f"train {m['train_time_s']:.1f} s  -> {args.out}/checkpoint.pt"
    )
    return 0
