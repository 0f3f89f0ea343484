"""Pipes: a 4 KiB kernel ring buffer between a read end and a write end (pipe/pipe2).

Both ends are OpenFiles, shared by every descriptor (and every forked process) that refers to
them; the process layer counts those references and calls `close` when the last goes. A read
takes what is buffered, or sleeps while the pipe is empty and a writer exists (0, end of file,
once every writer is gone). A write sleeps until all of its bytes are in the buffer; writing
with no reader left is EPIPE and SIGPIPE (by default the writer dies quietly, as under bash).
Sleepers are served in FIFO order by `_pump`, which moves bytes writer -> buffer -> reader
until nothing moves; a sleeper that died or was woken by a signal meanwhile is skipped. A
signal ends a sleeping read with nothing read (restartable), a sleeping write with the
bytes already taken, if any.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tradekernel.kernel.paging import UserMemoryFault, copy_to_user
from tradekernel.kernel.process import (
    S_IFIFO,
    FileStat,
    OpenFile,
    Process,
    ProcessManager,
    State,
)
from tradekernel.kernel.signals import ERESTARTSYS, SIGPIPE

PIPE_CAPACITY = 4096
EPIPE, EFAULT = 32, 14


@dataclass
class _Reader:
    process: Process
    token: int
    buffer: int
    count: int


@dataclass
class _Writer:
    process: Process
    token: int
    data: bytes
    written: int = 0


def _asleep(process: Process, token: int) -> bool:
    return process.state == State.SLEEPING and process.wait_token == token


class Pipe:
    def __init__(self, manager: ProcessManager) -> None:
        self.manager = manager
        self.buffer = bytearray()
        self.readers = 0  # open read ends (each end object counts once)
        self.writers = 0
        self._waiting_readers: deque[_Reader] = deque()
        self._waiting_writers: deque[_Writer] = deque()

    def ends(self) -> tuple[PipeReadEnd, PipeWriteEnd]:
        self.readers += 1
        self.writers += 1
        return PipeReadEnd(self), PipeWriteEnd(self)

    # ---- the calls ----------------------------------------------------------------------
    def read(self, process: Process, buffer: int, count: int) -> int | None:
        if self.buffer:
            return self._deliver(process, buffer, count)
        if self.writers == 0:
            return 0
        token = self.manager.block(process, cancel=lambda: -ERESTARTSYS)
        self._waiting_readers.append(_Reader(process, token, buffer, count))
        return None

    def write(self, process: Process, data: bytes) -> int | None:
        if self.readers == 0:
            self.manager.signals.send(process, SIGPIPE)
            return -EPIPE
        writer = _Writer(process, 0, data)
        if not self._waiting_writers:
            self._take(writer)
            if writer.written == len(data):
                self._pump()
                return len(data)
        writer.token = self.manager.block(process, cancel=lambda: writer.written or -ERESTARTSYS)
        self._waiting_writers.append(writer)
        self._pump()
        return None

    # ---- moving bytes -------------------------------------------------------------------
    def _deliver(self, process: Process, buffer: int, count: int) -> int:
        """Copy buffered bytes to a reader (the buffer keeps them if the copy faults)."""
        size = min(count, len(self.buffer))
        copy_to_user(process.aspace, buffer, bytes(self.buffer[:size]))
        del self.buffer[:size]
        self._pump()
        return size

    def _take(self, writer: _Writer) -> None:
        room = PIPE_CAPACITY - len(self.buffer)
        piece = writer.data[writer.written : writer.written + room]
        self.buffer += piece
        writer.written += len(piece)

    def _pump(self) -> None:
        """Serve sleeping writers and readers until no byte can move."""
        moved = True
        while moved:
            moved = False
            while self._waiting_writers and len(self.buffer) < PIPE_CAPACITY:
                writer = self._waiting_writers[0]
                if not _asleep(writer.process, writer.token):
                    self._waiting_writers.popleft()
                    continue
                self._take(writer)
                moved = True
                if writer.written < len(writer.data):
                    break
                self._waiting_writers.popleft()
                self.manager.wake(writer.process, writer.token, writer.written)
            while self._waiting_readers and (self.buffer or self.writers == 0):
                reader = self._waiting_readers.popleft()
                if not _asleep(reader.process, reader.token):
                    continue
                size = min(reader.count, len(self.buffer))
                try:
                    copy_to_user(reader.process.aspace, reader.buffer, bytes(self.buffer[:size]))
                except UserMemoryFault:
                    self.manager.wake(reader.process, reader.token, -EFAULT)
                    continue
                del self.buffer[:size]
                moved = moved or size > 0
                self.manager.wake(reader.process, reader.token, size)

    # ---- ends closing -------------------------------------------------------------------
    def close_reader(self) -> None:
        self.readers -= 1
        if self.readers:
            return
        writers, self._waiting_writers = list(self._waiting_writers), deque()
        for writer in writers:
            if _asleep(writer.process, writer.token):
                self.manager.wake(writer.process, writer.token, writer.written or -EPIPE)
                self.manager.signals.send(writer.process, SIGPIPE)

    def close_writer(self) -> None:
        self.writers -= 1
        if not self.writers:
            self._pump()  # sleeping readers get what is left, then end of file


class PipeReadEnd(OpenFile):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def read(self, process: Process, buffer: int, count: int) -> int | None:
        return self.pipe.read(process, buffer, count)

    def stat(self) -> FileStat:
        return FileStat(S_IFIFO | 0o600, blksize=PIPE_CAPACITY)

    def close(self) -> None:
        self.pipe.close_reader()


class PipeWriteEnd(OpenFile):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def write(self, process: Process, data: bytes) -> int | None:
        return self.pipe.write(process, data)

    def stat(self) -> FileStat:
        return FileStat(S_IFIFO | 0o600, blksize=PIPE_CAPACITY)

    def close(self) -> None:
        self.pipe.close_writer()
