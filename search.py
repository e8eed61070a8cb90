"""Hardware-aware co-design search on Optuna: network and array together, one laptop or many machines.

    from spikeforge.search import SearchOptions, run_search
    run_search(SearchOptions(out="out/search", dataset="digits", trials=40))

Each trial takes one point of the space (search_space.SPACE: regulariser weight, hidden widths,
weight and input bits; rows, columns, skip window), trains it (spikeforge.api.train), quantizes it
(api.quantize) and estimates it with the fast model (api.estimate), records every figure as an
Optuna user attribute and returns the objectives. Samplers are Optuna's multi-objective TPE or
NSGA-II, with the constraints as Optuna constraints (Trial.set_constraint).

The study lives in an Optuna RDB storage: by default an SQLite file in --out; with a
postgresql:// URL any number of workers on any number of machines share it. Workers send a
heartbeat; a trial whose worker died (no heartbeat for the grace period) is marked FAIL by the
next worker that looks, and its parameters are queued again once. `--trials N` is the number of
COMPLETE trials the study needs: a worker takes trials until N are complete, waits while the rest
are running elsewhere, and rerunning the same command continues the study.

search_space.py states the space, objectives and constraints; search_storage.py the output
folder, storage, study and sampler; search_report.py the result files and the RTL check.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from spikeforge import SpikeforgeError, __version__
from spikeforge.search_space import (
    FIGURES,
    OBJECTIVES,
    Constraint,
    Dim,
    SearchError,
    narrow_space,
    one_line,
    parse_constraint,
    parse_objectives,
)
from spikeforge.search_storage import (
    claim_out,
    make_sampler,
    open_storage,
    open_study,
    redact,
    storage_url,
)

SAMPLERS = ("tpe", "nsga2", "random")
# The sources a trial's figures depend on: trainer, quantizer, integer model, core and cost models.
TRIAL_CODE = ("model", "api.py", "quant", "integer_network.py", "hw", "sim")
SCHEMA = "spikeforge-search"


@dataclasses.dataclass
class SearchOptions:
    """Every knob of `spikeforge search` (the CLI's flags map one to one)."""

    out: str
    dataset: str = "digits"
    arch: str = "mlp"
    trials: int = 20  # COMPLETE trials the study needs
    objectives: str = "accuracy,latency,luts"
    constraints: tuple[str, ...] = ()
    space: tuple[str, ...] = ()  # --space overrides of search_space.SPACE
    storage: str | None = None  # None: sqlite file OUT/study.db
    study: str | None = None  # None: spikeforge-DATASET-ARCH
    workers: int = 1
    sampler: str = "tpe"
    epochs: int | None = None  # None: the trainer's default
    qat_epochs: int = 0
    images: int | None = None  # test images the estimate uses (None: all)
    seed: int = 0  # training seed of every trial, and the sampler's seed
    data_dir: str | None = None
    verify_top: int = 3  # Pareto points generated and RTL-verified after the search
    samples: int = 20  # test images per RTL-verified point
    sim: str = "verilator"
    heartbeat: int = 10  # seconds between a worker's heartbeats
    grace: int | None = None  # seconds without a heartbeat before a trial is failed (None: 3 x heartbeat)
    force: bool = False


@dataclasses.dataclass
class Plan:
    """The checked options: what every worker needs, picklable for spawned processes."""

    opts: SearchOptions
    out: Path
    storage_url: str
    study_name: str
    objectives: list[str]
    constraints: list[Constraint]
    space: tuple[Dim, ...]
    code: str = ""  # digest of the trial's code (TRIAL_CODE)

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same study: every option but the trial count and the workers,
        and the code that computes a trial's figures (a changed trainer or cost model must not
        mix its figures with the old ones in one study)."""
        o = self.opts
        return {"schema": SCHEMA, "schema_version": 1, "dataset": o.dataset, "arch": o.arch, "method": "hoyer",
                "objectives": self.objectives, "constraints": [str(c) for c in self.constraints],
                "space": [d.to_dict() for d in self.space], "epochs": o.epochs, "qat_epochs": o.qat_epochs,
                "images": o.images, "seed": o.seed, "code": self.code}

    @property
    def trials_dir(self) -> Path:
        return self.out / "trials" / self.study_name


def plan(opts: SearchOptions) -> Plan:
    """Check every option (one-line SearchError) before any work."""
    from spikeforge.model.data import DATASETS
    from spikeforge.model.nets import ARCHS

    if opts.dataset not in DATASETS:
        raise SearchError(f"--dataset {opts.dataset!r} is unknown; use one of {', '.join(DATASETS)}")
    if opts.arch not in ARCHS:
        raise SearchError(f"--arch {opts.arch!r} is unknown; use one of {', '.join(ARCHS)}")
    for name, value, low in (("--trials", opts.trials, 1), ("--workers", opts.workers, 1),
                             ("--verify-top", opts.verify_top, 0), ("--samples", opts.samples, 1),
                             ("--heartbeat", opts.heartbeat, 1), ("--qat-epochs", opts.qat_epochs, 0),
                             ("--epochs", 1 if opts.epochs is None else opts.epochs, 1),
                             ("--images", 1 if opts.images is None else opts.images, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SearchError(f"{name} {value!r} must be an integer >= {low}")
    if opts.grace is not None and opts.grace <= opts.heartbeat:
        raise SearchError(f"--grace {opts.grace} must exceed --heartbeat {opts.heartbeat} (a live worker "
                          "beats once per heartbeat)")
    if opts.sampler not in SAMPLERS:
        raise SearchError(f"--sampler {opts.sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
    objectives = parse_objectives(opts.objectives)
    constraints = [parse_constraint(c) for c in opts.constraints]
    space = narrow_space(list(opts.space))
    out = claim_out(opts.out, opts.force)
    url = storage_url(opts.storage, out)
    study = opts.study or f"spikeforge-{opts.dataset}-{opts.arch}"
    if not study or "/" in study or study.startswith(".") or len(study) > 100:
        raise SearchError(f"--study {study!r}: use a name of at most 100 characters without '/', "
                          "not starting with '.'")
    from spikeforge.flow_stages import code_digest

    code = code_digest(Path(__file__).resolve().parent, TRIAL_CODE)
    return Plan(opts, out, url, study, objectives, constraints, space, code)


def suggest(trial, space: tuple[Dim, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for d in space:
        if d.log_range is not None:
            params[d.name] = trial.suggest_float(d.name, d.log_range[0], d.log_range[1], log=True)
        else:
            params[d.name] = trial.suggest_categorical(d.name, list(d.choices))
    return params


def hidden_widths(params: dict[str, Any]) -> list[int]:
    width = int(params["hidden_width"])
    return [width] if int(params["hidden_layers"]) == 1 else [width, max(1, width // 2)]


def evaluate(p: Plan, params: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Train, quantize and estimate one point into `folder` (built beside it, renamed into place);
    every figure of the trial."""
    import shutil
    import tempfile

    from spikeforge import api
    from spikeforge.sim.estimate import area_summary

    o = p.opts
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        t0 = time.perf_counter()
        trained = api.train("hoyer", o.dataset, o.arch, out=tmp / "train", hidden=hidden_widths(params),
                            lam=float(params["lam"]), epochs=o.epochs, seed=o.seed, threads=1, data_dir=o.data_dir)
        t1 = time.perf_counter()
        quant = api.quantize(trained.checkpoint, tmp / "artifact", weight_bits=int(params["weight_bits"]),
                             input_bits=int(params["input_bits"]), qat_epochs=o.qat_epochs, rows=int(params["rows"]),
                             cols=int(params["cols"]), data_dir=o.data_dir, seed=o.seed, progress=False)
        t2 = time.perf_counter()
        rep = api.estimate(tmp / "artifact", rows=int(params["rows"]), cols=int(params["cols"]),
                           weight_bits=int(params["weight_bits"]), skip_window=int(params["skip_window"]),
                           fast=True, images=o.images, data_dir=o.data_dir, out=tmp)
        t3 = time.perf_counter()
        if folder.exists():  # a trial of this number that died here before; its leftovers are ours
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lat, en, cfg = rep["latency"], rep["energy"], rep["config"]
    area = area_summary(rep["area"])
    fast = rep["area"]["fast"]
    rates = [r.get("integer") for r in quant.report.get("spike_rates", [])]
    figures = {
        "accuracy": rep["accuracy"], "float_accuracy": quant.report.get("float_accuracy"),
        "agreement": quant.report.get("agreement"),
        "hidden_spike_rate": float(rates[0]) if rates and rates[0] is not None else None,
        "cycles_mean": lat["cycles"]["mean"], "cycles_p99": lat["cycles"]["p99"],
        "dense_cycles_mean": lat["dense_cycles"]["mean"], "speedup_vs_dense": lat["speedup_vs_dense"],
        "latency_us": lat["latency_us"]["mean"], "latency_us_p99": lat["latency_us"]["p99"],
        "fmax_mhz": lat["fmax_mhz"], "fmax_source": lat.get("fmax_source"),
        "lut4": area.get("lut4", fast["lut4"]), "ff": area.get("ff", fast["ff"]),
        "ebr": area.get("ebr", fast["ebr"]), "dpr16x4": area.get("dpr16x4", fast["dpr16x4"]),
        "ge_logic": area.get("ge_logic", fast["ge_logic"]),
        "energy_nj": en["snn"]["total_pj"] / 1000, "pj_per_synop": en["snn"]["pj_per_synop"],
        "dnn_energy_nj": en["dnn_int8"]["total_pj"] / 1000, "acc_bits": cfg["acc_bits"],
        "weight_depth": cfg["weight_depth"], "config_digest": rep["config_digest"],
        "train_s": t1 - t0, "quantize_s": t2 - t1, "estimate_s": t3 - t2,
    }
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in figures.items()}


