"""Benchmark: spikeforge's core against its bounds and peers, every ratio measured in one run.

    python -m spikeforge.scripts.bench_peers [--model ARTIFACT] [--rows 8] [--cols 8] [--seed 0]

On one artifact and one R x C core (the exact cycle counts of sim/schedule.py over the test set,
the calibrated area/Fmax model and the energy model of sim/estimate/):
- cycles against the SynOps/PE bound: the mean useful synaptic ops (adds) per image divided by the
  PEs, i.e. the cycles of a core whose every PE did a useful add every cycle;
- energy against the same network as a dense int8 MAC DNN and as a zero-skipping int8 DNN (a MAC
  only per non-zero input), with the same per-operation energies (Horowitz, ISSCC 2014);
- latency against the published FPGA SNN accelerators of sim/estimate/anchors.py. These ran other
  datasets and platforms (MNIST on Xilinx parts mostly): the ratio is not like for like, and the
  report says so.
Without --model, the default digits Hoyer MLP is trained and quantized (seeded) in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any


def measure(model: str | Path | None = None, rows: int = 8, cols: int = 8, seed: int = 0) -> dict[str, Any]:
    """The ratios as a dict (JSON-ready)."""
    from spikeforge import api
    from spikeforge.sim.estimate.anchors import ANCHORS

    with tempfile.TemporaryDirectory(prefix="spikeforge-bench-peers-") as tmp:
        if model is None:
            trained = api.train(out=Path(tmp) / "train", seed=seed)
            model = api.quantize(trained.checkpoint, Path(tmp) / "artifact", rows=rows, cols=cols,
                                 seed=seed, progress=False).artifact
            source = f"default digits Hoyer MLP, trained with seed {seed}"
        else:
            source = str(model)
        rep = api.estimate(model, rows=rows, cols=cols)
    counts = rep["energy"]["counts_mean"]
    pes = rows * cols
    cycles = rep["latency"]["cycles"]["mean"]
    bound = counts["adds_useful"] / pes
    latency_us = rep["latency"]["latency_us"]["mean"]
    snn_nj = rep["energy"]["snn"]["total_pj"] / 1000
    dense_nj = rep["energy"]["dnn_int8"]["total_pj"] / 1000
    sparse_nj = rep["energy"]["dnn_int8_zero_skip"]["total_pj"] / 1000
    peers = [
        {"name": a["name"], "dataset": a["dataset"], "platform": a["platform"], "latency_us": a["latency_us"],
         "spikeforge_latency_ratio": latency_us / a["latency_us"], "source": a["source"]}
        for a in ANCHORS if a.get("latency_us")
    ]
    return {
        "model": source,
        "dataset": rep.get("model", {}).get("dataset"),
        "core": f"{rows}x{cols}",
        "fmax_mhz": rep["latency"]["fmax_mhz"],
        "cycles_mean": cycles,
        "synops_per_image": counts["adds_useful"],
        "synops_per_pe_bound": bound,
        "cycles_over_bound": cycles / max(bound, 1e-12),
        "latency_us": latency_us,
        "energy_nj": snn_nj,
        "dense_int8_dnn_nj": dense_nj,
        "zero_skip_int8_dnn_nj": sparse_nj,
        "energy_over_dense_dnn": snn_nj / dense_nj,
        "energy_over_zero_skip_dnn": snn_nj / sparse_nj,
        "peers": peers,
        "peers_note": "published figures on other datasets and platforms: not like for like",
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"{r['model']} ({r['dataset']}) on a {r['core']} core at {r['fmax_mhz']:.1f} MHz")
    print(f"cycles per image     {r['cycles_mean']:.1f}; SynOps/PE bound {r['synops_per_pe_bound']:.1f} "
          f"({r['synops_per_image']:.0f} SynOps): {r['cycles_over_bound']:.2f}x the bound")
    print(f"energy per image     {r['energy_nj']:.2f} nJ: {r['energy_over_dense_dnn']:.2f}x the dense int8 DNN "
          f"({r['dense_int8_dnn_nj']:.2f} nJ), {r['energy_over_zero_skip_dnn']:.2f}x the zero-skipping int8 DNN "
          f"({r['zero_skip_int8_dnn_nj']:.2f} nJ)")
    print(f"latency per image    {r['latency_us']:.2f} us; against published accelerators ({r['peers_note']}):")
    for p in r["peers"]:
        print(f"  {p['name']:<28} {p['latency_us']:>8.1f} us ({p['dataset']}; {p['platform']}): "
              f"spikeforge takes {p['spikeforge_latency_ratio']:.3f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, metavar="ARTIFACT")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = measure(args.model, args.rows, args.cols, args.seed)
    print(json.dumps(result, indent=2)) if args.json else print_report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
