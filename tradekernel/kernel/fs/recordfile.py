"""A device file that speaks in fixed-size records: reads take whole records a service has
queued (sleeping while none is), writes hand whole records to the service.

The service behind it (an `Endpoint`, e.g. trading/marketport.py's MarketPort behind
/dev/market) knows no files or processes: this file binds it to the first program that reads
or writes it (`bind(name, pid)`), copies its records to user memory, and tells it to `close`
when the last descriptor goes (a program that dies, by a segfault or a signal, lets go of its
descriptors like one that exits). A read of a buffer smaller than one record is EINVAL; a
read with nothing queued sleeps through the `Sleeper` (EAGAIN with O_NONBLOCK; a signal ends
it, restartable); a waiting reader is served as soon as the endpoint's `notify` fires, and
every `notify` tells the file's watchers (poll, select). Writes never sleep: the endpoint
takes what it can and says so.

Imports: fs.vfs and mm (user memory).
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from typing import Protocol

from tradekernel.kernel.fs.vfs import (
    ERESTARTSYS,
    S_IFCHR,
    Caller,
    FileStat,
    OpenFile,
    Poll,
    Sleeper,
)
from tradekernel.kernel.mm.paging import UserMemoryFault, copy_to_user


class Endpoint(Protocol):
    """The service side of a record file."""

    queue: object  # its pending records: true while any waits (len() counts them)
    notify: Callable[[], None]  # set by the file: called when a record is queued

    def bind(self, name: str, pid: int) -> None: ...

    def take(self, count: int) -> bytes:
        """Up to `count` whole records, removed from the queue."""
        ...

    def handle(self, data: bytes) -> int:
        """Whole records written: bytes taken, or -errno."""
        ...

    def close(self) -> None: ...


class RecordFile(OpenFile):
    def __init__(self, sleeper: Sleeper, endpoint: Endpoint, record_out: int, rdev: int) -> None:
        self.sleeper = sleeper
        self.endpoint = endpoint  # it checks the records written itself
        self.record_out = record_out  # bytes per record read
        self.rdev = rdev
        self._reader: tuple[Caller, int, int, int] | None = None  # process, token, buffer, count
        endpoint.notify = self._queued

    def _bind(self, process: Caller) -> None:
        self.endpoint.bind(getattr(process, "name", ""), getattr(process, "pid", 0))

    def read(self, process: Caller, buffer: int, count: int) -> int | None:
        if count < self.record_out:
            return -E.EINVAL
        self._bind(process)
        if self.endpoint.queue:
            return self._deliver(process, buffer, count)
        if self.nonblocking:
            return -E.EAGAIN
        if self._reader is not None and self.sleeper.asleep(*self._reader[:2]):
            return -E.EBUSY  # one sleeping reader per open file (a session has one reader)
        token = self.sleeper.block(process, cancel=self._cancel)
        self._reader = (process, token, buffer, count)
        return None

    def _cancel(self) -> int:
        self._reader = None
        return -ERESTARTSYS

    def _deliver(self, process: Caller, buffer: int, count: int) -> int:
        data = self.endpoint.take(count // self.record_out)
        copy_to_user(process.aspace, buffer, data)  # a fault loses these records: EFAULT
        return len(data)

    def _queued(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            process, token, buffer, count = reader
            if self.sleeper.asleep(process, token):
                try:
                    result = self._deliver(process, buffer, count)
                except UserMemoryFault:
                    result = -E.EFAULT
                self.sleeper.wake(process, token, result)
        self.changed()

    def write(self, process: Caller, data: bytes) -> int:
        self._bind(process)
        return self.endpoint.handle(data)

    def poll(self) -> Poll:
        return Poll.OUT | (Poll.IN if self.endpoint.queue else Poll(0))

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o666, rdev=self.rdev, blksize=self.record_out)

    def close(self) -> None:
        self._reader = None
        self.endpoint.close()
