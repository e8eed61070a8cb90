"""Importing float NIR graphs: the reference executor against snnTorch's and Norse's own execution,
the linear merges, the quantized graph against its reference, and one-line refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from spikeforge.model.data import load_dataset
from spikeforge.quant.nir_import import ImportOptions, lower
from spikeforge.quant.nir_read import graph_from_nir
from spikeforge.quant.nir_reference import run_graph

snn = pytest.importorskip("snntorch")
nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def random_snntorch(seed: int = 0):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nir_models import snntorch_mlp

    return snntorch_mlp(32, seed)


def lif(n: int, thr, tau=1e-4, r=None, **extra):
    tau = np.full(n, tau) if np.ndim(tau) == 0 else np.asarray(tau)
    return nir.LIF(tau=tau, r=tau / 1e-4 if r is None else np.full(n, r), v_leak=np.zeros(n),
                   v_threshold=np.broadcast_to(np.asarray(thr, float), (n,)).copy(), v_reset=np.zeros(n), **extra)


def mlp_graph(seed: int = 0, hidden: int = 16, neuron=None, readout_neuron: bool = False, **kw):
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "fc1": nir.Affine(weight=rng.normal(0, 0.3, (hidden, 64)), bias=rng.normal(0, 0.1, hidden)),
             "lif1": neuron if neuron is not None else lif(hidden, 0.2, **kw),
             "fc2": nir.Affine(weight=rng.normal(0, 0.3, (10, hidden)), bias=rng.normal(0, 0.1, 10))}
    if readout_neuron:
        nodes["lif2"] = lif(10, 1.0)
    nodes["output"] = nir.Output(output_type={"output": np.array([10])})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), type_check=False)


# --- the reference executor against the tools ---------------------------------------------------


def test_reference_equals_snntorch_model_one_step(digits) -> None:
    """snnTorch's own forward of a per-neuron model vs the reference run of its export_to_nir graph."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nir_models import export_snntorch, snntorch_forward

    net = random_snntorch()
    with torch.no_grad():
        net[0].weight *= 8.0  # untrained weights are small: make the hidden layer fire often
        mem = snntorch_forward(net, torch.as_tensor(digits.x_test)).numpy()
    graph = graph_from_nir(export_snntorch(net))
    values, rates = run_graph(graph, digits.x_test, ImportOptions())
    assert np.abs(values - mem).max() < 1e-4 and np.array_equal(values.argmax(1), mem.argmax(1))
    assert 0.05 < rates["1"] < 0.95


def test_reference_equals_snntorch_import_over_steps(digits) -> None:
    """Several steps: leak, reset to zero and the strict comparison as snnTorch's import_from_nir runs them."""
    from snntorch.import_nir import import_from_nir

    tau = np.random.default_rng(1).uniform(2e-4, 2e-3, 16)  # per-neuron decay 1 - dt / tau
    graph = mlp_graph(neuron=lif(16, 0.2, tau=tau))
    module = import_from_nir(graph)
    x = torch.as_tensor(digits.x_test).reshape(360, -1)
    total = 0.0
    with torch.no_grad():
        for steps in (1, 2, 3):
            total = total + module(x)[0].numpy()
            values, _ = run_graph(graph_from_nir(graph), digits.x_test, ImportOptions(timesteps=steps))
            assert np.abs(values - total).max() < 1e-4


def test_reference_equals_norse_from_nir(digits) -> None:
    """A Norse model's to_nir graph run by Norse's from_nir (dt = 1e-3) and by the reference."""
    norse = pytest.importorskip("norse.torch")
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.full((32,), 200.0), v_th=torch.rand(32) * 0.05,
                               v_leak=torch.zeros(32), v_reset=torch.zeros(32))
    model = norse.SequentialState(torch.nn.Linear(64, 32), norse.LIFBoxCell(p), torch.nn.Linear(32, 10))
    graph = norse.to_nir(model, torch.zeros(1, 64))
    lif_node = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
    assert np.allclose(np.asarray(lif_node.tau), 1e-3 / 200.0)  # Norse 1.1 writes tau = dt / tau_mem_inv
    module = norse.from_nir(graph)
    x = torch.as_tensor(digits.x_test).reshape(360, -1)
    state, total = None, 0.0
    with torch.no_grad():
        for steps in (1, 2, 3):
            out, state = module(x, state)
            total = total + out.numpy()
            values, _ = run_graph(graph_from_nir(graph), digits.x_test, ImportOptions(timesteps=steps, dt=1e-3))
            assert np.abs(values - total).max() < 1e-4


