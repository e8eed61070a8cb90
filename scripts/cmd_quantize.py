"""spikeforge quantize: a training checkpoint -> integer weights and thresholds (an artifact directory)."""

from __future__ import annotations

import argparse

HELP = "quantize a trained checkpoint to integer weights/thresholds and write an artifact directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="checkpoint.pt written by `spikeforge train`"
    )
    parser.add_argument(
        "--weight-bits", type=int, default=8, metavar="N", help="signed weight width: 2..8 or 16 (default 8)"
    )
    parser.add_argument(
        "--per-channel",
        action="store_true",
        help="one weight scale per output channel (the readout always uses one per layer)",
    )
    parser.add_argument(
        "--qat-epochs",
        type=int,
        default=0,
        metavar="N",
        help="quantization-aware fine-tuning epochs before folding (default 0)",
    )
    parser.add_argument(
        "--input-bits",
        type=int,
        default=8,
        metavar="K",
        help="unsigned first-layer input width, 1..8 (default 8)",
    )
    parser.add_argument(
        "--rows", type=int, default=8, help="PE array rows for the memory init files (default 8)"
    )
    parser.add_argument(
        "--cols", type=int, default=8, help="PE array columns for the memory init files (default 8)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="dataset files for mnist/fashion-mnist/cifar (digits/mnist5k are bundled)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="artifact directory to write (replaced atomically)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for fine-tuning (default 0)")


def run(args: argparse.Namespace) -> int:
    from spikeforge.api import quantize
    from spikeforge.quant.report import print_table

    result = quantize(
        args.checkpoint, args.out, weight_bits=args.weight_bits, per_channel=args.per_channel,
        qat_epochs=args.qat_epochs, input_bits=args.input_bits, rows=args.rows, cols=args.cols,
        data_dir=args.data_dir, seed=args.seed,
    )
    print_table(result.report)
    print(f"artifact written to {result.artifact}")
    return 0
