"""A sleeping poll/select wakes on its files' change callbacks, not on a timer: the virtual time
of the wake-up is the arrival of the data, and while nothing arrives no event is queued for it
but its timeout. Real pipes and real UDP sockets over two simulated stacks; the process layer
is a small Sleeper with one sleeping process."""

from __future__ import annotations

import struct
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tests.net.sim import US, pair
from tradekernel.kernel.fs.pipe import Pipe
from tradekernel.kernel.fs.vfs import OpenFile
from tradekernel.kernel.net.sockfile import SocketFile
from tradekernel.kernel.proc import sockets
from tradekernel.kernel.proc.sockets import SocketCalls

POLLIN = 0x1
MS = 1_000_000


class Memory(dict[int, bytes]):
    """User memory as {address: bytes written there} (reads give back what was written)."""

    def read(self, _aspace: object, address: int, size: int) -> bytes:
        return self.get(address, bytes(size))[:size].ljust(size, b"\0")

    def write(self, _aspace: object, address: int, data: bytes) -> None:
        self[address] = bytes(data)


class Manager:
    """The Sleeper: one sleep at a time, its result kept with the virtual time it came."""

    def __init__(self, clock: object) -> None:
        self.kernel = SimpleNamespace(clock=clock, call_at=clock.call_at)  # type: ignore[attr-defined]
        self.clock = clock
        self.token = 0
        self.sleeping = False
        self.woke: tuple[int, int] | None = None  # (result, virtual ns)
        self.cancel: Callable[[], int] | None = None

    def block(self, _process: object, cancel: Callable[[], int] | None = None) -> int:
        self.token += 1
        self.sleeping, self.cancel = True, cancel
        return self.token

    def asleep(self, _process: object, token: int) -> bool:
        return self.sleeping and token == self.token

    def wake(self, _process: object, token: int, result: int) -> None:
        if self.asleep(None, token):
            self.sleeping = False
            self.woke = (result, self.clock.now_ns())  # type: ignore[attr-defined]

    def broken_pipe(self, _process: object) -> None:
        raise AssertionError("no pipe is broken here")


class Files:
    def __init__(self, files: dict[int, OpenFile]) -> None:
        self.files = files

    def get(self, fd: int) -> OpenFile:
        return self.files[fd]


def _setup(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    clock, a, b = pair(latency=50 * US)
    memory = Memory()
    monkeypatch.setattr(sockets, "copy_from_user", memory.read)
    monkeypatch.setattr(sockets, "copy_to_user", memory.write)
    manager = Manager(clock)
    pipe_read, pipe_write = Pipe(manager).ends()  # type: ignore[arg-type]
    receiver = SocketFile(b.open("udp"), manager)  # type: ignore[arg-type]
    receiver.sock.bind(("10.0.0.2", 9000))  # type: ignore[attr-defined]
    sender = a.open("udp")
    process = SimpleNamespace(aspace=None, files=Files({3: pipe_read, 4: receiver}))
    return clock, memory, manager, SocketCalls(manager, b), process, pipe_write, sender  # type: ignore[arg-type]


def _pending(clock: object) -> list[int]:
    return sorted(deadline for deadline, _, _ in clock.events)  # type: ignore[attr-defined]


def test_a_blocked_poll_wakes_at_the_instant_a_datagram_arrives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, _, sender = _setup(monkeypatch)
    memory[0x1000] = struct.pack("<ihh", 3, POLLIN, 0) + struct.pack("<ihh", 4, POLLIN, 0)
    start = clock.now
    assert calls.sys_poll(process, (0x1000, 2, 1000)) is None  # asleep, 1 s timeout
    assert _pending(clock) == [start + 1000 * MS]  # its timeout and nothing else
    receiver = process.files.get(4).sock
    arrivals: list[int] = []
    deliver = receiver.deliver

    def record(*args: object) -> None:
        arrivals.append(clock.now)
        deliver(*args)

    monkeypatch.setattr(receiver, "deliver", record)
    send_at = start + 3_700 * US
    clock.call_at(send_at, lambda: sender.sendto(b"tick", ("10.0.0.2", 9000)))
    clock.run(until=lambda: manager.woke is not None, limit_ns=2000 * MS)
    assert len(arrivals) == 1 and arrivals[0] > send_at
    assert manager.woke == (1, arrivals[0])  # the very instant, not a recheck later
    assert struct.unpack_from("<ihh", memory[0x1000], 8)[2] == POLLIN
    assert struct.unpack_from("<ihh", memory[0x1000], 0)[2] == 0


def test_a_blocked_select_wakes_at_the_instant_a_pipe_is_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, pipe_write, _ = _setup(monkeypatch)
    memory[0x2000] = (1 << 3 | 1 << 4).to_bytes(4, "little")
    start = clock.now
    assert calls.sys_select(process, (5, 0x2000, 0, 0, 0)) is None  # no timeout
    assert _pending(clock) == []  # nothing queued: no timer looks on its behalf
    write_at = start + 2_345 * US
    clock.call_at(write_at, lambda: pipe_write.write(process, b"x"))
    clock.run(until=lambda: manager.woke is not None, limit_ns=100 * MS)
    assert manager.woke == (1, write_at)
    assert memory[0x2000] == (1 << 3).to_bytes(4, "little")


def test_a_poll_that_times_out_stops_watching_its_files(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, pipe_write, _ = _setup(monkeypatch)
    memory[0x1000] = struct.pack("<ihh", 3, POLLIN, 0)
    start = clock.now
    assert calls.sys_poll(process, (0x1000, 1, 5)) is None
    clock.run(until=lambda: manager.woke is not None, limit_ns=100 * MS)
    assert manager.woke == (0, start + 5 * MS)
    assert not process.files.get(3)._watchers  # type: ignore[attr-defined]
