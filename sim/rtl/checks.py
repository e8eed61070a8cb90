"""Checks of the RTL against the golden models: tile vectors, whole networks, single blocks.

`check_tiles` and `check_network` run commands or whole images on the RTL (cocotb on Verilator
or Icarus), compare every beat (values, spikes, row, last) and the cycle at which it left the
core with the golden models (`NetworkDriver.golden_backend`), fail on any stream-rule violation
the bench's monitors saw (sim/rtl/streams.py), and on a mismatch rerun that case
with waveforms on and report layer, tile, output index, expected vs got, cycle, seed and the
waveform's path.

Cycle numbering: see sim/rtl/benches/sf_bench.py (cycle 0 of a call = the cycle its first
command is presented to an idle core; right after reset that is the first cycle with `rst` low).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import IntegerNetwork
from spikeforge.sim.driver import NetworkDriver, golden_run
from spikeforge.sim.rtl.build import RtlError, build, waves_path
from spikeforge.sim.rtl.runner import run_job
from spikeforge.sim.rtl.scoreboard import CheckReport, Mismatch, compare_outcomes, outcome_from_json, protocol_mismatch
from spikeforge.sim.rtl.stimulus import TileCase, case_json


def rerun_with_waves(cfg: CoreConfig, sim: str, kind: str, testcase: str, job: dict, files: dict | None,
                      network: IntegerNetwork | None = None) -> str | None:
    """Rerun one failing job on a waveform build; the waveform's path, or None if that fails too."""
    try:
        b = build(cfg, sim, kind, waves=True, network=network)
        _, run_dir = run_job(b, "tb_core", testcase, job, files, keep=True)
    except RtlError:
        return None
    path = waves_path(run_dir)
    return str(path) if path.is_file() else None


def check_tiles(cfg: CoreConfig, cases: Sequence[TileCase], sim: str = "verilator", seed: int | None = None,
                waves_on_failure: bool = True) -> CheckReport:
    """Run the cases in one simulation; compare with the golden model (cycles only unstalled)."""
    report = CheckReport(sim, f"{cfg.rows}x{cfg.cols}")
    b = build(cfg, sim)
    report.build_seconds = b.seconds
    job = {"config": cfg.to_dict(), "cases": [case_json(c) for c in cases]}
    result, _ = run_job(b, "tb_core", "tiles", job)
    report.sim_cycles = int(result["cycles_simulated"])
    report.sim_seconds = float(result["wall_s"])
    for index, (case, raw) in enumerate(zip(cases, result["cases"], strict=True)):
        got = [outcome_from_json(o) for o in raw["outcomes"]]
        want = golden_run(cfg, case.weights, case.thresholds, case.commands)
        report.vectors += len(case.commands)
        timed = case.stall_seed is None
        # Bits first (ignoring time), then the stream rules, then time: the report says which failed.
        bad = compare_outcomes(cfg, want, got, cycles=False, seed=seed,
                               label=lambda n, r, c, i=index: (f"case {i}, tile (command {n})", r * cfg.cols + c))
        if bad is not None:
            report.bit_exact = False
        else:
            bad = protocol_mismatch(raw.get("protocol", []), f"case {index}", seed)
            if bad is not None:
                report.protocol_clean = False
        if bad is None and timed:
            bad = compare_outcomes(cfg, want, got, cycles=True, seed=seed,
                                   label=lambda n, r, c, i=index: (f"case {i}, tile (command {n})", r * cfg.cols + c))
            if bad is not None:
                report.cycle_exact = False
        if bad is not None:
            if waves_on_failure:
                one = {"config": cfg.to_dict(), "cases": [case_json(case)]}
                bad.waves = rerun_with_waves(cfg, sim, "core", "tiles", one, None)
            report.mismatch = bad
            break
    return report


# ---------------------------------------------------------------------------------------------
# whole networks


def _layer_label(driver: NetworkDriver, image: int, layer: int):
    tiles = driver.layout.tiles_of(layer)
    cfg = driver.cfg

    def label(n: int, row: int, col: int) -> tuple[str, int | None]:
        pos, t = divmod(n, len(tiles))
        placement = tiles[t]
        slot = row * cfg.cols + col
        where = f"image {image}, layer {layer}, tile {t}"
        if driver.net.layers[layer].kind == "conv":
            where += f" at position {pos}"
        where += f" (command {n})"
        return where, placement.first_output + slot if slot < placement.outputs else None

    return label


def golden_network(driver: NetworkDriver, image: np.ndarray):
    return driver.run_image(image, driver.golden_backend)


