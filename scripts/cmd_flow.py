"""spikeforge flow: data -> trained SNN -> integer model -> Verilog -> RTL proof -> cost report.

Each stage writes its own folder under --out through a temp folder and a rename, and stamps it
with the content hash of its inputs (`stage.json`). A rerun skips every stage whose stamp
matches, so a finished flow reruns in seconds and an interrupted one resumes at the stage that
did not finish. Stages call the same code as the stand-alone commands.
"""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type
from spikeforge.input_width import parse_input_bits

HELP = ("run the whole flow (train, quantize, generate, verify, estimate, report) on one model, "
        "by default a digits MLP 64-128-10 on an 8x8 core")
DESCRIPTION = (HELP + ". Each stage writes its own folder under --out and is skipped on a rerun when its "
               "inputs did not change, so an interrupted flow resumes where it stopped. The exit status is 0 "
               "only when the RTL sample matches the golden model bit for bit and cycle for cycle.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits", help="dataset (default digits, embedded)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="folder of MNIST/CIFAR files")
    parser.add_argument("--arch", default="mlp", choices=("mlp", "lenet", "vgg"), help="network (default mlp)")
    parser.add_argument("--hidden", default=None, metavar="N[,N]", help="hidden widths of the MLP (default 128)")
    parser.add_argument("--method", default="hoyer", choices=("hoyer", "heaviside", "bntt", "convert"),
                        help="training method (default hoyer): one-time-step hoyer/heaviside, or a multi-step "
                             "SNN on the neuron unit: bntt, convert (L1-regularised ReLU net -> IF)")
    parser.add_argument("--epochs", type=arg_type("epochs"), default=None,
                        help="training epochs (default: the trainer's)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help="reuse this checkpoint, skip training")
    parser.add_argument("--nir", default=None, metavar="MODEL.nir",
                        help="bring your own SNN: a float NIR graph (snnTorch, Norse, ...) instead of training")
    parser.add_argument("--timesteps", type=arg_type("timesteps"), default=None, metavar="T",
                        help="NIR, bntt, convert: time steps per image (default: the graph's, else 1; "
                             "bntt 8, convert 32)")
    parser.add_argument("--dt", type=arg_type("dt"), default=None, metavar="S",
                        help="NIR: Euler time step in seconds (default: the graph's, else 1e-4 as snnTorch)")
    parser.add_argument("--input-range", default=None, metavar="LO,HI",
                        help="NIR: pixels in [0, 1] map to the graph's input range [LO, HI] (default 0,1)")
    parser.add_argument("--input-encoding", default=None, choices=("direct", "rate"),
                        help="NIR: how pixels enter the graph (default: the graph's, else direct)")
    parser.add_argument("--rows", type=int, default=8, help="PE array rows (default 8)")
    parser.add_argument("--cols", type=int, default=8, help="PE array columns (default 8)")
    parser.add_argument("--weight-bits", type=int, default=8, help="weight bits (default 8)")
    parser.add_argument("--input-bits", type=parse_input_bits, default=None, metavar="K|auto",
                        help="bits per input pixel that train and quantize use, 1..8 (default 8, or what "
                             "--checkpoint was trained at); auto: train and quantize at 8, 6, 5, 4, 3, 2 and keep "
                             "the smallest width within 0.3 pp of 8 bits on a validation split")
    parser.add_argument("--samples", type=arg_type("samples"), default=20,
                        help="test images verified in RTL (default 20)")
    parser.add_argument("--sim", default="verilator", choices=("verilator", "icarus"), help="RTL simulator")
    parser.add_argument("--target", default="ecp5", choices=("ecp5", "ice40", "asic"), help="area target")
    parser.add_argument("--synth", action="store_true",
                        help="area from Yosys + routed nextpnr (minutes) instead of the calibrated model")
    parser.add_argument("--seed", type=arg_type("seed"), default=0, help="seed of training and of the verified sample")
    parser.add_argument("--out", default="out/flow", metavar="DIR", help="output folder (default out/flow)")
    parser.add_argument("--force", action="store_true", help="ignore cached stages")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from spikeforge.api import flow
    from spikeforge.flow_stages import FlowOptions

    names = {f.name for f in dataclasses.fields(FlowOptions)}
    report = flow(**{k: v for k, v in vars(args).items() if k in names})
    return 0 if report["ok"] else 1
