"""A self-checking Verilog smoke testbench for a generated core: one command, every beat checked.

`spikeforge generate` writes it next to the design (tb/tb_<top>.v) for the FuseSoC `sim` target, so
an HDL flow can prove the IP alive with its own simulator (Verilator --binary or Icarus) and no
Python. The expected output beats and their cycles come from spikeforge's golden model
(sim/cycle.py, through sim.driver.golden_run) and are written into the testbench as constants.

- With a model, the memories hold the model (baked into the Verilog); the command is the first
  tile of the first compute layer on a fixed pseudo-random input (seed 0).
- Without one, the testbench first writes pseudo-random weights and thresholds through the `load`
  port (one word per cycle), then runs one single-plane command over the whole first spike word.

Protocol and cycle numbering are the cocotb bench's (sim/rtl/benches/sf_bench.py): `rst` is high
for two rising edges; loads follow, one per cycle; cycle 0 is the cycle in which the command is
presented to the idle core; spike words are presented from the cycle after it is accepted, each
held (valid high) until taken; `out.ready` stays high; a beat leaves in the cycle in which
out.valid and out.ready are both high. Inputs change right after a rising edge, outputs are
sampled at it. A mismatch, an X on a handshake, or a timeout ends with $fatal (non-zero exit).
"""

from __future__ import annotations

import numpy as np

from spikeforge.hw.config import CoreConfig

SMOKE_SEED = 0
SLACK_CYCLES = 64  # the testbench gives up this many cycles after the last expected beat


def _fields(layout) -> dict[str, tuple[int, int]]:
    return {name: (field.offset, field.width) for name, field in layout}


def _pack(fields: dict[str, tuple[int, int]], values: dict[str, int]) -> int:
    word = 0
    for name, value in values.items():
        offset, width = fields[name]
        word |= (int(value) & ((1 << width) - 1)) << offset
    return word


def smoke_case(cfg: CoreConfig, network=None):
    """(loads, command, spike words, expected TileOutcome): the one command the testbench runs.

    loads: (target, select, addr, data) writes through the load port before the command."""
    from spikeforge.sim.cycle import Command, encode_input
    from spikeforge.sim.driver import NetworkDriver, golden_run

    rng = np.random.default_rng(SMOKE_SEED)
    if network is not None:
        driver = NetworkDriver(network, cfg)
        index = next(i for i, layer in enumerate(network.layers) if layer.kind != "pool")
        image = rng.random((1, *network.input_shape))
        act = network.quantize_input(image)[0]
        cmd, beats = driver.layer_commands(index, act)[0]
        return [], cmd, beats, driver.golden_backend([(cmd, beats)])[0]
    from spikeforge.hw.core import LOAD_THRESHOLD, LOAD_WEIGHT

    window = cfg.skip_window
    n_inputs = min(window, cfg.weight_depth)
    weights = np.zeros((cfg.pes, cfg.weight_depth), dtype=np.int64)
    thresholds = np.zeros((cfg.cols, cfg.threshold_depth), dtype=np.int64)
    weights[:, :n_inputs] = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.pes, n_inputs))
    # Thresholds around the expected sum, so some neurons spike and some do not.
    span = max(1, (cfg.weight_max - cfg.weight_min) * 2)
    thresholds[:, : cfg.rows] = rng.integers(-span, span + 1, size=(cfg.cols, cfg.rows))
    loads = [(LOAD_WEIGHT, pe, a, int(weights[pe, a])) for pe in range(cfg.pes) for a in range(n_inputs)]
    loads += [(LOAD_THRESHOLD, c, r, int(thresholds[c, r])) for c in range(cfg.cols) for r in range(cfg.rows)]
    spikes = (rng.random(n_inputs) < 0.5).astype(np.int64)
    n_words, beats = encode_input(spikes, 1, window)
    cmd = Command(n_words, 1, 0, 0)
    return loads, cmd, beats, golden_run(cfg, weights, thresholds, [(cmd, beats)])[0]


