"""Host memory a socket syscall may take for one call is bounded by MAX_IO, however the guest
shapes its arguments."""

from __future__ import annotations

import struct

import pytest

from tradekernel.kernel.net.sockfile import SocketFile
from tradekernel.kernel.proc import sockets
from tradekernel.kernel.proc.sockets import MAX_IO, MAX_IOV, SocketCalls


def test_sendmsg_copies_at_most_max_io_over_all_its_iovecs(monkeypatch: pytest.MonkeyPatch) -> None:
    msghdr, iov = 0x1000, 0x2000
    copied: list[int] = []

    def copy_from_user(_aspace: object, vaddr: int, size: int) -> bytes:
        if vaddr == msghdr:
            return struct.pack("<IIII", 0, 0, iov, MAX_IOV)
        if vaddr == iov:
            return struct.pack("<II", 0x10000, MAX_IO) * MAX_IOV
        copied.append(size)
        return bytes(min(size, 16))  # the sizes asked for are what counts

    class Files:
        def get(self, _fd: int) -> SocketFile:
            return object.__new__(SocketFile)

    class Process:
        aspace = None
        files = Files()

    monkeypatch.setattr(sockets, "copy_from_user", copy_from_user)
    calls = object.__new__(SocketCalls)
    monkeypatch.setattr(calls, "_send", lambda *_args: 0, raising=False)
    assert calls.sys_sendmsg(Process(), (3, msghdr, 0)) == 0  # type: ignore[arg-type]
    assert sum(copied) == MAX_IO


@pytest.mark.parametrize("call", ["bind", "connect", "listen", "accept4"])
def test_address_calls_on_a_socketpair_end_fail_with_einval(
    call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socketpair end has no address, listener or peer to connect: Linux says EINVAL, and the
    call must not reach an AttributeError (a kernel oops that kills the caller)."""
    import errno

    from tradekernel.kernel.net.unix import UnixStream

    end, _ = UnixStream.pair()
    file = object.__new__(SocketFile)
    file.sock, file.nonblocking = end, True

    class Files:
        def get(self, _fd: int) -> SocketFile:
            return file

        def free(self, count: int = 1) -> list[int]:
            return list(range(4, 4 + count))

    class Process:
        aspace = None
        files = Files()

    sockaddr_in = struct.pack("<HH4s8x", 2, 0x5000, bytes([127, 0, 0, 1]))
    monkeypatch.setattr(sockets, "copy_from_user", lambda _a, _v, size: sockaddr_in[:size])
    calls = object.__new__(SocketCalls)
    args = {"bind": (3, 0x1000, 16), "connect": (3, 0x1000, 16), "listen": (3, 5),
            "accept4": (3, 0, 0, 0)}[call]  # fmt: skip
    assert getattr(calls, f"sys_{call}")(Process(), args) == -errno.EINVAL  # type: ignore[arg-type]


def test_a_socket_keeps_a_bounded_number_of_distinct_options() -> None:
    """setsockopt with ever-new (level, name) pairs from a program cannot grow the table."""
    import errno

    from tradekernel.kernel.net.api import SocketError
    from tradekernel.kernel.net.sockets import MAX_OPTIONS
    from tradekernel.kernel.net.unix import UnixStream

    end, _ = UnixStream.pair()
    for name in range(MAX_OPTIONS):
        end.setsockopt(0x1234, name, 1)
    with pytest.raises(SocketError) as refused:
        end.setsockopt(0x1234, MAX_OPTIONS, 1)
    assert refused.value.errno == errno.ENOPROTOOPT
    end.setsockopt(0x1234, 0, 2)  # one it has can still change
    assert len(end.options) == MAX_OPTIONS and end.getsockopt(0x1234, 0) == 2
