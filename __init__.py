"""spikeforge: co-design ultra-low-latency SNNs and the accumulate-only hardware that runs them."""

import os as _os
import tempfile as _tempfile

__version__ = "0.1.0"


class SpikeforgeError(Exception):
    """Bad input from the user: a one-line message that names the field and the fix.

    The command line prints it as one line and exits non-zero, never with a traceback.
    Every subpackage's error classes (ConfigError, ArtifactError, DataError, ...) derive from it.
    """


def atomic_write_bytes(path: str | _os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder and a rename: a crash leaves
    either the old file or the new one, never half of one."""
    path = _os.fspath(path)
    folder = _os.path.dirname(path) or "."
    _os.makedirs(folder, exist_ok=True)
    fd, tmp = _tempfile.mkstemp(dir=folder, prefix=f".{_os.path.basename(path)}.", suffix=".tmp")
    try:
        with _os.fdopen(fd, "wb") as handle:
            handle.write(data)
        _os.replace(tmp, path)
    except BaseException:
        if _os.path.exists(tmp):
            _os.unlink(tmp)
        raise


def atomic_write_text(path: str | _os.PathLike, text: str) -> None:
    """atomic_write_bytes for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


# The library API (spikeforge/api.py), imported on first use so `import spikeforge` stays light.
_API = ("train", "quantize", "quantize_nir", "export_nir", "generate", "verify", "estimate", "flow")


def __getattr__(name: str):
    if name in _API:
        from spikeforge import api

        return getattr(api, name)
    raise AttributeError(f"module 'spikeforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
