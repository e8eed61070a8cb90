"""A float NIR graph -> artifact: the quantize stage for a model brought from snnTorch, Norse, ...

The graph is read as untrusted input (quant/nir_read.read_graph), lowered to the float blocks the
quantizer folds (quant/nir_import.lower), quantized as spikeforge's own checkpoints are
(quant/quantize.quantize_blocks), compared with the graph's float reference executor on the test
set (quant/nir_reference.run_graph, quant/report.compare) and written as the usual artifact
(quant/pipeline.write_quantized), so generate, verify, estimate and the flow take it unchanged.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import __version__
from spikeforge.quant.nir_import import ImportOptions, lower
from spikeforge.quant.nir_read import NIRError, read_graph
from spikeforge.quant.pipeline import QuantizeResult, check_options, write_quantized


def is_nir_file(path: str | os.PathLike) -> bool:
    """A `.nir` name, or an HDF5 file (what nir.write produces whatever the name)."""
    p = Path(path)
    if p.suffix.lower() == ".nir":
        return True
    try:
        with open(p, "rb") as handle:
            return handle.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def quantize_nir(
    graph_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset: str = "digits",
    data_dir: str | os.PathLike | None = None,
    weight_bits: int = 8,
    per_channel: bool = False,
    input_bits: int = 8,
    rows: int = 8,
    cols: int = 8,
    timesteps: int | None = None,
    dt: float | None = None,
    input_range: tuple[float, float] | None = None,
    input_encoding: str | None = None,
    split_seed: int = 0,
    force: bool = False,
) -> QuantizeResult:
    """Quantize the NIR graph at `graph_path` into the artifact directory `out` (replaced atomically).

    `dataset` names the images the graph classifies (its test split gives the report); `dt`,
    `timesteps`, `input_range` and `input_encoding` say what the graph does not (None: the graph's
    metadata, else 1e-4 s, 1, [0, 1] and direct; docs/INTEROP.md).
    """
    from spikeforge.model.data import load_dataset
    from spikeforge.outputs import check_out
    from spikeforge.quant.nir_reference import run_graph
    from spikeforge.quant.quantize import quantize_blocks
    from spikeforge.quant.report import compare, integer_predict

    check_options(weight_bits, input_bits, rows, cols)
    check_out(out, "quantize", force=force, inputs=[graph_path, data_dir])
    graph = read_graph(graph_path)
    ds = load_dataset(dataset, data_dir, split_seed)
    lowered = lower(graph, ds.input_shape, ImportOptions(timesteps, dt, input_range, input_encoding), input_bits)
    options = lowered.options
    outputs = int(np.prod(lowered.blocks[-1].out_shape()))
    if outputs != ds.num_classes:
        raise NIRError(f"NIR graph reads out {outputs} values but dataset {dataset!r} has {ds.num_classes} classes; "
                       "choose its dataset with --dataset")
    qres = quantize_blocks(lowered.blocks, ds.input_shape, ds.num_classes, weight_bits, per_channel, input_bits)
    qres.network.meta["dataset"] = dataset
    values, rates = run_graph(graph, ds.x_test, options)
    ipred, irates = integer_predict(qres, ds.x_test)
    report = compare(values.argmax(axis=1), [rates[n] for n in lowered.rate_nodes], ipred, irates, ds.y_test, qres)
    report.update(source="nir", readout=lowered.readout, dt=lowered.dt, notes=lowered.notes)
    sha = hashlib.sha256(Path(graph_path).read_bytes()).hexdigest()
    extra: dict[str, Any] = {
        "per_channel": bool(per_channel),
        "provenance": {
            "nir_file": str(Path(graph_path).resolve()),
            "nir_sha256": sha,
            "method": "nir",
            "arch": {"name": "nir", "nodes": [n.type for n in graph.nodes.values()]},
            "import": {"dt": lowered.dt, "timesteps": options.timesteps, "input_range": list(options.input_range),
                       "input_encoding": options.encoding, "readout": lowered.readout},
            "float_accuracy": report["float_accuracy"],
            "integer_accuracy": report["integer_accuracy"],
            "agreement": report["agreement"],
            "created_by": f"spikeforge {__version__}",
        },
    }
    return write_quantized(out, qres, report, extra, rows, cols, weight_bits, force=force)
