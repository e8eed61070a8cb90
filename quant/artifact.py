"""The artifact directory: manifest.json + weights.npz + RTL memory init files.

`write_artifact` (artifact_io.py) builds the whole directory beside the target and renames it
into place. `load_artifact` trusts nothing: symlinks are refused, every file the manifest binds
is checked against its recorded sha256 and size before it is parsed, only the arrays the
manifest names are read (each size-checked before decompression), every field is checked
(artifact_checks.py), and the memory files must hold exactly what the weights imply. Any problem
is an `ArtifactError`: one line naming the field and the fix.

Format version 2 added the hashes; a version-1 artifact is refused with the fix (re-run
`spikeforge quantize`), see docs/SECURITY.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeforge.integer_network import IntegerNetwork
from spikeforge.quant.artifact_checks import (
    FIX,
    LAYER_TYPES,
    MANIFEST,
    MAX_DIM,
    MEMORY_DIR,
    SCHEMA,
    SCHEMA_VERSION,
    WEIGHT_BITS,
    WEIGHTS,
    ArtifactError,
    _fail,
    validate_manifest_and_build,
)
from spikeforge.quant.artifact_io import (
    NpzMembers,
    build_manifest,
    check_all_named,
    check_file,
    check_memory_files,
    read_manifest,
    write_artifact,
)

__all__ = ["FIX", "LAYER_TYPES", "MANIFEST", "MAX_DIM", "MEMORY_DIR", "SCHEMA", "SCHEMA_VERSION", "WEIGHTS",
           "WEIGHT_BITS", "ArtifactError", "build_manifest", "check_dataset", "load_artifact", "load_artifact_data",
           "write_artifact"]


def load_artifact(path: str | os.PathLike) -> tuple[IntegerNetwork, dict]:
    """Validate the artifact at `path` and return (IntegerNetwork, manifest)."""
    root = Path(path)
    manifest = read_manifest(root)
    name = manifest.get("weights_file", WEIGHTS)
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise _fail("manifest.weights_file", f"={str(name)[:60]!r} is not a file name inside the artifact")
    try:
        version = manifest.get("schema_version")
        if version == SCHEMA_VERSION:  # an older/other version is refused by the field checks below
            weights = check_file(root, manifest, name)
        else:
            weights = root / name
            validate_manifest_and_build(manifest, None)  # raises on the schema or the version
            raise _fail("manifest.schema_version", f"is {version!r}, this spikeforge reads {SCHEMA_VERSION}")
        with NpzMembers(weights) as members:
            net = validate_manifest_and_build(manifest, members)
            check_all_named(members)
        check_memory_files(root, manifest, net)
    except ArtifactError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # A check above missed a malformed combination: still one line, never a traceback.
        raise ArtifactError(
            f"manifest.json: inconsistent artifact ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}); {FIX}"
        ) from None
    return net, manifest


def check_dataset(manifest: dict, dataset: Any) -> None:
    """Refuse a dataset whose images or classes are not those the artifact's manifest states."""
    stated = tuple(manifest["dataset"]["input_shape"])
    if tuple(dataset.input_shape) != stated:
        raise _fail("dataset.input_shape", f"={list(stated)} but dataset {dataset.name!r} has images of shape "
                    f"{list(dataset.input_shape)}")
    classes = int(manifest["dataset"]["num_classes"])
    if int(dataset.num_classes) != classes:
        raise _fail("dataset.num_classes", f"={classes} but dataset {dataset.name!r} has {dataset.num_classes}")


def load_artifact_data(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> tuple:
    """(IntegerNetwork, manifest, Dataset): an artifact and the dataset its manifest names, checked to match."""
    from spikeforge.model.data import load_dataset

    net, manifest = load_artifact(path)
    dataset = load_dataset(manifest["dataset"]["name"], data_dir)
    check_dataset(manifest, dataset)
    return net, manifest, dataset
