"""Running the generated RTL and checking it against the golden models.

- `build`: Verilog from hw/, compiled once per design for Verilator or Icarus (build.py)
- `run_job`: one cocotb test of `benches/` in a simulator process, on a JSON job (runner.py)
- `compare_outcomes`, `Mismatch`, `CheckReport`: the scoreboard (scoreboard.py)
- `random_case`, `fault_case`, `TileCase`: constrained-random stimulus (stimulus.py)
- `StallSchedule`, `StreamSource`, `StreamSink`, `StreamMonitor`, `CoreHarness`: the stream parts
  both simulators' benches use (streams.py)
- `check_tiles`, `check_network`, `run_vectors`, `run_scanner`: the checks (checks.py)
- `simulate_commands`: the same commands on Amaranth's own simulator (amaranth_sim.py)

The cocotb testbench modules live in `benches/` and ship with the package.
"""

from spikeforge.sim.rtl.build import (
    BENCH_DIR,
    SIMULATORS,
    Build,
    RtlError,
    _locked,
    build,
    build_root,
    require_simulator,
    wave_format,
    waves_path,
)
from spikeforge.sim.rtl.checks import (
    check_network,
    check_tiles,
    golden_network,
    rerun_with_waves,
    run_scanner,
    run_vectors,
)
from spikeforge.sim.rtl.runner import run_job
from spikeforge.sim.rtl.scoreboard import CheckReport, Mismatch, compare_outcomes, outcome_from_json, protocol_mismatch
from spikeforge.sim.rtl.stimulus import (
    TileCase,
    case_json,
    fault_case,
    pin_thresholds,
    random_case,
    random_commands,
    random_conv_command,
    random_memories,
)
from spikeforge.sim.rtl.streams import (
    CoreHarness,
    ProtocolViolation,
    StallSchedule,
    StreamMonitor,
    StreamSink,
    StreamSource,
)

__all__ = [
    "BENCH_DIR", "SIMULATORS", "Build", "CheckReport", "CoreHarness", "Mismatch", "ProtocolViolation", "RtlError",
    "StallSchedule", "StreamMonitor", "StreamSink", "StreamSource", "TileCase", "_locked", "build", "build_root",
    "case_json", "check_network", "check_tiles", "compare_outcomes", "fault_case", "golden_network",
    "outcome_from_json", "pin_thresholds", "protocol_mismatch", "random_case", "random_commands", "random_memories",
    "random_conv_command",
    "require_simulator", "rerun_with_waves", "run_job", "run_scanner", "run_vectors", "wave_format", "waves_path",
]
