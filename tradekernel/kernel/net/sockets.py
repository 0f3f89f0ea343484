"""What every socket of the stack shares: the readiness callback, the pending error (SO_ERROR),
the option table and address checks. Protocol modules subclass `Socket`.

Contract for callers (the future socket syscalls and shell commands): every call returns at
once; "would block" is `SocketError(EAGAIN)` (or EINPROGRESS for connect), and the callback
given to `set_callback` runs whenever `readiness()` may have changed, from inside `receive`,
a timer, or another socket call. Standard library and this package only.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from tradekernel.kernel.net.api import SocketError, Stack

Address = tuple[str, int]

# option names as (level, name) pairs with Linux's numbers, so syscalls pass them straight in
SOL_SOCKET, IPPROTO_IP, IPPROTO_TCP = 1, 0, 6
SO_REUSEADDR, SO_ERROR, SO_BROADCAST, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE = 2, 4, 6, 7, 8, 9
IP_TTL, IP_MULTICAST_TTL, IP_MULTICAST_LOOP = 2, 33, 34
IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP = 35, 36
TCP_NODELAY, TCP_MAXSEG, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = 1, 2, 4, 5, 6
MAX_OPTIONS = 64  # distinct (level, name) pairs one socket keeps; more is ENOPROTOOPT
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2


class Socket:
    kind = "?"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._callback: Callable[[Socket], None] | None = None
        self.error = 0
        self.options: dict[tuple[int, int], int] = {}
        self.closed = False

    def set_callback(self, fn: Callable[[Socket], None] | None) -> None:
        """`fn(sock)` runs whenever this socket's readiness may have changed."""
        self._callback = fn

    def notify(self) -> None:
        if self._callback is not None:
            self._callback(self)

    def readiness(self) -> int:
        raise NotImplementedError

    def take_error(self) -> int:
        """SO_ERROR: the pending error, cleared by reading it."""
        err, self.error = self.error, 0
        return err

    def getsockopt(self, level: int, name: int) -> int:
        if (level, name) == (SOL_SOCKET, SO_ERROR):
            return self.take_error()
        return self.options.get((level, name), 0)

    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        if not isinstance(value, int):
            raise SocketError(errno.EINVAL, "option needs an integer")
        if (level, name) not in self.options and len(self.options) >= MAX_OPTIONS:
            raise SocketError(errno.ENOPROTOOPT, "too many distinct options")
        self.options[(level, name)] = value

    def check_open(self) -> None:
        if self.closed:
            raise SocketError(errno.EBADF, "socket is closed")
