"""Run the generated RTL under cocotb (Verilator or Icarus) and check it against the golden model.

Three layers, used by the pytest regression (tests/test_cocotb_*.py) and by `spikeforge verify`:

1. `build(cfg, sim, kind)`: Verilog from hw/ (the core, or one block), compiled once per
   (config digest, simulator, fault, block, waves) into `build/cocotb/<sim>/<digest>[-kind][-waves]/`
   under the repository (or under $SPIKEFORGE_BUILD_DIR). A stamp records a hash of the hw/
   sources and amaranth's version, so editing the RTL rebuilds; a file lock makes parallel
   pytest workers build each design once.
2. `run_job(build, module, testcase, job)`: one simulator process running one cocotb test from
   tests/cocotb/ on a JSON job; the bench writes a JSON result the host reads back.
3. `check_tiles` / `check_network`: run commands or whole images on the RTL, compare every beat
   (values, spikes, row, last) and the cycle at which it left the core with the golden models
   (`sim.cycle.run_tile`, `NetworkDriver.golden_backend`), and on a mismatch rerun that case with
   waveforms on and report layer, tile, output index, expected vs got, cycle, seed and the
   waveform's path.

Cycle numbering: see tests/cocotb/sf_bench.py (cycle 0 of a call = the cycle its first command
is presented to an idle core; right after reset that is the first cycle with `rst` low).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError
from spikeforge.hw.config import CoreConfig
from spikeforge.hw.generate import LINT_WAIVERS
from spikeforge.sim.cycle import Command, OutputBeat, encode_input, run_tile
from spikeforge.sim.driver import NetworkDriver, TileOutcome
from spikeforge.sim.network import IntegerNetwork

SIMULATORS = ("verilator", "icarus")
BUILD_RECIPE = 2  # bump when the way a design is built changes (flags, source transformations)
BLOCKS = ("core", "pe", "scanner", "threshold")
BUILD_ENV = "SPIKEFORGE_BUILD_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "tests" / "cocotb"
HW_DIR = REPO_ROOT / "hw"
TIMESCALE = ("1ns", "1ps")
# The hw/ modules the generated Verilog depends on (synthesis scripts etc. are left out).
RTL_SOURCES = ("lint_waivers.vlt", "config.py", "core.py", "generate.py", "pe.py", "scanner.py", "threshold.py",
               "tokens.py")


class RtlError(SpikeforgeError):
    """The simulation itself failed (build error, crash, no result); the message names the log."""


# ---------------------------------------------------------------------------------------------
# tools and builds


def require_simulator(sim: str) -> None:
    """Raise ToolError (one line, with the fix) when `sim` cannot be used here."""
    from spikeforge.scripts.toolchain import configure_environment, require

    if sim not in SIMULATORS:
        raise RtlError(f"--sim {sim!r} is unknown; use one of {', '.join(SIMULATORS)}")
    configure_environment()
    if sim == "verilator":
        require("verilator")
        require("cxx")
    else:
        require("icarus")
    if not BENCH_DIR.is_dir():
        raise RtlError(f"the cocotb testbench folder {BENCH_DIR} is missing; run from a spikeforge source checkout")


def build_root() -> Path:
    root = os.environ.get(BUILD_ENV)
    return Path(root).resolve() if root else REPO_ROOT / "build" / "cocotb"


def _source_hash() -> str:
    """Hash of everything that shapes the Verilog besides the config: hw/ and amaranth's version."""
    import amaranth

    h = hashlib.sha256(amaranth.__version__.encode())
    for path in sorted(HW_DIR / name for name in RTL_SOURCES):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def block_verilog(kind: str, cfg: CoreConfig, network: IntegerNetwork | None = None) -> tuple[str, str]:
    """(top module name, Verilog text) of the core or one of its blocks for `cfg`."""
    from amaranth.back import verilog

    if kind == "core":
        from spikeforge.hw.generate import verilog_text

        weights = thresholds = None
        if network is not None:
            driver = NetworkDriver(network, cfg)
            weights, thresholds = driver.weights, driver.thresholds
        return cfg.top_name, verilog_text(cfg, weights, thresholds)
    if kind == "pe":
        from spikeforge.hw.pe import ProcessingElement

        component = ProcessingElement(cfg)
    elif kind == "scanner":
        from spikeforge.hw.scanner import ZeroSkipScanner

        component = ZeroSkipScanner(cfg)
    elif kind == "threshold":
        from spikeforge.hw.threshold import ThresholdUnit

        component = ThresholdUnit(cfg)
    else:
        raise RtlError(f"block {kind!r} is unknown; use one of {', '.join(BLOCKS)}")
    # Module names end in _block: none of the blocks has a port of that name.
    top = f"sf_{kind}_block"
    return top, verilog.convert(component, name=top, emit_src=False)


