"""Weight quantization ranges, artifact round trip and rejection of malformed artifacts, NIR round trip."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool
from spikeforge.quant.artifact import ArtifactError, load_artifact, write_artifact
from spikeforge.quant.fold import QuantError
from spikeforge.quant.quantize import check_bits, quantize_weight


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8, 16])
@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_quantization_range(bits: int, per_channel: bool) -> None:
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(6, 5)) * np.array([1, 10, 0.1, 3, 1, 0.01])[:, None]
    w[3] = 0.0
    q, s = quantize_weight(w, bits, per_channel)
    qmax = (1 << (bits - 1)) - 1
    assert q.dtype == np.int64 and q.min() >= -qmax and q.max() <= qmax
    assert np.abs(q).max() == qmax  # the largest weight maps to the end of the range
    if per_channel:
        assert s[3] == 0 and not q[3].any()
        assert all(np.abs(q[j]).max() == qmax for j in range(6) if j != 3)
        err = np.abs(q * s[:, None] - w).max(axis=1)
        assert np.all(err <= s / 2 + 1e-12)
    else:
        assert np.all(s == s[0]) and np.abs(q * s[0] - w).max() <= s[0] / 2 + 1e-12


def test_bad_bits_are_refused() -> None:
    for bits in (1, 9, 12, 17):
        with pytest.raises(QuantError, match="--weight-bits"):
            check_bits(bits, 8)
    for bits in (0, 9):
        with pytest.raises(QuantError, match="--input-bits"):
            check_bits(8, bits)


def sample_network(seed: int = 0) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    conv = Conv(rng.integers(-7, 8, (4, 1, 3, 3)), rng.integers(-20, 20, 4), (1, 8, 8), 1, 1, True, 8)
    pool = Pool(2, 2, np.array([0, 1, 0, 1], np.uint8), (4, 8, 8))
    dense = Dense(rng.integers(-7, 8, (12, 64)), rng.integers(-5, 5, 12), True, 1)
    readout = Dense(rng.integers(-7, 8, (3, 12)), rng.integers(-5, 5, 3), False, 1)
    net = IntegerNetwork([conv, pool, dense, readout], (1, 8, 8), 8, 3, meta={"dataset": "synthetic"})
    net.validate()
    return net


def assert_same_network(a: IntegerNetwork, b: IntegerNetwork) -> None:
    assert len(a.layers) == len(b.layers) and a.input_shape == b.input_shape and a.input_bits == b.input_bits
    for x, y in zip(a.layers, b.layers, strict=True):
        assert x.kind == y.kind
        for name in ("weight", "threshold", "mode"):
            if hasattr(x, name):
                assert np.array_equal(getattr(x, name), getattr(y, name)), name
        for name in ("spiking", "input_bits", "stride", "padding", "kernel", "in_shape"):
            if hasattr(x, name):
                assert getattr(x, name) == getattr(y, name), name


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spikeforge.quant.pipeline import core_for

    out = tmp_path_factory.mktemp("art") / "model"
    write_artifact(
        out,
        sample_network(),
        4,
        {"provenance": {"method": "test"}},
        core=core_for(sample_network(), 2, 2, 4),
        files={"report.md": "# r\n"},
    )
    return out


def test_round_trip(artifact: Path) -> None:
    net, manifest = load_artifact(artifact)
    assert_same_network(sample_network(), net)
    assert manifest["schema"] == "spikeforge-artifact" and manifest["schema_version"] == 2
    assert manifest["acc_bits_required"] == sample_network().required_acc_bits()
    assert [e.get("acc_bits") for e in manifest["layers"]] == [
        sample_network().layer_required_acc_bits()[0],
        None,
        *sample_network().layer_required_acc_bits()[1:],
    ]
    assert manifest["memory_files"] and all((artifact / f).is_file() for f in manifest["memory_files"])
    x = np.random.default_rng(1).random((16, 1, 8, 8))
    assert np.array_equal(sample_network().forward(x)[1], net.forward(x)[1])


def test_atomic_replace_keeps_no_temp_dirs(tmp_path: Path) -> None:
    out = tmp_path / "a"
    write_artifact(out, sample_network(0), 4)
    (out / "stale.txt").write_text("old")
    write_artifact(out, sample_network(1), 4)
    assert not (out / "stale.txt").exists()
    assert_same_network(sample_network(1), load_artifact(out)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_nir_round_trip(tmp_path: Path) -> None:
    import nir

    from spikeforge.quant.nir_io import from_nir, read_nir, write_nir

    net = sample_network()
    path = write_nir(net, tmp_path / "net.nir", scales=[[0.5] * 4, [0.25] * 12, [0.1]])
    graph = nir.read(path)
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Conv2d", "LIF", "Flatten", "Affine", "Output"}
    # the core fires on acc >= T; the graph on acc - T + 0.5 > 0 (docs/INTEROP.md)
    assert np.array_equal(graph.nodes["layer2"].bias, 0.5 - net.layers[2].threshold)
    assert_same_network(net, read_nir(path))
    assert_same_network(net, from_nir(graph))


# --- malformed artifacts ----------------------------------------------------------------------


def reseal(root: Path) -> None:
    """Record the current sha256/size of weights.npz in the manifest (a hostile edit of both)."""
    from spikeforge.quant.artifact_io import file_record

    m = json.loads((root / "manifest.json").read_text())
    if isinstance(m, dict) and isinstance(m.get("files"), dict) and (root / "weights.npz").is_file():
        m["files"]["weights.npz"] = file_record(root / "weights.npz")
        (root / "manifest.json").write_text(json.dumps(m))


def _mutations() -> list:
    """(description, function(dir)) pairs; each leaves an artifact that must be rejected."""

    def manifest_edit(fn):
        def apply(root: Path) -> None:
            m = json.loads((root / "manifest.json").read_text())
            fn(m)
            (root / "manifest.json").write_text(json.dumps(m))

        return apply

    def arrays_edit(fn):
        # Re-sealed: the manifest's sha256 is updated too, so the checks behind the hash are reached.
        def apply(root: Path) -> None:
            with np.load(root / "weights.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            fn(arrays)
            np.savez(root / "weights.npz", **arrays)
            reseal(root)

        return apply

    def setp(path, value):
        def fn(m):
            obj = m
            for key in path[:-1]:
                obj = obj[key]
            obj[path[-1]] = value

        return fn

    def delp(path):
        def fn(m):
            obj = m
            for key in path[:-1]:
                obj = obj[key]
            del obj[path[-1]]

        return fn

    muts = [
        (
            "truncated json",
            lambda r: (r / "manifest.json").write_text((r / "manifest.json").read_text()[:50]),
        ),
        ("not json", lambda r: (r / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")),
        ("json list", lambda r: (r / "manifest.json").write_text("[1, 2]")),
        ("no manifest", lambda r: (r / "manifest.json").unlink()),
        ("no weights", lambda r: (r / "weights.npz").unlink()),
        ("weights garbage", lambda r: (r / "weights.npz").write_bytes(b"PK\x03\x04 broken zip")),
        ("weights empty", lambda r: (r / "weights.npz").write_bytes(b"")),
        ("weights npy", lambda r: np.save(open(r / "weights.npz", "wb"), np.zeros(3))),
        ("weights pickle", lambda r: np.savez(r / "weights.npz", layer0_weight=np.array([{}], dtype=object))),
        ("weights pickle resealed", lambda r: (np.savez(r / "weights.npz", layer0_weight=np.array([{}], dtype=object)),
                                               reseal(r))),
        ("symlinked weights", lambda r: ((r / "weights.npz").rename(r / "w2"), (r / "weights.npz").symlink_to("w2"))),
        ("weights hash", lambda r: flip_byte(r / "weights.npz")),
        ("memory file path", manifest_edit(lambda m: m["memory_files"].__setitem__(0, "../../../../etc/passwd"))),
        ("memory file edited", lambda r: (r / m0(r)).write_text("0" * 8 + "\n")),
        ("core type", manifest_edit(setp(["core"], [1]))),
        ("core rows", manifest_edit(lambda m: m["core"].__setitem__("rows", -2))),
        ("pool mode word", manifest_edit(setp(["layers", 1, "mode"], ["and"] * 3))),
        ("extra member", arrays_edit(lambda a: a.__setitem__("junk", np.zeros(3, np.int64)))),
    ]
    top = ["schema", "schema_version", "dataset", "input", "weight_bits", "layers"]
    muts += [(f"missing {k}", manifest_edit(delp([k]))) for k in top]
    muts += [(f"wrong type {k}", manifest_edit(setp([k], "x" if k != "schema" else 3))) for k in top]
    muts += [
        ("schema", manifest_edit(setp(["schema"], "other"))),
        ("version", manifest_edit(setp(["schema_version"], 3))),
        ("version 1", manifest_edit(setp(["schema_version"], 1))),
        ("version bool", manifest_edit(setp(["schema_version"], True))),
        ("input bits 0", manifest_edit(setp(["input", "bits"], 0))),
        ("input bits 9", manifest_edit(setp(["input", "bits"], 9))),
        ("input scale", manifest_edit(setp(["input", "scale"], 0.5))),
        (
            "input scale nan",
            lambda r: (r / "manifest.json").write_text(
                (r / "manifest.json").read_text().replace('"scale": 0.00392156862745098', '"scale": NaN')
            ),
        ),
        ("input range", manifest_edit(setp(["input", "range"], [-1, 1]))),
        ("weight bits 9", manifest_edit(setp(["weight_bits"], 9))),
        ("weight bits below data", manifest_edit(setp(["weight_bits"], 2))),
        ("num classes", manifest_edit(setp(["dataset", "num_classes"], 4))),
        ("input shape", manifest_edit(setp(["dataset", "input_shape"], [1, 8]))),
        ("input shape neg", manifest_edit(setp(["dataset", "input_shape"], [1, -8, 8]))),
        ("empty layers", manifest_edit(setp(["layers"], []))),
        ("acc bits", manifest_edit(setp(["acc_bits_required"], 3))),
        ("weights file path", manifest_edit(setp(["weights_file"], "../x.npz"))),
        ("readout not last", manifest_edit(lambda m: m["layers"].append(dict(m["layers"][1])))),
        ("pool last", manifest_edit(lambda m: m["layers"].pop())),
        ("spiking readout", manifest_edit(setp(["layers", 3, "spiking"], True))),
        ("non-spiking hidden", manifest_edit(setp(["layers", 2, "spiking"], False))),
    ]
    for i in range(4):
        muts += [
            (f"layer {i} type", manifest_edit(setp(["layers", i, "type"], "lstm"))),
            (f"layer {i} not obj", manifest_edit(setp(["layers", i], 7))),
            (f"layer {i} no arrays", manifest_edit(delp(["layers", i, "arrays"]))),
            (f"layer {i} out shape", manifest_edit(setp(["layers", i, "out_shape"], [5, 5, 5]))),
            (f"layer {i} in shape", manifest_edit(setp(["layers", i, "in_shape"], [2, 8, 8]))),
        ]
    for i in (0, 2, 3):
        w, t = f"layer{i}_weight", f"layer{i}_threshold"
        muts += [
            (f"{w} missing", arrays_edit(lambda a, w=w: a.pop(w))),
            (f"{t} missing", arrays_edit(lambda a, t=t: a.pop(t))),
            (f"{w} float", arrays_edit(lambda a, w=w: a.__setitem__(w, a[w].astype(np.float32)))),
            (f"{w} nan", arrays_edit(lambda a, w=w: a.__setitem__(w, np.full(a[w].shape, np.nan)))),
            (f"{t} inf", arrays_edit(lambda a, t=t: a.__setitem__(t, np.full(a[t].shape, np.inf)))),
            (f"{t} float", arrays_edit(lambda a, t=t: a.__setitem__(t, a[t] + 0.5))),
            (f"{w} bool", arrays_edit(lambda a, w=w: a.__setitem__(w, a[w] > 0))),
            (f"{w} shape", arrays_edit(lambda a, w=w: a.__setitem__(w, a[w][:-1]))),
            (f"{t} shape", arrays_edit(lambda a, t=t: a.__setitem__(t, a[t][:-1]))),
            (f"{w} range", arrays_edit(lambda a, w=w: a.__setitem__(w, a[w] * 100))),
            (f"{t} huge", arrays_edit(lambda a, t=t: a.__setitem__(t, a[t] + (1 << 50)))),
            (f"layer {i} weight bits", manifest_edit(setp(["layers", i, "weight_bits"], 3))),
            (f"layer {i} weight bits type", manifest_edit(setp(["layers", i, "weight_bits"], "4"))),
            (f"layer {i} spiking type", manifest_edit(setp(["layers", i, "spiking"], "yes"))),
            (f"layer {i} input bits", manifest_edit(setp(["layers", i, "input_bits"], 4))),
            (f"layer {i} weight shape", manifest_edit(setp(["layers", i, "weight_shape"], [3, 3]))),
            (f"layer {i} array ref", manifest_edit(setp(["layers", i, "arrays", "weight"], "nope"))),
            (f"layer {i} array ref type", manifest_edit(setp(["layers", i, "arrays", "threshold"], 5))),
            (f"layer {i} acc bits", manifest_edit(setp(["layers", i, "acc_bits"], 2))),
        ]
    muts += [
        ("pool mode 2", arrays_edit(lambda a: a.__setitem__("layer1_mode", a["layer1_mode"] + 2))),
        ("pool mode missing", arrays_edit(lambda a: a.pop("layer1_mode"))),
        ("pool mode shape", arrays_edit(lambda a: a.__setitem__("layer1_mode", a["layer1_mode"][:2]))),
        ("pool kernel", manifest_edit(setp(["layers", 1, "kernel"], 0))),
        ("pool kernel big", manifest_edit(setp(["layers", 1, "kernel"], 99))),
        ("pool stride type", manifest_edit(setp(["layers", 1, "stride"], 2.0))),
        ("conv stride", manifest_edit(setp(["layers", 0, "stride"], 0))),
        ("conv padding", manifest_edit(setp(["layers", 0, "padding"], -1))),
        ("conv padding changes shape", manifest_edit(setp(["layers", 0, "padding"], 0))),
    ]
    return muts


def flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] = (data[int(len(data) * at)] + 1) % 256  # twice is still a change
    path.write_bytes(bytes(data))


def m0(root: Path) -> str:
    return json.loads((root / "manifest.json").read_text())["memory_files"][0]


MUTATIONS = _mutations()


def test_enough_distinct_mutations() -> None:
    assert len(MUTATIONS) >= 100 and len({name for name, _ in MUTATIONS}) == len(MUTATIONS)


def _check_rejected(root: Path) -> str:
    with pytest.raises(ArtifactError) as info:
        load_artifact(root)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and len(message) < 400
    return message


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(MUTATIONS), second=st.one_of(st.none(), st.sampled_from(MUTATIONS)))
def test_malformed_artifacts_are_rejected(
    artifact: Path, tmp_path_factory: pytest.TempPathFactory, first, second
) -> None:
    root = tmp_path_factory.mktemp("bad") / "a"
    shutil.copytree(artifact, root)
    for _, mutate in [first] + ([second] if second is not None else []):
        try:
            mutate(root)
        except (
            FileNotFoundError,
            KeyError,
            IndexError,
            TypeError,
            json.JSONDecodeError,
            ValueError,
            UnicodeDecodeError,
            AttributeError,
            EOFError,
            OSError,
            zipfile.BadZipFile,  # the first mutation corrupted the archive the second edits
        ):
            pass  # the first mutation already removed what the second edits: still malformed
    _check_rejected(root)


def test_each_mutation_rejected(artifact: Path, tmp_path: Path) -> None:
    for index, (name, mutate) in enumerate(MUTATIONS):
        root = tmp_path / f"a{index}"
        shutil.copytree(artifact, root)
        mutate(root)
        try:
            _check_rejected(root)
        except BaseException as exc:
            raise AssertionError(f"mutation {name!r} was not rejected properly") from exc


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "is not a directory" in _check_rejected(tmp_path / "f")
    assert "is not a directory" in _check_rejected(tmp_path / "missing")
