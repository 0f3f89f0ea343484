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
