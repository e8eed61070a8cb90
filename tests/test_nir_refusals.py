"""What a NIR import refuses, always as one line (exit 2 on the command line, no traceback):
unsupported nodes and parameters, and files that are not plain, bounded NIR graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikeforge.quant.nir_import import ImportOptions, lower
from spikeforge.quant.nir_read import NIRError, graph_from_nir, read_graph
from spikeforge.scripts.cli import main

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")

DATA = Path(__file__).resolve().parent / "data"


def graph(*named, edges=None):
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}), **dict(named),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=edges or list(zip(names[:-1], names[1:], strict=True)),
                        type_check=False)


def affine(n_out=16, n_in=64, seed=0):
    rng = np.random.default_rng(seed)
    return nir.Affine(weight=rng.normal(size=(n_out, n_in)), bias=np.zeros(n_out))


def lif(n=16, **over):
    p = dict(tau=np.full(n, 1e-4), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5), v_reset=np.zeros(n))
    p.update(over)
    return nir.LIF(**p)


def cuba(n=16, tau_syn=1e-3):
    return nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, 1e-4), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 0.5), v_reset=np.zeros(n), w_in=np.ones(n))


def recurrent_cuba():
    """The acceptance example: snnTorch's RSynaptic export shape, a CubaLIF with a recurrent weight."""
    nodes = {"fc": affine(), "rec.lif": cuba(), "rec.w_rec": affine(16, 16, 1), "fc2": affine(10, 16, 2)}
    edges = [("input", "fc"), ("fc", "rec.lif"), ("rec.lif", "rec.w_rec"), ("rec.w_rec", "rec.lif"),
             ("rec.lif", "fc2"), ("fc2", "output")]
    return graph(*nodes.items(), edges=edges)


REFUSED = {
    "recurrent CubaLIF": (recurrent_cuba, {}, "recurrent loop"),
    "CubaLIF with synaptic state": (lambda: graph(("fc", affine()), ("syn", cuba()), ("fc2", affine(10, 16))), {},
                                    "'syn' (CubaLIF): its synaptic current carries state"),
    "Delay": (lambda: graph(("fc", affine()), ("d", nir.Delay(delay=np.ones(16))), ("fc2", affine(10, 16))), {},
              "'d' (Delay) is not supported"),
    "multi-step LIF": (lambda: graph(("fc", affine()), ("lif", lif()), ("fc2", affine(10, 16))), {"timesteps": 4},
                       "does not route leaky multi-step graphs"),
    "v_leak": (lambda: graph(("fc", affine()), ("lif", lif(v_leak=np.full(16, 0.1))), ("fc2", affine(10, 16))), {},
               "'lif' (LIF): v_leak != 0"),
    "branch": (lambda: graph(("fc", affine()), ("lif", lif()), ("fc2", affine(10, 16)),
                             edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "output"),
                                    ("input", "fc2")]), {}, "several"),
    "input shape": (lambda: nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([60])}), "fc": affine(10, 60),
               "output": nir.Output(output_type={"output": np.array([10])})},
        edges=[("input", "fc"), ("fc", "output")], type_check=False), {}, "'input' (Input): shape [60]"),
    "two linears": (lambda: graph(("fc", affine()), ("lif", lif()), ("a", affine(16, 16)),
                                  ("c", nir.Conv2d(input_shape=None, weight=np.ones((1, 1, 1, 1)), stride=1, padding=0,
                                                   dilation=1, groups=1, bias=np.zeros(1)))), {},
                    "'c' (Conv2d)"),
    "rate coding": (lambda: graph(("fc", affine(10))), {"encoding": "rate"}, "--input-encoding 'rate'"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_unsupported_graphs_are_refused_in_one_line(name: str) -> None:
    make, options, expect = REFUSED[name]
    with pytest.raises(NIRError) as err:
        lower(graph_from_nir(make()), (1, 8, 8), ImportOptions(**options))
    message = str(err.value)
    assert expect in message and "\n" not in message


def test_count_pool_is_refused() -> None:
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(size=(2, 1, 3, 3)), stride=1, padding=1,
                                dilation=1, groups=1, bias=np.zeros(2)),
             "lif": lif(2 * 64, v_threshold=np.full(128, 0.5), tau=np.full(128, 1e-4), r=np.ones(128),
                        v_leak=np.zeros(128), v_reset=np.zeros(128)),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "if": nir.IF(r=np.ones(2), v_threshold=np.full(2, 1.5), v_reset=np.zeros(2)),
             "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0),
             "fc": affine(10, 32), "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), type_check=False)
    with pytest.raises(NIRError, match=r"'if' \(IF\) after pool 'pool' fires on 2 of 4 spikes"):
        lower(graph_from_nir(g), (1, 8, 8), ImportOptions())


