"""spikeforge train: every method through the one training loop (spikeforge.api.train)."""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type

HELP = "train an SNN (hoyer | fixed | heaviside | relu | bntt | convert) and write OUT/checkpoint.pt + metrics.json"

METHODS = ("hoyer", "fixed", "heaviside", "relu", "bntt", "convert")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, default="hoyer",
                        help="training method (default hoyer; fixed = the Hoyer authors' E = 1 ablation)")
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
                        help="default: the method's (40 for hoyer/fixed/heaviside/relu, 30 for bntt)")
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
    parser.add_argument("--weight-decay", type=arg_type("weight_decay"), default=None,
                        help="Adam weight decay (bntt 1e-4, else 0)")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default=None,
                        help="learning-rate schedule (default cosine; constant for convert)")
    parser.add_argument("--shift", type=int, default=None, metavar="PX",
                        help="augment with random shifts of up to PX pixels (default 1 on mnist5k, else 0)")
    parser.add_argument("--input-bits", type=int, default=None, metavar="K",
                        help="train and test on the K-bit pixel grid the hardware sees (quantize --input-bits K)")
    parser.add_argument("--val-size", type=int, default=0, metavar="N",
                        help="hold out N training images; keep the weights of the best validation epoch")
    parser.add_argument("--patience", type=int, default=None, metavar="E",
                        help="with --val-size: stop after E epochs without a better validation accuracy")
    parser.add_argument("--monitor", choices=("accuracy", "loss"), default="accuracy",
                        help="validation score that picks the best epoch (default accuracy)")
    parser.add_argument("--hoyer-regulariser", choices=("layer", "detached"), default="layer",
                        help="layer: HoyerBiAct's (v_th gets its gradient); detached: clamp at v_th.detach(), "
                        "the authors' CIFAR VGG16 file")
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
    parser.add_argument("--leak", type=arg_type("leak"), default=None, help="membrane leak of bntt (default 0.95)")
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
    from spikeforge.model.train import get_recipe
    from spikeforge.outputs import check_out

    check_out(args.out, "train", force=args.force, inputs=[args.compare_with, args.data_dir])
    other = None
    if args.compare_with:  # read before training: a bad file fails fast
        from spikeforge.model.checkpoint import load_checkpoint
        from spikeforge.model.nets import build_from_checkpoint

        if args.method not in ("hoyer", "fixed", "heaviside"):
            raise SpikeforgeError("--compare-with plots one-step spike potentials; use it with hoyer/fixed/heaviside")
        path = Path(args.compare_with) / "checkpoint.pt"
        if not path.is_file():
            raise SpikeforgeError(
                f"--compare-with: {path} not found; pass a folder written by spikeforge train"
            )
        other = build_from_checkpoint(load_checkpoint(path))
    result = train(
        args.method, args.dataset, args.arch, out=args.out, hidden=parse_widths(args.hidden), bn=not args.no_bn,
        epochs=args.epochs, lr=args.lr, lam=args.lam, batch_size=args.batch_size, seed=args.seed,
        split_seed=args.split_seed, threads=args.threads, data_dir=args.data_dir, timesteps=args.timesteps,
        reg=args.reg, p=args.p, weight_decay=args.weight_decay, schedule=args.schedule, shift=args.shift,
        input_bits=args.input_bits, val_size=args.val_size, patience=args.patience, monitor=args.monitor,
        hoyer_regulariser=args.hoyer_regulariser, leak=args.leak, force=args.force,
    )
    if other is not None:
        from spikeforge.model.data import load_dataset
        from spikeforge.model.plots import plot_membrane_histogram

        ds = load_dataset(args.dataset, args.data_dir, args.split_seed)
        plot_membrane_histogram(
            {other.method: other, args.method: result.model},
            ds.x_test,
            Path(args.out) / "membrane_compare.png",
        )
    line = get_recipe(args.method).summary(result.metrics, result.config)
    print(f"{args.method} {result.model.arch.get('name', args.arch)} on {args.dataset}: {line}  -> {result.checkpoint}")
    return 0
