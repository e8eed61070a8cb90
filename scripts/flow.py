"""The staged, cached, resumable flow behind `spikeforge flow` (see cmd_flow.py)."""

from __future__ import annotations

import argparse
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
    "train": ("model", "scripts/cmd_train.py"),
    "quantize": ("model", "quant", "sim/network.py", "sim/layout.py", "scripts/cmd_quantize.py"),
    "generate": ("hw", "sim/layout.py"),
    "verify": ("hw", "sim", "tests/cocotb"),
    "estimate": ("hw", "sim"),
    "report": ("scripts/flow_report.py", "sim/anchors.py"),
}


class FlowError(SpikeforgeError):
    pass


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


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def call_command(name: str, argv: list[str]) -> int:
    """Run another subcommand through its own parser, so defaults match the CLI exactly."""
    import importlib

    mod = importlib.import_module(f"spikeforge.scripts.cmd_{name}")
    parser = argparse.ArgumentParser(prog=f"spikeforge {name}")
    mod.add_arguments(parser)
    return mod.run(parser.parse_args(argv))


class Flow:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.root = Path(__file__).resolve().parent.parent
        self.code = {stage: code_digest(self.root, parts) for stage, parts in STAGE_CODE.items()}
        self.timings: dict[str, float] = {}
        self.cached: list[str] = []
        self._model = None

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
            if saved.get("key") == key:
                print(f"[{index}/{len(self.stages)}] {name}: cached ({final})", flush=True)
                self.cached.append(name)
                return saved["result"]
        print(f"[{index}/{len(self.stages)}] {name} ...", flush=True)
        start = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.out, prefix=f".{name}.tmp-"))
        try:
            result = body(tmp)
            seconds = time.perf_counter() - start
            (tmp / "stage.json").write_text(json.dumps({"key": key, "seconds": seconds, "result": result},
                                                       indent=2, default=json_default) + "\n")
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
        return ("train", "quantize", "generate", "verify", "estimate", "report")

    def clean_stale(self) -> None:
        """Temp folders of an interrupted run never hold a finished stage: remove them."""
        if self.out.is_dir():
            for leftover in self.out.glob(".*.tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)

    # --- the stages ---------------------------------------------------------------------------
    def run(self) -> int:
        args = self.args
        from spikeforge.hw.config import CoreConfig

        CoreConfig(rows=args.rows, cols=args.cols, weight_bits=args.weight_bits)  # refuse early
        if args.samples < 1:
            raise FlowError(f"--samples {args.samples} must be at least 1")
        started = time.perf_counter()
        self.clean_stale()
        train = self.train_stage()
        quant = self.quantize_stage(train)
        gen = self.generate_stage(quant)
        verify = self.verify_stage(quant, gen)
        est = self.estimate_stage(quant, gen)
        report = self.report_stage(train, quant, gen, verify, est)
        total = time.perf_counter() - started
        self.summary(report, total)
        return 0 if verify["ok"] else 1

    def train_stage(self) -> dict:
        args = self.args
        if args.checkpoint:
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
            argv = ["--method", args.method, "--dataset", args.dataset, "--arch", args.arch, "--seed", str(args.seed)]
            if args.hidden:
                argv += ["--hidden", *args.hidden.split(",")]
            if args.epochs is not None:
                argv += ["--epochs", str(args.epochs)]
            if args.data_dir:
                argv += ["--data-dir", args.data_dir]
            key = digest("train", self.code["train"], argv)

            def body(tmp: Path) -> dict:
                call_command("train", argv + ["--out", str(tmp)])
                return {"checkpoint": "checkpoint.pt", "argv": argv}
        result = self.stage("train", key, body)
        metrics_path = self.out / "train" / "metrics.json"
        result["metrics"] = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        result["key"] = key
        return result

    def quantize_stage(self, train: dict) -> dict:
        args = self.args
        ckpt = self.out / "train" / "checkpoint.pt"
        argv = [str(ckpt), "--weight-bits", str(args.weight_bits), "--rows", str(args.rows),
                "--cols", str(args.cols), "--seed", str(args.seed)]
        if args.data_dir:
            argv += ["--data-dir", args.data_dir]
        key = digest("quantize", self.code["quantize"], train["key"], argv[1:])

        def body(tmp: Path) -> dict:
            call_command("quantize", argv + ["--out", str(tmp / "artifact")])
            report = json.loads((tmp / "artifact" / "report.json").read_text())
            return {"artifact": "artifact", "report": report}

        result = self.stage("quantize", key, body)
        result["key"] = key
        return result

    def load_model(self):
        """The quantized model and its core config, loaded and validated once per run."""
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def _load_model(self):
        from spikeforge.quant.artifact import load_artifact
        from spikeforge.sim.layout import config_for_network

        net, manifest = load_artifact(self.out / "quantize" / "artifact")
        cfg = config_for_network(net, self.args.rows, self.args.cols, weight_bits=self.args.weight_bits)
        return net, manifest, cfg

    def generate_stage(self, quant: dict) -> dict:
        key = digest("generate", self.code["generate"], quant["key"], self.args.rows, self.args.cols)

        def body(tmp: Path) -> dict:
            from spikeforge.hw.generate import generate, lint

            net, manifest, cfg = self.load_model()
            rtl = tmp / "rtl"
            manifest_core = generate(cfg, rtl, net)
            lint(rtl / manifest_core["verilog"], manifest_core["top"])
            write_fusesoc_core(rtl, manifest_core)
            return {"rtl": "rtl", "top": manifest_core["top"], "config": cfg.to_dict(),
                    "verilog": f"rtl/{manifest_core['verilog']}", "lint": "clean"}

        result = self.stage("generate", key, body)
        result["key"] = key
        return result

    def dataset(self, name: str):
        from spikeforge.model.data import load_dataset

        return load_dataset(name, self.args.data_dir)

    def verify_stage(self, quant: dict, gen: dict) -> dict:
        args = self.args
        key = digest("verify", self.code["verify"], gen["key"], args.samples, args.sim, args.seed)

        def body(tmp: Path) -> dict:
            from spikeforge.sim import rtl_cocotb

            rtl_cocotb.require_simulator(args.sim)
            net, manifest, cfg = self.load_model()
            ds = self.dataset(manifest["dataset"]["name"])
            rng = np.random.default_rng(args.seed)
            pick = np.sort(rng.choice(len(ds.x_test), size=min(args.samples, len(ds.x_test)), replace=False))
            report = rtl_cocotb.check_network(cfg, net, ds.x_test[pick], sim=args.sim, seed=args.seed, baked=True)
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

        def body(tmp: Path) -> dict:
            from spikeforge.scripts.flow_report import write_flow_report

            return write_flow_report(tmp, self.args, train, quant, gen, verify, est)

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
        print(f"  area       {h['area']}")
        print(f"  energy     {h['energy_nj']:.2f} nJ per inference ({h['pj_per_synop']:.2f} pJ per synaptic op)")
        print(f"  report     {self.out / 'report.md'}")
        sys.stdout.flush()


def write_fusesoc_core(rtl: Path, manifest: dict) -> Path:
    """A FuseSoC CAPI2 core description, so the IP drops into an existing HDL flow."""
    top = manifest["top"]
    cfg = manifest["config"]
    text = f"""CAPI=2:
name: spikeforge:snn:{top}:{__version__}
description: spikeforge accumulate-only SNN core, {cfg['rows']}x{cfg['cols']} PEs, {cfg['weight_bits']}-bit weights

filesets:
  rtl:
    files:
      - {manifest['verilog']}
    file_type: verilogSource

targets:
  default:
    filesets: [rtl]
    toplevel: {top}
  lint:
    default_tool: verilator
    filesets: [rtl]
    tools:
      verilator:
        mode: lint-only
    toplevel: {top}
"""
    path = rtl / f"{top}.core"
    atomic_write_text(path, text)
    return path
