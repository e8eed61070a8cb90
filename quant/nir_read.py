"""Read a NIR file (HDF5) as untrusted input, and parse a NIR graph into plain nodes.

`read_graph(path)` is the one entry point for a user's `.nir` file. It never calls `nir.read`
(which reads every dataset whatever its size, follows links and recurses without a bound) and
never executes anything from the file: h5py reads numbers and strings only, no pickles. Before a
single dataset is read, the whole tree is walked and checked:

- the file is a regular file of at most MAX_FILE_BYTES and starts with the HDF5 signature;
- every link is a hard link (soft and external links are refused: they point at other objects or
  files), no dataset is virtual or has external raw storage (both read other files);
- every dataset holds integers, floats, booleans or strings (object, reference, compound and
  variable-length array types are refused) and has a bounded shape: at most MAX_ELEMENTS per
  dataset, MAX_TOTAL_ELEMENTS in all, so a compressed dataset cannot expand into a memory bomb;
- nesting depth, child count and name length are bounded.

Any problem is one `NIRError` line naming the HDF5 path and the fix. `parse_graph` turns the
resulting nested dict (or an in-memory `nir.NIRGraph`'s `to_dict()`) into a `Graph` of `Node`s
with the same bounds on node count and edges; what the nodes mean is quant/nir_import.py's job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError

MAX_FILE_BYTES = 256 << 20
MAX_ELEMENTS = 1 << 24  # one dataset (a 4096 x 4096 weight matrix)
MAX_TOTAL_ELEMENTS = 1 << 26
MAX_DEPTH = 12  # node / nodes / <name> / metadata / ... and one level of subgraph
MAX_CHILDREN = 4096
MAX_NODES = 4096
MAX_NAME = 256
MAX_STRING = 1 << 16
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class NIRError(SpikeforgeError):
    """A NIR file or graph spikeforge cannot take. One line: node or field, problem, fix."""


@dataclass
class Node:
    """One NIR node: its name, NIR type name, its fields (arrays, strings, sub-dicts) and metadata."""

    name: str
    type: str
    fields: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        return f"NIR node {self.name!r} ({self.type})"


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)


# --- the HDF5 file ------------------------------------------------------------------------------


def _check_dataset(dset: Any, where: str) -> int:
    """Refuse what could read other files, run code or exhaust memory; return the element count."""
    import h5py

    if dset.is_virtual:
        raise NIRError(f"NIR file: {where} is a virtual dataset (reads other files); write a plain NIR file")
    if dset.external:
        raise NIRError(f"NIR file: {where} stores its data in an external file; write a plain NIR file")
    if dset.shape is None:
        raise NIRError(f"NIR file: {where} has an empty (null) dataspace; the file is not a NIR graph")
    dt = dset.dtype
    count = int(np.prod(dset.shape, dtype=np.int64)) if dset.shape else 1
    if dt.kind == "O" or dt.kind == "S":
        if h5py.check_string_dtype(dt) is None:
            raise NIRError(f"NIR file: {where} has object dtype {dt}; NIR stores numbers and strings only")
        if count > MAX_CHILDREN:
            raise NIRError(f"NIR file: {where} holds {count} strings, more than {MAX_CHILDREN}")
        if dt.kind == "S" and dt.itemsize > MAX_STRING:
            raise NIRError(f"NIR file: {where} holds strings of {dt.itemsize} bytes, more than {MAX_STRING}")
    elif dt.kind not in "iufb":
        raise NIRError(f"NIR file: {where} has dtype {dt}; NIR stores integers, floats and strings only")
    if count > MAX_ELEMENTS:
        raise NIRError(f"NIR file: {where} has shape {tuple(dset.shape)}, more than {MAX_ELEMENTS} elements")
    return count


def _scan(group: Any, where: str, depth: int, budget: list[int]) -> None:
    """Walk the tree without reading data: links, types and sizes (see the module docstring)."""
    import h5py

    if depth > MAX_DEPTH:
        raise NIRError(f"NIR file: {where} is nested more than {MAX_DEPTH} levels deep")
    names = list(group.keys())
    if len(names) > MAX_CHILDREN:
        raise NIRError(f"NIR file: {where} has {len(names)} entries, more than {MAX_CHILDREN}")
    for name in names:
        path = f"{where}/{name}"
        if len(name) > MAX_NAME:
            raise NIRError(f"NIR file: an entry under {where} has a {len(name)}-character name; at most {MAX_NAME}")
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise NIRError(f"NIR file: {path} is a {type(link).__name__}; NIR files hold plain groups and datasets")
        obj = group[name]
        if isinstance(obj, h5py.Group):
            _scan(obj, path, depth + 1, budget)
        elif isinstance(obj, h5py.Dataset):
            budget[0] += _check_dataset(obj, path)
            if budget[0] > MAX_TOTAL_ELEMENTS:
                raise NIRError(f"NIR file: more than {MAX_TOTAL_ELEMENTS} values in all; the graph is too large")
        else:
            raise NIRError(f"NIR file: {path} is a {type(obj).__name__}; NIR files hold groups and datasets only")


def _load(group: Any) -> dict[str, Any]:
    """The (already scanned) tree as nested dicts of numpy arrays and str."""
    import h5py

    out: dict[str, Any] = {}
    for name, obj in group.items():
        if isinstance(obj, h5py.Group):
            out[name] = _load(obj)
            continue
        if h5py.check_string_dtype(obj.dtype) is not None:
            raw = obj.asstr(errors="replace")[()]
            out[name] = raw if isinstance(raw, str) else np.asarray(raw, dtype=object)
        else:
            out[name] = np.asarray(obj[()])
    return out


def read_tree(path: str | os.PathLike) -> dict[str, Any]:
    """The checked content of a NIR file's `node` group as nested dicts (no NIR semantics yet)."""
    import h5py

    p = Path(path)
    if not p.is_file():
        what = "does not exist" if not p.exists() else "is not a regular file"
        raise NIRError(f"NIR file {p} {what}; pass a .nir file written by nir.write")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise NIRError(f"NIR file {p} is {size} bytes, more than {MAX_FILE_BYTES}; spikeforge takes smaller graphs")
    with open(p, "rb") as handle:
        if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise NIRError(f"NIR file {p} is not an HDF5 file; pass a .nir file written by nir.write")
    try:
        with h5py.File(p, "r", locking=False) as f:
            if "node" not in f or not isinstance(f.get("node", getlink=True), h5py.HardLink):
                raise NIRError(f"NIR file {p} has no 'node' group; pass a .nir file written by nir.write")
            _scan(f["node"], "/node", 1, [0])
            return _load(f["node"])
    except NIRError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises many kinds for a corrupt file; never a traceback
        detail = " ".join(str(exc).split())[:120]
        raise NIRError(f"NIR file {p} cannot be read as HDF5 ({type(exc).__name__}: {detail}); "
                       "pass a .nir file written by nir.write") from None


