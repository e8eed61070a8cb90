"""The synthesis flows themselves: one function per flow, run in a scratch directory.

Split from sim/estimate/synth.py (which caches and dispatches to them). Flows:
- `flow_ecp5`:  `synth_ecp5` (+ `nextpnr-ecp5` place and route for Fmax, on the smallest LFE5U that
                fits, or a given part; `out_of_context` routes the IP alone, without I/O buffers)
- `flow_ice40`: `synth_ice40` (+ `nextpnr-ice40 --pack-only` for the logic-cell count)
- `flow_asic`:  generic `synth`, memories kept as `$mem_v2` and removed from the logic (their read
                data become primary inputs), flops legalised to `$_DFF_P_`, `abc -g cmos2`,
                `stat -tech cmos`; GE = transistors / 4 (a CMOS NAND2 has four). Memory bits are
                reported separately.
- `flow_mulcheck`: `proc; opt; wreduce` and count `$mul` cells, a fast check that no multiplier exists.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from spikeforge import SpikeforgeError

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


def _tool(name: str) -> str:
    from spikeforge.toolchain import configure_environment, require

    configure_environment()
    info = require(name)
    assert info.path is not None
    return info.path


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


def critical_path(report: dict) -> dict | None:
    """The worst register-to-register path of a nextpnr report (the one that sets Fmax; paths from
    or to an unclocked pin, `<async>`, are left out): its start and end cells, total delay and the
    logic / routing split (ns)."""
    worst = None
    for path in report.get("critical_paths", []):
        segments = path.get("path", [])
        if not segments or "<async>" in (path.get("from"), path.get("to")):
            continue
        total = sum(float(seg.get("delay", 0.0)) for seg in segments)
        if worst is None or total > worst["delay_ns"]:
            routing = sum(float(seg.get("delay", 0.0)) for seg in segments if seg.get("type") == "routing")
            worst = {"clock": path.get("from"), "from": segments[0].get("from", {}).get("cell"),
                     "to": segments[-1].get("to", {}).get("cell"), "delay_ns": round(total, 2),
                     "routing_ns": round(routing, 2), "logic_ns": round(total - routing, 2)}
    return worst


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
        critical_path=critical_path(report),
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