def test_cli_refuses_a_recurrent_graph_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Acceptance: a recurrent CubaLIF with a non-trivial synapse -> one line, exit 2, no traceback."""
    path = tmp_path / "rec.nir"
    nir.write(path, recurrent_cuba())
    assert main(["quantize", str(path), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "NIR node 'rec.lif' (CubaLIF) is on a recurrent loop" in err
    assert not (tmp_path / "a").exists()


def test_cli_nir_flags(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["quantize", str(DATA / "snntorch_digits.nir"), "--out", str(tmp_path / "a")]
    assert main([*args, "--qat-epochs", "1"]) == 2
    assert main([*args, "--input-range", "0;1"]) == 2
    assert main([*args, "--dt", "-1"]) == 2
    assert main([*args, "--dataset", "mnist5k"]) == 2  # 784-pixel images for a 64-input graph
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("spikeforge quantize: error: ") for line in err)
    assert "--qat-epochs" in err[0] and "--input-range" in err[1] and "--dt" in err[2]
    assert "does not hold one [1, 28, 28] image" in err[3]


# --- the file reader --------------------------------------------------------------------------------


def _write(path: Path, build) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.8")
        node = f.create_group("node")
        node.create_dataset("type", data="NIRGraph")
        node.create_group("nodes")
        node.create_dataset("edges", data=np.zeros((0, 2), dtype="S1"))
        build(f, node)
    return path


CRAFTED = {
    "external link": (lambda f, n: n["nodes"].__setitem__("x", h5py.ExternalLink("other.h5", "/")), "ExternalLink"),
    "soft link": (lambda f, n: n["nodes"].__setitem__("x", h5py.SoftLink("/version")), "SoftLink"),
    "object dtype": (lambda f, n: n["nodes"].create_group("a").create_dataset(
        "weight", data=np.array([np.arange(3), np.arange(2)], dtype=object), dtype=h5py.vlen_dtype("i8")),
        "object dtype"),
    "compressed bomb": (lambda f, n: n["nodes"].create_group("a").create_dataset(
        "weight", shape=(1 << 13, 1 << 12), dtype="f8", compression="gzip"), "more than"),
    "compound dtype": (lambda f, n: n["nodes"].create_group("a").create_dataset(
        "weight", data=np.zeros(2, dtype=[("a", "i4"), ("b", "f4")])), "dtype"),
    "deep nesting": (lambda f, n: n["nodes"].create_group("a/" * 14 + "b"), "nested more than"),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_files_are_refused_before_reading(name: str, tmp_path: Path) -> None:
    build, expect = CRAFTED[name]
    path = _write(tmp_path / "x.nir", build)
    with pytest.raises(NIRError, match=expect) as err:
        read_graph(path)
    assert "\n" not in str(err.value)


def test_files_that_are_not_nir(tmp_path: Path) -> None:
    (tmp_path / "text.nir").write_text("not hdf5")
    (tmp_path / "cut.nir").write_bytes((DATA / "snntorch_digits.nir").read_bytes()[:3000])
    with h5py.File(tmp_path / "empty.nir", "w") as f:
        f.create_dataset("version", data="1.0.8")
    for name, expect in (("missing.nir", "does not exist"), ("text.nir", "not an HDF5"),
                         ("cut.nir", "cannot be read"), ("empty.nir", "no 'node' group")):
        with pytest.raises(NIRError, match=expect):
            read_graph(tmp_path / name)
    g = read_graph(DATA / "snntorch_digits.nir")  # the real file reads, with its five nodes in one chain
    assert sorted(n.type for n in g.nodes.values()) == ["Affine", "Affine", "Input", "LIF", "LIF", "Output"]


def test_flow_nir_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["flow", "--nir", str(tmp_path / "none.nir"), "--out", str(tmp_path / "f")]) == 2
    assert main(["flow", "--nir", str(DATA / "snntorch_digits.nir"), "--checkpoint", str(DATA / "x.pt"),
                 "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "does not exist" in err[0] and "give one of them" in err[1]
