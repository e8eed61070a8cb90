"""Stream testbench parts in the cocotbext-axi manner, written once for both simulators.

The rules are amaranth's (docs/stdlib/stream.rst): a transfer happens in a cycle in which
`valid` and `ready` are both high; once a source raises `valid` it keeps `valid` high and the
payload unchanged until that transfer; `ready` may change at will.

- `StallSchedule(seed)`: the one source of stall patterns. `pauses(stream)` is an endless
  per-cycle iterator of booleans that depends on (seed, stream name) alone, so the Amaranth and
  cocotb benches see the same pattern for a seed whatever the other streams do.
- `StreamSource`: presents queued payloads; a pause only keeps it from raising `valid` for a new
  payload, never lowers `valid` before the transfer.
- `StreamSink`: `ready` is high in every cycle its pause generator does not pause.
- `StreamMonitor`: watches one stream and records every cycle in which `valid` fell or the
  payload changed before the transfer (`ProtocolViolation`).
- `CoreHarness`: the core's command loop (cmd and spikes sources, an `out` sink, a monitor on
  every stream), stepped one cycle at a time by a thin per-simulator adapter
  (sim/rtl/amaranth_sim.py, sim/rtl/benches/sf_bench.py) through the `Ports` protocol.

Cycle numbering: cycle 0 is the first cycle a harness drives (the core idle, memories loaded).
In every cycle the adapter calls `drive` (inputs for this cycle), lets the logic settle, calls
`sample` (what the core shows in this cycle, transfers decided), then waits for the clock edge.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from spikeforge.hw.config import CoreConfig
from spikeforge.hw.core import command_layout, output_layout
from spikeforge.sim.cycle import Command, OutputBeat
from spikeforge.sim.driver import TileOutcome

STALL_PROBABILITY = 0.3


class StallSchedule:
    """Per-stream pause patterns from one seed (None: never pause)."""

    def __init__(self, seed: int | None, probability: float = STALL_PROBABILITY) -> None:
        self.seed = seed
        self.probability = probability
        if seed is not None:
            print(f"[spikeforge] {self.describe()}", flush=True)  # for reruns: the log names the pattern

    def pauses(self, stream: str) -> Iterator[bool]:
        """One boolean per cycle from cycle 0: True pauses `stream` in that cycle."""
        if self.seed is None:
            while True:
                yield False
        digest = hashlib.sha256(f"{self.seed}:{stream}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "little"))
        while True:
            yield rng.random() < self.probability

    def describe(self) -> str:
        return "no stalls" if self.seed is None else f"stall seed {self.seed} (p={self.probability})"


class Ports(Protocol):
    """A simulator's view of the DUT's flattened ports ("cmd__valid", "out__payload", ...)."""

    def set(self, name: str, value: int) -> None: ...

    def get(self, name: str) -> int: ...


@dataclass(frozen=True)
class ProtocolViolation:
    """A stream broke the valid/ready rules: `what` is "valid dropped" or "payload changed"."""

    stream: str
    what: str
    cycle: int  # the cycle in which valid was low or the payload differed
    held_since: int  # the cycle in which the payload was first presented
    expected: int  # valid 1, or the payload presented since held_since
    got: int

    def message(self) -> str:
        return (f"{self.stream}: {self.what} before the transfer in cycle {self.cycle} (presented in cycle "
                f"{self.held_since}; expected {self.expected:#x}, got {self.got:#x})")


class StreamMonitor:
    """Checks one stream's valid/payload against the stream rules, cycle by cycle."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.violations: list[ProtocolViolation] = []
        self._held: tuple[int, int] | None = None  # (payload, first cycle) of a pending beat

    def sample(self, cycle: int, valid: int, ready: int, payload: int) -> None:
        if self._held is not None:
            held, since = self._held
            if not valid:
                self.violations.append(ProtocolViolation(self.stream, "valid dropped", cycle, since, 1, 0))
            elif payload != held:
                self.violations.append(ProtocolViolation(self.stream, "payload changed", cycle, since, held, payload))
        if valid and not ready:
            if self._held is None or payload != self._held[0]:
                self._held = (payload, cycle)  # a new beat (or, after a violation, the changed one)
        else:
            self._held = None


class StreamSource:
    """Presents queued payloads on `<name>__valid/payload`; holds each until it is taken."""

    def __init__(self, name: str, pauses: Iterator[bool]) -> None:
        self.name = name
        self.pauses = pauses
        self.queue: deque[int] = deque()
        self.valid = 0
        self.payload = 0

    def drive(self, ports: Ports) -> None:
        paused = next(self.pauses)  # drawn every cycle, so the pattern is the cycle's alone
        if not self.valid and self.queue and not paused:
            self.valid, self.payload = 1, self.queue[0]
        ports.set(f"{self.name}__payload", self.payload)
        ports.set(f"{self.name}__valid", self.valid)

    def sample(self, ports: Ports) -> int | None:
        """The payload transferred in this cycle, or None."""
        if self.valid and ports.get(f"{self.name}__ready"):
            self.valid = 0
            return self.queue.popleft()
        return None


