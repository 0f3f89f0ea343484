"""The 8254 programmable interval timer (ports 0x40-0x43) and System Control Port B (0x61).

Three 16-bit down-counters clocked at exactly 1 193 182 Hz. Nothing ticks: a counter remembers
when it started and with what count, and its value and OUT are computed from virtual time when
read. Tick k after a start at `t0` falls at `t0 + ceil(k * 1e9 / 1193182)` ns, always computed from
the start with integers, so periods never drift however long a counter runs.

Wiring as on a PC: counter 0's OUT drives IRQ0 (the only counter with a clock timer: exactly one
pending at a time, for its next rising edge or terminal count), counter 1 (DRAM refresh) drives
nothing, counter 2 feeds the speaker and is gated by port 0x61 bit 0. Counters 0 and 1 have their
gates tied high. Port 0x61 also reads back OUT2 (bit 5) and a refresh toggle (bit 4, flipping
every 15.085 us of virtual time).

Modes 0-5 and binary or BCD counting are modelled. Simplifications, all invisible to PC software
we know of: a count is loaded at the write rather than at the next CLK edge; in modes 2 and 3 a
count written while running takes effect at the end of the current period (the datasheet says
half-period for mode 3); in mode 3 an odd count splits its period (N+1)/2 high, (N-1)/2 low and
reads count down by two from N. IRQ0 is an edge-triggered input, so rising edges of OUT in
modes 2-5 are delivered as pulses; in mode 0 the line really is held high from terminal count
until the counter is reprogrammed.

Power-on: with `bios_initialised=True` (default) counter 0 runs in mode 3 with count 65536
(18.2 Hz, as a BIOS programs it) and counter 1 in mode 2 with count 18; counter 2 is left
unprogrammed. With False, every counter waits for a control word.
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import IrqLine
from tradekernel.emu.clock import NS_PER_S, Clock, Timer

PIT_HZ = 1_193_182
PIT_BASE = 0x40
CONTROL_PORT = 0x43
PORT_B = 0x61
REFRESH_TOGGLE_NS = 15_085
PORT_B_WRITABLE = 0x0F  # gate 2, speaker data, parity and channel-check enables

ACCESS_LATCH, ACCESS_LOW, ACCESS_HIGH, ACCESS_BOTH = 0, 1, 2, 3


def ticks_elapsed(start_ns: int, now_ns: int) -> int:
    """Whole PIT clock ticks from `start_ns` to `now_ns`."""
    elapsed = now_ns - start_ns
    return elapsed * PIT_HZ // NS_PER_S if elapsed > 0 else 0


def tick_time(start_ns: int, ticks: int) -> int:
    """The first nanosecond at which `ticks` ticks have elapsed since `start_ns`."""
    return start_ns - (-ticks * NS_PER_S // PIT_HZ)


def _to_bcd(value: int) -> int:
    return int(f"{value % 10000:04d}", 16)


def _from_bcd(raw: int) -> int:
    """Decimal value of four BCD digits; invalid nibbles count for what they weigh."""
    return sum(((raw >> (4 * i)) & 0xF) * 10**i for i in range(4))


class Counter:
    """One 8254 counter. `irq` set means its OUT drives that line and it keeps a clock timer."""

    _FIELDS = (
        "mode",
        "access",
        "bcd",
        "programmed",
        "reload",
        "armed",
        "gate",
        "running_since",
        "start_count",
        "frozen_count",
        "done",
        "pending_reload",
        "pending_at",
        "write_low",
        "read_high_next",
        "latched",
        "status_latched",
        "null_count",
    )

    def __init__(self, index: int, clock: Clock, irq: IrqLine | None) -> None:
        self.index = index
        self.clock = clock
        self.irq = irq
        self.gate = True
        self._timer: Timer | None = None
        self._fire_callback = self._fire  # bound once: the timer is set again per interrupt
        self.power_on()

    def power_on(self) -> None:
        self.mode = 0
        self.access = ACCESS_BOTH
        self._set_bcd(False)
        self.programmed = 0  # control word bits 5-0 as written, for the status byte
        self.reload = 0x10000
        self.armed = False  # a count has been loaded since the last control word
        self.running_since: int | None = None
        self.start_count = 0  # one-shot modes: counting element value at running_since
        self.frozen_count = 0  # value shown while not counting
        self.done = False  # one-shot modes: terminal count already reached in this run
        self.pending_reload: int | None = None  # modes 2/3: count waiting for the period end
        self.pending_at: int | None = None
        self.write_low: int | None = None  # LSB of a two-byte write, waiting for the MSB
        self.read_high_next = False
        self.latched: list[int] = []
        self.status_latched: int | None = None
        self.null_count = True
        self._cancel_timer()

    def _set_bcd(self, bcd: bool) -> None:
        self.bcd = bcd
        self.modulus = 10000 if bcd else 0x10000  # an attribute: counts read it on every access

    # -- value and OUT, from virtual time ----------------------------------------------------

    def _sync(self, now: int) -> None:
        """Apply a count that was waiting for the end of the running period."""
        if self.pending_at is not None and now >= self.pending_at:
            self.running_since = self.pending_at
            self.reload = self.pending_reload or self.modulus
            self.pending_reload = self.pending_at = None
            self.null_count = False

    def count_at(self, now: int) -> int:
        if self.pending_at is not None:
            self._sync(now)
        since = self.running_since
        if since is None:
            return self.frozen_count % self.modulus
        elapsed = ticks_elapsed(since, now)
        if self.mode == 2:
            return (self.reload - elapsed % self.reload) % self.modulus
        if self.mode == 3:
            phase = elapsed % self.reload
            high = (self.reload + 1) // 2
            if phase >= high:
                phase -= high
            return (self.reload - 2 * phase) % self.modulus
        return (self.start_count - elapsed) % self.modulus

    def out_at(self, now: int) -> bool:
        self._sync(now)
        mode = self.mode
        since = self.running_since
        if not self.armed:
            return mode != 0
        if since is None:
            return self.done if mode == 0 else True
        elapsed = ticks_elapsed(since, now)
        if mode in (0, 1):
            return self.done or elapsed >= self.start_count
        if mode == 2:
            return elapsed % self.reload != self.reload - 1
        if mode == 3:
            return elapsed % self.reload < (self.reload + 1) // 2
        return self.done or elapsed != self.start_count  # modes 4, 5: one tick low

    def encoded_count(self, now: int) -> int:
        value = self.count_at(now)
        return _to_bcd(value) if self.bcd else value

    # -- programming --------------------------------------------------------------------------

    def write_control(self, value: int, now: int) -> None:
        """A control word addressed to this counter: latch command or new mode."""
        access = (value >> 4) & 3
        if access == ACCESS_LATCH:
            self.latch_count(now)
            return
        self.frozen_count = self.count_at(now)
        mode = (value >> 1) & 7
        self.mode = mode - 4 if mode >= 6 else mode
        self.access = access
        if bool(value & 1) != self.bcd:
            self._set_bcd(not self.bcd)
        self.programmed = value & 0x3F
        self.armed = False
        self.running_since = None
        self.done = False
        self.pending_reload = self.pending_at = None
        self.write_low = None
        self.read_high_next = False
        if self.latched:
            self.latched = []
        self.status_latched = None
        self.null_count = True
        if self._timer is not None:  # (a one-shot re-armed per interrupt has fired already)
            self._cancel_timer()
        if self.irq is not None:
            self.irq.lower()

    def write_count(self, byte: int, now: int) -> None:
        if self.pending_at is not None:
            self._sync(now)
        if self.access == ACCESS_LOW:
            self._load(byte, now)
        elif self.access == ACCESS_HIGH:
            self._load(byte << 8, now)
        elif self.write_low is None:
            self.write_low = byte
            if self.mode == 0:  # the first byte stops a mode 0 count and drops OUT at once
                self._pause(now)
                self.done = False
                if self.irq is not None:
                    self.irq.lower()
        else:
            raw = self.write_low | (byte << 8)
            self.write_low = None
            self._load(raw, now)

    def _load(self, raw: int, now: int) -> None:
        count = _from_bcd(raw) if self.bcd else raw
        count = count or self.modulus
        mode = self.mode
        if mode in (2, 3) and self.armed and self.running_since is not None:
            elapsed = ticks_elapsed(self.running_since, now)
            self.pending_reload = count
            self.pending_at = tick_time(
                self.running_since, (elapsed // self.reload + 1) * self.reload
            )
            self.null_count = True
        elif mode in (1, 5):
            self.reload = count
            self.armed = True
            self.null_count = self.running_since is None
        else:
            self.reload = count
            self.start_count = count
            self.frozen_count = count
            self.armed = True
            self.done = False
            self.null_count = False
            self.running_since = now if self.gate else None
            if mode == 0 and self.irq is not None and self.irq.level:
                self.irq.lower()
        self._reschedule(now)

    def set_gate(self, level: bool, now: int) -> None:
        if level == self.gate:
            return
        self._sync(now)
        self.gate = level
        mode = self.mode
        if mode in (1, 5):
            if level and self.armed:  # a rising gate (re)triggers the one-shot
                self.running_since = now
                self.start_count = self.reload
                self.done = False
                self.null_count = False
        elif not level:
            self._pause(now)
        elif self.armed and self.write_low is None:
            if mode in (2, 3):  # a rising gate restarts the period from the initial count
                if self.pending_reload is not None:
                    self.reload = self.pending_reload
                    self.pending_reload = self.pending_at = None
                self.running_since = now
            else:
                self.start_count = self.frozen_count or self.modulus
                self.running_since = now
        self._reschedule(now)

    def _pause(self, now: int) -> None:
        if self.running_since is None:
            return
        if self.mode in (0, 4):
            self.done = self.done or ticks_elapsed(self.running_since, now) >= self.start_count
        self.frozen_count = self.count_at(now)
        self.running_since = None
        self.pending_reload = self.pending_at = None
        self._cancel_timer()

    # -- reading ------------------------------------------------------------------------------

    def latch_count(self, now: int) -> None:
        if self.latched:
            return  # a second latch before the first is read is ignored
        value = self.encoded_count(now)
        low, high = value & 0xFF, (value >> 8) & 0xFF
        self.latched = {ACCESS_LOW: [low], ACCESS_HIGH: [high]}.get(self.access, [low, high])

    def latch_status(self, now: int) -> None:
        if self.status_latched is None:
            out = self.out_at(now)
            self.status_latched = (out << 7) | (self.null_count << 6) | self.programmed

    def read(self, now: int) -> int:
        if self.status_latched is not None:
            value, self.status_latched = self.status_latched, None
            return value
        if self.latched:
            return self.latched.pop(0)
        value = self.encoded_count(now)
        if self.access == ACCESS_LOW:
            return value & 0xFF
        if self.access == ACCESS_HIGH:
            return (value >> 8) & 0xFF
        high, self.read_high_next = self.read_high_next, not self.read_high_next
        return (value >> 8) & 0xFF if high else value & 0xFF

    # -- the IRQ timer ------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _reschedule(self, now: int) -> None:
        """The IRQ timer for when OUT next rises (or reaches terminal count), if it ever does
        on its own (computed here, not in a helper: a one-shot is re-armed per interrupt)."""
        if self._timer is not None:
            self._cancel_timer()
        since = self.running_since
        if self.irq is None or not self.armed or since is None:
            return
        mode = self.mode
        if mode in (2, 3):
            edge_ticks = (ticks_elapsed(since, now) // self.reload + 1) * self.reload
            deadline = tick_time(since, edge_ticks)
            if self.pending_at is not None:
                deadline = min(deadline, self.pending_at)
        elif self.done:
            return
        else:
            deadline = tick_time(since, self.start_count + (0 if mode in (0, 1) else 1))
        self._timer = self.clock.call_at(deadline, self._fire_callback)

    def _fire(self) -> None:
        deadline = self._timer.deadline if self._timer is not None else self.clock.now_ns()
        self._timer = None
        if self.pending_at is not None:
            self._sync(deadline)
        if self.irq is not None:
            if self.mode in (0, 1):
                self.done = True
                self.irq.raise_()
                return  # a one-shot that has fired waits for a new count (see next_event)
            if self.mode in (4, 5):
                self.done = True
                self.irq.pulse()
                return
            self.irq.pulse()
        # When the host fell behind (real-time mode), edges already in the past are dropped
        # rather than replayed: the PIC latches only one, and replaying would livelock.
        self._reschedule(max(deadline, self.clock.now_ns()))

    def timer_deadline(self) -> int | None:
        return self._timer.deadline if self._timer is not None else None

    # -- snapshots ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in self._FIELDS}
        fields["latched"] = list(self.latched)
        fields["timer_deadline"] = self.timer_deadline()
        return fields

    def restore(self, state: dict[str, Any]) -> None:
        missing = [name for name in (*self._FIELDS, "timer_deadline") if name not in state]
        if missing:
            raise ValueError(f"8254 counter {self.index} snapshot lacks {', '.join(missing)}")
        for name in self._FIELDS:
            setattr(self, name, state[name])
        self._set_bcd(self.bcd)
        self.latched = [int(b) & 0xFF for b in state["latched"]]
        self._cancel_timer()
        if self.irq is not None:  # only modes 0 and 1 hold the line; the rest pulse it
            self.irq.set(self.mode in (0, 1) and self.armed and self.out_at(self.clock.now_ns()))
        deadline = state["timer_deadline"]
        if deadline is not None and self.irq is not None:
            self._timer = self.clock.call_at(int(deadline), self._fire)


class Pit(Device):
    """The 8254 at 0x40-0x43 plus port 0x61 (gate 2, speaker, OUT2 and refresh readback)."""

    name = "pit"
    STATE_VERSION = 1

    def __init__(self, bios_initialised: bool = True) -> None:
        self.bios_initialised = bios_initialised
        self.counters: list[Counter] = []
        self.port_b = 0
        self._clock: Clock | None = None
        self._now = self._unattached_now  # the clock's now_ns once attached (on every access)

    def attach(self, board: Board) -> None:
        self._clock = board.clock
        self._now = board.clock.now_ns
        self.counters = [
            Counter(0, board.clock, board.irq(0)),
            Counter(1, board.clock, None),
            Counter(2, board.clock, None),
        ]
        board.ports.claim(PIT_BASE, 4, self.name, self._read, self._write)
        board.ports.claim(PORT_B, 1, self.name, self._read_port_b, self._write_port_b)
        self.reset()

    def _unattached_now(self) -> int:
        raise RuntimeError("pit: used before attach()")

    def reset(self) -> None:
        if self._clock is None:
            raise RuntimeError("pit: reset() before attach()")
        self.port_b = 0
        for counter in self.counters:
            counter.power_on()
            counter.gate = counter.index != 2
        if self.bios_initialised:
            self._write(CONTROL_PORT, 1, 0x36)  # counter 0, lo/hi, mode 3
            self._write(PIT_BASE, 1, 0)
            self._write(PIT_BASE, 1, 0)
            self._write(CONTROL_PORT, 1, 0x54)  # counter 1, lo only, mode 2
            self._write(PIT_BASE + 1, 1, 18)

    # -- ports --------------------------------------------------------------------------------

    def _read(self, port: int, size: int) -> int:
        if port == CONTROL_PORT:
            return 0xFF  # the control register is write-only
        return self.counters[port - PIT_BASE].read(self._now())

    def _write(self, port: int, size: int, value: int) -> None:
        now = self._now()
        value &= 0xFF
        if port != CONTROL_PORT:
            self.counters[port - PIT_BASE].write_count(value, now)
            return
        select = value >> 6
        if select == 3:
            self._read_back(value, now)
        else:
            self.counters[select].write_control(value, now)

    def _read_back(self, value: int, now: int) -> None:
        for counter in self.counters:
            if not value & (2 << counter.index):
                continue
            if not value & 0x20:
                counter.latch_count(now)
            if not value & 0x10:
                counter.latch_status(now)

    def _read_port_b(self, port: int, size: int) -> int:
        now = self._now()
        refresh = (now // REFRESH_TOGGLE_NS) & 1
        out2 = self.counters[2].out_at(now)
        return (self.port_b & PORT_B_WRITABLE) | (refresh << 4) | (out2 << 5)

    def _write_port_b(self, port: int, size: int, value: int) -> None:
        self.port_b = value & PORT_B_WRITABLE
        self.counters[2].set_gate(bool(value & 1), self._now())

    # -- snapshots ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": self.STATE_VERSION,
            "port_b": self.port_b,
            "counters": [counter.state() for counter in self.counters],
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            counters = state["counters"]
            if len(counters) != len(self.counters):
                raise ValueError(f"{self.name}: snapshot has {len(counters)} counters")
            self.port_b = int(state["port_b"])
            for counter, counter_state in zip(self.counters, counters, strict=True):
                counter.restore(counter_state)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{self.name}: malformed snapshot ({error})") from error