def icarus_compatible(text: str) -> str:
    """Amaranth's combinational processes as SystemVerilog `always_comb` for Icarus.

    Yosys writes them as `always @*` and relies on a register initialiser to trigger them at
    time 0; Icarus 11 runs initialisers before any process waits, so a process whose inputs do
    not change after reset (the FSM's `cmd.ready`, `idle`) would show X until they do.
    `always_comb` is evaluated once at time 0 by definition. Only the process keyword changes
    (Icarus warns that it widens some sensitivity lists, which is harmless).
    """
    return text.replace("always @*", "always_comb")


@dataclass(frozen=True)
class Build:
    sim: str
    kind: str
    top: str
    directory: Path
    waves: bool
    cfg: CoreConfig
    seconds: float  # build time; 0.0 when it came from the cache


def _network_hash(network: IntegerNetwork) -> str:
    h = hashlib.sha256()
    for layer in network.layers:
        for name in ("weight", "threshold", "mode"):
            arr = getattr(layer, name, None)
            if arr is not None:
                h.update(np.ascontiguousarray(np.asarray(arr, dtype=np.int64)).tobytes())
        h.update(repr((layer.kind, getattr(layer, "in_shape", None))).encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path, shared: bool = False) -> Iterator[None]:
    """An flock on `path`: exclusive while a design is (re)built, shared while it is simulated,
    so no simulation runs from a build folder another process is replacing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(cfg: CoreConfig, sim: str = "verilator", kind: str = "core", waves: bool = False,
          network: IntegerNetwork | None = None) -> Build:
    """Compile (or reuse) the simulation of `kind` for cfg. `network` bakes its weights into the
    Verilog's memory init (the `generate --model` path); otherwise memories start at zero and the
    bench loads them through the `load` port."""
    from cocotb_tools.runner import get_runner

    require_simulator(sim)
    name = cfg.digest() + ("" if kind == "core" else f"-{kind}")
    if network is not None:
        name += f"-net{_network_hash(network)}"
    if waves:
        name += f"-waves-{wave_format(sim)}"
    directory = build_root() / sim / name
    stamp = directory / "built.json"
    want = {"config": cfg.to_dict(), "kind": kind, "sim": sim, "waves": waves, "sources": _source_hash(),
            "recipe": BUILD_RECIPE}
    with _locked(directory.with_name(name + ".lock")):
        if stamp.is_file():
            try:
                if json.loads(stamp.read_text()).get("key") == want:
                    top = json.loads(stamp.read_text())["top"]
                    return Build(sim, kind, top, directory, waves, cfg, 0.0)
            except (OSError, ValueError, KeyError):
                pass
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        start = time.perf_counter()
        top, text = block_verilog(kind, cfg, network)
        if sim == "icarus":
            text = icarus_compatible(text)
        source = directory / f"{top}.v"
        source.write_text(text)
        runner = get_runner(sim)
        log = directory / "build.log"
        # The same narrow waivers as `spikeforge generate`'s lint (Amaranth's width idioms); any
        # other Verilator warning stops the build.
        build_args = [str(LINT_WAIVERS)] if sim == "verilator" else []
        if sim == "verilator" and waves and wave_format(sim) == "fst":
            build_args.append("--trace-fst")
        try:
            runner.build(sources=[source], hdl_toplevel=top, build_dir=directory, always=True, waves=waves,
                         build_args=build_args, timescale=TIMESCALE, log_file=log)
        except (RuntimeError, SystemExit, OSError, ValueError) as exc:
            raise RtlError(f"{sim} build of {top} failed ({exc}); see {log}") from None
        seconds = time.perf_counter() - start
        tmp = stamp.with_name(".built.json.tmp")
        tmp.write_text(json.dumps({"key": want, "top": top, "seconds": seconds}, indent=1))
        os.replace(tmp, stamp)
    return Build(sim, kind, top, directory, waves, cfg, seconds)


def run_job(b: Build, module: str, testcase: str, job: dict, files: dict[str, Any] | None = None,
            keep: bool = False) -> tuple[dict, Path]:
    """Run cocotb test `module.testcase` on the build with `job`; return (result, run dir).

    `files` are extra inputs written next to the job (name -> numpy array or picklable object);
    their paths are put in the job under the same names. The run directory is removed after a
    successful run unless `keep` (waveform runs keep it).
    """
    from cocotb_tools.runner import get_runner

    runs = build_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=runs, prefix=f"{b.sim}-{b.kind}-{testcase}-"))
    job = dict(job)
    for name, obj in (files or {}).items():
        if isinstance(obj, np.ndarray):
            path = run_dir / f"{name}.npy"
            np.save(path, obj)
        else:
            path = run_dir / f"{name}.pkl"
            path.write_bytes(pickle.dumps(obj))
        job[name] = str(path)
    job_path, result_path, log = run_dir / "job.json", run_dir / "result.json", run_dir / "sim.log"
    job_path.write_text(json.dumps(job))
    runner = get_runner(b.sim)
    env = {"SPIKEFORGE_JOB": str(job_path), "SPIKEFORGE_RESULT": str(result_path)}
    wave_file = run_dir / f"waves.{wave_format(b.sim)}"
    plusargs = [f"+dumpfile_path={wave_file}"] if b.waves and b.sim == "icarus" else []
    test_args = ["--trace-file", str(wave_file)] if b.waves and b.sim == "verilator" else []
    # cocotb's runner hands sys.path to the simulator's Python as PYTHONPATH: the bench goes on it.
    sys.path.insert(0, str(BENCH_DIR))
    saved_pytest = os.environ.pop("PYTEST_CURRENT_TEST", None)  # we check the result ourselves
    try:
        with _locked(b.directory.with_name(b.directory.name + ".lock"), shared=True):
            if not (b.directory / "built.json").is_file():
                raise RtlError(f"the build in {b.directory} disappeared (rebuilt by another process?); rerun")
            runner.test(test_module=module, hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
                        build_dir=b.directory,
                        test_dir=run_dir, testcase=testcase, extra_env=env, waves=b.waves, plusargs=plusargs,
                        test_args=test_args, timescale=TIMESCALE if b.sim == "verilator" else None, log_file=log,
                        results_xml=str(run_dir / "results.xml"))
    except (RuntimeError, SystemExit, OSError) as exc:
        raise RtlError(f"{b.sim} simulation of {b.top} ({module}.{testcase}) failed ({exc}); see {log}") from None
    finally:
        sys.path.remove(str(BENCH_DIR))
        if saved_pytest is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved_pytest
    if not result_path.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
        raise RtlError(f"{b.sim} simulation of {b.top} ({module}.{testcase}) wrote no result; "
                       f"see {log} ({' | '.join(tail)[:300]})")
    result = json.loads(result_path.read_text())
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result, run_dir


def wave_format(sim: str) -> str:
    """FST where it can be written: Icarus always; Verilator 5.048's FST writer needs the lz4
    headers (liblz4-dev), without them it writes VCD."""
    if sim == "icarus":
        return "fst"
    includes = [Path("/usr/include"), Path("/usr/local/include")]
    includes += [Path(p) for p in os.environ.get("CPATH", "").split(os.pathsep) if p]
    return "fst" if any((d / "lz4.h").is_file() for d in includes) else "vcd"


def waves_path(run_dir: Path) -> Path:
    for ext in ("fst", "vcd"):
        if (run_dir / f"waves.{ext}").is_file():
            return run_dir / f"waves.{ext}"
    return run_dir / "waves.fst"


# ---------------------------------------------------------------------------------------------
# comparison


@dataclass
class Mismatch:
    """The first difference between the RTL and the golden model."""

    what: str  # "value", "spike", "cycle", "row", "beats", "accept", "prediction", ...
    where: str  # "layer 1, tile 0 (command 3), output 17 (beat 2, row 0, column 4)"
    expected: Any
    got: Any
    cycle: int | None
    seed: int | None
    waves: str | None = None

    def message(self) -> str:
        text = f"{self.where}: {self.what} expected {self.expected}, got {self.got}"
        if self.cycle is not None:
            text += f" (model cycle {self.cycle})"
        text += f"; seed {self.seed}"
        if self.waves:
            text += f"; waveform: {self.waves}"
        return text


def outcome_from_json(raw: dict) -> TileOutcome:
    beats = [OutputBeat(int(r), bool(last), tuple(bool(s) for s in spikes), tuple(int(v) for v in values), int(cyc))
             for r, last, spikes, values, cyc in raw["beats"]]
    return TileOutcome(int(raw["accept_cycle"]), beats)


def compare_outcomes(cfg: CoreConfig, expected: Sequence[TileOutcome], got: Sequence[TileOutcome], cycles: bool,
                     seed: int | None, label=None) -> Mismatch | None:
    """First difference of two command lists' outcomes. `label(n, row, col)` -> (where-prefix,
    output index) names a command's output; cycles=False ignores timing (stalled runs)."""
    label = label or (lambda n, row, col: (f"tile (command {n})", row * cfg.cols + col))
    if len(got) != len(expected):
        return Mismatch("commands completed", f"{label(len(got), 0, 0)[0]}", len(expected), len(got), None, seed)
    for n, (want, have) in enumerate(zip(expected, got, strict=True)):
        prefix = label(n, 0, 0)[0]
        if cycles and want.accept_cycle != have.accept_cycle:
            return Mismatch("accept cycle", prefix, want.accept_cycle, have.accept_cycle, want.accept_cycle, seed)
        if len(have.beats) != len(want.beats):
            return Mismatch("output beats", prefix, len(want.beats), len(have.beats), None, seed)
        for k, (w, h) in enumerate(zip(want.beats, have.beats, strict=True)):
            if (w.row, w.last) != (h.row, h.last):
                return Mismatch("row/last", f"{prefix}, beat {k}", (w.row, w.last), (h.row, h.last), w.cycle, seed)
            for c in range(cfg.cols):
                where, index = label(n, w.row, c)
                if index is None:
                    continue  # an unused slot of a layer's last tile
                at = f"{where}, output {index} (beat {k}, row {w.row}, column {c})"
                if w.values[c] != h.values[c]:
                    return Mismatch("value", at, w.values[c], h.values[c], w.cycle, seed)
                if w.spikes[c] != h.spikes[c]:
                    return Mismatch("spike", at, w.spikes[c], h.spikes[c], w.cycle, seed)
            if cycles and w.cycle != h.cycle:
                return Mismatch("output cycle", f"{prefix}, beat {k} (row {w.row})", w.cycle, h.cycle, w.cycle, seed)
    return None