# --- merges and quantization ----------------------------------------------------------------------


def test_linear_merges_equal_the_nodes_in_sequence() -> None:
    from spikeforge.quant.nir_ops import Op, PoolSpec, compose

    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((5, 3, 11, 11)))
    w, b = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    for stride, pad, k, s, factor in ((1, 1, 2, 2, 0.25), (2, 0, 3, 1, 1.0), (1, 2, 2, 1, 0.25)):
        conv = Op("conv", w, b, (3, 11, 11), stride, pad)
        merged = compose([conv, PoolSpec(k, s, factor, conv.out_shape(), "p")])
        ref = F.avg_pool2d(F.conv2d(x, torch.as_tensor(w), torch.as_tensor(b), stride, pad), k, s) * (factor * k * k)
        got = F.conv2d(x, torch.as_tensor(merged.weight), torch.as_tensor(merged.bias), merged.stride, merged.padding)
        assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-10)
        pool = PoolSpec(k, s, factor, (3, 11, 11), "p")
        conv2 = Op("conv", w, b, pool.out_shape(), stride, 0)
        merged = compose([pool, conv2])
        ref = F.conv2d(F.avg_pool2d(x, k, s) * (factor * k * k), torch.as_tensor(w), torch.as_tensor(b), stride)
        got = F.conv2d(x, torch.as_tensor(merged.weight), torch.as_tensor(merged.bias), merged.stride)
        assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-10)
        pooled = F.avg_pool2d(x, k, s) * (factor * k * k)
        wd = rng.normal(size=(7, pooled[0].numel()))
        merged = compose([pool, Op("dense", wd, np.zeros(7), (pooled[0].numel(),))])
        got = x.reshape(5, -1) @ torch.as_tensor(merged.weight).T
        assert torch.allclose(got, pooled.reshape(5, -1) @ torch.as_tensor(wd).T, atol=1e-10)


def conv_graph(pool_thresholds=(0.5, 3.5, 0.5, 3.5)):
    """Conv -> AvgPool -> LIF -> SumPool -> IF (OR/AND per channel) -> Flatten -> Affine: every merge."""
    rng = np.random.default_rng(3)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1, (4, 1, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=rng.normal(0, 0.2, 4)),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])),
        "lif": lif(4 * 7 * 7, np.repeat(rng.uniform(0.5, 1.5, 4), 49)),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "if": nir.IF(r=np.ones(4), v_threshold=np.array(pool_thresholds), v_reset=np.zeros(4)),
        "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (10, 36)), bias=np.zeros(10)),
        "output": nir.Output(output_type={"output": np.array([10])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), type_check=False)


def test_conv_pool_graph_quantizes_to_its_reference(digits) -> None:
    from spikeforge.quant.quantize import quantize_blocks

    graph = graph_from_nir(conv_graph())
    lowered = lower(graph, (1, 8, 8), ImportOptions())
    assert [b.kind for b in lowered.blocks] == ["conv", "dense"] and lowered.blocks[0].pool == (2, 2)
    assert lowered.blocks[0].weight.shape[-1] == 4  # the 2x2 average merged into a 4x4 conv
    values, rates = run_graph(graph, digits.x_test, ImportOptions())
    qres = quantize_blocks(lowered.blocks, (1, 8, 8), 10, weight_bits=16, input_bits=8)
    pool = qres.network.layers[1]
    assert pool.kind == "pool" and pool.mode.tolist() == [0, 1, 0, 1]  # OR, AND, OR, AND
    pred, _, outs = qres.network.forward(digits.x_test, collect=True)
    assert np.mean(pred == values.argmax(1)) >= 0.99
    assert abs(outs[1].mean() - rates["if"]) < 0.01


def test_snntorch_fixture_imports_within_a_point(digits, tmp_path: Path) -> None:
    from spikeforge.api import quantize_nir
    from spikeforge.quant.artifact import load_artifact

    result = quantize_nir(DATA / "snntorch_digits.nir", tmp_path / "a", rows=2, cols=2)
    r = result.report
    assert r["source"] == "nir" and "membrane of '3'" in r["readout"] and r["dt"] == 1e-4
    assert abs(r["float_accuracy"] - r["integer_accuracy"]) <= 0.01 and r["agreement"] >= 0.99
    net, manifest = load_artifact(tmp_path / "a")
    assert manifest["provenance"]["method"] == "nir" and manifest["provenance"]["nir_sha256"]
    assert np.mean(net.forward(digits.x_test)[0] == digits.y_test) == pytest.approx(r["integer_accuracy"])


