"""Datagrams from host sockets into the guest through the NAT (`_drain_udp`): every frame checked
by scapy (both checksums recomputed by an independent stack, the fields as the guest expects),
odd and even lengths, the checksum that folds to zero, oversized datagrams, the per-poll bound,
and datagrams that arrive before the guest's MAC address is known."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

from tradekernel.hostnet.user import MAX_UDP_PAYLOAD, UDP_BATCH, UDP_SOCKET_BUFFER, UserNetwork

from .conftest import GATEWAY_MAC, GUEST_MAC, Guest, is_icmp, is_udp

GUEST_PORT = 5000
SIZES = [0, 1, 2, 3, 7, 8, 63, 64, 65, 511, 1000, 1471, MAX_UDP_PAYLOAD]


@pytest.fixture
def forwarded() -> Iterator[tuple[Guest, socket.socket, tuple[str, int]]]:
    backend = UserNetwork(hostfwd=[f"udp:0-:{GUEST_PORT}"])
    guest = Guest(backend)
    guest.ip(ICMP(type=8) / b"x")  # the guest speaks first: its MAC is known
    guest.take(is_icmp(0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    try:
        yield guest, client, ("127.0.0.1", backend.forwards[0].bound_port)
    finally:
        client.close()
        backend.close()


def checked(raw: bytes, source: str, source_port: int, payload: bytes) -> None:
    """`raw` is the frame the guest must get for `payload`: scapy's own checksums over the same
    fields match the NAT's, and so does every header field."""
    frame = Ether(raw)
    assert frame[Ether].dst == GUEST_MAC and frame[Ether].src == GATEWAY_MAC
    ip, udp = frame[IP], frame[UDP]
    assert (ip.version, ip.ihl, ip.len, ip.flags, ip.frag, ip.ttl, ip.proto) == (
        4, 5, 28 + len(payload), "DF", 0, 64, 17)  # fmt: skip
    assert (ip.src, ip.dst, udp.sport, udp.dport, udp.len) == (
        source, "10.0.2.15", source_port, GUEST_PORT, 8 + len(payload))  # fmt: skip
    assert bytes(udp.payload) == payload
    again = frame.copy()
    del again[IP].chksum, again[UDP].chksum
    again = Ether(bytes(again))
    assert ip.chksum == again[IP].chksum and udp.chksum == again[UDP].chksum
    assert udp.chksum != 0  # 0 would mean "no checksum" (RFC 768): a zero sum goes as 0xFFFF
    assert len(raw) == 42 + len(payload)


def test_hostfwd_datagrams_of_every_length(forwarded) -> None:  # noqa: ANN001
    guest, client, address = forwarded
    port = client.getsockname()[1]
    for size in SIZES:
        payload = bytes((size * 7 + i) & 0xFF for i in range(size))
        client.sendto(payload, address)
        checked(bytes(guest.take(is_udp(GUEST_PORT))), "10.0.2.2", port, payload)


def test_checksum_that_folds_to_zero_is_sent_as_ffff(forwarded) -> None:  # noqa: ANN001
    guest, client, address = forwarded
    port = client.getsockname()[1]
    # scapy's checksum of two zero bytes is the word that, as the payload, makes the sum
    # 0xFFFF: the checksum field is then 0, which UDP must send as 0xFFFF
    reference = IP(src="10.0.2.2", dst="10.0.2.15") / UDP(sport=port, dport=GUEST_PORT)
    word = IP(bytes(reference / b"\0\0"))[UDP].chksum
    if word == 0xFFFF:
        pytest.skip("this port's sum is already zero")
    payload = word.to_bytes(2, "big")
    client.sendto(payload, address)
    frame = guest.take(is_udp(GUEST_PORT))
    assert frame[UDP].chksum == 0xFFFF
    checked(bytes(frame), "10.0.2.2", port, payload)


def test_replies_to_a_guest_flow(user: Guest) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    try:
        user.ip(UDP(sport=GUEST_PORT, dport=server.getsockname()[1]) / b"subscribe")
        data, peer = server.recvfrom(100)
        assert data == b"subscribe"
        for size in SIZES:
            payload = bytes((size * 3 + i) & 0xFF for i in range(size))
            server.sendto(payload, peer)
            frame = user.take(is_udp(GUEST_PORT))
            checked(bytes(frame), "10.0.2.2", server.getsockname()[1], payload)
    finally:
        server.close()


def test_oversized_datagram_dropped_and_counted(forwarded) -> None:  # noqa: ANN001
    guest, client, address = forwarded
    client.sendto(bytes(MAX_UDP_PAYLOAD + 1), address)
    client.sendto(b"next", address)
    assert bytes(guest.take(is_udp(GUEST_PORT))[UDP].payload) == b"next"
    assert guest.backend.counters["udp too big"] == 1  # type: ignore[attr-defined]


def test_one_poll_takes_at_most_a_batch(forwarded) -> None:  # noqa: ANN001
    guest, client, address = forwarded
    for i in range(UDP_BATCH * 3):
        client.sendto(i.to_bytes(2, "big"), address)
    guest.backend.poll()
    assert len(guest.frames) == UDP_BATCH  # the rest waits in the host socket
    guest.pump(0.1)
    got = [int.from_bytes(bytes(Ether(raw)[UDP].payload), "big") for raw in guest.frames]
    assert got == list(range(UDP_BATCH * 3))
    identifications = [Ether(raw)[IP].id for raw in guest.frames]
    assert len(set(identifications)) == len(identifications)


def test_datagrams_before_the_guest_mac_are_held() -> None:
    backend = UserNetwork(hostfwd=[f"udp:0-:{GUEST_PORT}"])
    guest = Guest(backend)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    try:
        client.sendto(b"early", ("127.0.0.1", backend.forwards[0].bound_port))
        who_has = guest.take(lambda p: Ether in p and p[Ether].type == 0x0806)
        assert who_has[Ether].dst == "ff:ff:ff:ff:ff:ff"
        guest.ip(ICMP(type=8) / b"x")  # the guest speaks: held frames go
        frame = guest.take(is_udp(GUEST_PORT))
        checked(bytes(frame), "10.0.2.2", client.getsockname()[1], b"early")
    finally:
        client.close()
        backend.close()


def test_udp_sockets_have_room_for_a_burst(forwarded, user: Guest) -> None:  # noqa: ANN001
    """Both kinds of host UDP socket ask for UDP_SOCKET_BUFFER (Linux doubles what it grants,
    up to net.core.rmem_max): a feed's burst waits there while the machine loop is busy."""
    guest, _, _ = forwarded
    wanted = min(UDP_SOCKET_BUFFER, int(Path("/proc/sys/net/core/rmem_max").read_text()))
    hostfwd = guest.backend.forwards[0].sock  # type: ignore[attr-defined]
    assert hostfwd.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= wanted
    user.ip(UDP(sport=GUEST_PORT, dport=9) / b"x")  # an outbound binding
    binding = user.backend.udp[GUEST_PORT].sock  # type: ignore[attr-defined]
    assert binding.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= wanted
