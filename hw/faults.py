"""Test-only protocol faults: a wrapper that breaks the `out` stream's rules while it is stalled.

Built only for `CoreConfig(fault=...)` with one of `PROTOCOL_FAULTS` (hw/generate.py
`core_component`); the fault is part of the config digest and so of every build key, and no
command takes it. The regression's mutation tests use it to prove that the protocol monitors
(sim/rtl/streams.py) catch what the scoreboard cannot: the faulty core sends the same beats in
the same cycles as the real one, but in the second and later cycles of a stall (`out.valid`
high, `out.ready` low) it
- `out_valid_drops_while_stalled`: drops `out.valid` (and raises it again when `ready` rises);
- `out_payload_changes_while_stalled`: flips bit 0 of `out.payload.values[0]` (restored when
  `ready` rises, so the transferred beat is right).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from spikeforge.hw.config import PROTOCOL_FAULTS
from spikeforge.hw.core import SpikeforgeCore


class StalledOutputFault(wiring.Component):
    """A SpikeforgeCore with a protocol fault on `out` (see the module docstring).

    Members: those of SpikeforgeCore (`cmd`, `spikes`, `out`, `load`, `idle`), passed through
    to the wrapped core except for `out.valid` / `out.payload` during a stall.
    """

    def __init__(self, core: SpikeforgeCore) -> None:
        if core.cfg.fault not in PROTOCOL_FAULTS:
            raise ValueError(f"fault {core.cfg.fault!r} is not a protocol fault ({PROTOCOL_FAULTS})")
        self.core = core
        self.cfg = core.cfg
        super().__init__(core.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        for name in ("cmd", "spikes", "load"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
        stalled = Signal()  # out was valid and not ready in the previous cycle
        m.d.sync += stalled.eq(core.out.valid & ~core.out.ready)
        glitch = stalled & ~self.out.ready
        m.d.comb += [
            self.idle.eq(core.idle),
            core.out.ready.eq(self.out.ready),
            self.out.valid.eq(core.out.valid),
            self.out.payload.eq(core.out.payload),
        ]
        if self.cfg.fault == "out_valid_drops_while_stalled":
            m.d.comb += self.out.valid.eq(core.out.valid & ~glitch)
        else:
            m.d.comb += self.out.payload.values[0].eq(core.out.payload.values[0] ^ glitch)
        return m