def golden_outcomes(cfg: CoreConfig, weights: np.ndarray, thresholds: np.ndarray,
                    commands: Sequence[tuple[Command, list[int]]]) -> list[TileOutcome]:
    """The golden model of one backend call: commands back to back, no stalls."""
    outcomes, cycle = [], 0
    for cmd, beats in commands:
        result = run_tile(cfg, weights, thresholds, cmd, beats, accept_cycle=cycle)
        outcomes.append(TileOutcome(result.accept_cycle, list(result.beats)))
        cycle = result.next_accept
    return outcomes


# ---------------------------------------------------------------------------------------------
# tile vectors


@dataclass
class TileCase:
    """One backend call: memory contents and the commands run on them back to back."""

    weights: np.ndarray  # [R*C, weight_depth]
    thresholds: np.ndarray  # [C, threshold_depth]
    commands: list[tuple[Command, list[int]]]
    stall_seed: int | None = None


@dataclass
class CheckReport:
    sim: str
    shape: str
    vectors: int = 0
    images: int = 0
    bit_exact: bool = True
    cycle_exact: bool = True
    predictions_equal: bool = True
    sim_cycles: int = 0
    sim_seconds: float = 0.0
    build_seconds: float = 0.0
    mismatch: Mismatch | None = None
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.bit_exact and self.cycle_exact and self.predictions_equal and self.mismatch is None

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.sim_seconds if self.sim_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "sim": self.sim, "shape": self.shape, "vectors": self.vectors, "images": self.images,
            "bit_exact": self.bit_exact, "cycle_exact": self.cycle_exact,
            "predictions_equal": self.predictions_equal, "ok": self.ok,
            "sim_cycles": self.sim_cycles, "sim_seconds": round(self.sim_seconds, 3),
            "sim_cycles_per_s": round(self.cycles_per_second, 1), "build_seconds": round(self.build_seconds, 2),
            "mismatch": None if self.mismatch is None
            else {**self.mismatch.__dict__, "message": self.mismatch.message()},
            **self.details,
        }