# --- the graph ----------------------------------------------------------------------------------


def _text(value: Any, where: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "OSU":
        value = value.item()
        value = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    if not isinstance(value, str):
        raise NIRError(f"{where} is {type(value).__name__}, expected a string")
    if len(value) > MAX_NAME:
        raise NIRError(f"{where} is {len(value)} characters long; at most {MAX_NAME}")
    return value


def _edges(raw: Any, where: str) -> list[tuple[str, str]]:
    items = list(raw) if isinstance(raw, list | tuple) else None
    if items is None:
        arr = np.asarray(raw, dtype=object)
        if arr.size == 0:
            return []
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise NIRError(f"{where}.edges has shape {arr.shape}; expected [n, 2] pairs of node names")
        items = [tuple(row) for row in arr]
    if len(items) > MAX_NODES * 4:
        raise NIRError(f"{where}.edges has {len(items)} edges, more than {MAX_NODES * 4}")
    edges = []
    for i, pair in enumerate(items):
        if len(pair) != 2:
            raise NIRError(f"{where}.edges[{i}] is not a pair of node names")
        edges.append((_text(pair[0], f"{where}.edges[{i}][0]"), _text(pair[1], f"{where}.edges[{i}][1]")))
    return edges


def _plain(value: Any) -> Any:
    """Tensors (an in-memory graph from torch code) and scalars -> numpy; dicts recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | bytes | np.ndarray) or value is None:
        return value
    if hasattr(value, "detach"):  # a torch tensor in an in-memory graph
        return value.detach().cpu().numpy()
    if isinstance(value, bool | int | float | np.generic | list | tuple):
        return np.asarray(value)
    return value


def parse_graph(tree: dict[str, Any], where: str = "graph", depth: int = 0) -> Graph:
    """A `Graph` from the nested dict of a NIR graph (file content or `NIRGraph.to_dict()`)."""
    if not isinstance(tree, dict):
        raise NIRError(f"{where} is {type(tree).__name__}, expected a NIR graph")
    if depth > 2:
        raise NIRError(f"{where} nests subgraphs more than 2 deep; spikeforge takes feed-forward graphs")
    kind = _text(tree.get("type", "NIRGraph"), f"{where}.type")
    if kind != "NIRGraph":
        raise NIRError(f"{where}.type is {kind!r}; the top level of a NIR file must be a NIRGraph")
    raw_nodes = tree.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise NIRError(f"{where}.nodes is missing or empty; the file is not a NIR graph")
    if len(raw_nodes) > MAX_NODES:
        raise NIRError(f"{where}.nodes has {len(raw_nodes)} nodes, more than {MAX_NODES}")
    nodes: dict[str, Node] = {}
    for name, raw in raw_nodes.items():
        name = _text(name, f"{where} node name")
        if not isinstance(raw, dict):
            raise NIRError(f"NIR node {name!r} is {type(raw).__name__}, expected a group of fields")
        ntype = _text(raw.get("type", ""), f"NIR node {name!r}.type")
        if ntype == "NIRGraph":
            sub = parse_graph(raw, f"NIR node {name!r}", depth + 1)
            nodes[name] = Node(name, ntype, {"graph": sub}, sub.metadata)
            continue
        fields = {k: _plain(v) for k, v in raw.items() if k not in ("type", "metadata")}
        meta = raw.get("metadata") or {}
        nodes[name] = Node(name, ntype, fields, _plain(meta) if isinstance(meta, dict) else {})
    if "edges" not in tree:
        raise NIRError(f"{where}.edges is missing; the file is not a NIR graph")
    edges = _edges(tree["edges"], where)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise NIRError(f"{where}: an edge names node {end!r}, which the graph does not have")
    meta = tree.get("metadata") or {}
    return Graph(nodes, edges, _plain(meta) if isinstance(meta, dict) else {})


def read_graph(path: str | os.PathLike) -> Graph:
    """THE reader of a user's NIR file: checked HDF5 tree (read_tree), then parse_graph."""
    return parse_graph(read_tree(path), f"NIR file {Path(path).name}")


def graph_from_nir(graph: Any) -> Graph:
    """A `Graph` from an in-memory `nir.NIRGraph` (what snnTorch's or Norse's export returns)."""
    if isinstance(graph, Graph):
        return graph
    if not hasattr(graph, "to_dict"):
        raise NIRError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    return parse_graph(graph.to_dict())
