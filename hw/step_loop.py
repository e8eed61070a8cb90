"""Command controller of a multi-step core: scan and flush as one step, then `n_steps` drains.

A multi-step command (cmd fields in hw/core.py's `command_layout`) accumulates its input once,
like a one-step command, and then drains the accumulators through the neuron unit (hw/neuron.py)
`n_steps` times, one row per cycle, R beats per step. On every drain but the last the array
rotates (row 0 takes the bottom row's accumulator back), so after R shifts it holds the same
accumulators again: the converted nets' analog first layer computes its current once and re-adds
it every step. A spiking layer fed with fresh spikes every step (BNTT, and every later layer)
issues one command per step with n_steps = 1. Step s of the command (s = 0 .. n_steps-1) is time
step `step + s`; its constants are at threshold_base + (per_step ? (step + s) * R : 0) + row; `first`
applies to s = 0 only.

Timing contract, no stalls (c0 = the accept cycle; S and the flush exactly as one step):
- scan c0+2 .. e (e = c0 + 1 + S), flush e+1 .. e+R+C-1+P, drains from d0 = e + R + C + P
  (P = TOKEN_PIPELINE)
- output beat k = s*R + j (PE row R-1-j of step s) is valid in cycle d0 + 1 + k; `last` on the
  final beat, k = n_steps*R - 1
- the next command can be accepted in cycle d0 + n_steps*R.
The membrane word of a row is read in the cycle before its beat (the flush's last cycle for the
first row) and written in the beat's cycle. sim/schedule.py states the cycle counts.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned

from spikeforge.hw.config import TOKEN_PIPELINE, CoreConfig


class StepLoop:
    """Members: `rotate` (drive row 0 of the array from the bottom row during a drain). The FSM is
    built into the core's module by `elaborate_into` (it shares the core's registers)."""

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        self.rotate = Signal()

    def elaborate_into(self, m: Module, core, neuron, scanner, drain: Signal, advance: Signal,
                       weight_base: Signal) -> None:
        from spikeforge.hw.core import command_layout

        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        cmd = Signal(command_layout(cfg))  # the accepted command
        counter = Signal(range(rows + cols + TOKEN_PIPELINE))
        drain_row = Signal(range(max(rows, 2)))  # j: beats of this step already drained
        step_count = Signal(unsigned(cfg.step_bits))  # s
        step_now = Signal(unsigned(cfg.step_bits))  # step + s
        last_row = Signal()
        last_step = Signal()
        out = core.out
        m.d.comb += [
            last_row.eq(drain_row == rows - 1),
            last_step.eq(step_count == cmd.n_steps - 1),
            self.rotate.eq(~last_step),
            neuron.const_base.eq(cmd.threshold_base),
            neuron.membrane_base.eq(cmd.membrane_base),
            neuron.per_step.eq(cmd.per_step),
            neuron.leak.eq(cmd.leak),
            neuron.reset_zero.eq(cmd.reset_zero),
            neuron.readout.eq(cmd.readout),
            neuron.first.eq(cmd.first & (step_count == 0)),
            neuron.wr_row.eq(rows - 1 - drain_row),
        ]
        with m.If(advance):
            m.d.sync += out.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [core.cmd.ready.eq(1), core.idle.eq(1)]
                with m.If(core.cmd.valid):
                    m.d.comb += scanner.start.eq(1)
                    m.d.sync += [
                        cmd.eq(core.cmd.payload),
                        weight_base.eq(core.cmd.payload.weight_base),
                        step_count.eq(0),
                        step_now.eq(core.cmd.payload.step),
                    ]
                    m.next = "SCAN"
            with m.State("SCAN"):
                with m.If(scanner.done):
                    m.d.sync += counter.eq(rows + cols - 2 + TOKEN_PIPELINE)
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                # Meanwhile read the first row's (row R-1) constants and membrane word.
                m.d.comb += [neuron.rd_row.eq(rows - 1), neuron.rd_step.eq(step_now), neuron.rd_en.eq(1)]
                m.d.sync += counter.eq(counter - 1)
                with m.If(counter == 0):
                    m.d.sync += drain_row.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [
                    neuron.rd_row.eq(Mux(last_row, rows - 1, rows - 2 - drain_row)),
                    neuron.rd_step.eq(Mux(last_row, step_now + 1, step_now)),
                    neuron.rd_en.eq(advance),
                    neuron.wr_en.eq(advance),
                    drain.eq(advance),
                ]
                with m.If(advance):
                    m.d.sync += [
                        out.valid.eq(1),
                        out.payload.row.eq(rows - 1 - drain_row),
                        out.payload.last.eq(last_row & last_step),
                        out.payload.spikes.eq(neuron.spike),
                        out.payload.values.eq(neuron.value),
                        drain_row.eq(drain_row + 1),
                    ]
                    with m.If(last_row):
                        m.d.sync += [drain_row.eq(0), step_count.eq(step_count + 1), step_now.eq(step_now + 1)]
                        with m.If(last_step):
                            m.next = "IDLE"
