"""recvmmsg reads the iovec arrays of its vector with one user copy when they lie together (as
a market-data reader's array of iovecs does), and message by message when they do not or when
one of them cannot be read, so a bad pointer fails only the message whose turn it is.
Stand-ins as in test_trial_calls.py (real UDP sockets over simulated stacks)."""

from __future__ import annotations

import struct

import pytest

from tests.net.test_trial_calls import BUFFERS, IOVECS, SLOT, VECTOR, FlatMemory, _send, _setup
from tradekernel.kernel.mm.paging import UserMemoryFault
from tradekernel.kernel.net.sockfile import WouldSleep, trial
from tradekernel.kernel.proc import sockets
from tradekernel.kernel.proc.sockets import MSG_WAITFORONE

FAR = 0x30000  # more than MAX_IOV_BLOCK from IOVECS


class Counted(FlatMemory):
    """FlatMemory that counts reads touching the iovec area and faults on `holes`."""

    def __init__(self, base: FlatMemory) -> None:
        self.__dict__.update(base.__dict__)
        self.iovec_reads = 0
        self.holes: list[range] = []

    def read(self, aspace: object, address: int, size: int) -> bytes:
        if any(address < hole.stop and hole.start < address + size for hole in self.holes):
            raise UserMemoryFault(address, "page not present")
        if IOVECS <= address < BUFFERS or FAR <= address < FAR + 0x1000:
            self.iovec_reads += 1
        return super().read(aspace, address, size)


def _with(monkeypatch: pytest.MonkeyPatch, iovecs: list[int]):  # noqa: ANN202
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    memory = Counted(memory)
    monkeypatch.setattr(sockets, "copy_from_user", memory.read)
    monkeypatch.setattr(sockets, "copy_to_user", memory.write)
    for i, iov in enumerate(iovecs):
        memory.write(None, iov, struct.pack("<II", BUFFERS + SLOT * i, SLOT))
        memory.write(None, VECTOR + 32 * i, struct.pack("<IIII", 0, 0, iov, 1))
    memory.iovec_reads = 0
    return clock, memory, calls, process, sender


def _landed(memory: FlatMemory, payloads: list[bytes]) -> bool:
    return all(memory.at(BUFFERS + SLOT * i, len(p)) == p for i, p in enumerate(payloads))


def test_an_array_of_iovecs_is_read_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, calls, process, sender = _with(monkeypatch, [IOVECS + 8 * i for i in range(8)])
    payloads = [bytes([65 + i]) * (i + 1) for i in range(6)]
    _send(clock, sender, payloads)
    assert calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0)) == 6
    assert memory.iovec_reads == 1 and _landed(memory, payloads)


def test_scattered_iovecs_are_read_one_message_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, calls, process, sender = _with(monkeypatch, [IOVECS, FAR, IOVECS + 64])
    payloads = [b"one", b"two", b"three"]
    _send(clock, sender, payloads)
    assert calls.sys_recvmmsg(process, (4, VECTOR, 3, MSG_WAITFORONE, 0)) == 3
    assert memory.iovec_reads == 3 and _landed(memory, payloads)


def test_an_unreadable_iovec_fails_only_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    iovecs = [IOVECS + 8 * i for i in range(8)]
    iovecs[4] = IOVECS + 0x800  # inside the block's range, but unreadable
    clock, memory, calls, process, sender = _with(monkeypatch, iovecs)
    memory.holes.append(range(IOVECS + 0x800, IOVECS + 0x808))
    payloads = [b"a", b"bb", b"ccc"]
    _send(clock, sender, payloads)
    assert calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0)) == 3  # never reached
    assert _landed(memory, payloads)
    _send(clock, sender, [b"d", b"e", b"f", b"g", b"h"])  # the fifth message's turn comes
    with pytest.raises(UserMemoryFault):
        calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0))
    # the four before it were taken and their lengths written back, as before the fault
    assert [struct.unpack("<I", memory.at(VECTOR + 32 * i + 28, 4))[0] for i in range(4)] == [
        1, 1, 1, 1]


def test_an_empty_socket_is_left_to_the_full_path_before_any_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, calls, process, sender = _with(monkeypatch, [IOVECS + 8 * i for i in range(8)])
    reads: list[int] = []
    monkeypatch.setattr(sockets, "copy_from_user",
                        lambda aspace, address, size: reads.append(address) or memory.read(
                            aspace, address, size))
    with trial(), pytest.raises(WouldSleep):
        calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0))
    assert reads == []  # neither the vector nor the iovecs were read
    _send(clock, sender, [b"x"])
    with trial():
        assert calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0)) == 1
