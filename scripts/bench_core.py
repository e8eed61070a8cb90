"""Benchmark: core cycles against spike density, and the golden model's throughput.

    python -m spikeforge.scripts.bench_core [--vectors 200] [--rtl-check 3] [--seed 0]

Cycles come from the cycle-accurate model (sim/cycle.py), which the RTL matches exactly (tests/
test_core_amaranth.py; `--rtl-check N` re-checks N vectors per density in Amaranth's simulator
here). The layer is 256 inputs x 64 outputs on an 8x8 array: one tile. Figures are medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import Dense, IntegerNetwork
from spikeforge.sim.cycle import Command, encode_input, run_tile
from spikeforge.sim.schedule import scan_slots, tile_cycles, tile_timing

DENSITIES = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


def density_sweep(cfg: CoreConfig, fan_in: int, vectors: int, seed: int, rtl_check: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, cfg.weight_depth))
    thresholds = rng.integers(-100, 100, size=(cfg.cols, cfg.threshold_depth))
    for density in DENSITIES:
        actual, ideal = [], []
        samples = []
        for _ in range(vectors):
            spikes = (rng.random(fan_in) < density).astype(np.int64)
            n_words, beats = encode_input(spikes, 1, cfg.skip_window)
            beat_cycles, _ = tile_timing(cfg, scan_slots(beats, 1), 0)
            actual.append(beat_cycles[-1] + 1)
            ideal.append(int(spikes.sum()))
            samples.append((Command(n_words, 1, 0, 0), beats))
        checked = 0
        if rtl_check:
            from spikeforge.sim.rtl.amaranth_sim import simulate_commands

            subset = samples[:rtl_check]
            rtl = simulate_commands(cfg, weights, thresholds, subset)
            accept = 0
            for (cmd, beats), got in zip(subset, rtl, strict=True):
                want = run_tile(cfg, weights, thresholds, cmd, beats, accept)
                accept = want.next_accept
                assert [b.cycle for b in got.beats] == [b.cycle for b in want.beats], "RTL cycles != model"
                assert [b.values for b in got.beats] == [b.values for b in want.beats], "RTL values != model"
                checked += 1
        rows.append({
            "density": density,
            "cycles_median": statistics.median(actual),
            "cycles_mean": statistics.fmean(actual),
            "ideal_median": statistics.median(ideal),
            "overhead_cycles": tile_cycles(cfg, 0),
            "rtl_checked": checked,
        })
    dense = next(r for r in rows if r["density"] == 1.0)["cycles_median"]
    for row in rows:
        row["ratio_to_dense"] = row["cycles_median"] / dense
    return rows


def golden_throughput(seed: int, batch: int = 1024, repeats: int = 5) -> dict:
    """Inferences/s of the vectorised functional model on a 64-128-10 integer MLP."""
    rng = np.random.default_rng(seed)
    net = IntegerNetwork(
        [Dense(rng.integers(-127, 128, (128, 64)), rng.integers(0, 4000, 128), input_bits=8),
         Dense(rng.integers(-127, 128, (10, 128)), rng.integers(-50, 50, 10), spiking=False)],
        input_shape=(1, 8, 8), input_bits=8,
    )
    x = rng.random((batch, 1, 8, 8)).astype(np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.forward(x, acc_bits=24)
        times.append(time.perf_counter() - start)
    return {"batch": batch, "median_s": statistics.median(times), "inferences_per_s": batch / statistics.median(times)}


def measure(vectors: int = 200, rtl_check: int = 0, skip_window: int = 32, seed: int = 0) -> dict:
    """The figures as a JSON-able dict: the density sweep and the golden model's throughput."""
    cfg = CoreConfig(rows=8, cols=8, weight_bits=8, acc_bits=20, threshold_bits=20,
                     skip_window=skip_window, max_inputs=256, weight_depth=256, threshold_depth=8)
    return {"layer": "256 inputs x 64 outputs", "shape": "8x8", "skip_window": skip_window, "vectors": vectors,
            "seed": seed, "densities": density_sweep(cfg, 256, vectors, seed, rtl_check),
            "golden": golden_throughput(seed)}


def print_report(result: dict) -> None:
    rows, tp = result["densities"], result["golden"]
    print(f"256-input x 64-output layer on an 8x8 array, skip window {result['skip_window']}, "
          f"{result['vectors']} random vectors per density (seed {result['seed']}); medians")
    print(f"{'density':>8} {'ideal':>7} {'actual':>7} {'actual/ideal':>12} {'vs dense':>9}")
    for row in rows:
        ratio = row["cycles_median"] / row["ideal_median"] if row["ideal_median"] else float("inf")
        print(f"{row['density']:>8.2f} {row['ideal_median']:>7.0f} {row['cycles_median']:>7.0f} "
              f"{ratio:>12.2f} {row['ratio_to_dense']:>9.3f}")
    print(f"fixed overhead per tile (accept, load, flush, drain): {rows[0]['overhead_cycles']} cycles")
    print(f"golden functional model: {tp['inferences_per_s']:,.0f} inferences/s "
          f"(64-128-10 MLP, batch {tp['batch']}, median of 5)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=200)
    parser.add_argument("--rtl-check", type=int, default=0, help="vectors per density re-run in Amaranth sim")
    parser.add_argument("--skip-window", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    result = measure(args.vectors, args.rtl_check, args.skip_window, args.seed)
    print_report(result)
    if args.json:
        from pathlib import Path

        from spikeforge import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