def _complete(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def run_worker(p: Plan, worker: int = 0, log=print) -> int:
    """Take trials until the study has `trials` COMPLETE ones; the number this worker completed."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(p)
    existing = len(open_study(p, storage).trials)
    study = open_study(p, storage, sampler=make_sampler(p, worker, existing))
    host, pid = socket.gethostname(), os.getpid()
    done = 0
    waited = False

    def objective(trial) -> tuple[float, ...]:
        started, cpu = time.perf_counter(), time.process_time()
        ahead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                 if t.number < trial.number]
        trial.set_user_attr("worker", f"{host}:{pid}")
        if len(ahead) >= p.opts.trials:  # another worker took the last trial at the same time
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("the study already has its trials; this one is surplus")
        params = suggest(trial, p.space)
        try:
            figures = evaluate(p, params, p.trials_dir / f"{trial.number:05d}")
        except SpikeforgeError as exc:
            trial.set_user_attr("error", one_line(exc)[:500])
            log(f"trial {trial.number} [{host}:{pid}] failed: {one_line(exc)}")
            raise
        figures["trial_s"] = time.perf_counter() - started
        figures["trial_cpu_s"] = time.process_time() - cpu  # this worker's CPU: the cost on an idle core
        for key in FIGURES + ("fmax_source", "config_digest"):
            trial.set_user_attr(key, figures.get(key))
        for c in p.constraints:
            trial.set_constraint(str(c), c.violation(figures))
        trial.set_user_attr("spikeforge", __version__)
        values = tuple(float(figures[OBJECTIVES[o][1]]) for o in p.objectives)
        if not all(math.isfinite(v) for v in values):
            trial.set_user_attr("error", f"non-finite objective values {values}")
            raise SearchError(f"trial {trial.number}: non-finite objective values {values}")
        return values

    while True:
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        if complete >= p.opts.trials:
            return done
        errors = sum(t.state == TrialState.FAIL and "error" in t.user_attrs for t in trials)
        if errors >= max(10, p.opts.trials):
            raise SearchError(f"{errors} trials of study {p.study_name} failed (first: "
                              f"{next(t.user_attrs['error'] for t in trials if 'error' in t.user_attrs)}); "
                              "fix the cause or narrow --space")
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if complete + running >= p.opts.trials:  # the rest are running elsewhere: wait for them or their heartbeat
            if not waited:
                log(f"worker {host}:{pid}: {complete}/{p.opts.trials} complete, waiting for {running} running")
                waited = True
            time.sleep(min(5.0, p.opts.heartbeat))
            continue
        waited = False
        before = len(_complete(study))
        study.optimize(objective, n_trials=1, catch=(SpikeforgeError,), gc_after_trial=False)
        last = max((t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("worker") == f"{host}:{pid}"),
                   key=lambda t: t.number, default=None)
        if last is not None and last.state == TrialState.COMPLETE and len(_complete(study)) > before:
            done += 1
            log(f"trial {last.number} [{host}:{pid}] " + _summary(last, p) +
                f" ({len(_complete(study))}/{p.opts.trials} complete)")


def _summary(t, p: Plan) -> str:
    a = t.user_attrs
    prm = t.params
    return (f"{int(prm['rows'])}x{int(prm['cols'])} w{prm['weight_bits']} in{prm['input_bits']} "
            f"h{hidden_widths(prm)} lam {prm['lam']:.1e}: acc {100 * a['accuracy']:.2f} %, "
            f"{a['latency_us']:.2f} us, {a['lut4']:.0f} LUT4, {a['energy_nj']:.1f} nJ, {a['trial_s']:.1f} s")


def _worker_main(p: Plan, worker: int) -> None:
    """Entry point of a spawned local worker process."""
    try:
        run_worker(p, worker, log=lambda text: print(text, flush=True))
    except SpikeforgeError as exc:
        print(f"spikeforge search: worker {worker}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches every worker; its running trial is marked FAIL
        sys.exit(130)


def run_workers(p: Plan, log=print) -> list[int | None]:
    """Run `workers` workers: this process is worker 0, the others are spawned processes.
    The exit codes of all of them (0 for this one)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    procs = [ctx.Process(target=_worker_main, args=(p, i), name=f"search-worker-{i}")
             for i in range(1, p.opts.workers)]
    for proc in procs:
        proc.start()
    if procs:
        log(f"worker 0 is pid {os.getpid()}; started workers {', '.join(str(proc.pid) for proc in procs)}")
    try:
        run_worker(p, 0, log)
    finally:
        for proc in procs:  # an error or Ctrl-C here: the others finish their trials, then stop
            proc.join()
    return [0] + [proc.exitcode for proc in procs]


def run_search(opts: SearchOptions, log=print) -> dict[str, Any]:
    """The whole search: plan, trials on the storage, then the Pareto front and its RTL check.
    Returns the result dict (the content of OUT/pareto.json plus the workers' exit codes)."""
    from spikeforge.search_report import write_results

    p = plan(opts)
    storage = open_storage(p)
    study = open_study(p, storage, create=True)
    have = len(_complete(study))
    log(f"study {p.study_name} on {redact(p.storage_url)}: {have}/{opts.trials} complete trials; "
        f"{opts.workers} worker(s)")
    codes = run_workers(p, log) if have < opts.trials else []
    study = open_study(p, storage)
    result = write_results(p, study, log)
    result["worker_exit_codes"] = codes
    died = [i for i, c in enumerate(codes) if c not in (0, None)]
    if died:
        log(f"warning: worker(s) {died} ended with exit codes {[codes[i] for i in died]}; their running trials "
            "are marked failed after the grace period; rerun the same command to continue the study")
    return result
