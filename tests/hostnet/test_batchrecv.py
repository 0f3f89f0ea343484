"""DatagramBatch against the host's own UDP: recvmmsg and its recvfrom_into stand-in give the
same slots, sizes and senders, cut oversized datagrams at the capacity, take at most a batch,
and read on past an error the socket reports for an earlier datagram."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tradekernel.hostnet.batchrecv import DatagramBatch

HEADROOM = 10
CAPACITY = 101


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    yield receiver, sender
    receiver.close()
    sender.close()


def settle() -> None:
    time.sleep(0.02)  # loopback delivery is immediate; this only covers a loaded host


@pytest.mark.parametrize("native", [True, False])
def test_slots_sizes_and_senders(pair, native: bool) -> None:  # noqa: ANN001
    receiver, sender = pair
    batch = DatagramBatch(8, CAPACITY, HEADROOM, native=native)
    assert batch.native == native
    assert batch.receive(receiver) == 0  # nothing waiting: no block, no error
    payloads = [b"", b"a", bytes(range(100)), bytes(CAPACITY + 50)]
    for payload in payloads:
        sender.sendto(payload, receiver.getsockname())
    settle()
    assert batch.receive(receiver) == len(payloads)
    name = struct.pack("!H", sender.getsockname()[1]) + socket.inet_aton("127.0.0.1")
    for i, payload in enumerate(payloads):
        start = batch.slot_offset(i) + HEADROOM
        size = batch.size(i)
        assert size == min(len(payload), CAPACITY)  # the oversized one is cut at capacity
        assert bytes(batch.buffer[start : start + size]) == payload[:CAPACITY]
        assert batch.peer(i) == name


@pytest.mark.parametrize("native", [True, False])
def test_at_most_a_batch(pair, native: bool) -> None:  # noqa: ANN001
    receiver, sender = pair
    batch = DatagramBatch(4, CAPACITY, HEADROOM, native=native)
    for i in range(10):
        sender.sendto(bytes([i]), receiver.getsockname())
    settle()
    seen = []
    for expected in (4, 4, 2, 0):
        got = batch.receive(receiver)
        assert got == expected
        seen += [batch.buffer[batch.slot_offset(i) + HEADROOM] for i in range(got)]
    assert seen == list(range(10))


@pytest.mark.parametrize("native", [True, False])
def test_reads_on_past_a_reported_error(native: bool) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    address = peer.getsockname()
    peer.close()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.connect(address)
    receiver.setblocking(False)
    receiver.send(b"to nobody")  # ICMP port unreachable: ECONNREFUSED pending on the socket
    settle()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(address)
    try:
        peer.sendto(b"late", receiver.getsockname())
        settle()
        batch = DatagramBatch(4, CAPACITY, HEADROOM, native=native)
        assert batch.receive(receiver) == 1
        start = batch.slot_offset(0) + HEADROOM
        assert bytes(batch.buffer[start : start + batch.size(0)]) == b"late"
    finally:
        peer.close()
        receiver.close()
