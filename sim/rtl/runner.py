"""One simulator process running one cocotb test of sim/rtl/benches/ on a JSON job.

The host writes the job (and any arrays or networks it needs) into a fresh run folder, names the
job and result files in SPIKEFORGE_JOB / SPIKEFORGE_RESULT, runs the test through
`cocotb_tools.runner`, and reads back the JSON result the bench wrote. No object crosses the
boundary as a pickle: arrays travel as .npy files and integer networks as artifact folders.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.integer_network import IntegerNetwork
from spikeforge.progress import activity
from spikeforge.sim.rtl.build import BENCH_DIR, TIMESCALE, Build, RtlError, _locked, build_root, wave_format


def run_job(b: Build, module: str, testcase: str, job: dict, files: dict[str, Any] | None = None,
            keep: bool = False) -> tuple[dict, Path]:
    """Run cocotb test `module.testcase` on the build with `job`; return (result, run dir).

    `files` are extra inputs written next to the job (name -> numpy array, or IntegerNetwork as an
    artifact folder); their paths are put in the job under the same names. The run directory is removed after a
    successful run unless `keep` (waveform runs keep it).
    """
    from cocotb_tools.runner import get_runner

    runs = build_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=runs, prefix=f"{b.sim}-{b.kind}-{testcase}-"))
    job = dict(job)
    for name, obj in (files or {}).items():
        job[name] = str(_write_input(run_dir, name, obj))
    job_path, result_path, log = run_dir / "job.json", run_dir / "result.json", run_dir / "sim.log"
    job_path.write_text(json.dumps(job))
    runner = get_runner(b.sim)
    env = {"SPIKEFORGE_JOB": str(job_path), "SPIKEFORGE_RESULT": str(result_path)}
    wave_file = run_dir / f"waves.{wave_format(b.sim)}"
    plusargs = [f"+dumpfile_path={wave_file}"] if b.waves and b.sim == "icarus" else []
    test_args = ["--trace-file", str(wave_file)] if b.waves and b.sim == "verilator" else []
    # cocotb's runner hands sys.path to the simulator's Python as PYTHONPATH: the bench goes on it.
    sys.path.insert(0, str(BENCH_DIR))
    saved_pytest = os.environ.pop("PYTEST_CURRENT_TEST", None)  # we check the result ourselves
    try:
        with _locked(b.directory.with_name(b.directory.name + ".lock"), shared=True):
            if not (b.directory / "built.json").is_file():
                raise RtlError(f"the build in {b.directory} disappeared (rebuilt by another process?); rerun")
            with activity(f"simulating {b.top} on {b.sim} ({module}.{testcase})"):
                runner.test(test_module=module, hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
                            build_dir=b.directory, test_dir=run_dir, testcase=testcase, extra_env=env, waves=b.waves,
                            plusargs=plusargs, test_args=test_args,
                            timescale=TIMESCALE if b.sim == "verilator" else None, log_file=log,
                            results_xml=str(run_dir / "results.xml"))
    except (RuntimeError, SystemExit, OSError) as exc:
        raise RtlError(f"{b.sim} simulation of {b.top} ({module}.{testcase}) failed ({exc}); see {log}") from None
    finally:
        sys.path.remove(str(BENCH_DIR))
        if saved_pytest is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved_pytest
    if not result_path.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
        raise RtlError(f"{b.sim} simulation of {b.top} ({module}.{testcase}) wrote no result; "
                       f"see {log} ({' | '.join(tail)[:300]})")
    result = json.loads(result_path.read_text())
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result, run_dir



def _write_input(run_dir: Path, name: str, obj: Any) -> Path:
    """One input of a job as a file the bench reads without unpickling anything."""
    if isinstance(obj, np.ndarray):
        path = run_dir / f"{name}.npy"
        np.save(path, obj, allow_pickle=False)
        return path
    if isinstance(obj, IntegerNetwork):
        from spikeforge.quant.artifact import WEIGHT_BITS, write_artifact

        need = obj.required_weight_bits()
        bits = min(b for b in WEIGHT_BITS if b >= need)
        return write_artifact(run_dir / name, obj, bits)
    raise RtlError(f"job input {name!r} is a {type(obj).__name__}; pass a numpy array or an IntegerNetwork")
