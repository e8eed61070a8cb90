"""Verilator simulation speed of the cocotb regression.

    python -m spikeforge.scripts.bench_verilator [--runs 5] [--model ARTIFACT] [--images 50]

Prints (and with --out writes as JSON):
- the simulated cycles per second of an 8x8 core (default CoreConfig) running random tile
  commands under cocotb, median of --runs simulator runs; the rate counts the cycles of the
  bench's own loop over its wall time inside the simulator (process start-up excluded, shown
  apart);
- with --model, the wall time of the whole-network check (`check_network`: --images test images
  through a 3x5 core, golden comparison included), build excluded (the build is cached and its
  time is printed on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np


def bench_array(rows: int, cols: int, runs: int, vectors: int, seed: int) -> dict:
    from spikeforge.hw.config import CoreConfig
    from spikeforge.sim import rtl

    cfg = CoreConfig(rows=rows, cols=cols)
    b = rtl.build(cfg, "verilator")
    case = rtl.random_case(cfg, np.random.default_rng(seed), vectors)
    rates, walls, cycles = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        report = rtl.check_tiles(cfg, [case], "verilator", seed=seed, waves_on_failure=False)
        walls.append(time.perf_counter() - start)
        if not report.ok:
            raise SystemExit(f"benchmark vectors failed: {report.mismatch.message()}")
        rates.append(report.cycles_per_second)
        cycles = report.sim_cycles
    return {"shape": f"{rows}x{cols}", "config_digest": cfg.digest(), "build_s": round(b.seconds, 2),
            "vectors": vectors, "cycles_per_run": cycles, "runs": runs,
            "cycles_per_s_median": round(statistics.median(rates), 1),
            "cycles_per_s_all": [round(r, 1) for r in rates],
            "run_wall_s_median": round(statistics.median(walls), 2)}


def bench_network(model: str, rows: int, cols: int, images: int) -> dict:
    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import load_artifact
    from spikeforge.quant.pipeline import core_for
    from spikeforge.sim import rtl

    net, manifest = load_artifact(model)
    cfg = core_for(net, rows, cols, int(manifest["weight_bits"]))
    ds = load_dataset(manifest["dataset"]["name"])
    x = np.asarray(ds.x_test[:images], dtype=np.float64)
    b = rtl.build(cfg, "verilator")
    start = time.perf_counter()
    report = rtl.check_network(cfg, net, x, "verilator", seed=0, waves_on_failure=False)
    wall = time.perf_counter() - start
    return {"shape": f"{rows}x{cols}", "images": report.images, "ok": report.ok, "build_s": round(b.seconds, 2),
            "wall_s": round(wall, 2), "sim_cycles": report.sim_cycles,
            "cycles_per_s": round(report.cycles_per_second, 1)}


def measure(runs: int = 5, vectors: int = 64, model: str | None = None, images: int = 50, seed: int = 0) -> dict:
    """The figures as a JSON-able dict: the 8x8 array's cycles/s and, with a model, the network check."""
    from spikeforge.toolchain import configure_environment, require

    configure_environment()
    require("verilator")
    result = {"cpu_count": os.cpu_count(), "load_average": list(os.getloadavg())}
    result["array"] = bench_array(8, 8, runs, vectors, seed)
    if model:
        result["network"] = bench_network(model, 3, 5, images)
    return result


def print_report(result: dict) -> None:
    a = result["array"]
    print(f"8x8 core, {a['vectors']} commands, {a['cycles_per_run']} cycles per run: "
          f"median {a['cycles_per_s_median']:,.0f} simulated cycles/s over {a['runs']} runs "
          f"(all: {a['cycles_per_s_all']}); median run wall {a['run_wall_s_median']} s incl. start-up")
    if "network" in result:
        n = result["network"]
        print(f"whole-network check, {n['images']} images on 3x5: {n['wall_s']} s wall "
              f"({n['sim_cycles']} cycles, {n['cycles_per_s']:,.0f} cycles/s), ok={n['ok']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vectors", type=int, default=64)
    parser.add_argument("--model", default=None, help="artifact for the whole-network timing")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    result = measure(args.runs, args.vectors, args.model, args.images, args.seed)
    print_report(result)
    if args.out:
        from spikeforge import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