def check_network(cfg: CoreConfig, net: IntegerNetwork, images: np.ndarray, sim: str = "verilator",
                  seed: int | None = None, stall_seed: int | None = None, baked: bool = False,
                  waves_on_failure: bool = True, first_image: int = 0) -> CheckReport:
    """Every image through the RTL, layer by layer (the RTL's own outputs feed the next layer);
    every command's beats and cycles, every layer's output and cycle count and the predicted
    class compared with the golden backend. Images are numbered from `first_image` in reports.
    `baked` uses Verilog with the weights in the memory
    init (generate's path) instead of loading them through the load port."""
    driver = NetworkDriver(net, cfg)
    report = CheckReport(sim, f"{cfg.rows}x{cfg.cols}")
    b = build(cfg, sim, network=net if baked else None)
    report.build_seconds = b.seconds
    images = np.asarray(images, dtype=np.float64)
    job = {"config": cfg.to_dict(), "stall_seed": stall_seed, "load": not baked}
    result, _ = run_job(b, "tb_core", "network", job, {"network": net, "images": images})
    report.sim_cycles = int(result["cycles_simulated"])
    report.sim_seconds = float(result["wall_s"])
    timed = stall_seed is None
    predictions = []
    for i, (image, raw) in enumerate(zip(images, result["images"], strict=True)):
        report.images += 1
        want = golden_network(driver, image)
        bad = _compare_image(driver, first_image + i, want, raw, timed, seed, report)
        predictions.append({"golden": want.prediction, "rtl": int(raw["prediction"]), "golden_cycles": want.cycles,
                            "rtl_cycles": sum(int(v["cycles"]) for v in raw["layers"] if v["kind"] != "pool")})
        if bad is not None:
            if waves_on_failure:
                one = {"config": cfg.to_dict(), "stall_seed": stall_seed, "load": not baked}
                files = {"network": net, "images": images[i: i + 1]}
                try:
                    wb = build(cfg, sim, waves=True, network=net if baked else None)
                    _, run_dir = run_job(wb, "tb_core", "network", one, files, keep=True)
                    path = waves_path(run_dir)
                    bad.waves = str(path) if path.is_file() else None
                except RtlError:
                    bad.waves = None
            report.mismatch = bad
            break
    report.details["per_image"] = predictions
    return report


def _compare_image(driver: NetworkDriver, i: int, want, raw: dict, timed: bool, seed: int | None,
                   report: CheckReport) -> Mismatch | None:
    cfg = driver.cfg
    for trace, got_layer in zip(want.layers, raw["layers"], strict=True):
        index = trace.layer
        if trace.kind == "pool":
            continue
        got = [outcome_from_json(o) for o in got_layer["outcomes"]]
        label = _layer_label(driver, i, index)
        report.vectors += len(got)
        bad = compare_outcomes(cfg, trace.outcomes, got, cycles=False, seed=seed, label=label)
        if bad is not None:
            report.bit_exact = False
            return bad
        bad = protocol_mismatch(got_layer.get("protocol", []), f"image {i}, layer {index}", seed)
        if bad is not None:
            report.protocol_clean = False
            return bad
        out = np.asarray(got_layer["output"]).astype(np.int64).reshape(-1)
        ref = np.asarray(trace.output).astype(np.int64).reshape(-1)
        if not np.array_equal(out, ref):
            j = int(np.flatnonzero(out != ref)[0])
            report.bit_exact = False
            return Mismatch("assembled output", f"image {i}, layer {index}, output {j}", int(ref[j]), int(out[j]),
                            None, seed)
        if timed:
            bad = compare_outcomes(cfg, trace.outcomes, got, cycles=True, seed=seed, label=label)
            if bad is None and int(got_layer["cycles"]) != trace.cycles:
                bad = Mismatch("layer cycles", f"image {i}, layer {index}", trace.cycles, int(got_layer["cycles"]),
                               None, seed)
            if bad is not None:
                report.cycle_exact = False
                return bad
    if int(raw["prediction"]) != want.prediction:
        report.predictions_equal = False
        return Mismatch("predicted class", f"image {i}", want.prediction, int(raw["prediction"]), None, seed)
    return None


# ---------------------------------------------------------------------------------------------
# single blocks


def run_vectors(cfg: CoreConfig, kind: str, inputs: Sequence[str], outputs: Sequence[str],
                vectors: Sequence[Sequence[int]], sim: str = "verilator",
                waves: bool = False) -> tuple[np.ndarray, Path | None]:
    """Play per-cycle input values into block `kind` and return its outputs per cycle (unsigned
    ints, object array [cycles, outputs]); with waves, also the waveform's path."""
    b = build(cfg, sim, kind, waves=waves)
    masks_ok = all(int(v) >= 0 for row in vectors for v in row)
    if not masks_ok:
        raise RtlError("run_vectors takes unsigned port values; mask signed values to the port width")
    job = {"inputs": list(inputs), "outputs": list(outputs), "vectors": [[int(v) for v in row] for row in vectors]}
    result, run_dir = run_job(b, "tb_blocks", "vectors", job, keep=waves)
    samples = np.array(result["samples"], dtype=object).reshape(len(vectors), len(outputs))
    return samples, (waves_path(run_dir) if waves else None)


def run_scanner(cfg: CoreConfig, commands: Sequence[tuple[int, int, list[int], int]], stall_seed: int | None = None,
                sim: str = "verilator", waves: bool = False) -> tuple[list[list[list[int]]], Path | None]:
    """(n_words, n_planes, beats, gap) commands through the scanner block; per command, the
    per-cycle records [cycle - c0, op, index, done, beat taken] (see sim/rtl/benches/tb_blocks.py)."""
    b = build(cfg, sim, "scanner", waves=waves)
    job = {"commands": [[int(w), int(p), [int(x) for x in beats], int(g)] for w, p, beats, g in commands],
           "stall_seed": stall_seed}
    result, run_dir = run_job(b, "tb_blocks", "scanner", job, keep=waves)
    return result["commands"], (waves_path(run_dir) if waves else None)
