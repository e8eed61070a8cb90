"""Checkpoint -> artifact: the whole quantize stage as one function (the CLI and the flow call it).

Loads a training checkpoint safely, optionally fine-tunes with fake-quantized weights (QAT),
folds BN and thresholds into integers (fold.py), compares the integer golden model with the
float model on the test set (report.py), and writes the versioned artifact with its memory init
files for the requested array and its NIR export (artifact.py, nir_io.py).
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge import __version__
from spikeforge.hw.config import CoreConfig
from spikeforge.integer_network import IntegerNetwork
from spikeforge.quant import quantize as q


@dataclass
class QuantizeResult:
    """What `quantize_checkpoint` produced."""

    artifact: Path  # the artifact directory, in place
    report: dict[str, Any]  # float vs integer accuracy, agreement, spike rates (report.json)
    network: IntegerNetwork
    core: CoreConfig  # the config the memory init files were written for


def core_for(net: IntegerNetwork, rows: int, cols: int, weight_bits: int) -> CoreConfig:
    """The CoreConfig of the requested array for this network (hw.layout.config_for_network)."""
    from spikeforge.hw.layout import config_for_network

    return config_for_network(net, rows, cols, weight_bits=max(weight_bits, net.required_weight_bits()))


def check_options(weight_bits: int, input_bits: int, rows: int, cols: int) -> None:
    """Refuse bad bit widths and array shapes before any work (one line each)."""
    q.check_bits(weight_bits, input_bits)
    CoreConfig(rows=rows, cols=cols)


def quantize_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    weight_bits: int = 8,
    per_channel: bool = False,
    qat_epochs: int = 0,
    input_bits: int = 8,
    rows: int = 8,
    cols: int = 8,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool | None = None,
    force: bool = False,
) -> QuantizeResult:
    """Quantize `checkpoint` into the artifact directory `out` (replaced atomically; `out` must be
    new, empty or an earlier quantize output, any earlier spikeforge output with `force`)."""
    from spikeforge.arguments import check_all
    from spikeforge.model.data import load_dataset
    from spikeforge.outputs import check_out
    from spikeforge.quant.report import build_report

    check_options(weight_bits, input_bits, rows, cols)
    check_all(seed=seed, qat_epochs=qat_epochs)
    check_out(out, "quantize", force=force, inputs=[checkpoint, data_dir])
    if isinstance(qat_epochs, bool) or not isinstance(qat_epochs, int) or qat_epochs < 0:
        raise q.QuantError(f"--qat-epochs {qat_epochs} is negative; use 0 (no fine-tuning) or more")

    ckpt = q.load_checkpoint(checkpoint)
    sha = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    if ckpt.get("method") in MULTISTEP_METHODS:
        if qat_epochs:
            raise q.QuantError(f"--qat-epochs {qat_epochs}: QAT is for one-time-step checkpoints; "
                               f"quantize {ckpt['method']} checkpoints with --qat-epochs 0")
        return quantize_multistep(ckpt, checkpoint, sha, out, weight_bits=weight_bits, per_channel=per_channel,
                                  input_bits=input_bits, rows=rows, cols=cols, data_dir=data_dir, seed=seed)
    q.check_method(ckpt["method"])
    model = q.build_model(ckpt)
    iq = getattr(model, "input_quant", {"low": 0.0, "high": 1.0})
    if (iq.get("low"), iq.get("high")) != (0.0, 1.0):
        raise q.QuantError(f"model.input_quant range {iq} is not [0, 1]; retrain with pixels in [0, 1]")

    dsinfo = ckpt["dataset"]
    ds = load_dataset(dsinfo["name"], data_dir or ckpt.get("data_dir"), int(dsinfo.get("split_seed", 0)))
    if tuple(ds.input_shape) != tuple(dsinfo["input_shape"]):
        raise q.QuantError(f"checkpoint field 'dataset.input_shape'={list(dsinfo['input_shape'])} but dataset "
                           f"{dsinfo['name']!r} has images {list(ds.input_shape)}; pass the --data-dir it was "
                           "trained on")
    folded = model
    if qat_epochs > 0:
        lam = float(ckpt.get("lambda") or 0.0) if ckpt["method"] == "hoyer" else 0.0
        folded = q.qat_finetune(
            copy.deepcopy(model), ds.x_train, ds.y_train, weight_bits, per_channel, qat_epochs,
            seed=seed, lam=lam, progress=True if progress is None else progress,
        )
    qres = q.quantize_module(folded, dsinfo, weight_bits, per_channel, input_bits)
    qres.network.meta["dataset"] = dsinfo["name"]
    report = build_report(folded, qres, ds.x_test, ds.y_test, reference=model if folded is not model else None)

    extra = {
        "per_channel": bool(per_channel),
        "provenance": {
            "checkpoint": str(Path(checkpoint).resolve()),
            "checkpoint_sha256": sha,
            "method": ckpt["method"],
            "arch": ckpt["arch"],
            "qat_epochs": qat_epochs,
            "seed": seed,
            "float_accuracy": report["float_accuracy"],
            "integer_accuracy": report["integer_accuracy"],
            "agreement": report["agreement"],
            "created_by": f"spikeforge {__version__}",
        },
    }
    return write_quantized(out, qres, report, extra, rows, cols, weight_bits, force=force)


MULTISTEP_METHODS = ("bntt", "convert")


def quantize_multistep(ckpt: dict[str, Any], checkpoint: str | os.PathLike, sha: str, out: str | os.PathLike, *,
                       weight_bits: int, per_channel: bool, input_bits: int, rows: int, cols: int,
                       data_dir: str | os.PathLike | None, seed: int) -> QuantizeResult:
    """A BNTT or converted checkpoint -> a multi-step artifact (quant/multistep.py)."""
    from spikeforge.hw.layout import config_for_network
    from spikeforge.model.data import load_dataset
    from spikeforge.quant.artifact import write_artifact
    from spikeforge.quant.multistep import export_checkpoint
    from spikeforge.quant.report import to_json, to_markdown

    dsinfo = ckpt["dataset"]
    ds = load_dataset(dsinfo["name"], data_dir or ckpt.get("data_dir"), int(dsinfo.get("split_seed", 0)))
    net, report = export_checkpoint(ckpt, ds.x_test, ds.y_test, weight_bits, per_channel, input_bits)
    net.meta["dataset"] = dsinfo["name"]
    core = config_for_network(net, rows, cols, weight_bits=max(weight_bits, net.required_weight_bits()))
    extra = {"per_channel": bool(per_channel), "provenance": {
        "checkpoint": str(Path(checkpoint).resolve()), "checkpoint_sha256": sha, "method": ckpt["method"],
        "arch": ckpt["arch"], "qat_epochs": 0, "seed": seed, "float_accuracy": report["float_accuracy"],
        "integer_accuracy": report["integer_accuracy"], "agreement": report["agreement"],
        "created_by": f"spikeforge {__version__}"}}
    path = write_artifact(out, net, weight_bits, extra, core=core,
                          files={"report.json": to_json(report), "report.md": to_markdown(report)})
    return QuantizeResult(Path(path), report, net, core)


def write_quantized(out: str | os.PathLike, qres: q.QuantResult, report: dict[str, Any], extra: dict[str, Any],
                    rows: int, cols: int, weight_bits: int, force: bool = False) -> QuantizeResult:
    """The artifact of a quantized network: manifest (+ `extra`), weights, memory files for the
    rows x cols core, report.json/.md and the NIR export, written atomically into `out`."""
    from spikeforge.quant.artifact import write_artifact
    from spikeforge.quant.nir_io import write_nir
    from spikeforge.quant.report import to_json, to_markdown

    net = qres.network
    extra = {**extra, "folding": [f.to_dict() for f in qres.folds], "nir_file": "network.nir"}
    scales = [f.scale for f in qres.folds]
    core = core_for(net, rows, cols, weight_bits)
    path = write_artifact(
        out, net, weight_bits, extra, core=core,
        files={"report.json": to_json(report), "report.md": to_markdown(report)},
        writers=[lambda tmp: write_nir(net, tmp / "network.nir", scales)], force=force,
    )
    return QuantizeResult(Path(path), report, net, core)
