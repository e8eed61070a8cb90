"""spikeforge verify: prove the generated RTL bit- and cycle-exact against the golden models.

Random tile vectors for the array shape and, with --model, N test images of the model's dataset
run through the generated Verilog under cocotb (Verilator or Icarus). Every output beat's
values, spikes and cycle are compared with the golden models; the exit status is 0 only when
every check is bit-exact and cycle-exact (and every predicted class equals the golden model's).
"""

from __future__ import annotations

import argparse

HELP = "simulate the generated RTL (cocotb) and check it bit- and cycle-exact against the golden model"

DEFAULT_SHAPE = 8
DEFAULT_VECTORS = 64
IMAGE_CHUNK = 25  # images per simulator run (progress granularity; each run reloads the memories)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=None, metavar="R",
                        help="PE array rows (default: the model artifact's core, else 8)")
    parser.add_argument("--cols", type=int, default=None, metavar="C",
                        help="PE array columns (default: the model artifact's core, else 8)")
    parser.add_argument("--model", metavar="ARTIFACT", default=None, help="artifact directory to run")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="test images of the model's dataset to simulate (default 20; needs --model)")
    parser.add_argument("--vectors", type=int, default=DEFAULT_VECTORS, metavar="V",
                        help=f"random tile commands (default {DEFAULT_VECTORS})")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default verilator)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="stimulus seed (default 0)")
    parser.add_argument("--stalls", action="store_true",
                        help="also rerun everything with random stalls on every stream (results only)")
    parser.add_argument("--out", metavar="DIR", default=None, help="where to write the report (default out/verify)")