def case_json(case: TileCase) -> dict:
    return {
        "weights": np.asarray(case.weights, dtype=np.int64).tolist(),
        "thresholds": np.asarray(case.thresholds, dtype=np.int64).tolist(),
        "commands": [[c.n_words, c.n_planes, c.weight_base, c.threshold_base, list(map(int, beats))]
                     for c, beats in case.commands],
        "stall_seed": case.stall_seed,
    }


def pin_thresholds(cfg: CoreConfig, case: TileCase, rng: np.random.Generator, fraction: float = 0.5) -> None:
    """Set some thresholds of the first command to its exact accumulator (acc == T, value 0):
    the comparator's boundary, which random thresholds almost never hit."""
    if not case.commands:
        return
    cmd, beats = case.commands[0]
    result = run_tile(cfg, case.weights, case.thresholds, cmd, beats)
    for beat in result.beats:
        taddr = (cmd.threshold_base + beat.row) % cfg.threshold_depth
        for c in range(cfg.cols):
            acc = beat.values[c] + int(case.thresholds[c, taddr])
            if rng.random() < fraction and cfg.threshold_min <= acc <= cfg.threshold_max:
                case.thresholds[c, taddr] = acc


def random_case(cfg: CoreConfig, rng: np.random.Generator, count: int) -> TileCase:
    """Constrained-random commands on random memories, with the corners: no spikes, all spikes
    (all ones on every plane), the longest fan-in (max_inputs), weights at both extremes,
    thresholds at the register limits and exactly at the accumulator (acc == T)."""
    weights = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, cfg.weight_depth))
    corner = rng.random(weights.shape)
    weights[corner < 0.1] = cfg.weight_min
    weights[corner > 0.9] = cfg.weight_max
    span = min(1 << (cfg.weight_bits + 3), cfg.threshold_max)
    thresholds = rng.integers(-span, span + 1, size=(cfg.cols, cfg.threshold_depth))
    corner = rng.random(thresholds.shape)
    thresholds[corner < 0.05] = cfg.threshold_min
    thresholds[corner > 0.95] = cfg.threshold_max
    planes_max = cfg.max_input_bits
    commands = []
    for n in range(count):
        kind = n % 6
        fan_in = cfg.max_inputs if kind in (0, 3) else int(rng.integers(1, cfg.max_inputs + 1))
        planes = int(rng.integers(1, planes_max + 1)) if kind != 4 else planes_max
        if kind == 1:
            values = np.zeros(fan_in, dtype=np.int64)
        elif kind in (2, 3):
            values = np.full(fan_in, (1 << planes) - 1, dtype=np.int64)
        else:
            density = float(rng.choice([0.02, 0.1, 0.3, 0.6, rng.random()]))
            values = rng.integers(0, 1 << planes, size=fan_in) * (rng.random(fan_in) < density)
        n_words, beats = encode_input(values, planes, cfg.skip_window)
        span_w = n_words * cfg.skip_window
        base = int(rng.integers(0, max(1, cfg.weight_depth - span_w + 1)))
        tbase = int(rng.integers(0, cfg.threshold_depth - cfg.rows + 1))
        commands.append((Command(n_words, planes, base, tbase), beats))
    case = TileCase(weights, thresholds, commands)
    pin_thresholds(cfg, case, rng)
    return case


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
        want = golden_outcomes(cfg, case.weights, case.thresholds, case.commands)
        report.vectors += len(case.commands)
        timed = case.stall_seed is None
        # Bits first (ignoring time), then time: the report says which of the two failed.
        bad = compare_outcomes(cfg, want, got, cycles=False, seed=seed,
                               label=lambda n, r, c, i=index: (f"case {i}, tile (command {n})", r * cfg.cols + c))
        if bad is None and timed:
            bad = compare_outcomes(cfg, want, got, cycles=True, seed=seed,
                                   label=lambda n, r, c, i=index: (f"case {i}, tile (command {n})", r * cfg.cols + c))
            if bad is not None:
                report.cycle_exact = False
        elif bad is not None:
            report.bit_exact = False
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
    per-cycle records [cycle - c0, op, index, done, beat taken] (see tests/cocotb/tb_blocks.py)."""
    b = build(cfg, sim, "scanner", waves=waves)
    job = {"commands": [[int(w), int(p), [int(x) for x in beats], int(g)] for w, p, beats, g in commands],
           "stall_seed": stall_seed}
    result, run_dir = run_job(b, "tb_blocks", "scanner", job, keep=waves)
    return result["commands"], (waves_path(run_dir) if waves else None)
