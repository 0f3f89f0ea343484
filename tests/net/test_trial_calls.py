"""The socket calls the trap fast path tries (proc/trap.py, net/sockfile.py `trial()`): one that
completes at once gives its result; one that would sleep raises WouldSleep having done nothing
(no datagram taken, no byte queued, no sleep, no watcher), so the full path can run it from the
start. And recvmmsg: several datagrams in one call, msg_len for each, MSG_WAITFORONE.
Real UDP and TCP sockets over two simulated stacks; user memory and the Sleeper are small
stand-ins (as in test_poll_wake.py)."""

from __future__ import annotations

import errno
import struct
from types import SimpleNamespace

import pytest

from tests.net.sim import pair
from tests.net.test_poll_wake import Files, Manager, Memory
from tradekernel.kernel.net import SocketError, params
from tradekernel.kernel.net.sockfile import SocketFile, WouldSleep, trial
from tradekernel.kernel.proc import sockets
from tradekernel.kernel.proc.sockets import MSG_WAITFORONE, SocketCalls

VECTOR, IOVECS, BUFFERS = 0x4000, 0x5000, 0x10000
SLOT = 0x100


class FlatMemory(Memory):
    """User memory as bytes at addresses (recvmmsg reads and writes its vector whole); reads
    at an address also give what a write there stored, as Memory's do."""

    def __init__(self) -> None:
        super().__init__()
        self.space = bytearray(0x40000)

    def read(self, _aspace: object, address: int, size: int) -> bytes:
        return bytes(self.space[address : address + size])

    def write(self, _aspace: object, address: int, data: bytes) -> None:
        self.space[address : address + len(data)] = data
        self[address] = bytes(data)

    def at(self, address: int, size: int) -> bytes:
        return bytes(self.space[address : address + size])


