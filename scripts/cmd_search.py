"""spikeforge search: hardware-aware co-design search on Optuna (spikeforge.search)."""

from __future__ import annotations

import argparse

from spikeforge.arguments import arg_type
from spikeforge.search_space import space_help

HELP = "search network and array together (Optuna, multi-objective), on one machine or many"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = space_help() + (
        "\n\nstorage: an SQLite file OUT/study.db unless --storage is given; with --storage postgresql://"
        "USER@HOST:PORT/DB\nany number of machines run the same command and share the study (docs/SEARCH.md)."
        "\nRerunning the same command continues the study until --trials trials are complete.")
    parser.add_argument("--dataset", default="digits", help="dataset (default digits)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="dataset files (mnist, cifar)")
    parser.add_argument("--arch", default="mlp", help="network family (default mlp)")
    parser.add_argument("--trials", type=int, default=20, metavar="N",
                        help="complete trials the study needs (default 20)")
    parser.add_argument("--objectives", default="accuracy,latency,luts", metavar="LIST",
                        help="comma-separated, from accuracy, latency, cycles, luts, energy (default "
                             "accuracy,latency,luts)")
    parser.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                        help="e.g. accuracy>=0.97 or lut4<=2000 (repeatable)")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=VALUES",
                        help="narrow one dimension, e.g. rows=4,8 or lam=1e-5:1e-3 (repeatable)")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="Optuna storage URL (default: sqlite file in --out); postgresql://... to share")
    parser.add_argument("--study", default=None, metavar="NAME", help="study name (default spikeforge-DATASET-ARCH)")
    parser.add_argument("--workers", type=int, default=1, metavar="K", help="local worker processes (default 1)")
    parser.add_argument("--sampler", choices=("tpe", "nsga2", "random"), default="tpe",
                        help="Optuna sampler (default tpe, multi-objective)")
    parser.add_argument("--epochs", type=arg_type("epochs"), default=None, metavar="N",
                        help="training epochs per trial")
    parser.add_argument("--qat-epochs", type=arg_type("qat_epochs"), default=0, metavar="N",
                        help="QAT epochs per trial (default 0)")
    parser.add_argument("--images", type=arg_type("images"), default=None, metavar="N",
                        help="test images each estimate uses (default all)")
    parser.add_argument("--seed", type=arg_type("seed"), default=0,
                        help="training seed of every trial and sampler seed")
    parser.add_argument("--verify-top", type=int, default=3, metavar="K",
                        help="Pareto points generated and RTL-verified afterwards (default 3; 0: none)")
    parser.add_argument("--samples", type=arg_type("samples"), default=20, metavar="N",
                        help="test images per verified point")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator", help="RTL simulator")
    parser.add_argument("--heartbeat", type=int, default=10, metavar="S", help="worker heartbeat in seconds")
    parser.add_argument("--grace", type=int, default=None, metavar="S",
                        help="seconds without a heartbeat before a trial is failed (default 3 x heartbeat)")
    parser.add_argument("--force", action="store_true", help="replace an --out that another command wrote")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (kept and continued)")


def run(args: argparse.Namespace) -> int:
    from spikeforge.search import SearchOptions, run_search

    opts = SearchOptions(
        out=args.out, dataset=args.dataset, arch=args.arch, trials=args.trials, objectives=args.objectives,
        constraints=tuple(args.constraint), space=tuple(args.space), storage=args.storage, study=args.study,
        workers=args.workers, sampler=args.sampler, epochs=args.epochs, qat_epochs=args.qat_epochs,
        images=args.images, seed=args.seed, data_dir=args.data_dir, verify_top=args.verify_top,
        samples=args.samples, sim=args.sim, heartbeat=args.heartbeat, grace=args.grace, force=args.force)
    result = run_search(opts, log=lambda text: print(text, flush=True))
    return 1 if any(c not in (0, None) for c in result["worker_exit_codes"]) else 0
