"""Containment: whatever the guest sends, the NAT neither raises nor leaks host sockets. Random
frames, and random TCP segments (any flags, sequence and acknowledgement numbers, windows) thrown
at a live relayed connection."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from tradekernel.hostnet.user import UserNetwork

from .conftest import GUEST_MAC, Guest
from .test_user import GuestTcp

segment = st.tuples(
    st.integers(0, 0x3F),  # flags
    st.integers(0, 2**32 - 1),  # seq offset
    st.integers(0, 2**32 - 1),  # ack
    st.integers(0, 65535),  # window
    st.binary(max_size=1500),
    st.booleans(),  # relative to the expected sequence number?
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(segment, max_size=40))
def test_random_segments_on_a_live_connection_never_raise(segments: list) -> None:  # noqa: ANN001
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    backend = UserNetwork()
    guest = Guest(backend)
    try:
        conn = GuestTcp(guest, 40100, "10.0.2.2", server.getsockname()[1])
        conn.segment("S")
        conn.expect("SA")
        conn.segment("A")
        host_side, _ = server.accept()
        host_side.setblocking(False)
        for flags, seq, ack, window, payload, relative in segments:
            base = conn.seq if relative else 0
            tcp = TCP(sport=40100, dport=conn.dport, flags=flags, seq=(base + seq % 70000) % 2**32
                      if relative else seq, ack=ack, window=window)  # fmt: skip
            guest.ip(tcp / payload if payload else tcp)
            backend.poll()
            try:
                host_side.recv(65536)
            except OSError:
                pass
        backend.poll()
        host_side.close()
    finally:
        backend.close()
        server.close()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1600), st.sampled_from([b"\x08\x00", b"\x08\x06", b"\x86\xdd"]))
def test_random_frames_never_raise(body: bytes, ethertype: bytes) -> None:
    backend = UserNetwork()
    try:
        raw = bytes.fromhex("52550a000202") + bytes.fromhex(GUEST_MAC.replace(":", ""))
        backend.send(raw + ethertype + body)
        shaped = bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.3") / UDP(dport=53) / body)
        backend.send(shaped)
        backend.send(bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2") / UDP(dport=67) / body))
        backend.poll()
    finally:
        backend.close()
