"""Untrusted files run no code, --out never destroys what spikeforge did not write, the flow cache
checks what it serves, and no user-file path uses pickle/eval/exec/shell=True (docs/SECURITY.md)."""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spikeforge.scripts.cli import main

ROOT = Path(__file__).resolve().parents[1]


class WritesMarker:
    """A pickle payload: unpickling it runs `touch <marker>` (what a hostile file would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    return err


# --- files crafted to run code -----------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ck") / "run"
    assert main(["train", "--epochs", "1", "--out", str(out)]) == 0
    return out / "checkpoint.pt"


def evil_checkpoints(folder: Path, marker: Path) -> list[Path]:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    zipped = folder / "zip" / "checkpoint.pt"
    zipped.parent.mkdir()
    torch.save({"format": "spikeforge-checkpoint", "state_dict": WritesMarker(marker)}, zipped)
    bare = folder / "bare" / "checkpoint.pt"
    bare.parent.mkdir()
    bare.write_bytes(pickle.dumps(WritesMarker(marker)))
    return [zipped, bare]


def test_crafted_checkpoint_refused_by_every_reader(tmp_path, capsys):
    marker = tmp_path / "marker"
    for ck in evil_checkpoints(tmp_path / "evil", marker):
        err = one_line_error(capsys, main(["quantize", str(ck), "--out", str(tmp_path / "a")]))
        assert "checkpoint" in err
        code = main(["train", "--epochs", "1", "--compare-with", str(ck.parent), "--out", str(tmp_path / "t")])
        one_line_error(capsys, code)
        code = main(["flow", "--checkpoint", str(ck), "--out", str(tmp_path / "f"), "--rows", "2", "--cols", "2"])
        one_line_error(capsys, code)
        from spikeforge.model.checkpoint import CheckpointError, load_checkpoint

        with pytest.raises(CheckpointError):
            load_checkpoint(ck)
    assert not marker.exists()
    # and through a real process: exit 2, one line, no traceback
    ck = tmp_path / "evil" / "bare" / "checkpoint.pt"
    proc = subprocess.run([sys.executable, "-m", "spikeforge", "quantize", str(ck), "--out", str(tmp_path / "p")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not marker.exists()


def test_crafted_cifar_batch_refused(tmp_path, capsys):
    marker = tmp_path / "marker"
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": WritesMarker(marker)}
        (folder / name).write_bytes(pickle.dumps(batch))
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--out", str(tmp_path / "t")])
    assert "refused unread" in one_line_error(capsys, code)
    code = main(["flow", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--rows", "2", "--cols", "2", "--out", str(tmp_path / "f")])
    one_line_error(capsys, code)
    assert not marker.exists()


def test_crafted_nir_refused(tmp_path, capsys):
    import h5py

    marker = tmp_path / "marker"
    payload = pickle.dumps(WritesMarker(marker))
    as_pickle = tmp_path / "pickle.nir"
    as_pickle.write_bytes(payload)
    as_hdf5 = tmp_path / "hdf5.nir"
    with h5py.File(as_hdf5, "w") as f:  # a pickle stored where a reader might unpickle it
        f.create_dataset("node/nodes/x/weight", data=np.void(payload))
        f.attrs["payload"] = np.void(payload)
    for graph in (as_pickle, as_hdf5):
        one_line_error(capsys, main(["quantize", str(graph), "--out", str(tmp_path / "a")]))
        one_line_error(capsys, main(["flow", "--nir", str(graph), "--rows", "2", "--cols", "2",
                                     "--out", str(tmp_path / "f")]))
    assert not marker.exists()


# --- output folders ----------------------------------------------------------------------------


def test_out_never_destroys_foreign_files(tmp_path, capsys, checkpoint, monkeypatch):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    art = tmp_path / "art"
    assert main(["quantize", str(checkpoint), "--out", str(art)]) == 0
    capsys.readouterr()
    cases = [
        ["quantize", str(checkpoint), "--out", str(victim)],
        ["quantize", str(checkpoint), "--out", str(victim), "--force"],
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--out", str(victim)],
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--out", str(victim), "--force"],
        ["quantize", str(checkpoint), "--out", str(checkpoint.parent)],  # its own input
        ["quantize", str(checkpoint), "--out", str(victim / "thesis.txt")],  # an existing file
        ["quantize", str(checkpoint), "--out", str(victim / "thesis.txt" / "sub")],  # under a file
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--model", str(art), "--out", str(art)],
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--out", str(art)],  # quantize's output
        ["generate", "--rows", "2", "--cols", "2", "--no-lint", "--out", "/"],
        ["train", "--epochs", "1", "--out", str(victim)],
        ["estimate", "--model", str(art), "--rows", "2", "--cols", "2", "--out", str(victim)],
        ["sweep", "--model", str(art), "--rows", "2", "--cols", "2", "--weight-bits", "8", "--fast",
         "--out", str(victim)],
        ["bench", "--which", "core", "--out", str(victim)],
        ["synth", str(art), "--out", str(victim / "thesis.txt")],
    ]
    for argv in cases:
        err = one_line_error(capsys, main(argv))
        assert "--out" in err, (argv, err)
    monkeypatch.chdir(victim)
    for argv in (["quantize", str(checkpoint), "--out", "."], ["generate", "--rows", "2", "--cols", "2", "--out", "."]):
        one_line_error(capsys, main(argv))
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.txt"]
    assert (victim / "thesis.txt").read_text() == "years of work"
    assert (checkpoint.parent / "checkpoint.pt").is_file()
    from spikeforge.quant.artifact import load_artifact

    load_artifact(art)  # untouched


def test_out_read_only_and_rewrite(tmp_path, capsys, checkpoint):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if not os.access(locked, os.W_OK):  # root may write anywhere
            one_line_error(capsys, main(["quantize", str(checkpoint), "--out", str(locked / "a")]))
    finally:
        locked.chmod(0o755)
    art = tmp_path / "art"
    for _ in range(2):  # an earlier output of the same command is replaced, atomically
        assert main(["quantize", str(checkpoint), "--out", str(art)]) == 0
    rtl = tmp_path / "rtl"
    assert main(["generate", "--rows", "2", "--cols", "2", "--no-lint", "--out", str(rtl)]) == 0
    capsys.readouterr()
    one_line_error(capsys, main(["quantize", str(checkpoint), "--out", str(rtl)]))
    assert main(["quantize", str(checkpoint), "--out", str(rtl), "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "locked", "rtl"]  # no temp folder left


# --- the source itself -----------------------------------------------------------------------

# Modules allowed to import pickle, and why: checkpoint.py names pickle.UnpicklingError (what
# torch's weights_only loader raises); data.py subclasses pickle.Unpickler with a find_class that
# admits only numpy's array reconstruction (CIFAR python batches).
PICKLE_ALLOWED = {"model/checkpoint.py": {"UnpicklingError"}, "model/data.py": {"Unpickler", "UnpicklingError"}}
FORBIDDEN_MODULES = {"marshal", "shelve", "dill", "cloudpickle", "joblib", "_pickle", "cPickle"}


def package_sources() -> list[Path]:
    skip = {".venv", "tests", "build", "dist", ".git"}
    return sorted(p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts))


def violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    found = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    found.append(f"{where}: imports {name}")
                if top == "pickle" and rel not in PICKLE_ALLOWED:
                    found.append(f"{where}: imports pickle")
                if isinstance(node, ast.ImportFrom) and top == "pickle":
                    found.append(f"{where}: from pickle import ...")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pickle":
            if node.attr not in PICKLE_ALLOWED.get(rel, set()):
                found.append(f"{where}: pickle.{node.attr}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("eval", "exec", "__import__"):
                found.append(f"{where}: {func.id}()")
            for kw in node.keywords:
                value = kw.value.value if isinstance(kw.value, ast.Constant) else "?"
                if kw.arg == "shell" and value is not False:
                    found.append(f"{where}: shell={value}")
                if kw.arg == "allow_pickle" and value is not False:
                    found.append(f"{where}: allow_pickle={value}")
                if kw.arg == "weights_only" and value is not True:
                    found.append(f"{where}: weights_only={value}")
            name = ast.unparse(func)
            if name.endswith("torch.load") or name == "load" and rel.startswith("model/"):
                if not any(kw.arg == "weights_only" and getattr(kw.value, "value", None) is True
                           for kw in node.keywords):
                    found.append(f"{where}: {name}() without weights_only=True")
            if name in ("np.load", "numpy.load") and not any(
                    kw.arg == "allow_pickle" and getattr(kw.value, "value", None) is False for kw in node.keywords):
                found.append(f"{where}: np.load() without allow_pickle=False")
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pickle.Unpickler" for b in node.bases):
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if "find_class" not in methods:
                found.append(f"{where}: Unpickler subclass without find_class")
    return found


def test_source_has_no_code_execution_on_user_files():
    sources = package_sources()
    assert len(sources) > 50 and any(p.name == "artifact_io.py" for p in sources)
    found = [v for path in sources for v in violations(path)]
    assert found == [], found


def test_the_scanner_catches_each_pattern(tmp_path, monkeypatch):
    bad = {
        "a.py": "import pickle\npickle.load(open('x', 'rb'))\n",
        "b.py": "import torch\ntorch.load('x', weights_only=False)\n",
        "c.py": "import torch\ntorch.load('x')\n",
        "d.py": "import subprocess\nsubprocess.run('ls', shell=True)\n",
        "e.py": "import numpy as np\nnp.load('x', allow_pickle=True)\n",
        "f.py": "eval('1')\n",
        "g.py": "exec('1')\n",
        "h.py": "import marshal\n",
        "i.py": "from pickle import loads\n",
    }
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        assert violations(tmp_path / name), name
    (tmp_path / "ok.py").write_text("import numpy as np\nnp.load('x', allow_pickle=False)\nmodel.eval()\n")
    assert violations(tmp_path / "ok.py") == []


# --- zip bomb ----------------------------------------------------------------------------------


def make_zip_bomb(artifact: Path, gib: float = 1.0, reseal: bool = True) -> None:
    """Add a member of `gib` GiB of zeros (deflated to ~1 MB) to weights.npz; `reseal` also
    records the new file's hash in the manifest, as an attacker editing both would."""
    from spikeforge.quant.artifact_io import file_record

    weights = artifact / "weights.npz"
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(weights, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("bomb.npy", "w", force_zip64=True) as member:
            for _ in range(int(gib * 1024)):
                member.write(block)
    if reseal:
        manifest = json.loads((artifact / "manifest.json").read_text())
        manifest["files"]["weights.npz"] = file_record(weights)
        (artifact / "manifest.json").write_text(json.dumps(manifest))


# VmHWM is this process's own peak (ru_maxrss would carry the forking pytest's peak across exec).
PEAK_SCRIPT = """
import re, sys
from spikeforge.quant.artifact import ArtifactError, load_artifact
try:
    load_artifact(sys.argv[1])
    print("LOADED")
except ArtifactError as exc:
    print("REFUSED", exc)
print("PEAK_KB", re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
"""


@pytest.mark.slow
def test_zip_bomb_refused_before_decompression(tmp_path, checkpoint):
    import shutil

    art = tmp_path / "art"
    assert main(["quantize", str(checkpoint), "--out", str(art)]) == 0
    for reseal in (False, True):
        bomb = tmp_path / f"bomb{int(reseal)}"
        shutil.copytree(art, bomb)
        make_zip_bomb(bomb, 1.0, reseal)
        assert (bomb / "weights.npz").stat().st_size < 3 << 20
        proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(bomb)], capture_output=True, text=True,
                              timeout=300)
        lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
        assert "REFUSED" in lines, proc.stdout + proc.stderr
        # unsealed: the size/hash binding refuses it; resealed: the member no layer names is refused
        assert ("'bomb'" in lines["REFUSED"]) == reseal and ("manifest records" in lines["REFUSED"]) != reseal
        assert int(lines["PEAK_KB"]) < 200 * 1024, lines


# --- the flow cache --------------------------------------------------------------------------


@pytest.mark.cocotb
def test_flow_reruns_from_a_changed_cached_output(tmp_path, capsys, verilator_tool):
    from test_flow import ARGS, stage_lines

    out = tmp_path / "flow"
    assert main([*ARGS, "--out", str(out)]) == 0
    capsys.readouterr()
    first = json.loads((out / "report.json").read_text())["headline"]
    weights = out / "quantize" / "artifact" / "weights.npz"
    data = bytearray(weights.read_bytes())
    with zipfile.ZipFile(weights) as z:  # one byte inside the first layer's weights
        info = z.getinfo("layer0_weight.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0x7F
    weights.write_bytes(bytes(data))
    assert main([*ARGS, "--out", str(out)]) == 0
    stages = stage_lines(capsys.readouterr().out)
    assert stages["train"].startswith("cached"), stages
    assert all(stages[s].startswith("done") for s in ("quantize", "generate", "verify", "estimate", "report")), stages
    again = json.loads((out / "report.json").read_text())["headline"]
    assert again["integer_accuracy"] == first["integer_accuracy"]  # the true accuracy, from a fresh quantize
    assert weights.read_bytes() != bytes(data)