def _check_args(args: argparse.Namespace) -> None:
    from spikeforge.sim.rtl_cocotb import RtlError

    if args.samples is not None and args.model is None:
        raise RtlError("--samples needs --model ARTIFACT (the images come from the model's dataset)")
    if args.samples is not None and args.samples < 1:
        raise RtlError(f"--samples {args.samples} must be >= 1")
    if args.vectors < 1:
        raise RtlError(f"--vectors {args.vectors} must be >= 1")


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys
    import tempfile
    import time
    from pathlib import Path

    import numpy as np

    from spikeforge.hw.config import CoreConfig
    from spikeforge.sim import rtl_cocotb

    _check_args(args)
    rtl_cocotb.require_simulator(args.sim)  # one-line ToolError with the fix when missing
    started = time.perf_counter()

    net = manifest = ds = None
    if args.model is not None:
        from spikeforge.model.data import load_dataset
        from spikeforge.quant.artifact import load_artifact
        from spikeforge.scripts.cmd_quantize import core_for

        net, manifest = load_artifact(args.model)
        core = manifest.get("core") or {}
        rows = args.rows if args.rows is not None else int(core.get("rows", DEFAULT_SHAPE))
        cols = args.cols if args.cols is not None else int(core.get("cols", DEFAULT_SHAPE))
        CoreConfig(rows=rows, cols=cols)  # refuse a bad shape with the config's own message
        cfg = core_for(net, rows, cols, int(manifest["weight_bits"]))
        ds = load_dataset(manifest["dataset"]["name"])
    else:
        rows = args.rows if args.rows is not None else DEFAULT_SHAPE
        cols = args.cols if args.cols is not None else DEFAULT_SHAPE
        cfg = CoreConfig(rows=rows, cols=cols)

    tty = sys.stdout.isatty()
    reports: list[tuple[str, rtl_cocotb.CheckReport]] = []
    rng = np.random.default_rng(args.seed)
    print(f"building {cfg.top_name} for {args.sim} (cached in {rtl_cocotb.build_root()}) ...", flush=True)
    build = rtl_cocotb.build(cfg, args.sim)

    case = rtl_cocotb.random_case(cfg, rng, args.vectors)
    reports.append(("tile vectors", rtl_cocotb.check_tiles(cfg, [case], args.sim, seed=args.seed)))
    if args.stalls:
        stalled = rtl_cocotb.TileCase(case.weights, case.thresholds, case.commands, stall_seed=args.seed + 1)
        reports.append(("tile vectors, stalls", rtl_cocotb.check_tiles(cfg, [stalled], args.sim, seed=args.seed)))

    if net is not None:
        count = min(args.samples or 20, len(ds.x_test))
        images = np.asarray(ds.x_test[:count], dtype=np.float64)
        labels = np.asarray(ds.y_test[:count])
        for label, stall_seed in [("images", None)] + ([("images, stalls", args.seed + 2)] if args.stalls else []):
            reports.append((label, _run_images(cfg, net, images, args.sim, args.seed, stall_seed, tty)))
        golden_pred, _ = net.forward(images, acc_bits=cfg.acc_bits)
        img_report = reports[-1 - int(args.stalls)][1]
        rtl_pred = [p["rtl"] for p in img_report.details["per_image"]]
        img_report.details["accuracy_rtl"] = float(np.mean(np.asarray(rtl_pred) == labels[: len(rtl_pred)]))
        img_report.details["functional_predictions_equal"] = rtl_pred == [int(p) for p in golden_pred[: len(rtl_pred)]]
        if not img_report.details["functional_predictions_equal"]:
            img_report.predictions_equal = False

    ok = all(r.ok for _, r in reports)
    out_dir = Path(args.out) if args.out else Path("out") / "verify"
    payload = {
        "schema": "spikeforge-verify", "schema_version": 1, "ok": ok, "sim": args.sim, "seed": args.seed,
        "shape": f"{rows}x{cols}", "config": cfg.to_dict(), "config_digest": cfg.digest(),
        "model": str(args.model) if args.model else None, "build_dir": str(build.directory),
        "wall_s": round(time.perf_counter() - started, 2),
        "checks": [{"check": name, **r.to_dict()} for name, r in reports],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".verify.", suffix=".json.tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(tmp, out_dir / "verify.json")

    _print_table(reports, args.sim, cfg)
    for name, r in reports:
        if r.mismatch is not None:
            print(f"MISMATCH ({name}): {r.mismatch.message()}", file=sys.stderr)
    print(f"report: {out_dir / 'verify.json'}")
    return 0 if ok else 1


def _run_images(cfg, net, images, sim: str, seed: int, stall_seed, tty: bool):
    """All images in chunks (one simulator run each), merged into one report; stops at a mismatch."""
    from rich.progress import Progress

    from spikeforge.sim import rtl_cocotb

    total = rtl_cocotb.CheckReport(sim, f"{cfg.rows}x{cfg.cols}")
    total.details["per_image"] = []
    with Progress(disable=not tty, transient=True) as progress:
        task = progress.add_task(f"images on {sim}" + (" (stalls)" if stall_seed is not None else ""),
                                 total=len(images))
        for start in range(0, len(images), IMAGE_CHUNK):
            chunk = images[start: start + IMAGE_CHUNK]
            r = rtl_cocotb.check_network(cfg, net, chunk, sim, seed=seed, stall_seed=stall_seed, first_image=start)
            total.images += r.images
            total.vectors += r.vectors
            total.sim_cycles += r.sim_cycles
            total.sim_seconds += r.sim_seconds
            total.build_seconds += r.build_seconds
            total.bit_exact &= r.bit_exact
            total.cycle_exact &= r.cycle_exact
            total.predictions_equal &= r.predictions_equal
            total.details["per_image"] += r.details["per_image"]
            progress.advance(task, len(chunk))
            if r.mismatch is not None:
                total.mismatch = r.mismatch
                break
    return total


def _print_table(reports, sim: str, cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    def mark(flag: bool) -> str:
        return "[green]yes[/green]" if flag else "[red]NO[/red]"

    table = Table(title=f"spikeforge verify ({sim}, {cfg.top_name}, digest {cfg.digest()})")
    for col in ("check", "shape", "vectors", "images", "bit-exact", "cycle-exact", "classes equal", "sim cycles/s"):
        table.add_column(col, justify="left" if col == "check" else "right")
    for name, r in reports:
        stalled = "stalls" in name
        table.add_row(
            name, r.shape, str(r.vectors), str(r.images) if r.images else "-", mark(r.bit_exact),
            "n/a (stalls)" if stalled and r.mismatch is None else mark(r.cycle_exact),
            (mark(r.predictions_equal) if r.images else "-"), f"{r.cycles_per_second:,.0f}",
        )
    Console().print(table)
