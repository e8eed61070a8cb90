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


def core_for(net, rows: int, cols: int, weight_bits: int):
    """The CoreConfig of the requested array for this network (sim.layout.config_for_network)."""
    from spikeforge.sim.layout import config_for_network

    return config_for_network(net, rows, cols, weight_bits=max(weight_bits, net.required_weight_bits()))


def run(args: argparse.Namespace) -> int:
    import copy
    import hashlib
    import sys
    from pathlib import Path

    from spikeforge import __version__
    from spikeforge.quant import quantize as q
    from spikeforge.quant.artifact import write_artifact
    from spikeforge.quant.nir_io import write_nir
    from spikeforge.quant.report import build_report, print_table, to_json, to_markdown

    q.check_bits(args.weight_bits, args.input_bits)
    if args.qat_epochs < 0:
        raise q.QuantError(f"--qat-epochs {args.qat_epochs} is negative; use 0 (no fine-tuning) or more")
    from spikeforge.hw.config import CoreConfig

    CoreConfig(rows=args.rows, cols=args.cols)  # refuse bad --rows/--cols before any work

    ckpt = q.load_checkpoint(args.checkpoint)
    q.check_method(ckpt["method"])
    sha = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()
    model = q.build_model(ckpt)
    iq = getattr(model, "input_quant", {"low": 0.0, "high": 1.0})
    if (iq.get("low"), iq.get("high")) != (0.0, 1.0):
        raise q.QuantError(f"model.input_quant range {iq} is not [0, 1]; retrain with pixels in [0, 1]")

    from spikeforge.model.data import load_dataset

    dsinfo = ckpt["dataset"]
    ds = load_dataset(dsinfo["name"], args.data_dir or ckpt.get("data_dir"), int(dsinfo.get("split_seed", 0)))
    tty = sys.stdout.isatty()
    folded = model
    if args.qat_epochs > 0:
        lam = float(ckpt.get("lambda") or 0.0) if ckpt["method"] == "hoyer" else 0.0
        folded = q.qat_finetune(
            copy.deepcopy(model),
            ds.x_train,
            ds.y_train,
            args.weight_bits,
            args.per_channel,
            args.qat_epochs,
            seed=args.seed,
            lam=lam,
            progress=tty,
        )
    qres = q.quantize_module(folded, dsinfo, args.weight_bits, args.per_channel, args.input_bits)
    qres.network.meta["dataset"] = dsinfo["name"]
    report = build_report(
        folded, qres, ds.x_test, ds.y_test, reference=model if folded is not model else None
    )

    net = qres.network
    extra = {
        "per_channel": bool(args.per_channel),
        "provenance": {
            "checkpoint": str(Path(args.checkpoint).resolve()),
            "checkpoint_sha256": sha,
            "method": ckpt["method"],
            "arch": ckpt["arch"],
            "qat_epochs": args.qat_epochs,
            "seed": args.seed,
            "float_accuracy": report["float_accuracy"],
            "integer_accuracy": report["integer_accuracy"],
            "agreement": report["agreement"],
            "created_by": f"spikeforge {__version__}",
        },
        "folding": [f.to_dict() for f in qres.folds],
        "nir_file": "network.nir",
    }
    scales = [f.scale for f in qres.folds]
    out = write_artifact(
        args.out,
        net,
        args.weight_bits,
        extra,
        core=core_for(net, args.rows, args.cols, args.weight_bits),
        files={"report.json": to_json(report), "report.md": to_markdown(report)},
        writers=[lambda tmp: write_nir(net, tmp / "network.nir", scales)],
    )
    print_table(report)
    print(f"artifact written to {out}")
    return 0
