"""spikeforge's NIR export runs in snnTorch and Norse exactly as the golden model, on real digits images.

The graphs are loaded by the tools' own importers (snnTorch import_from_nir, Norse from_nir) and fed
the 360 digits test images as the dataset gives them: [0, 1] floats, batched.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from spikeforge.integer_network import Dense, IntegerNetwork
from spikeforge.model.data import load_dataset

snntorch = pytest.importorskip("snntorch")
nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

DATA = Path(__file__).resolve().parent / "data"


def conv_network(seed: int = 0) -> IntegerNetwork:
    """test_quant_artifact's conv -> OR/AND pool -> dense -> readout, with conv thresholds spread
    around its accumulators on digits images and a 10-class readout."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_quant_artifact import sample_network

    rng = np.random.default_rng(seed)
    net = sample_network(seed)
    net.layers[0].threshold = rng.integers(-600, 600, 4)
    net.layers[3] = Dense(rng.integers(-7, 8, (10, 12)), rng.integers(-5, 5, 10), False, 1)
    net.num_classes = 10
    net.validate()
    return net


def snntorch_run(path: Path, x: np.ndarray) -> np.ndarray:
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(nir.read(path))
    with torch.no_grad():
        out, _ = module(torch.as_tensor(x))
    return out.numpy()


def norse_run(path: Path, x: np.ndarray) -> np.ndarray:
    norse = pytest.importorskip("norse.torch")
    logging.getLogger().setLevel(logging.ERROR)
    module = norse.from_nir(nir.read(path))
    with torch.no_grad():
        out = module(torch.as_tensor(x))
    return (out[0] if isinstance(out, tuple) else out).numpy()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The snnTorch-trained fixture graph, imported and quantized by spikeforge."""
    from spikeforge.api import quantize_nir

    out = tmp_path_factory.mktemp("nir") / "artifact"
    quantize_nir(DATA / "snntorch_digits.nir", out, rows=2, cols=2)
    return out


def test_export_uses_nodes_both_tools_import(tmp_path: Path) -> None:
    from spikeforge.quant.nir_io import read_nir, write_nir

    net = conv_network()
    path = write_nir(net, tmp_path / "net.nir")
    graph = nir.read(path)  # nir's own reader, with its type check
    types = [type(n).__name__ for n in graph.nodes.values()]
    assert "Threshold" not in types and "SumPool2d" not in types and "AvgPool2d" not in types
    assert types.count("LIF") == 3 and types.count("Flatten") == 1
    flatten = next(n for n in graph.nodes.values() if isinstance(n, nir.Flatten))
    assert int(flatten.start_dim) == -3  # flattens [c, h, w] in NIR, keeps torch's batch axis
    for lif in (n for n in graph.nodes.values() if isinstance(n, nir.LIF)):
        assert np.all(lif.v_threshold == 0) and np.all(lif.tau == graph.metadata["dt"])  # one step, no memory
    assert graph.metadata["input_scale"] == 255
    restored = read_nir(path)  # spikeforge's reader rebuilds the identical integer network
    for a, b in zip(net.layers, restored.layers, strict=True):
        for name in ("weight", "threshold", "mode"):
            if hasattr(a, name):
                assert np.array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("run", [snntorch_run, norse_run], ids=["snntorch", "norse"])
def test_conv_export_equals_golden_model(run, digits, tmp_path: Path) -> None:
    from spikeforge.quant.nir_io import write_nir

    net = conv_network()
    pred, values = net.forward(digits.x_test)
    path = write_nir(net, tmp_path / "net.nir")
    out = run(path, digits.x_test)
    assert out.shape == values.shape
    assert np.array_equal(out, values)  # the readout is the core's value itself, exactly
    assert np.array_equal(out.argmax(1), pred)
    _, spikes = net.forward(digits.x_test, collect=True)[1:]
    assert 0.05 < spikes[0].mean() < 0.95 and 0.02 < spikes[2].mean() < 0.98  # thresholds do matter


def test_trained_export_in_snntorch_equals_golden_on_every_test_image(trained_artifact: Path, digits) -> None:
    """Acceptance: snnTorch's import_from_nir of spikeforge's export, fed the 360 digits test images as
    [0, 1] floats, predicts the golden model's class on 100 % of them."""
    from spikeforge.quant.artifact import load_artifact

    net, _ = load_artifact(trained_artifact)
    pred, values = net.forward(digits.x_test)
    out = snntorch_run(trained_artifact / "network.nir", digits.x_test)
    assert len(out) == 360 and np.mean(out.argmax(1) == pred) == 1.0
    assert np.array_equal(out, values)
    # one image at a time, unbatched and batched, and twice: the exported LIF keeps no state between calls
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(nir.read(trained_artifact / "network.nir"))
    with torch.no_grad():
        for i in (0, 1, 0):
            assert module(torch.as_tensor(digits.x_test[i]))[0].argmax().item() == pred[i]
            assert module(torch.as_tensor(digits.x_test[i : i + 1]))[0].argmax().item() == pred[i]
    # the first layer's float32 error (the only inexact one) stays far inside the 0.5 margin
    w = torch.as_tensor(net.layers[0].weight.astype(np.float32) * 255)
    acc = (torch.as_tensor(digits.x_test).reshape(360, -1) @ w.T).numpy()
    assert np.abs(acc - net.quantize_input(digits.x_test).reshape(360, -1) @ net.layers[0].weight.T).max() < 0.05


def test_trained_export_in_norse_equals_golden(trained_artifact: Path, digits) -> None:
    from spikeforge.quant.artifact import load_artifact

    net, _ = load_artifact(trained_artifact)
    pred, values = net.forward(digits.x_test)
    out = norse_run(trained_artifact / "network.nir", digits.x_test)
    assert np.mean(out.argmax(1) == pred) == 1.0 and np.array_equal(out, values)


def test_interop_round_trip_example_runs(tmp_path: Path, digits, monkeypatch) -> None:
    """docs/INTEROP.md's round trip (untrained here): ten lines, and snnTorch gives the golden class."""
    import re
    import runpy

    doc = (Path(__file__).resolve().parent.parent / "docs" / "INTEROP.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 10
    monkeypatch.chdir(tmp_path)
    (tmp_path / "example.py").write_text(code.replace("# ... train it", "images = IMAGES  # ... train it"))
    scope = runpy.run_path(str(tmp_path / "example.py"), init_globals={"IMAGES": digits.x_test})
    pred = scope["art"].network.forward(digits.x_test)[0]
    assert np.array_equal(scope["logits"].detach().numpy().argmax(1), pred)


def test_export_imports_back_as_a_float_graph(trained_artifact: Path, digits, tmp_path: Path) -> None:
    """spikeforge's own export, read as any tool's float graph (its metadata gives dt and the input
    range), quantizes back to a network with the same class on every test image."""
    from spikeforge.api import quantize_nir
    from spikeforge.quant.artifact import load_artifact

    net, _ = load_artifact(trained_artifact)
    again = quantize_nir(trained_artifact / "network.nir", tmp_path / "again", rows=2, cols=2)
    assert again.report["agreement"] == 1.0
    assert np.array_equal(again.network.forward(digits.x_test)[0], net.forward(digits.x_test)[0])