class StreamSink:
    """Takes beats from `<name>__valid/payload`, `ready` high unless paused."""

    def __init__(self, name: str, pauses: Iterator[bool]) -> None:
        self.name = name
        self.pauses = pauses
        self.ready = 0

    def drive(self, ports: Ports) -> None:
        self.ready = int(not next(self.pauses))
        ports.set(f"{self.name}__ready", self.ready)

    def sample(self, ports: Ports) -> int | None:
        if self.ready and ports.get(f"{self.name}__valid"):
            return ports.get(f"{self.name}__payload")
        return None


def field_slices(layout) -> dict[str, tuple[int, int]]:
    """name -> (offset, width) of an amaranth StructLayout (LSB-first, declaration order)."""
    return {name: (field.offset, field.width) for name, field in layout}


def pack_fields(layout, values: dict[str, int], check: bool = True) -> int:
    """The packed word of a StructLayout; `check` refuses a value that does not fit its field."""
    word = 0
    for name, (offset, width) in field_slices(layout).items():
        value = int(values[name])
        if check and not 0 <= value < 1 << width:
            raise ValueError(f"field {name}={value} does not fit {width} bits")
        word |= (value & ((1 << width) - 1)) << offset
    return word


class CoreHarness:
    """The core's command loop: commands back to back, every output beat recorded.

    Each command is presented on `cmd` as soon as the previous one was taken; its spike beats go
    to the `spikes` source when it is taken; `out` is a sink. A monitor watches all three streams.
    A run ends when every command's last beat has left, or raises after `patience` cycles
    without any transfer."""

    def __init__(self, cfg: CoreConfig, commands: list[tuple[Command, list[int]]], schedule: StallSchedule,
                 patience: int = 100_000) -> None:
        self.cfg = cfg
        self.commands = commands
        self.schedule = schedule
        self.cmd = StreamSource("cmd", schedule.pauses("cmd"))
        self.spikes = StreamSource("spikes", schedule.pauses("spikes"))
        self.out = StreamSink("out", schedule.pauses("out"))
        self.monitors = [StreamMonitor(name) for name in ("cmd", "spikes", "out")]
        cmd_layout = command_layout(cfg)
        for cmd, _ in commands:
            self.cmd.queue.append(pack_fields(cmd_layout, {name: getattr(cmd, name) for name, _ in cmd_layout}))
        out = field_slices(output_layout(cfg))
        self._row, self._last, self._spikes = out["row"], out["last"], out["spikes"]
        self._values_offset = out["values"][0]
        self.outcomes: list[TileOutcome] = []
        self.cycle = 0
        self.patience = patience
        self._accepted = 0
        self._done = 0
        self._progress = 0

    @property
    def finished(self) -> bool:
        return self._done == len(self.commands)

    @property
    def violations(self) -> list[ProtocolViolation]:
        return sorted((v for m in self.monitors for v in m.violations), key=lambda v: v.cycle)

    def drive(self, ports: Ports) -> None:
        if self.cycle - self._progress > self.patience:
            raise RuntimeError(f"no transfer for {self.patience} cycles (cycle {self.cycle}, {self._done} of "
                               f"{len(self.commands)} commands done)")
        for part in (self.cmd, self.spikes, self.out):
            part.drive(ports)

    def sample(self, ports: Ports) -> None:
        cycle = self.cycle
        for monitor in self.monitors:
            name = monitor.stream
            monitor.sample(cycle, ports.get(f"{name}__valid"), ports.get(f"{name}__ready"),
                           ports.get(f"{name}__payload"))
        took_cmd = self.cmd.sample(ports) is not None
        took_beat = self.spikes.sample(ports) is not None
        word = self.out.sample(ports)
        if took_cmd or took_beat or word is not None:
            self._progress = cycle
        if word is not None:
            beat = self.unpack_beat(word, cycle)
            if self._done >= len(self.outcomes):
                raise RuntimeError(f"output beat in cycle {cycle} before any command was accepted")
            self.outcomes[self._done].beats.append(beat)
            if beat.last:
                self._done += 1
        if took_cmd:
            self.outcomes.append(TileOutcome(cycle, []))
            self.spikes.queue.extend(int(b) for b in self.commands[self._accepted][1])
            self._accepted += 1
        self.cycle += 1

    def quiet(self, ports: Ports) -> None:
        """Inputs low, so the next call (or a load) starts from an idle core."""
        for name in ("cmd__valid", "spikes__valid", "out__ready"):
            ports.set(name, 0)

    def unpack_beat(self, word: int, cycle: int) -> OutputBeat:
        def bits(sl: tuple[int, int]) -> int:
            return (word >> sl[0]) & ((1 << sl[1]) - 1)

        cols, vb = self.cfg.cols, self.cfg.acc_bits + 1
        spikes = bits(self._spikes)
        values = []
        for c in range(cols):
            v = (word >> (self._values_offset + c * vb)) & ((1 << vb) - 1)
            values.append(v - (1 << vb) if v >> (vb - 1) else v)
        return OutputBeat(bits(self._row), bool(bits(self._last)), tuple(bool(spikes >> c & 1) for c in range(cols)),
                          tuple(values), cycle)
