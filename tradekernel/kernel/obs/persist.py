"""The persistent kernel log: every kernel log entry, appended to /var/log/kern.log on the
disk, rotated by size (kern.log.1 ... kern.log.KEEP), read back by `log`.

Nothing is written on a boot that logs nothing. Entries are queued by the kernel log's
listener (which may run anywhere, an IRQ handler or the filesystem itself) and written from
deferred work, one write and one drive flush per batch, so logging never re-enters the
filesystem and a burst costs one flush. The queue holds at most
PENDING_MAX entries; past that the oldest queued entries are dropped and the next write says
how many. The format is dmesg's (kernel/log.py `LogEntry.format`), so the file reads as text
(`cat /var/log/kern.log`) and parses back into entries for filtering.

Uses the kernel log, the FAT filesystem (through obs/rotating.py) and the kernel's `defer`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tradekernel.kernel.fs.fat import FatFs
from tradekernel.kernel.log import KernelLog, LogEntry, parse_lines
from tradekernel.kernel.obs.rotating import RotatingFile

KERN_LOG = "/var/log/kern.log"
KERN_LOG_BYTES = 64 * 1024  # one generation; the set is bounded by (KEEP + 1) times this
KERN_LOG_KEEP = 4  # kern.log.1 ... kern.log.4
PENDING_MAX = 1024  # entries waiting for the next deferred write
READ_LIMIT = 2 * KERN_LOG_BYTES  # bytes of one generation `log` reads at most (the tail)


class PersistentLog:
    def __init__(self, fs: FatFs, klog: KernelLog, defer: Callable[[Callable[[], None]], None],
                 path: str = KERN_LOG) -> None:  # fmt: skip
        self.klog = klog
        self._defer = defer
        self.file = RotatingFile(fs, path, KERN_LOG_BYTES, KERN_LOG_KEEP)
        self._pending: deque[LogEntry] = deque()
        self._scheduled = False
        self.dropped = 0  # entries lost to a full queue since boot
        self.written = 0

    def start(self, banner: str, now_ns: int) -> None:
        """Mark the boot in the file with `banner` (there only: the console and the host's
        log need no such line), queue what the ring already holds (the boot before the disk
        was up), then follow every new entry. The banner waits for the first real entry (or
        a reader): a boot that logs nothing leaves the disk as it was."""
        if self.file.broken is not None:
            self.klog.warning("log", f"no persistent log: {self.file.broken}")
            return
        self._pending.append(LogEntry(now_ns, "info", "log", banner))
        for entry in self.klog.entries:
            self._queue(entry)
        self.klog.listen(self._queue)

    def _queue(self, entry: LogEntry) -> None:
        if len(self._pending) >= PENDING_MAX:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(entry)
        if not self._scheduled:
            self._scheduled = True
            self._defer(self.flush)

    def flush(self) -> None:
        """Write what is queued and flush the drive (deferred work, or a reader's request)."""
        self._scheduled = False
        if not self._pending or self.file.broken is not None:
            return
        lines = [entry.format() for entry in self._pending]
        if self.dropped:
            note = f"{self.dropped} earlier entries dropped (queue full)"
            lines.insert(0, LogEntry(self._pending[0].time_ns, "warning", "log", note).format())
            self.dropped = 0
        self._pending.clear()
        if self.file.append(("\n".join(lines) + "\n").encode("utf-8", "replace")):
            self.written += len(lines)
            self.file.sync()
        if self.file.broken is not None:
            self.klog.unlisten(self._queue)
            self.klog.warning("log", f"persistent log stopped: {self.file.broken}")

    def entries(self) -> list[LogEntry]:
        """Every entry on the disk, oldest generation first, after writing what is queued."""
        self.flush()
        found: list[LogEntry] = []
        for path in self.file.generations():
            cut, data = self.file.read(path, READ_LIMIT)
            if cut:  # the first line is a piece of one
                data = data.partition(b"\n")[2]
            found.extend(parse_lines(data.decode("utf-8", "replace").splitlines()))
        return found