def _setup(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    clock, a, b = pair()
    memory = FlatMemory()
    monkeypatch.setattr(sockets, "copy_from_user", memory.read)
    monkeypatch.setattr(sockets, "copy_to_user", memory.write)
    manager = Manager(clock)
    receiver = SocketFile(b.open("udp"), manager)  # type: ignore[arg-type]
    receiver.sock.bind(("10.0.0.2", 9000))  # type: ignore[attr-defined]
    sender = a.open("udp")
    process = SimpleNamespace(aspace=None, files=Files({4: receiver}))
    return clock, memory, manager, SocketCalls(manager, b), process, sender  # type: ignore[arg-type]


def _send(clock, sender, payloads: list[bytes]) -> None:  # noqa: ANN001
    for payload in payloads:
        sender.sendto(payload, ("10.0.0.2", 9000))
    clock.run()


def _vector(memory: FlatMemory, count: int) -> None:
    """`count` struct mmsghdr at VECTOR, each with one SLOT-byte buffer."""
    for i in range(count):
        memory.write(None, IOVECS + 8 * i, struct.pack("<II", BUFFERS + SLOT * i, SLOT))
        memory.write(None, VECTOR + 32 * i, struct.pack("<IIII", 0, 0, IOVECS + 8 * i, 1))


def test_a_receive_with_data_waiting_completes_in_a_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    _send(clock, sender, [b"tick"])
    with trial():
        assert calls.sys_recvfrom(process, (4, 0x1000, 100, 0)) == 4
    assert memory[0x1000] == b"tick" and not manager.sleeping


def test_a_receive_that_would_sleep_does_nothing_in_a_trial(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    with trial(), pytest.raises(WouldSleep):
        calls.sys_recvfrom(process, (4, 0x1000, 100, 0))
    assert not manager.sleeping and not process.files.get(4)._waiters  # type: ignore[attr-defined]
    # the full path then sleeps and wakes with the datagram, as before
    assert calls.sys_recvfrom(process, (4, 0x1000, 100, 0)) is None and manager.sleeping
    _send(clock, sender, [b"late"])
    assert manager.woke is not None and manager.woke[0] == 4 and memory[0x1000] == b"late"


def test_a_poll_with_nothing_ready_watches_nothing_in_a_trial(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    memory.write(None, 0x1000, struct.pack("<ihh", 4, 1, 0))
    with trial(), pytest.raises(WouldSleep):
        calls.sys_poll(process, (0x1000, 1, 1000))
    assert not manager.sleeping and not process.files.get(4)._watchers  # type: ignore[attr-defined]
    assert clock.events == []  # no timeout queued either
    _send(clock, sender, [b"x"])
    with trial():
        assert calls.sys_poll(process, (0x1000, 1, 1000)) == 1


def test_a_stream_send_is_tried_only_when_all_of_it_fits() -> None:
    clock, a, b = pair()
    server = b.open("tcp")
    server.bind(("", 9100))
    server.listen(1)
    client = a.open("tcp")
    with pytest.raises(SocketError):
        client.connect(("10.0.0.2", 9100))
    clock.run(lambda: bool(server.accept_queue))
    manager = Manager(clock)
    file = SocketFile(client, manager)  # type: ignore[arg-type]
    with trial():
        assert file.send_all(None, client.send, bytes(1000)) == 1000  # type: ignore[arg-type]
        queued = len(client.sndbuf)
        with pytest.raises(WouldSleep):
            file.send_all(None, client.send, bytes(params.TCP_SNDBUF))  # type: ignore[arg-type]
    assert len(client.sndbuf) == queued and not manager.sleeping  # not one byte more


def test_recvmmsg_takes_what_is_waiting_with_waitforone(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    _vector(memory, 8)
    memory.write(None, VECTOR, struct.pack("<II", 0x3000, 16))  # the first wants the sender
    _send(clock, sender, [b"a" * 10, b"bb" * 10, b"ccc" * 10])
    with trial():
        assert calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0)) == 3
    for i, payload in enumerate((b"a" * 10, b"bb" * 10, b"ccc" * 10)):
        assert memory.at(BUFFERS + SLOT * i, len(payload)) == payload
        assert struct.unpack("<I", memory.at(VECTOR + 32 * i + 28, 4))[0] == len(payload)
    family, port, address = struct.unpack("<HH4s", memory.at(0x3000, 8))
    assert (family, address) == (2, bytes((10, 0, 0, 1))) and port == sender.local_port << 8 \
        & 0xFF00 | sender.local_port >> 8
    assert struct.unpack("<I", memory.at(VECTOR + 4, 4))[0] == 16  # msg_namelen
    # nothing left: the first datagram is waited for, then the call returns what came
    assert calls.sys_recvmmsg(process, (4, VECTOR, 8, MSG_WAITFORONE, 0)) is None
    _send(clock, sender, [b"dddd"])
    assert manager.woke is not None and manager.woke[0] == 1


def test_recvmmsg_without_waitforone_waits_for_all(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    _vector(memory, 3)
    _send(clock, sender, [b"one"])
    with trial(), pytest.raises(WouldSleep):  # it could take one and then sleep
        calls.sys_recvmmsg(process, (4, VECTOR, 3, 0, 0))
    assert process.files.get(4).sock.queue  # type: ignore[attr-defined]  # still there
    assert calls.sys_recvmmsg(process, (4, VECTOR, 3, 0, 0)) is None
    _send(clock, sender, [b"two"])
    assert manager.woke is None  # two of three
    _send(clock, sender, [b"three"])
    assert manager.woke is not None and manager.woke[0] == 3
    assert [memory.at(BUFFERS + SLOT * i, n) for i, n in enumerate((3, 3, 5))] == [
        b"one", b"two", b"three"]
    assert [struct.unpack("<I", memory.at(VECTOR + 32 * i + 28, 4))[0] for i in range(3)] == [
        3, 3, 5]


def test_recvmmsg_refuses_unknown_flags_and_nonblocking_gives_eagain(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    _vector(memory, 2)
    assert calls.sys_recvmmsg(process, (4, VECTOR, 2, 0x8000_0000, 0)) == -errno.EINVAL
    assert calls.sys_recvmmsg(process, (4, VECTOR, 2, 0x40, 0)) == -errno.EAGAIN  # DONTWAIT
    assert calls.sys_recvmmsg(process, (4, VECTOR, 0, 0, 0)) == 0
