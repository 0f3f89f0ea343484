"""A socket as an open file (fs.vfs.OpenFile): what a descriptor from socket(2) or accept(2)
holds, so read, write, close, fstat, ioctl and poll work on it as on any file.

Blocking: the stack's calls never block (they raise SocketError EAGAIN/EINPROGRESS). `attempt`
runs an operation; if it would block and the file is blocking, the caller sleeps through the
`Sleeper` (the process layer) and the operation is retried each time the socket reports a
readiness change, until it completes or fails; the wake-up carries its result. A signal ends
the wait with ERESTARTSYS (or what a partly done send moved). Watchers (poll/select, through
OpenFile.watch) are told of every readiness change. Nothing here knows processes beyond the
Sleeper and `Caller`.

Trials (the trap fast path, proc/trap.py): inside `trial()` a call that would sleep raises
`WouldSleep` before it has done anything (no byte taken or queued, no waiter left), so the
same call can then take the full path from the start. A blocking stream send is tried only
when all of it fits in the send buffer now.

Imports: this package (sockets, api), fs.vfs and mm.paging (user copies).
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from dataclasses import dataclass

from tradekernel.kernel.fs.vfs import ERESTARTSYS, Caller, FileStat, OpenFile, Poll, Sleeper
from tradekernel.kernel.mm.paging import copy_from_user, copy_to_user
from tradekernel.kernel.net.api import POLLERR, POLLHUP, POLLIN, POLLOUT, SocketError
from tradekernel.kernel.net.sockets import Socket

S_IFSOCK = 0o140000
FIONREAD, FIONBIO = 0x541B, 0x5421
WOULD_BLOCK = (E.EAGAIN, E.EINPROGRESS, E.EALREADY)

Operation = Callable[[], int]


class WouldSleep(Exception):  # noqa: N818 - a signal to the trap, not an error
    """Raised in a trial where the call would have slept; nothing was done."""


class _Trial:
    """Whether socket calls run as a trial now (the kernel is single-threaded)."""

    active = False

    def __enter__(self) -> None:
        _Trial.active = True

    def __exit__(self, *_exc: object) -> None:
        _Trial.active = False


def trial() -> _Trial:
    """`with trial(): ...`: socket calls in the block raise WouldSleep rather than sleep."""
    return _Trial()


def in_trial() -> bool:
    return _Trial.active


@dataclass
class _Waiter:
    process: Caller
    token: int
    operation: Operation


class SocketFile(OpenFile):
    """One socket behind a descriptor. `kind` is "tcp", "udp" or "icmp"."""

    def __init__(self, sock: Socket, sleeper: Sleeper, nonblocking: bool = False) -> None:
        self.sock = sock
        self.sleeper = sleeper
        self.nonblocking = nonblocking
        self._waiters: list[_Waiter] = []
        sock.set_callback(self._changed)

    @property
    def kind(self) -> str:
        return self.sock.kind

    # -- blocking ------------------------------------------------------------------------------
    def attempt(self, process: Caller, operation: Operation,
                cancel: Callable[[], int] | None = None) -> int | None:
        """Run `operation` (it returns the call's result or raises SocketError); if it would
        block on a blocking socket, sleep until a retry completes. None: the caller sleeps."""
        try:
            return operation()
        except SocketError as error:
            if error.errno not in WOULD_BLOCK or self.nonblocking:
                return -error.errno
        if _Trial.active:
            raise WouldSleep
        waiter = _Waiter(process, 0, operation)

        def interrupted() -> int:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return cancel() if cancel is not None else -ERESTARTSYS

        waiter.token = self.sleeper.block(process, cancel=interrupted)
        self._waiters.append(waiter)
        return None

    def _changed(self, _sock: Socket) -> None:
        if self._waiters:
            self._retry_waiters()
        if self._watchers:
            self.changed()

    def _retry_waiters(self) -> None:
        for waiter in list(self._waiters):
            if waiter not in self._waiters:
                continue
            if not self.sleeper.asleep(waiter.process, waiter.token):
                self._waiters.remove(waiter)
                continue
            try:
                result = waiter.operation()
            except SocketError as error:
                if error.errno in WOULD_BLOCK:
                    continue
                result = -error.errno
            except OSError as error:  # a user copy that faulted
                result = -(error.errno or E.EFAULT)
            self._waiters.remove(waiter)
            self.sleeper.wake(waiter.process, waiter.token, result)

    # -- the file interface --------------------------------------------------------------------
    def receive_into(self, process: Caller, buffer: int, count: int
                     ) -> Callable[[], int]:
        """The operation of a read/recv: bytes copied to `buffer` (0 at end of stream)."""

        def operation() -> int:
            recv = getattr(self.sock, "recv", None)
            data = recv(count) if recv else self.sock.recvfrom(count)[0]  # type: ignore[attr-defined]
            if data:
                copy_to_user(process.aspace, buffer, data)
            return len(data)

        return operation

    def read(self, process: Caller, buffer: int, count: int) -> int | None:
        return self.attempt(process, self.receive_into(process, buffer, count))

    def write(self, process: Caller, data: bytes) -> int | None:
        """write(2): as send with no flags, so EPIPE also raises SIGPIPE."""
        send = getattr(self.sock, "send", None) or self.sock.sendto  # type: ignore[attr-defined]
        result = self.send_all(process, send, data)
        if result == -E.EPIPE:
            self.sleeper.broken_pipe(process)
        return result

    def send_all(self, process: Caller, send: Callable[[bytes], int], data: bytes) -> int | None:
        """A blocking send moves every byte (sleeping while the send buffer is full); a
        non-blocking one what fits now (EAGAIN if nothing). A signal ends it with what moved."""
        sent = 0
        if _Trial.active and not self.nonblocking:
            room = getattr(self.sock, "send_room", None)
            if room is None or room() < len(data):
                raise WouldSleep  # it could move part and then sleep: the full path does it

        def operation() -> int:
            nonlocal sent
            while sent < len(data):
                try:
                    sent += send(data[sent:])
                except SocketError as error:
                    if error.errno in WOULD_BLOCK and (sent == 0 or not self.nonblocking):
                        raise
                    if sent:
                        return sent
                    raise
                if self.nonblocking:
                    break
            return sent

        return self.attempt(process, operation, cancel=lambda: sent or -ERESTARTSYS)

    def poll(self) -> Poll:
        ready = self.sock.readiness()
        flags = Poll(0)
        if ready & POLLIN:
            flags |= Poll.IN
        if ready & POLLOUT:
            flags |= Poll.OUT
        if ready & POLLERR:
            flags |= Poll.ERR
        if ready & POLLHUP:
            flags |= Poll.HUP
        return flags

    def stat(self) -> FileStat:
        return FileStat(S_IFSOCK | 0o777, blksize=4096)

    def ioctl(self, process: Caller, request: int, pointer: int) -> int:
        if request == FIONBIO:
            self.nonblocking = bool(int.from_bytes(copy_from_user(process.aspace, pointer, 4),
                                                   "little"))
            return 0
        if request == FIONREAD:
            queued = getattr(self.sock, "queued_bytes", None)
            if queued is None:
                queued = len(getattr(self.sock, "rcvbuf", b""))
            copy_to_user(process.aspace, pointer, int(queued).to_bytes(4, "little"))
            return 0
        raise OSError(E.ENOTTY, "not a terminal")

    def close(self) -> None:
        self.sock.set_callback(None)
        for waiter in self._waiters:
            if self.sleeper.asleep(waiter.process, waiter.token):
                self.sleeper.wake(waiter.process, waiter.token, -E.EBADF)
        self._waiters.clear()
        self.sock.close()  # type: ignore[attr-defined]