def smoke_testbench(cfg: CoreConfig, ports: list[dict], network=None) -> tuple[str, str]:
    """(module name, Verilog text) of the smoke testbench for the core `cfg.top_name`."""
    from spikeforge.hw.core import command_layout, load_layout, output_layout

    loads, cmd, beats, want = smoke_case(cfg, network)
    width = {p["name"]: int(p["width"]) for p in ports}
    top = cfg.top_name
    name = f"tb_{top}"
    fields = _fields(command_layout(cfg))
    cmd_word = _pack(fields, {name: int(getattr(cmd, name)) for name in fields})
    out_fields = _fields(output_layout(cfg))
    vb = cfg.acc_bits + 1
    expected = []
    for b in want.beats:
        word = _pack(out_fields, {"row": b.row, "last": int(b.last),
                                  "spikes": sum(int(s) << c for c, s in enumerate(b.spikes))})
        for c, v in enumerate(b.values):
            word |= (int(v) & ((1 << vb) - 1)) << (out_fields["values"][0] + c * vb)
        expected.append((word, b.cycle))
    w_cmd, w_spk, w_out = width["cmd__payload"], width["spikes__payload"], width["out__payload"]
    w_load = width["load__payload"]
    load_fields = _fields(load_layout(cfg))
    assert w_load == load_layout(cfg).size
    timeout = expected[-1][1] + SLACK_CYCLES

    def hexw(bits: int, value: int) -> str:
        return f"{bits}'h{value:x}"

    init = []
    for i, (target, sel, addr, data) in enumerate(loads):
        word = _pack(load_fields, {"target": target, "select": sel, "addr": addr, "data": data})
        init.append(f"    loads[{i}] = {hexw(w_load, word)};")
    init += [f"    beats_in[{i}] = {hexw(w_spk, int(v))};" for i, v in enumerate(beats)]
    for i, (word, cycle) in enumerate(expected):
        init.append(f"    want[{i}] = {hexw(w_out, word)}; want_cycle[{i}] = {cycle};")
    n_loads, n_in, n_out = len(loads), len(beats), len(expected)
    what = ("the first tile of the model's first compute layer on a seed-0 input" if network is not None
            else f"{n_loads} load-port writes (seed 0), then one single-plane command")
    # No `timescale: the generated core has none, and a testbench with one makes Verilator stop
    # (TIMESCALEMOD) when the core comes first; only cycles matter here, not time units.
    text = f"""// spikeforge smoke test for {top}: {what}.
// Written by `spikeforge generate` (hw/smoke_tb.py); the expected beats and cycles come from
// spikeforge's golden model. Prints "PASS" and finishes, or stops with $fatal on the first difference.
module {name};
  localparam integer N_LOADS = {n_loads};
  localparam integer N_IN = {n_in};
  localparam integer N_OUT = {n_out};
  localparam integer ACCEPT_CYCLE = {want.accept_cycle};
  localparam integer TIMEOUT_CYCLE = {timeout};

  reg clk = 1'b0;
  always #5 clk = ~clk;
  reg rst = 1'b1;
  reg [{w_cmd - 1}:0] cmd_payload = {hexw(w_cmd, cmd_word)};
  reg cmd_valid = 1'b0;
  wire cmd_ready;
  reg [{w_spk - 1}:0] spk_payload = {w_spk}'h0;
  reg spk_valid = 1'b0;
  wire spk_ready;
  wire [{w_out - 1}:0] out_payload;
  wire out_valid;
  reg out_ready = 1'b0;
  reg load_valid = 1'b0;
  reg [{w_load - 1}:0] load_payload = {w_load}'h0;  // the load stream is always ready
  wire idle;

  {top} dut (
    .clk(clk), .rst(rst),
    .cmd__payload(cmd_payload), .cmd__valid(cmd_valid), .cmd__ready(cmd_ready),
    .spikes__payload(spk_payload), .spikes__valid(spk_valid), .spikes__ready(spk_ready),
    .out__payload(out_payload), .out__valid(out_valid), .out__ready(out_ready),
    .load__payload(load_payload), .load__valid(load_valid),
    .idle(idle)
  );

  reg [{w_load - 1}:0] loads [0:{max(n_loads, 1) - 1}];  // load_layout: {{target, select, addr, data}}
  reg [{w_spk - 1}:0] beats_in [0:{n_in - 1}];
  reg [{w_out - 1}:0] want [0:{n_out - 1}];
  integer want_cycle [0:{n_out - 1}];
  initial begin
{chr(10).join(init)}
  end

  integer edges = 0;  // rising edges so far
  integer phase = 0;  // 0 reset, 1 loading, 2 running
  integer cycle = 0;  // cycle of the call (0 = the command's first cycle)
  integer li = 0;
  integer bi = 0;
  integer oi = 0;
  always @(posedge clk) begin
    edges <= edges + 1;
    if (phase == 0) begin
      if (edges == 1) begin  // the second rising edge: reset ends
        rst <= 1'b0;
        if (N_LOADS > 0) begin
          load_payload <= loads[0];
          load_valid <= 1'b1;
          li <= 1;
          phase <= 1;
        end else begin
          cmd_valid <= 1'b1;
          out_ready <= 1'b1;
          phase <= 2;
        end
      end
    end else if (phase == 1) begin
      if (li < N_LOADS) begin
        load_payload <= loads[li];
        li <= li + 1;
      end else begin
        load_valid <= 1'b0;
        cmd_valid <= 1'b1;
        out_ready <= 1'b1;
        phase <= 2;
      end
    end else begin
      if (cmd_valid && cmd_ready !== 1'b0 && cmd_ready !== 1'b1) begin
        $display("FAIL: cmd__ready is %b in cycle %0d", cmd_ready, cycle);
        $fatal(1);
      end
      if (cmd_valid && cmd_ready) begin
        if (cycle != ACCEPT_CYCLE) begin
          $display("FAIL: command accepted in cycle %0d, the golden model says %0d", cycle, ACCEPT_CYCLE);
          $fatal(1);
        end
        cmd_valid <= 1'b0;
        spk_payload <= beats_in[0];
        spk_valid <= 1'b1;
        bi <= 1;
      end
      if (spk_valid && spk_ready) begin
        if (bi < N_IN) begin
          spk_payload <= beats_in[bi];
          bi <= bi + 1;
        end else begin
          spk_valid <= 1'b0;
        end
      end
      if (out_valid !== 1'b0 && out_valid !== 1'b1) begin
        $display("FAIL: out__valid is %b in cycle %0d", out_valid, cycle);
        $fatal(1);
      end
      if (out_valid && out_ready) begin
        if (oi >= N_OUT) begin
          $display("FAIL: output beat %0d in cycle %0d, the golden model has %0d", oi, cycle, N_OUT);
          $fatal(1);
        end
        if (out_payload !== want[oi] || cycle != want_cycle[oi]) begin
          $display("FAIL: beat %0d: got %h in cycle %0d, the golden model says %h in cycle %0d",
                   oi, out_payload, cycle, want[oi], want_cycle[oi]);
          $fatal(1);
        end
        oi <= oi + 1;
        if (oi == N_OUT - 1) begin
          $display("PASS: {top}: %0d output beats equal to the golden model, bit and cycle exact", N_OUT);
          $finish;
        end
      end
      if (cycle > TIMEOUT_CYCLE) begin
        $display("FAIL: no beat %0d by cycle %0d (timeout)", oi, cycle);
        $fatal(1);
      end
      cycle <= cycle + 1;
    end
  end
endmodule
"""
    return name, text
