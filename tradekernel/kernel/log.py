"""The kernel log: a bounded ring of entries (virtual time, level, subsystem, text), what
`dmesg` and `log` print, and the oops record a contained kernel failure leaves.

Promises: `record` never raises for a known level and never grows past LOG_ENTRIES entries (the
oldest go, as Linux's printk ring overwrites); every entry is also handed to the `sink` (the
platform log, which the harness and `tk boot` show), so a failure is never only in guest memory,
and to each listener (the persistent log under /var/log, `log -f`); a listener that raises is
dropped and the drop is itself logged. An oops is one entry whose text carries the call trace,
formatted as Linux's "Call Trace:" rather than Python's traceback banner, cut to OOPS_FRAMES
frames. Entries carry a sequence number that never repeats within a boot, so a reader can ask
for what came after the last entry it saw.

`LogEntry.format` and `parse_lines` are inverse: the persistent log is the dmesg text, and
reading it back gives the same entries (level and subsystem filters work on both).

Imports nothing from the kernel: every layer may log (it sits below them all).
"""

from __future__ import annotations

import re
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

LOG_ENTRIES = 512  # the ring's length; the oldest entry is dropped first
OOPS_FRAMES = 12  # innermost call-trace frames kept in an oops
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")  # Linux's
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}  # 0 is the most severe
STAMP_WIDTH = len("[    0.000000]")
# a head read back from a file: seconds bounded, int() of 5000 digits would raise
_HEAD = re.compile(r"\[\s*(\d{1,18})\.(\d{6})\] ([a-z]+)\s+([^\s:]+): ?(.*)")

Listener = Callable[["LogEntry"], None]


@dataclass(frozen=True)
class LogEntry:
    time_ns: int  # virtual time since boot
    level: str  # one of LEVELS
    subsystem: str  # "syscall", "timer", "irq", "deferred", "shell", "kernel", ...
    text: str  # may hold several lines (an oops's call trace)
    seq: int = 0  # 1, 2, ... within a boot; 0 for an entry read back from a file

    def format(self) -> str:
        """The dmesg line: `[seconds.micros] level subsystem: text` (later lines indented)."""
        seconds, rest = divmod(self.time_ns, 1_000_000_000)
        stamp = f"[{seconds:5d}.{rest // 1000:06d}]"
        first, *others = self.text.splitlines() or [""]
        head = f"{stamp} {self.level:<7} {self.subsystem}: {first}"
        return "\n".join([head, *(" " * len(stamp) + " " + line for line in others)])

    def matches(self, level: str | None = None, subsystem: str | None = None) -> bool:
        """At `level` or more severe (journalctl -p), and from `subsystem` when one is named."""
        if level is not None and LEVEL_RANK[self.level] > LEVEL_RANK[level]:
            return False
        return subsystem is None or self.subsystem == subsystem


def check_level(level: str) -> str:
    """`level` if it is one of LEVELS (any case), else ValueError naming the choices."""
    if level.lower() not in LEVEL_RANK:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})")
    return level.lower()


def parse_lines(lines: Iterable[str]) -> list[LogEntry]:
    """Entries back from `format`ted text (the persistent log). An indented line continues
    the entry before it; any other line that is not an entry head is kept as an `info` entry
    of subsystem "?" so nothing written to the file is silently lost."""
    entries: list[LogEntry] = []
    for line in lines:
        head = _HEAD.fullmatch(line)
        if head and head.group(3) in LEVEL_RANK:
            seconds, micros, level, subsystem, text = head.groups()
            time_ns = int(seconds) * 1_000_000_000 + int(micros) * 1000
            entries.append(LogEntry(time_ns, level, subsystem, text))
        elif entries and line.startswith(" " * (STAMP_WIDTH + 1)):
            last = entries[-1]
            text = f"{last.text}\n{line[STAMP_WIDTH + 1 :]}"
            entries[-1] = LogEntry(last.time_ns, last.level, last.subsystem, text)
        elif line:
            entries.append(LogEntry(0, "info", "?", line))
    return entries


class KernelLog:
    """The ring buffer; `now_ns` is the kernel's virtual clock, `sink` a host-side log."""

    def __init__(self, now_ns: Callable[[], int], sink: Callable[[str], None]) -> None:
        self._now_ns = now_ns
        self._sink = sink
        self.entries: deque[LogEntry] = deque(maxlen=LOG_ENTRIES)
        self.oopses = 0  # contained failures since boot
        self.counts = dict.fromkeys(LEVELS, 0)  # entries per level since boot
        self._seq = 0
        self._listeners: list[Listener] = []

    def record(self, level: str, subsystem: str, text: str) -> LogEntry:
        if level not in LEVEL_RANK:
            raise ValueError(f"unknown log level {level!r}")
        self._seq += 1
        entry = LogEntry(self._now_ns(), level, subsystem, text, self._seq)
        self.entries.append(entry)
        self.counts[level] += 1
        self._sink(f"kernel: {entry.format()}")
        for listener in list(self._listeners):
            try:
                listener(entry)
            except Exception as error:  # noqa: BLE001 - a reader must not break logging
                self.unlisten(listener)
                name = getattr(listener, "__qualname__", type(listener).__name__)
                self.oops("log", f"log listener {name} raised; it was dropped", error)
        return entry

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(entry)` for every later entry; returns the way to stop."""
        self._listeners.append(listener)
        return lambda: self.unlisten(listener)

    def unlisten(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def debug(self, subsystem: str, text: str) -> LogEntry:
        return self.record("debug", subsystem, text)

    def info(self, subsystem: str, text: str) -> LogEntry:
        return self.record("info", subsystem, text)

    def warning(self, subsystem: str, text: str) -> LogEntry:
        return self.record("warning", subsystem, text)

    def error(self, subsystem: str, text: str) -> LogEntry:
        return self.record("err", subsystem, text)

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

    def select(
        self, level: str | None = None, subsystem: str | None = None, after: int = 0
    ) -> list[LogEntry]:
        """The ring's entries after sequence number `after` that match the filters."""
        return [e for e in self.entries if e.seq > after and e.matches(level, subsystem)]

    def lines(self) -> list[str]:
        """Every entry formatted, oldest first (what `dmesg` prints)."""
        return [line for entry in self.entries for line in entry.format().splitlines()]
