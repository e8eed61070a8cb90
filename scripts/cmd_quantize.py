"""spikeforge quantize: a training checkpoint or a NIR graph -> integer weights and thresholds (an artifact)."""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type

HELP = "quantize a trained checkpoint or a NIR graph to integer weights/thresholds and write an artifact directory"

# Options that only a NIR graph takes (a checkpoint records them itself).
NIR_ONLY = ("dataset", "timesteps", "dt", "input_range", "input_encoding")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="MODEL",
        help="checkpoint.pt written by `spikeforge train`, or a float NIR graph (.nir) from snnTorch, Norse, ...",
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
        type=arg_type("qat_epochs"),
        default=0,
        metavar="N",
        help="quantization-aware fine-tuning epochs before folding (default 0; checkpoints only)",
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
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier output of another spikeforge command in --out")
    parser.add_argument("--seed", type=arg_type("seed"), default=0, help="seed for fine-tuning (default 0)")
    nir = parser.add_argument_group("NIR graphs (what the graph does not say; docs/INTEROP.md)")
    nir.add_argument("--dataset", default=None, help="the images the graph classifies (default digits)")
    nir.add_argument("--timesteps", type=arg_type("timesteps"), default=None, metavar="T",
                     help="time steps per image (default: the graph's, else 1; the one-step core runs T = 1)")
    nir.add_argument("--dt", type=arg_type("dt"), default=None, metavar="S",
                     help="Euler time step in seconds (default: the graph's metadata, else 1e-4 as snnTorch; "
                          "Norse uses 1e-3)")
    nir.add_argument("--input-range", default=None, metavar="LO,HI",
                     help="the input the graph was trained on: pixels in [0, 1] map to [LO, HI] "
                          "(default: the graph's, else 0,1)")
    nir.add_argument("--input-encoding", default=None, choices=("direct", "rate"),
                     help="how pixels enter the graph: direct currents at every step (default), or rate-coded spikes")


def run(args: argparse.Namespace) -> int:
    from spikeforge.api import quantize, quantize_nir
    from spikeforge.quant.fold import QuantError
    from spikeforge.quant.nir_import import parse_range
    from spikeforge.quant.nir_pipeline import is_nir_file
    from spikeforge.quant.report import print_table

    common = dict(force=args.force, weight_bits=args.weight_bits, per_channel=args.per_channel,
                  input_bits=args.input_bits, rows=args.rows, cols=args.cols, data_dir=args.data_dir)
    if is_nir_file(args.checkpoint):
        if args.qat_epochs:
            raise QuantError("--qat-epochs needs the training model; a NIR graph is quantized after training "
                             "(fine-tune in your framework, then export again)")
        result = quantize_nir(
            args.checkpoint, args.out, dataset=args.dataset or "digits", timesteps=args.timesteps, dt=args.dt,
            input_range=parse_range(args.input_range), input_encoding=args.input_encoding, **common,
        )
    else:
        given = [f"--{name.replace('_', '-')}" for name in NIR_ONLY if getattr(args, name) is not None]
        if given:
            raise QuantError(f"{given[0]} applies to NIR graphs only; a checkpoint records its own")
        result = quantize(args.checkpoint, args.out, qat_epochs=args.qat_epochs, seed=args.seed, **common)
    print_table(result.report)
    print(f"artifact written to {result.artifact}")
    return 0