def test_input_range_is_folded_into_the_first_layer(digits) -> None:
    """A graph trained on [0, 255] pixels, or on [-1, 1], imports as the same network."""
    from spikeforge.quant.quantize import quantize_blocks

    base = mlp_graph(seed=4)
    values, _ = run_graph(graph_from_nir(base), digits.x_test, ImportOptions())
    for lo, hi in ((0.0, 255.0), (-1.0, 1.0)):
        g = mlp_graph(seed=4)
        w, b = g.nodes["fc1"].weight, g.nodes["fc1"].bias
        # the same function of the pixel p: W p + b = W' (lo + (hi - lo) p) + b'
        g.nodes["fc1"].weight = w / (hi - lo)
        g.nodes["fc1"].bias = b - lo * g.nodes["fc1"].weight.sum(axis=1)
        opts = ImportOptions(input_range=(lo, hi))
        v2, _ = run_graph(graph_from_nir(g), digits.x_test, opts)
        assert np.abs(v2 - values).max() < 1e-9
        lowered = lower(graph_from_nir(g), (1, 8, 8), opts)
        q = quantize_blocks(lowered.blocks, (1, 8, 8), 10, weight_bits=16)
        assert np.mean(q.network.forward(digits.x_test)[0] == values.argmax(1)) >= 0.99


def test_snntorch_conv_net_imports(digits) -> None:
    """snnTorch's own export of Conv2d -> AvgPool2d -> Leaky -> Flatten -> Linear -> Leaky: the
    reference equals snnTorch's forward, and the pool merges into the conv the core runs."""
    from snntorch import utils

    from spikeforge.quant.quantize import quantize_blocks

    torch.manual_seed(0)

    def leaky(shape, output=False):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.full(shape, 0.3), init_hidden=True,
                         output=output)

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.AvgPool2d(2), leaky((4, 4, 4)),
                              torch.nn.Flatten(), torch.nn.Linear(64, 10), leaky((10,), True))
    from snntorch.export_nir import export_to_nir

    with torch.no_grad():
        net[0].weight *= 3.0
        graph = graph_from_nir(export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0]))
        utils.reset(net)
        _, mem = net(torch.as_tensor(digits.x_test))
    values, rates = run_graph(graph, digits.x_test, ImportOptions())
    assert np.abs(values - mem.numpy()).max() < 1e-4 and 0.05 < rates["2"] < 0.95
    lowered = lower(graph, (1, 8, 8), ImportOptions())
    qres = quantize_blocks(lowered.blocks, (1, 8, 8), 10, weight_bits=16)
    assert [layer.kind for layer in qres.network.layers] == ["conv", "dense"]
    assert qres.network.layers[0].weight.shape[-1] == 4 and qres.network.layers[0].stride == 2
    assert np.mean(qres.network.forward(digits.x_test)[0] == values.argmax(1)) >= 0.99


def test_strict_fold_matches_the_float_comparison_at_ties() -> None:
    """NIR fires on `>`: with strict=True the integer threshold is one higher exactly at a tie."""
    from spikeforge.quant.fold import FloatBlock, fold_block

    step = 0.25
    theta = np.array([1.0, 1.1, -0.5, 0.0])  # 1.0 / 0.25 = 4 and -0.5 / 0.25 = -2 are exact ties
    for strict in (False, True):
        for sign in (1.0, -1.0):  # c < 0 is the AND-pool path
            block = FloatBlock(0, "dense", np.eye(4), np.zeros(4), (4,), theta=theta, strict=strict,
                               bn_scale=np.full(4, sign), bn_shift=np.zeros(4))
            (layer,), _ = fold_block(block, np.eye(4, dtype=np.int64), np.full(4, step))
            for j in range(4):
                for acc in range(-20, 21):
                    y = sign * step * acc
                    fires = y > theta[j] if strict else y >= theta[j]
                    assert (layer.weight[j, j] * acc >= layer.threshold[j]) == fires, (strict, sign, j, acc)
