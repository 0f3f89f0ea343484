"""Pipes: a 4 KiB kernel ring buffer between a read end and a write end (pipe/pipe2).

Both ends are OpenFiles (fs/vfs.py), shared by every descriptor (and every forked process) that
refers to them; the last descriptor to let go of an end closes it. A read
takes what is buffered, or sleeps while the pipe is empty and a writer exists (0, end of file,
once every writer is gone). A write sleeps until all of its bytes are in the buffer; writing
with no reader left is EPIPE and SIGPIPE (by default the writer dies quietly, as under bash).
Sleepers are served in FIFO order by `_pump`, which moves bytes writer -> buffer -> reader
until nothing moves; a sleeper that died or was woken by a signal meanwhile is skipped. A
signal ends a sleeping read with nothing read (restartable), a sleeping write with the
bytes already taken, if any. With O_NONBLOCK on the end, a read of an empty pipe is EAGAIN
and a write takes what fits (EAGAIN if nothing does, or if a write of at most PIPE_BUF
bytes does not fit whole: POSIX's atomic writes). Every change of the buffer or of the ends
tells both ends' watchers (OpenFile.changed), which is what wakes a sleeping poll.

Imports: fs.vfs and mm (user memory). Sleeping, waking and SIGPIPE go through the `Sleeper`
the process layer hands to `Pipe`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tradekernel.kernel.fs.vfs import (
    ERESTARTSYS,
    S_IFIFO,
    Caller,
    FileStat,
    OpenFile,
    Poll,
    Sleeper,
)
from tradekernel.kernel.mm.paging import UserMemoryFault, copy_to_user

PIPE_CAPACITY = 4096
PIPE_BUF = 4096  # writes up to this size are atomic (POSIX)
EAGAIN, EPIPE, EFAULT = 11, 32, 14


@dataclass
class _Reader:
    process: Caller
    token: int
    buffer: int
    count: int


@dataclass
class _Writer:
    process: Caller
    token: int
    data: bytes
    written: int = 0


class Pipe:
    def __init__(self, sleeper: Sleeper) -> None:
        self.sleeper = sleeper
        self.buffer = bytearray()
        self.readers = 0  # open read ends (each end object counts once)
        self.writers = 0
        self._waiting_readers: deque[_Reader] = deque()
        self._waiting_writers: deque[_Writer] = deque()
        self._ends: tuple[OpenFile, ...] = ()

    def ends(self) -> tuple[PipeReadEnd, PipeWriteEnd]:
        self.readers += 1
        self.writers += 1
        pair = PipeReadEnd(self), PipeWriteEnd(self)
        self._ends = pair
        return pair

    def _changed(self) -> None:
        for end in self._ends:
            end.changed()

    # ---- the calls ----------------------------------------------------------------------
    def read(self, process: Caller, buffer: int, count: int, nonblocking: bool = False
             ) -> int | None:  # fmt: skip
        if self.buffer:
            return self._deliver(process, buffer, count)
        if self.writers == 0:
            return 0
        if nonblocking:
            return -EAGAIN
        token = self.sleeper.block(process, cancel=lambda: -ERESTARTSYS)
        self._waiting_readers.append(_Reader(process, token, buffer, count))
        return None

    def write(self, process: Caller, data: bytes, nonblocking: bool = False) -> int | None:
        if self.readers == 0:
            self.sleeper.broken_pipe(process)
            return -EPIPE
        writer = _Writer(process, 0, data)
        if nonblocking:
            room = PIPE_CAPACITY - len(self.buffer)
            if self._waiting_writers or not room or len(data) <= PIPE_BUF and room < len(data):
                return -EAGAIN
            self._take(writer)
            self._pump()
            return writer.written
        if not self._waiting_writers:
            self._take(writer)
            if writer.written == len(data):
                self._pump()
                return len(data)
        writer.token = self.sleeper.block(process, cancel=lambda: writer.written or -ERESTARTSYS)
        self._waiting_writers.append(writer)
        self._pump()
        return None

    # ---- moving bytes -------------------------------------------------------------------
    def _deliver(self, process: Caller, buffer: int, count: int) -> int:
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
        """Serve sleeping writers and readers until no byte can move; then tell the ends'
        watchers (a poll may be waiting for what changed)."""
        moved = True
        while moved:
            moved = False
            while self._waiting_writers and len(self.buffer) < PIPE_CAPACITY:
                writer = self._waiting_writers[0]
                if not self.sleeper.asleep(writer.process, writer.token):
                    self._waiting_writers.popleft()
                    continue
                self._take(writer)
                moved = True
                if writer.written < len(writer.data):
                    break
                self._waiting_writers.popleft()
                self.sleeper.wake(writer.process, writer.token, writer.written)
            while self._waiting_readers and (self.buffer or self.writers == 0):
                reader = self._waiting_readers.popleft()
                if not self.sleeper.asleep(reader.process, reader.token):
                    continue
                size = min(reader.count, len(self.buffer))
                try:
                    copy_to_user(reader.process.aspace, reader.buffer, bytes(self.buffer[:size]))
                except UserMemoryFault:
                    self.sleeper.wake(reader.process, reader.token, -EFAULT)
                    continue
                del self.buffer[:size]
                moved = moved or size > 0
                self.sleeper.wake(reader.process, reader.token, size)
        self._changed()

    # ---- ends closing -------------------------------------------------------------------
    def close_reader(self) -> None:
        self.readers -= 1
        if self.readers:
            return
        writers, self._waiting_writers = list(self._waiting_writers), deque()
        for writer in writers:
            if self.sleeper.asleep(writer.process, writer.token):
                self.sleeper.wake(writer.process, writer.token, writer.written or -EPIPE)
                self.sleeper.broken_pipe(writer.process)
        self._changed()

    def close_writer(self) -> None:
        self.writers -= 1
        if not self.writers:
            self._pump()  # sleeping readers get what is left, then end of file


class PipeReadEnd(OpenFile):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def read(self, process: Caller, buffer: int, count: int) -> int | None:
        return self.pipe.read(process, buffer, count, self.nonblocking)

    def poll(self) -> Poll:
        """Readable with bytes buffered or no writer left (end of file: also HUP)."""
        pipe = self.pipe
        hangup = Poll.HUP if pipe.writers == 0 else Poll(0)
        return (Poll.IN if pipe.buffer or hangup else Poll(0)) | hangup

    def stat(self) -> FileStat:
        return FileStat(S_IFIFO | 0o600, blksize=PIPE_CAPACITY)

    def close(self) -> None:
        self.pipe.close_reader()


class PipeWriteEnd(OpenFile):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def write(self, process: Caller, data: bytes) -> int | None:
        return self.pipe.write(process, data, self.nonblocking)

    def poll(self) -> Poll:
        """Writable with room in the buffer; ERR once no reader is left (a write is EPIPE)."""
        pipe = self.pipe
        if pipe.readers == 0:
            return Poll.OUT | Poll.ERR
        return Poll.OUT if len(pipe.buffer) < PIPE_CAPACITY else Poll(0)

    def stat(self) -> FileStat:
        return FileStat(S_IFIFO | 0o600, blksize=PIPE_CAPACITY)

    def close(self) -> None:
        self.pipe.close_writer()
