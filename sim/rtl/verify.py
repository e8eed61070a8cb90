"""The verify stage as one function: random tile vectors and real images through the RTL.

`verify_rtl` runs constrained-random tile commands for the array shape and, with a model, test
images of the model's dataset through the generated Verilog under cocotb (Verilator or Icarus),
compares every output beat's values, spikes and cycle with the golden models, and writes
`verify.json`. `ok` is True only when every check is bit-exact and cycle-exact and every
predicted class equals the golden model's.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import atomic_write_text
from spikeforge.hw.config import CoreConfig
from spikeforge.sim.rtl.build import RtlError, build, build_root, require_simulator
from spikeforge.sim.rtl.checks import check_network, check_tiles
from spikeforge.sim.rtl.scoreboard import CheckReport
from spikeforge.sim.rtl.stimulus import TileCase, random_case

DEFAULT_SHAPE = 8
DEFAULT_VECTORS = 64
DEFAULT_SAMPLES = 20
IMAGE_CHUNK = 25  # images per simulator run (progress granularity; each run reloads the memories)


@dataclass
class VerifyResult:
    ok: bool
    config: CoreConfig
    checks: list[tuple[str, CheckReport]]
    payload: dict[str, Any]  # the content of verify.json
    path: Path | None  # where verify.json was written


def verify_rtl(
    *,
    model: str | os.PathLike | None = None,
    rows: int | None = None,
    cols: int | None = None,
    samples: int | None = None,
    vectors: int | None = None,
    sim: str = "verilator",
    seed: int = 0,
    stalls: bool = False,
    out: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> VerifyResult:
    """Prove the RTL of an R x C core (with `model`, the model's core) against the golden models."""
    if samples is not None and model is None:
        raise RtlError("--samples needs --model ARTIFACT (the images come from the model's dataset)")
    if samples is not None and samples < 1:
        raise RtlError(f"--samples {samples} must be >= 1")
    vectors = DEFAULT_VECTORS if vectors is None else vectors
    if vectors < 1:
        raise RtlError(f"--vectors {vectors} must be >= 1")
    require_simulator(sim)  # one-line ToolError with the fix when missing
    started = time.perf_counter()

    net = ds = None
    if model is not None:
        from spikeforge.model.data import load_dataset
        from spikeforge.quant.artifact import check_dataset, load_artifact
        from spikeforge.quant.pipeline import core_for

        net, manifest = load_artifact(model)
        core = manifest.get("core") or {}
        rows = rows if rows is not None else int(core.get("rows", DEFAULT_SHAPE))
        cols = cols if cols is not None else int(core.get("cols", DEFAULT_SHAPE))
        CoreConfig(rows=rows, cols=cols)  # refuse a bad shape with the config's own message
        cfg = core_for(net, rows, cols, int(manifest["weight_bits"]))
        ds = load_dataset(manifest["dataset"]["name"], data_dir)
        check_dataset(manifest, ds)  # images of the shape and classes the artifact states
    else:
        rows = rows if rows is not None else DEFAULT_SHAPE
        cols = cols if cols is not None else DEFAULT_SHAPE
        cfg = CoreConfig(rows=rows, cols=cols)

    checks: list[tuple[str, CheckReport]] = []
    rng = np.random.default_rng(seed)
    print(f"building {cfg.top_name} for {sim} (cached in {build_root()}) ...", flush=True)
    b = build(cfg, sim)

    if cfg.multistep:  # step-loop commands with random constants (sim/rtl/multistep_checks.py)
        from spikeforge.sim.rtl.multistep_checks import MultistepCase, check_multistep_tiles
        from spikeforge.sim.rtl.multistep_stimulus import random_multistep_case

        ms_case = MultistepCase(*random_multistep_case(cfg, rng, vectors))
        checks.append(("step-loop vectors", check_multistep_tiles(cfg, [ms_case], sim, seed=seed)))
        if stalls:
            ms_case.stall_seed = seed + 1
            checks.append(("step-loop vectors, stalls", check_multistep_tiles(cfg, [ms_case], sim, seed=seed)))
    else:
        case = random_case(cfg, rng, vectors)
        checks.append(("tile vectors", check_tiles(cfg, [case], sim, seed=seed)))
        if stalls:
            stalled = TileCase(case.weights, case.thresholds, case.commands, stall_seed=seed + 1)
            checks.append(("tile vectors, stalls", check_tiles(cfg, [stalled], sim, seed=seed)))

    if net is not None:
        count = min(samples or DEFAULT_SAMPLES, len(ds.x_test))
        images = np.asarray(ds.x_test[:count], dtype=np.float64)
        labels = np.asarray(ds.y_test[:count])
        for label, stall_seed in [("images", None)] + ([("images, stalls", seed + 2)] if stalls else []):
            checks.append((label, _run_images(cfg, net, images, sim, seed, stall_seed)))
        golden_pred, _ = net.forward(images, acc_bits=cfg.acc_bits)
        img_report = checks[-1 - int(stalls)][1]
        rtl_pred = [p["rtl"] for p in img_report.details["per_image"]]
        img_report.details["accuracy_rtl"] = float(np.mean(np.asarray(rtl_pred) == labels[: len(rtl_pred)]))
        img_report.details["functional_predictions_equal"] = rtl_pred == [int(p) for p in golden_pred[: len(rtl_pred)]]
        if not img_report.details["functional_predictions_equal"]:
            img_report.predictions_equal = False

    ok = all(r.ok for _, r in checks)
    payload = {
        "schema": "spikeforge-verify", "schema_version": 1, "ok": ok, "sim": sim, "seed": seed,
        "shape": f"{rows}x{cols}", "config": cfg.to_dict(), "config_digest": cfg.digest(),
        "model": str(model) if model else None, "build_dir": str(b.directory),
        # The build's own time, also when this run reused it (then build_cached is true).
        "build_seconds": round(b.seconds, 2), "build_cached": b.cached,
        "wall_s": round(time.perf_counter() - started, 2),
        "checks": [{"check": name, **r.to_dict()} for name, r in checks],
    }
    path = None
    if out is not None:
        path = Path(out) / "verify.json"
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    return VerifyResult(ok, cfg, checks, payload, path)


def _run_images(cfg: CoreConfig, net, images: np.ndarray, sim: str, seed: int, stall_seed: int | None) -> CheckReport:
    """All images in chunks (one simulator run each), merged into one report; stops at a mismatch."""
    from spikeforge.progress import Progress

    total = CheckReport(sim, f"{cfg.rows}x{cfg.cols}")
    total.details["per_image"] = []
    with Progress() as progress:
        task = progress.add_task(f"images on {sim}" + (" (stalls)" if stall_seed is not None else ""),
                                 total=len(images))
        for start in range(0, len(images), IMAGE_CHUNK):
            chunk = images[start: start + IMAGE_CHUNK]
            r = check_network(cfg, net, chunk, sim, seed=seed, stall_seed=stall_seed, first_image=start)
            total.images += r.images
            total.vectors += r.vectors
            total.sim_cycles += r.sim_cycles
            total.sim_seconds += r.sim_seconds
            total.build_seconds = max(total.build_seconds, r.build_seconds)  # every chunk uses one build
            total.bit_exact &= r.bit_exact
            total.cycle_exact &= r.cycle_exact
            total.predictions_equal &= r.predictions_equal
            total.details["per_image"] += r.details["per_image"]
            progress.advance(task, len(chunk))
            if r.mismatch is not None:
                total.mismatch = r.mismatch
                break
    return total
