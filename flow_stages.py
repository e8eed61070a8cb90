"""The staged, cached, resumable flow: train -> quantize -> generate -> verify -> estimate -> report.

Each stage calls the library function of the same name (spikeforge.api), builds its folder under
`out` in a temp folder, renames it into place and stamps it (`stage.json`) with a content hash of
its inputs and of the code it depends on, and with the content hash of what it wrote. A rerun
skips every stage whose stamp matches and whose outputs still hash to the stamp, so a finished
flow reruns in seconds and an interrupted one resumes at the stage that did not finish; once one
stage runs (its inputs or its outputs changed), every later stage runs too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError, __version__, atomic_write_text
from spikeforge.sim.estimate import json_default

# The code each stage's result depends on: a changed trainer retrains, a changed report writer
# only rewrites the report.
STAGE_CODE = {
    "train": ("model", "api.py"),
    "quantize": ("model", "quant", "integer_network.py", "hw/layout.py", "hw/config.py"),
    "generate": ("hw",),
    "verify": ("hw", "sim"),
    "estimate": ("hw", "sim"),
    "report": ("flow_report.py", "sim/estimate"),
    "select": ("input_width.py",),  # --input-bits auto: the validation measurement of each candidate
}


@dataclasses.dataclass
class FlowOptions:
    """Every knob of `spikeforge flow` (the CLI's flags map one to one)."""

    out: str = "out/flow"
    dataset: str = "digits"
    data_dir: str | None = None
    arch: str = "mlp"
    hidden: str | None = None  # "128" or "256,128"; None = the arch's default
    method: str = "hoyer"
    epochs: int | None = None  # None = the trainer's default
    checkpoint: str | None = None  # reuse this checkpoint, skip training
    nir: str | None = None  # a float NIR graph (snnTorch, Norse, ...) instead of training; docs/INTEROP.md
    timesteps: int | None = None  # NIR and bntt/convert: time steps per image (None: the graph's / the method's)
    dt: float | None = None  # NIR only: Euler step in seconds (None: the graph's, else 1e-4)
    input_range: str | None = None  # NIR only: "LO,HI" the graph's input for pixels in [0, 1] (None: the graph's)
    input_encoding: str | None = None  # NIR only (None: the graph's, else direct)
    rows: int = 8
    cols: int = 8
    weight_bits: int = 8
    # bits per input pixel (1..8) that train and quantize use; None: 8, or what --checkpoint was trained at;
    # "auto": the smallest width within 0.3 pp of 8 on a validation split (spikeforge.input_width)
    input_bits: int | str | None = None
    samples: int = 20  # test images verified in RTL
    sim: str = "verilator"
    target: str = "ecp5"
    synth: bool = False  # area from synthesis instead of the calibrated model
    seed: int = 0
    force: bool = False  # ignore cached stages


class FlowError(SpikeforgeError):
    pass


# Multi-step methods (issue 16): what the flow trains by default. convert: the L1-regularised ReLU net
# (docs/BNTT_AND_CONVERSION.md, lambda 1e-2) run for 32 steps, so the RTL sample stays short.
MULTISTEP_TRAIN: dict[str, dict[str, Any]] = {"bntt": {}, "convert": {"reg": "l1", "lam": 0.01, "timesteps": 32}}


def code_digest(root: Path, parts: tuple[str, ...]) -> str:
    """Hash of the spikeforge sources a stage depends on (folders or files under the root)."""
    h = hashlib.sha256(__version__.encode())
    for part in parts:
        target = root / part
        files = sorted(p for p in target.rglob("*") if p.suffix in (".py", ".vlt", ".json")) if target.is_dir() \
            else [target]
        for path in files:
            if path.is_file():
                h.update(path.relative_to(root).as_posix().encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def tree_digest(folder: Path) -> str:
    """Content hash of a stage's outputs: every file under `folder` but its stamp (stage.json), by
    relative path; a symlink or an unreadable entry makes a digest no stamp holds."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == "stage.json" or (path.is_dir() and not path.is_symlink()):
            continue
        if path.is_symlink() or not path.is_file():
            return f"unhashable:{rel}"
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Flow:
    def __init__(self, args: FlowOptions):
        self.args = args
        self.out = Path(args.out)
        self.root = Path(__file__).resolve().parent
        self.code = {stage: code_digest(self.root, parts) for stage, parts in STAGE_CODE.items()}
        self.timings: dict[str, float] = {}
        self.cached: list[str] = []
        self.rerun_from: str | None = None  # the first stage that ran: every later stage runs too
        self._model = None
        self.bits = 8  # the input width train and quantize use (resolve_input_bits)
        self.train_dir, self.quant_dir = "train", "quantize"  # the stages whose model feeds generate
        self.selection: dict | None = None  # --input-bits auto: the candidates and the choice

    # --- stage machinery --------------------------------------------------------------------
    def stage(self, name: str, key: str, body: Callable[[Path], dict]) -> dict:
        """Run body(tmp_dir) unless out/name carries a stamp with this key; rename into place."""
        final = self.out / name
        stamp = final / "stage.json"
        index = list(self.stages).index(name) + 1
        if not self.args.force and stamp.is_file():
            try:
                saved = json.loads(stamp.read_text())
            except (OSError, json.JSONDecodeError):
                saved = {}
            if saved.get("key") == key and self.rerun_from is None:
                if saved.get("outputs") == tree_digest(final):
                    print(f"[{index}/{len(self.stages)}] {name}: cached ({final})", flush=True)
                    self.cached.append(name)
                    return saved["result"]
                print(f"[{index}/{len(self.stages)}] {name}: its cached outputs in {final} were changed "
                      "since they were written; running it again", flush=True)
        if self.rerun_from is None:
            self.rerun_from = name
        print(f"[{index}/{len(self.stages)}] {name} ...", flush=True)
        start = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.out, prefix=f".{name}.tmp-"))
        try:
            result = body(tmp)
            seconds = time.perf_counter() - start
            stamp_data = {"key": key, "outputs": tree_digest(tmp), "seconds": seconds, "result": result}
            (tmp / "stage.json").write_text(json.dumps(stamp_data, indent=2, default=json_default) + "\n")
            old = self.out / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.timings[name] = seconds
        print(f"[{index}/{len(self.stages)}] {name}: done in {seconds:.1f} s", flush=True)
        return json.loads(json.dumps(result, default=json_default))

    @property
    def stages(self) -> tuple[str, ...]:
        rest = ("generate", "verify", "estimate", "report")
        if self.args.input_bits == "auto":
            from spikeforge.input_width import CANDIDATES

            tried = CANDIDATES if self.selection is None else self.selection["tried"]  # once chosen: those tried
            return (*(f"{s}-in{k}" for k in tried for s in ("train", "quantize")), *rest)
        return ("train", "quantize", *rest)

    def clean_stale(self) -> None:
        """Temp folders of an interrupted run never hold a finished stage: remove them."""
        if self.out.is_dir():
            for leftover in self.out.glob(".*.tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)

    # --- the stages ---------------------------------------------------------------------------
    def run(self) -> dict:
        """Run (or resume) every stage; the report dict, with `ok` False when the RTL sample did not verify."""
        args = self.args
        from spikeforge.hw.config import CoreConfig

        CoreConfig(rows=args.rows, cols=args.cols, weight_bits=args.weight_bits)  # refuse early
        if args.samples < 1:
            raise FlowError(f"--samples {args.samples} must be at least 1")
        self.bits = self.resolve_input_bits()
        from spikeforge.outputs import claim_dir

        claim_dir(self.out, "flow", force=args.force, inputs=[args.checkpoint, args.nir, args.data_dir])
        started = time.perf_counter()
        self.clean_stale()
        if args.input_bits == "auto":
            train, quant = self.select_input_bits()
        else:
            train = self.train_stage()
            quant = self.quantize_stage(train)
        gen = self.generate_stage(quant)
        verify = self.verify_stage(quant, gen)
        est = self.estimate_stage(quant, gen)
        report = self.report_stage(train, quant, gen, verify, est)
        total = time.perf_counter() - started
        self.summary(report, total)
        return {**report, "ok": bool(verify["ok"])}

    def resolve_input_bits(self) -> int:
        """The input width of train and quantize: --input-bits K, else what --checkpoint was trained
        at, else 8 (auto: 8 here; select_input_bits picks). A checkpoint trained on another grid than
        --input-bits K is refused."""
        from spikeforge.input_width import check_input_bits

        args = self.args
        given = check_input_bits(args.input_bits)
        if args.nir and args.checkpoint:
            raise FlowError("--nir and --checkpoint both name the model; give one of them")
        if given == "auto":
            if args.nir or args.checkpoint:
                given_model = "--nir" if args.nir else "--checkpoint"
                raise FlowError(f"--input-bits auto trains a model at each width; drop {given_model} or give "
                                "its width, e.g. --input-bits 8")
            return 8
        if args.checkpoint and Path(args.checkpoint).is_file():
            from spikeforge.model.checkpoint import load_checkpoint

            trained = load_checkpoint(args.checkpoint).get("input_bits")
            if trained is not None and given is not None and int(trained) != given:
                raise FlowError(f"--input-bits {given}: --checkpoint {args.checkpoint} was trained on the "
                                f"{trained}-bit pixel grid; give --input-bits {trained} or leave it out")
            if given is None and trained is not None:
                return int(trained)
        return 8 if given is None else given

    def select_input_bits(self) -> tuple[dict, dict]:
        """--input-bits auto: train and quantize at each candidate width (8 first, then down), each
        its own cached stage pair train-inK / quantize-inK; keep the smallest width whose integer
        accuracy on the validation split is within the tolerance of the 8-bit one."""
        from spikeforge.input_width import CANDIDATES, choose_width, passes, selection_table, validation_size
        from spikeforge.model.data import load_dataset

        args = self.args
        val_size = validation_size(len(load_dataset(args.dataset, args.data_dir).x_train))
        runs: dict[int, tuple[dict, dict]] = {}
        for bits in CANDIDATES:
            train = self.train_stage(f"train-in{bits}", bits, val_size)
            quant = self.quantize_stage(train, f"quantize-in{bits}", f"train-in{bits}", bits, val_size)
            runs[bits] = (train, quant)
            if bits != 8 and not passes(quant["validation"]["val_accuracy"], runs[8][1]["validation"]["val_accuracy"]):
                break
        chosen = choose_width({k: q["validation"]["val_accuracy"] for k, (_, q) in runs.items()})
        self.bits, self.train_dir, self.quant_dir = chosen, f"train-in{chosen}", f"quantize-in{chosen}"
        self.selection = {**selection_table({k: {"val_accuracy": q["validation"]["val_accuracy"],
                                                 "test_accuracy": q["report"]["integer_accuracy"]}
                                             for k, (_, q) in runs.items()}, chosen),
                          "val_size": val_size, "train": self.train_dir, "quantize": self.quant_dir}
        ref = self.selection["reference_val_accuracy"]
        mine = runs[chosen][1]["validation"]["val_accuracy"]
        print(f"input bits: auto chose {chosen} (validation integer accuracy {100 * mine:.2f} % vs "
              f"{100 * ref:.2f} % at 8 bits on {val_size} held-out training images; rule: the smallest width "
              f"within {self.selection['tolerance_pp']} pp of 8 bits; tried {', '.join(map(str, runs))})",
              flush=True)
        return runs[chosen]

    def train_stage(self, name: str = "train", bits: int | None = None, val_size: int = 0) -> dict:
        """Train (or take the given model) into out/NAME; `val_size` > 0 is an auto candidate, which
        trains on the `bits` grid even at 8 and holds out its validation split."""
        args = self.args
        bits = self.bits if bits is None else bits
        if args.nir:
            graph = Path(args.nir)
            if not graph.is_file():
                raise FlowError(f"--nir {graph} does not exist; give a .nir file "
                                "(snnTorch export_to_nir, Norse to_nir)")
            key = digest("train", "nir", file_digest(graph))

            def body(tmp: Path) -> dict:
                shutil.copy2(graph, tmp / "model.nir")
                return {"nir": "model.nir", "source": str(graph.resolve()), "argv": [f"(NIR graph {graph.name})"]}
        elif args.checkpoint:
            ckpt = Path(args.checkpoint)
            if not ckpt.is_file():
                raise FlowError(f"--checkpoint {ckpt} does not exist; give a checkpoint.pt from spikeforge train")
            key = digest("train", "given", file_digest(ckpt))

            def body(tmp: Path) -> dict:
                shutil.copy2(ckpt, tmp / "checkpoint.pt")
                metrics = ckpt.with_name("metrics.json")
                if metrics.is_file():
                    shutil.copy2(metrics, tmp / "metrics.json")
                return {"checkpoint": "checkpoint.pt", "source": str(ckpt.resolve())}
        else:
            options = {"method": args.method, "dataset": args.dataset, "arch": args.arch, "seed": args.seed,
                       "hidden": _widths(args.hidden), "epochs": args.epochs, "data_dir": args.data_dir}
            options.update(MULTISTEP_TRAIN.get(args.method, {}))
            if args.method in MULTISTEP_TRAIN and args.timesteps is not None:
                options["timesteps"] = args.timesteps
            if bits != 8 or val_size:  # 8 without a split: the default flow's options, hence its stage keys
                options["input_bits"] = bits
            if val_size:
                options["val_size"] = val_size
            key = digest("train", self.code["train"], options)

            def body(tmp: Path) -> dict:
                from spikeforge.api import train

                opts = dict(options)
                train(opts.pop("method"), opts.pop("dataset"), opts.pop("arch"), out=tmp, **opts)
                return {"checkpoint": "checkpoint.pt", "options": options}
        result = self.stage(name, key, body)
        metrics_path = self.out / name / "metrics.json"
        result["metrics"] = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        result["key"] = key
        return result

    def quantize_stage(self, train: dict, name: str = "quantize", train_dir: str = "train", bits: int | None = None,
                       val_size: int = 0) -> dict:
        """Quantize out/TRAIN_DIR into out/NAME; with `val_size` (an auto candidate) also measure the
        integer model on the validation split (validation.json, result["validation"])."""
        args = self.args
        bits = self.bits if bits is None else bits
        ckpt = self.out / train_dir / "checkpoint.pt"
        options = {"weight_bits": args.weight_bits, "rows": args.rows, "cols": args.cols, "seed": args.seed,
                   "data_dir": args.data_dir}
        if bits != 8:  # 8: the default flow's options, hence its stage keys
            options["input_bits"] = bits
        key = digest("quantize", self.code["quantize"], train["key"], options)
        if val_size:
            key = digest(key, self.code["select"], val_size)

        if args.nir:
            from spikeforge.quant.nir_import import parse_range

            options = {k: options[k] for k in ("weight_bits", "input_bits", "rows", "cols", "data_dir") if k in options}
            options.update(dataset=args.dataset, timesteps=args.timesteps, dt=args.dt,
                           input_range=parse_range(args.input_range), input_encoding=args.input_encoding)
            key = digest("quantize", self.code["quantize"], train["key"], options)

        def body(tmp: Path) -> dict:
            from spikeforge.api import quantize, quantize_nir

            if args.nir:
                result = quantize_nir(self.out / train_dir / "model.nir", tmp / "artifact", **options)
            else:
                result = quantize(ckpt, tmp / "artifact", **options)
            stage = {"artifact": "artifact", "report": result.report}
            if val_size:
                from spikeforge.input_width import integer_accuracy, validation_split

                x, y = validation_split(args.dataset, args.data_dir, val_size)
                stage["validation"] = {"input_bits": bits, "val_size": val_size,
                                       "val_accuracy": integer_accuracy(tmp / "artifact", x, y)}
                atomic_write_text(tmp / "validation.json", json.dumps(stage["validation"], indent=2) + "\n")
            return stage

        result = self.stage(name, key, body)
        result["key"] = key
        return result

    def load_model(self):
        """The quantized model and its core config, loaded and validated once per run."""
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def _load_model(self):
        from spikeforge.hw.layout import config_for_network
        from spikeforge.quant.artifact import load_artifact

        net, manifest = load_artifact(self.out / self.quant_dir / "artifact")
        cfg = config_for_network(net, self.args.rows, self.args.cols, weight_bits=self.args.weight_bits)
        return net, manifest, cfg

    def generate_stage(self, quant: dict) -> dict:
        key = digest("generate", self.code["generate"], quant["key"], self.args.rows, self.args.cols)

        def body(tmp: Path) -> dict:
            from spikeforge.api import generate

            _, _, cfg = self.load_model()
            result = generate(tmp / "rtl", rows=cfg.rows, cols=cfg.cols, model=self.out / self.quant_dir / "artifact",
                              weight_bits=cfg.weight_bits)
            if result.config != cfg:
                raise FlowError(f"generate built config {result.config.digest()}, the flow expected {cfg.digest()}")
            return {"rtl": "rtl", "top": result.top, "config": cfg.to_dict(),
                    "verilog": f"rtl/{result.verilog.name}", "lint": result.lint}

        result = self.stage("generate", key, body)
        result["key"] = key
        return result

    def dataset(self, name: str):
        from spikeforge.model.data import load_dataset
        from spikeforge.quant.artifact import check_dataset

        ds = load_dataset(name, self.args.data_dir)
        check_dataset(self.load_model()[1], ds)
        return ds

    def verify_stage(self, quant: dict, gen: dict) -> dict:
        args = self.args
        key = digest("verify", self.code["verify"], gen["key"], args.samples, args.sim, args.seed)

        def body(tmp: Path) -> dict:
            from spikeforge.sim import rtl

            rtl.require_simulator(args.sim)  # the verify sample below is the flow's own, not `verify`'s
            net, manifest, cfg = self.load_model()
            ds = self.dataset(manifest["dataset"]["name"])
            rng = np.random.default_rng(args.seed)
            pick = np.sort(rng.choice(len(ds.x_test), size=min(args.samples, len(ds.x_test)), replace=False))
            report = rtl.check_network(cfg, net, ds.x_test[pick], sim=args.sim, seed=args.seed, baked=True,
                                       image_ids=pick.tolist())
            data = report.to_dict()
            data["image_indices"] = pick.tolist()
            data["labels"] = ds.y_test[pick].tolist()
            atomic_write_text(tmp / "verify.json", json.dumps(data, indent=2, default=json_default) + "\n")
            if not report.ok:
                # Keep the evidence, then fail loudly: a mismatch is a bug, never a cached result.
                raise FlowError(f"RTL verification failed: {report.mismatch.message() if report.mismatch else data}")
            return data

        return self.stage("verify", key, body)

    def estimate_stage(self, quant: dict, gen: dict) -> dict:
        args = self.args
        key = digest("estimate", self.code["estimate"], gen["key"], args.target, args.synth)

        def body(tmp: Path) -> dict:
            from spikeforge.sim.estimate import estimate, write_reports

            net, manifest, cfg = self.load_model()
            ds = self.dataset(manifest["dataset"]["name"])
            rep = estimate(net, cfg, ds.x_test, labels=ds.y_test, target=args.target, fast=not args.synth)
            write_reports(rep, tmp)
            return rep

        return self.stage("estimate", key, body)

    def report_stage(self, train, quant, gen, verify, est) -> dict:
        key = digest("report", self.code["report"], train["key"], quant["key"], gen["key"],
                     verify.get("sim_cycles"), est.get("config_digest"), self.args.synth, self.args.target)
        if self.selection is not None:
            key = digest(key, self.selection)

        def body(tmp: Path) -> dict:
            from spikeforge.flow_report import write_flow_report


            return write_flow_report(tmp, self.args, train, quant, gen, verify, est, selection=self.selection)

        result = self.stage("report", key, body)
        # The headline files also live at the top of the output folder.
        for name in ("report.md", "report.json"):
            src = self.out / "report" / name
            if src.is_file():
                atomic_write_text(self.out / name, src.read_text())
        return result

    def summary(self, report: dict, seconds: float) -> None:
        h = report["headline"]
        print()
        print(f"spikeforge flow: {h['dataset']} {h['arch']} on a {h['shape']} core, "
              f"{seconds:.1f} s ({', '.join(self.cached) + ' cached' if self.cached else 'no stage cached'})")
        print(f"  accuracy   float {h['float_accuracy']:.2f} %  integer {h['integer_accuracy']:.2f} %  "
              f"RTL sample {h['rtl_matches']}/{h['rtl_samples']} equal to the golden model")
        print(f"  latency    {h['cycles_mean']:.0f} cycles mean ({h['latency_us']:.2f} µs at {h['fmax_mhz']:.0f} MHz), "
              f"{h['speedup_vs_dense']:.2f}x fewer cycles than without zero-skipping")
        if self.selection is not None:
            print(f"  input bits {self.bits} (auto: smallest width within {self.selection['tolerance_pp']} pp of "
                  f"8 bits on validation; table in the report)")
        print(f"  area       {h['area']}")
        print(f"  energy     {h['energy_nj']:.2f} nJ per inference ({h['pj_per_synop']:.2f} pJ per synaptic op)")
        print(f"  report     {self.out / 'report.md'}")
        sys.stdout.flush()


def _widths(text: str | None) -> list[int] | None:
    """'256,128' -> [256, 128]; None -> None (the arch's default)."""
    if text is None:
        return None
    try:
        widths = [int(w) for w in str(text).replace(" ", "").split(",") if w]
    except ValueError:
        widths = []
    if not widths or any(w < 1 for w in widths):
        raise FlowError(f"--hidden {text!r} is not a list of positive widths; use e.g. --hidden 128 or 256,128")
    return widths
