"""Header helpers of the NAT checked against the RFC 1071 word loop and against scapy."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP

from tradekernel.hostnet import packets as pk


def rfc1071(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=3000))
def test_checksum_matches_the_rfc_1071_word_loop(data: bytes) -> None:
    assert pk.checksum(data) == rfc1071(data)


def test_checksum_edge_cases() -> None:
    for data in (b"", b"\0\0", b"\xff\xff", b"\xff\xff\xff\xff", b"\x00\x01\xff\xfe"):
        assert pk.checksum(data) == rfc1071(data)


@given(st.binary(max_size=1400), st.integers(0, 65535), st.integers(0, 65535))
def test_udp_and_tcp_builds_agree_with_scapy(payload: bytes, sport: int, dport: int) -> None:
    src, dst = pk.ip_to_bytes("10.0.2.2"), pk.ip_to_bytes("10.0.2.15")
    udp = pk.Ipv4(src, dst, pk.PROTO_UDP, pk.Udp(sport, dport, payload).build(src, dst)).build()
    parsed = IP(udp)
    rebuilt = parsed.copy()
    del rebuilt[IP].chksum, rebuilt[UDP].chksum
    rebuilt = IP(bytes(rebuilt))
    assert parsed[IP].chksum == rebuilt[IP].chksum
    assert parsed[UDP].chksum in (rebuilt[UDP].chksum, 0xFFFF if rebuilt[UDP].chksum == 0 else -1)
    segment = pk.Tcp(sport, dport, 123, 456, pk.ACK | pk.PSH, 8192, payload, 1460)
    tcp = IP(pk.Ipv4(src, dst, pk.PROTO_TCP, segment.build(src, dst)).build())
    rebuilt = tcp.copy()
    del rebuilt[TCP].chksum
    assert IP(bytes(rebuilt))[TCP].chksum == tcp[TCP].chksum
    assert pk.parse_tcp(pk.parse_ipv4(bytes(tcp))).payload == payload
