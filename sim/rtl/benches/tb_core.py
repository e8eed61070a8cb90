"""cocotb tests of the whole core (run inside the simulator by spikeforge.sim.rtl).

`tiles`: lists of commands on given memory contents (one backend call per case).
`network`: whole images through an IntegerNetwork, sequenced by the one NetworkDriver: each
layer's commands come from `driver.layer_commands`, its RTL beats are assembled by
`driver.assemble` into the next layer's input, so the RTL runs the network on its own outputs.
"""

from __future__ import annotations

import cocotb
import numpy as np
from sf_bench import CoreBench, Stopwatch, outcome_to_json, read_job, violation_to_json, write_result

from spikeforge.hw.config import CoreConfig
from spikeforge.quant.artifact import load_artifact
from spikeforge.sim.cycle import Command
from spikeforge.sim.driver import NetworkDriver


def _commands(raw: list) -> list[tuple[Command, list[int]]]:
    return [(Command(int(a), int(b), int(c), int(d)), [int(x) for x in beats]) for a, b, c, d, beats in raw]


@cocotb.test()
async def tiles(dut) -> None:
    job = read_job()
    cfg = CoreConfig.from_dict(job["config"])
    bench = CoreBench(dut, cfg)
    watch = Stopwatch()
    await bench.reset()
    cases = []
    for case in job["cases"]:
        await bench.load(np.array(case["weights"], dtype=np.int64), np.array(case["thresholds"], dtype=np.int64))
        before = bench.cycles_simulated
        outcomes = await bench.run_commands(_commands(case["commands"]), case.get("stall_seed"))
        cases.append({"outcomes": [outcome_to_json(o) for o in outcomes], "cycles": bench.cycles_simulated - before,
                      "protocol": [violation_to_json(v) for v in bench.violations]})
    write_result({"cases": cases, "cycles_simulated": bench.cycles_simulated, "wall_s": watch.seconds})


@cocotb.test()
async def network(dut) -> None:
    job = read_job()
    cfg = CoreConfig.from_dict(job["config"])
    net, _ = load_artifact(job["network"])  # written by the host for this run (sim/rtl/runner.py)
    images = np.load(job["images"], allow_pickle=False)
    stall_seed = job.get("stall_seed")
    driver = NetworkDriver(net, cfg)
    bench = CoreBench(dut, cfg)
    watch = Stopwatch()
    await bench.reset()
    if job.get("load", True):
        await bench.load(driver.weights, driver.thresholds)
    load_cycles = bench.cycles_simulated
    results = []
    for n, image in enumerate(images):
        act = net.quantize_input(image[None])[0]
        layers = []
        for index, layer in enumerate(net.layers):
            if layer.kind == "pool":
                act = layer.apply(act[None].astype(bool))[0]
                layers.append({"layer": index, "kind": "pool", "outcomes": [], "output": act.astype(int).tolist()})
                continue
            commands = driver.layer_commands(index, act)
            seed = None if stall_seed is None else stall_seed * 1_000_003 + n * 101 + index
            outcomes = await bench.run_commands(commands, seed)
            act = driver.assemble(index, outcomes)
            trace = driver.trace(index, commands, outcomes, act)
            layers.append({"layer": index, "kind": layer.kind, "cycles": trace.cycles,
                           "outcomes": [outcome_to_json(o) for o in outcomes],
                           "protocol": [violation_to_json(v) for v in bench.violations],
                           "output": np.asarray(act).astype(np.int64).tolist()})
        logits = np.asarray(act).reshape(-1)
        results.append({"layers": layers, "prediction": int(np.argmax(logits)), "logits": logits.tolist()})
    write_result({"images": results, "load_cycles": load_cycles, "cycles_simulated": bench.cycles_simulated,
                  "wall_s": watch.seconds})
