"""AF_UNIX SOCK_STREAM socket pairs, as socketpair(2) makes them: two connected ends inside the
kernel, with no address, no listener and no network stack (they work with no network card).

Each end has a receive buffer of at most UNIX_BUFFER bytes; `send` moves what fits into the
peer's buffer (EAGAIN when it is full, so a blocking writer sleeps in the socket file layer and
is woken when the reader makes room). `recv` returns what is buffered, b"" at end of stream
(the peer shut its writing side or closed), EAGAIN otherwise. Writing after the peer is gone,
or after our own SHUT_WR, is EPIPE. Readiness follows Linux's unix_poll: POLLIN with data or
at end of stream, POLLOUT while the peer's buffer has room, POLLHUP once both directions are
shut. Every change wakes the callbacks of the end(s) whose readiness it may change, as the
`Socket` contract says.

Imports: this package only.
"""

from __future__ import annotations

import errno

from tradekernel.kernel.net.api import POLLHUP, POLLIN, POLLOUT, SocketError
from tradekernel.kernel.net.sockets import SHUT_RD, SHUT_RDWR, SHUT_WR, Socket

UNIX_BUFFER = 208 * 1024  # bytes queued per end (Linux's default net.core.wmem_default)


class UnixStream(Socket):
    kind = "unix"

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type] - no network stack behind it
        self.peer: UnixStream | None = None
        self.rcvbuf = bytearray()
        self.eof = False  # the peer will send no more
        self.read_shut = False
        self.write_shut = False

    @classmethod
    def pair(cls) -> tuple[UnixStream, UnixStream]:
        first, second = cls(), cls()
        first.peer, second.peer = second, first
        return first, second

    @property
    def queued_bytes(self) -> int:
        return len(self.rcvbuf)

    def send(self, data: bytes) -> int:
        self.check_open()
        peer = self.peer
        if self.write_shut or peer is None or peer.read_shut:
            raise SocketError(errno.EPIPE, "the other end is closed")
        room = UNIX_BUFFER - len(peer.rcvbuf)
        if room <= 0:
            raise SocketError(errno.EAGAIN)
        taken = data[:room]
        peer.rcvbuf += taken
        peer.notify()
        return len(taken)

    def recv(self, maxlen: int = 65536) -> bytes:
        self.check_open()
        if self.rcvbuf:
            data = bytes(self.rcvbuf[:maxlen])
            del self.rcvbuf[: len(data)]
            if self.peer is not None:
                self.peer.notify()  # room for its writer
            return data
        if self.eof or self.read_shut:
            return b""
        raise SocketError(errno.EAGAIN)

    def readiness(self) -> int:
        ready = 0
        if self.rcvbuf or self.eof or self.read_shut:
            ready |= POLLIN
        peer = self.peer
        if peer is not None and not self.write_shut and len(peer.rcvbuf) < UNIX_BUFFER:
            ready |= POLLOUT
        if (self.eof or self.read_shut) and (self.write_shut or peer is None):
            ready |= POLLHUP
        return ready

    def shutdown(self, how: int) -> None:
        self.check_open()
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise SocketError(errno.EINVAL, "shutdown how")
        if how in (SHUT_RD, SHUT_RDWR):
            self.read_shut = True
            self.rcvbuf.clear()
        if how in (SHUT_WR, SHUT_RDWR):
            self.write_shut = True
            if self.peer is not None:
                self.peer.eof = True
                self.peer.notify()
        self.notify()

    def bind(self, _address: tuple[str, int]) -> None:
        raise SocketError(errno.EINVAL, "a socketpair end has no address to bind")

    def connect(self, _address: tuple[str, int]) -> None:
        raise SocketError(errno.EINVAL, "a socketpair end is connected already")

    def listen(self, _backlog: int) -> None:
        raise SocketError(errno.EINVAL, "a socketpair end cannot listen")

    def accept(self) -> UnixStream:
        raise SocketError(errno.EINVAL, "a socketpair end is not listening")

    def getsockname(self) -> tuple[str, int]:
        return ("", 0)

    getpeername = getsockname

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._callback = None
        peer, self.peer = self.peer, None
        self.rcvbuf.clear()
        if peer is not None:
            peer.peer = None
            peer.eof = True
            peer.notify()
