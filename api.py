"""The spikeforge library API: every stage of the flow as a typed function.

    from spikeforge import train, quantize, generate, verify, estimate, flow

The `spikeforge` commands are thin wrappers over these functions, and `flow` calls them in turn
(docs/API.md has the reference and a runnable example). Every function raises a subclass of
`spikeforge.SpikeforgeError` with a one-line message (field, problem, fix) on bad input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge.hw.config import CoreConfig
from spikeforge.quant.pipeline import QuantizeResult, quantize_checkpoint
from spikeforge.sim.rtl.verify import VerifyResult, verify_rtl

__all__ = ["GenerateResult", "QuantizeResult", "TrainResult", "VerifyResult", "estimate", "export_nir", "flow",
           "generate", "quantize", "quantize_nir", "train", "verify"]

PathLike = str | os.PathLike


# --- train -----------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    checkpoint: Path  # OUT/checkpoint.pt
    metrics: dict[str, Any]  # the content of OUT/metrics.json
    model: Any  # the trained torch module, eval mode
    config: Any = None  # the spikeforge.model.train.TrainConfig it ran, every default resolved


def train(
    method: str = "hoyer",
    dataset: str = "digits",
    arch: str = "mlp",
    *,
    out: PathLike,
    hidden: list[int] | None = None,
    bn: bool = True,
    epochs: int | None = None,
    lr: float | None = None,
    lam: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    split_seed: int = 0,
    threads: int = 1,
    data_dir: PathLike | None = None,
    timesteps: int | None = None,
    reg: str | None = None,
    p: float = 0.5,
    force: bool = False,
    **options: Any,
) -> TrainResult:
    """Train an SNN (hoyer, the authors' fixed-threshold ablation `fixed`, heaviside), a ReLU ANN
    (relu), a BNTT SNN (bntt) or an activity-regularised ReLU net converted to an IF SNN (convert)
    with the one training loop; write OUT/checkpoint.pt + metrics.json. `options` are further
    fields of `spikeforge.model.train.TrainConfig` (shift, input_bits, val_size, patience,
    schedule, weight_decay, leak, hoyer_regulariser, ...). OUT must be new, empty or an earlier
    train output (`force`: any earlier spikeforge output; docs/SECURITY.md)."""
    import dataclasses

    from spikeforge.arguments import check_all, parse_widths
    from spikeforge.model.train import TrainConfig, TrainError
    from spikeforge.model.train import train as train_loop
    from spikeforge.outputs import claim_dir

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TrainError(f"train option {unknown[0]!r} is unknown; use one of {', '.join(sorted(known))}")
    check_all(lr=lr, lam=lam, epochs=epochs, batch_size=batch_size, seed=seed, split_seed=split_seed,
              threads=threads, timesteps=timesteps, p=p)
    if hidden is not None:
        parse_widths(",".join(str(w) for w in hidden) or "none")
    out = claim_dir(out, "train", force=force, inputs=[data_dir])
    spec: dict[str, Any] = {"name": arch}
    if hidden is not None:
        spec["hidden"] = list(hidden)
    if not bn:
        spec["bn"] = False
    cfg = TrainConfig(method=method, dataset=dataset, arch=spec, epochs=epochs, lr=lr, lam=lam,
                      batch_size=batch_size, seed=seed, split_seed=split_seed, num_threads=threads,
                      data_dir=None if data_dir is None else str(data_dir), out=str(out), timesteps=timesteps,
                      reg=reg, p=p, **options)
    result = train_loop(cfg)
    return TrainResult(Path(out) / "checkpoint.pt", result.metrics, result.model, result.config)


# --- quantize --------------------------------------------------------------------------------------
# quantize(checkpoint, out, *, weight_bits, per_channel, qat_epochs, input_bits, rows, cols, data_dir,
# seed) -> QuantizeResult(artifact, report, network, core): spikeforge.quant.pipeline.

quantize = quantize_checkpoint


# quantize_nir(graph, out, *, dataset, data_dir, weight_bits, per_channel, input_bits, rows, cols, timesteps,
# dt, input_range, input_encoding) -> QuantizeResult: a float NIR graph from snnTorch, Norse, ...
# (spikeforge.quant.nir_pipeline; docs/INTEROP.md).

def quantize_nir(graph: PathLike, out: PathLike, **options: Any) -> QuantizeResult:
    """Quantize a float NIR graph (a `.nir` file from snnTorch, Norse, ...) into an artifact, with
    the same report as `quantize`; options as `spikeforge.quant.nir_pipeline.quantize_nir`."""
    from spikeforge.quant.nir_pipeline import quantize_nir as run

    return run(graph, out, **options)


def export_nir(model: PathLike, path: PathLike) -> Path:
    """Write an artifact's integer network as a NIR graph that snnTorch and Norse run exactly (it takes
    pixels in [0, 1]); every `quantize` also writes it as ARTIFACT/network.nir."""
    from spikeforge.quant.artifact import load_artifact
    from spikeforge.quant.nir_io import write_nir

    network, _ = load_artifact(model)
    return write_nir(network, path)


# --- generate --------------------------------------------------------------------------------------


@dataclass
class GenerateResult:
    directory: Path
    verilog: Path
    top: str
    config: CoreConfig
    manifest: dict[str, Any]  # core.json
    lint: str | None  # "clean", or None when lint was skipped


def generate(
    out: PathLike,
    *,
    rows: int,
    cols: int,
    model: PathLike | None = None,
    weight_bits: int | None = None,
    acc_bits: int | None = None,
    skip_window: int | None = None,
    weight_depth: int | None = None,
    threshold_depth: int | None = None,
    max_inputs: int | None = None,
    lint: bool = True,
    force: bool = False,
) -> GenerateResult:
    """Verilog for an R x C core (sized for `model`'s artifact when given, its memories
    initialised with the model), lint-checked with Verilator, plus core.json and a FuseSoC .core.
    `out` must be new, empty or an earlier generate output (`force`: any earlier spikeforge output)."""
    from spikeforge.hw.generate import generate as generate_design
    from spikeforge.hw.generate import lint as lint_design
    from spikeforge.hw.generate import resolve_config
    from spikeforge.outputs import check_out

    check_out(out, "generate", force=force, inputs=[model])
    network = None
    if model is not None:
        from spikeforge.quant.artifact import load_artifact

        network, _ = load_artifact(model)
    cfg = resolve_config(rows, cols, network, weight_bits=weight_bits, acc_bits=acc_bits, skip_window=skip_window,
                         weight_depth=weight_depth, threshold_depth=threshold_depth, max_inputs=max_inputs)
    out = Path(out)
    manifest = generate_design(cfg, out, network, force=force)
    verilog = out / manifest["verilog"]
    note = None
    if lint:
        lint_design(verilog, manifest["top"])
        note = "clean"
    return GenerateResult(out, verilog, manifest["top"], cfg, manifest, note)


# --- verify ----------------------------------------------------------------------------------------
# verify(*, model, rows, cols, samples, vectors, sim, seed, stalls, out, data_dir)
# -> VerifyResult(ok, config, checks, payload, path): spikeforge.sim.rtl.verify.

verify = verify_rtl


# --- estimate --------------------------------------------------------------------------------------


def estimate(
    model: PathLike,
    *,
    rows: int,
    cols: int,
    weight_bits: int | None = None,
    skip_window: int = 32,
    target: str = "ecp5",
    fast: bool = True,
    fmax: float | None = None,
    images: int | None = None,
    data_dir: PathLike | None = None,
    out: PathLike | None = None,
) -> dict[str, Any]:
    """Latency (exact cycles on the test set), area (calibrated model, or synthesis with
    fast=False), Fmax and energy of an artifact on an R x C core. Writes estimate.json/.md into
    `out` when given; returns the report dict."""
    from spikeforge.hw.layout import config_for_network
    from spikeforge.sim.estimate import estimate as estimate_point
    from spikeforge.sim.estimate import load_model_and_data, write_reports

    net, manifest, x, y = load_model_and_data(model, data_dir, images)
    name = manifest.get("dataset", {}).get("name")
    cfg = config_for_network(net, rows, cols, weight_bits, skip_window)
    rep = estimate_point(net, cfg, x, labels=y, target=target, fast=fast, fmax_mhz=fmax)
    rep["model"] = {"path": str(Path(model).resolve()), "dataset": name}
    if out is not None:
        write_reports(rep, out)
    return rep


# --- flow ------------------------------------------------------------------------------------------


def flow(out: PathLike = "out/flow", **options: Any) -> dict[str, Any]:
    """The whole flow (train, quantize, generate, verify, estimate, report), staged, cached and
    resumable under `out`. `options` are those of `spikeforge.flow_stages.FlowOptions`. Returns the
    report dict (report.json); `report["ok"]` is False when the RTL sample did not verify."""
    from spikeforge.flow_stages import Flow, FlowOptions

    return Flow(FlowOptions(out=str(out), **options)).run()
