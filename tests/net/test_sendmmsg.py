"""sendmmsg (345, and socketcall's sub-call 20): several datagrams in one call, each with its own
address and iovecs, msg_len set for each; the first message's error when none went, the count
when some did; a trial that would sleep does nothing. Stand-ins as in test_trial_calls.py (real
UDP and TCP sockets over two simulated stacks)."""

from __future__ import annotations

import errno
import socket
import struct
from types import SimpleNamespace

import pytest

from tests.net.sim import pair
from tests.net.test_poll_wake import Files, Manager
from tests.net.test_trial_calls import FlatMemory, _setup
from tradekernel.kernel.net import SocketError, params
from tradekernel.kernel.net.sockfile import SocketFile, WouldSleep, trial
from tradekernel.kernel.proc import sockets
from tradekernel.kernel.proc.sockets import SocketCalls

VECTOR, IOVECS, NAMES, DATA = 0x4000, 0x5000, 0x6000, 0x10000


def _name(memory: FlatMemory, index: int, address: str, port: int) -> int:
    pointer = NAMES + 16 * index
    memory.write(None, pointer, struct.pack("<HH4s8x", socket.AF_INET, socket.htons(port),
                                            socket.inet_aton(address)))
    return pointer


def _message(memory: FlatMemory, index: int, pieces: list[bytes], name: int = 0) -> None:
    """mmsghdr `index` at VECTOR: `pieces` as its iovecs (data at DATA + 0x400 * index)."""
    base = DATA + 0x400 * index
    iov = IOVECS + 0x100 * index
    for i, piece in enumerate(pieces):
        memory.write(None, base, piece)
        memory.write(None, iov + 8 * i, struct.pack("<II", base, len(piece)))
        base += len(piece)
    memory.write(None, VECTOR + 32 * index,
                 struct.pack("<IIIIIIII", name, 16 if name else 0, iov, len(pieces), 0, 0, 0, 0))


def _lengths(memory: FlatMemory, count: int) -> list[int]:
    return [struct.unpack("<I", memory.at(VECTOR + 32 * i + 28, 4))[0] for i in range(count)]


def _received(receiver: SocketFile) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(receiver.sock.recvfrom()[0])  # type: ignore[attr-defined]
        except SocketError:
            return out


def test_several_datagrams_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    receiver = process.files.get(4)
    process.files = Files({4: receiver, 5: SocketFile(sender, manager)})  # type: ignore[arg-type]
    _message(memory, 0, [b"tick", b"-1"], _name(memory, 0, "10.0.0.2", 9000))
    _message(memory, 1, [b"tick-2"], _name(memory, 1, "10.0.0.2", 9000))
    _message(memory, 2, [b""], _name(memory, 2, "10.0.0.2", 9000))
    with trial():  # a datagram send never sleeps: it completes in the trap
        assert calls.sys_sendmmsg(process, (5, VECTOR, 3, 0)) == 3
    clock.run()
    assert _received(receiver) == [b"tick-1", b"tick-2", b""]
    assert _lengths(memory, 3) == [6, 6, 0]
    # through socketcall(2), sub-call 20
    memory.write(None, 0x7000, struct.pack("<IIII", 5, VECTOR, 2, 0))
    assert calls.sys_socketcall(process, (20, 0x7000)) == 2
    clock.run()
    assert _received(receiver) == [b"tick-1", b"tick-2"]
    assert calls.sys_sendmmsg(process, (5, VECTOR, 0, 0)) == 0


def test_the_first_error_or_the_count_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, memory, manager, calls, process, sender = _setup(monkeypatch)
    process.files = Files({5: SocketFile(sender, manager)})  # type: ignore[arg-type]
    _message(memory, 0, [b"ok"], _name(memory, 0, "10.0.0.2", 9000))
    _message(memory, 1, [b"bad"], _name(memory, 1, "10.0.0.2", 0))  # port 0: EINVAL
    assert calls.sys_sendmmsg(process, (5, VECTOR, 2, 0)) == 1
    assert _lengths(memory, 1) == [2]
    assert calls.sys_sendmmsg(process, (5, VECTOR + 32, 1, 0)) == -errno.EINVAL


def test_a_stream_send_that_would_sleep_does_nothing_in_a_trial(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, a, b = pair()
    memory = FlatMemory()
    monkeypatch.setattr(sockets, "copy_from_user", memory.read)
    monkeypatch.setattr(sockets, "copy_to_user", memory.write)
    server = b.open("tcp")
    server.bind(("", 9100))
    server.listen(1)
    client = a.open("tcp")
    with pytest.raises(SocketError):
        client.connect(("10.0.0.2", 9100))
    clock.run(lambda: bool(server.accept_queue))
    manager = Manager(clock)
    process = SimpleNamespace(aspace=None, files=Files({5: SocketFile(client, manager)}))
    calls = SocketCalls(manager, a)  # type: ignore[arg-type]
    client.send(bytes(params.TCP_SNDBUF))  # the send buffer is full
    _message(memory, 0, [b"order"])
    with trial(), pytest.raises(WouldSleep):
        calls.sys_sendmmsg(process, (5, VECTOR, 1, 0))
    assert len(client.sndbuf) == params.TCP_SNDBUF and not manager.sleeping
    assert calls.sys_sendmmsg(process, (5, VECTOR, 1, 0)) is None and manager.sleeping
    clock.run(lambda: manager.woke is not None)  # the peer's ACKs make room: it goes
    assert manager.woke is not None and manager.woke[0] == 1
