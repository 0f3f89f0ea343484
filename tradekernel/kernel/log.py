"""The kernel log: a bounded ring of entries (virtual time, level, subsystem, text), what
`dmesg` prints, and the oops record a contained kernel failure leaves.

Promises: `record` never raises and never grows past LOG_ENTRIES entries (the oldest go, as
Linux's printk ring overwrites); every entry is also handed to the `sink` (the platform log,
which the harness and `tk boot` show), so a failure is never only in guest memory. An oops is
one entry whose text carries the call trace, formatted as Linux's "Call Trace:" rather than
Python's traceback banner, cut to OOPS_FRAMES frames.

Imports nothing from the kernel: every layer may log (it sits below them all).
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

LOG_ENTRIES = 512  # the ring's length; the oldest entry is dropped first
OOPS_FRAMES = 12  # innermost call-trace frames kept in an oops
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")  # Linux's


@dataclass(frozen=True)
class LogEntry:
    time_ns: int  # virtual time since boot
    level: str  # one of LEVELS
    subsystem: str  # "syscall", "timer", "irq", "deferred", "shell", "kernel", ...
    text: str  # may hold several lines (an oops's call trace)

    def format(self) -> str:
        """The dmesg line: `[seconds.micros] subsystem: text` (later lines indented)."""
        seconds, rest = divmod(self.time_ns, 1_000_000_000)
        stamp = f"[{seconds:5d}.{rest // 1000:06d}]"
        first, *others = self.text.splitlines() or [""]
        head = f"{stamp} {self.level:<7} {self.subsystem}: {first}"
        return "\n".join([head, *(" " * len(stamp) + " " + line for line in others)])


class KernelLog:
    """The ring buffer; `now_ns` is the kernel's virtual clock, `sink` a host-side log."""

    def __init__(self, now_ns: Callable[[], int], sink: Callable[[str], None]) -> None:
        self._now_ns = now_ns
        self._sink = sink
        self.entries: deque[LogEntry] = deque(maxlen=LOG_ENTRIES)
        self.oopses = 0  # contained failures since boot

    def record(self, level: str, subsystem: str, text: str) -> LogEntry:
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        entry = LogEntry(self._now_ns(), level, subsystem, text)
        self.entries.append(entry)
        self._sink(f"kernel: {entry.format()}")
        return entry

    def info(self, subsystem: str, text: str) -> LogEntry:
        return self.record("info", subsystem, text)

    def warning(self, subsystem: str, text: str) -> LogEntry:
        return self.record("warning", subsystem, text)

    def oops(self, subsystem: str, what: str, error: BaseException) -> LogEntry:
        """A kernel service raised and was contained: `what` says what was stopped (and who
        paid for it); the entry holds the exception and its innermost frames."""
        self.oopses += 1
        frames = traceback.extract_tb(error.__traceback__)[-OOPS_FRAMES:]
        trace = [f"  {frame.name} ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"
                 for frame in frames]  # fmt: skip
        summary = f"{type(error).__name__}: {error}"
        text = "\n".join([f"oops: {what}", summary, "Call Trace:", *trace])
        return self.record("crit", subsystem, text)

    def lines(self) -> list[str]:
        """Every entry formatted, oldest first (what `dmesg` prints)."""
        return [line for entry in self.entries for line in entry.format().splitlines()]
