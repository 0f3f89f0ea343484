"""Ethernet, ARP, IPv4, ICMP, UDP and TCP headers: parse what the guest sends, build what it gets.

Host-side helpers for the user-mode NAT (hostnet/user.py). Parsing never trusts a length field:
every field is checked against the bytes present, and anything malformed raises `Malformed`
(the caller counts and drops it). IPv4 fragments are refused (Malformed): the NAT carries only
whole datagrams. Checksums are the RFC 1071 ones' complement sums.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_HEADER = 14
ETHERTYPE_IPV4, ETHERTYPE_ARP = 0x0800, 0x0806
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
BROADCAST_MAC = b"\xff" * 6
DEFAULT_TTL = 64

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class Malformed(ValueError):
    """A frame or packet that does not parse; the message says which field is wrong."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`. The ones' complement sum of 16-bit words is
    the big-endian integer of the data modulo 0xFFFF (with 0xFFFF, not 0, for a nonzero
    multiple), which one C-level conversion computes."""
    if len(data) & 1:
        data += b"\0"
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    if total == 0 and number:
        total = 0xFFFF
    return ~total & 0xFFFF


def ip_to_bytes(text: str) -> bytes:
    parts = [int(p) for p in text.split(".")]
    if len(parts) != 4 or not all(0 <= p <= 255 for p in parts):
        raise ValueError(f"{text!r} is not an IPv4 address")
    return bytes(parts)


def ip_to_text(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def ethernet(destination: bytes, source: bytes, ethertype: int, payload: bytes) -> bytes:
    return destination + source + struct.pack("!H", ethertype) + payload


@dataclass
class Ipv4:
    source: bytes
    destination: bytes
    protocol: int
    payload: bytes
    ttl: int = DEFAULT_TTL
    identification: int = 0

    def build(self) -> bytes:
        return ipv4_header(self.source, self.destination, self.protocol, len(self.payload),
                           self.identification, self.ttl) + self.payload


_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")


def ipv4_header(source: bytes, destination: bytes, protocol: int, payload_length: int,
                identification: int, ttl: int = DEFAULT_TTL) -> bytes:
    """The 20-byte header (DF set, no options) with its checksum, for `payload_length` bytes."""
    header = _IPV4_HEADER.pack(0x45, 0, 20 + payload_length, identification & 0xFFFF,
                               0x4000, ttl, protocol, 0, source, destination)  # DF
    return header[:10] + checksum(header).to_bytes(2, "big") + header[12:]


def parse_ipv4(packet: bytes) -> Ipv4:
    if len(packet) < 20:
        raise Malformed(f"IPv4: {len(packet)} bytes, shorter than a header")
    version_ihl, _, total, ident, frag, ttl, proto, _, src, dst = struct.unpack(
        "!BBHHHBBH4s4s", packet[:20]
    )
    header_len = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or header_len < 20:
        raise Malformed(f"IPv4: version/IHL byte {version_ihl:#04x}")
    if total < header_len or total > len(packet):
        raise Malformed(f"IPv4: total length {total} with {len(packet)} bytes present")
    if checksum(packet[:header_len]) != 0:
        raise Malformed("IPv4: header checksum wrong")
    if frag & 0x3FFF:
        raise Malformed("IPv4: fragment (not carried by the NAT)")
    return Ipv4(src, dst, proto, packet[header_len:total], ttl, ident)


def pseudo_header(source: bytes, destination: bytes, protocol: int, length: int) -> bytes:
    return source + destination + struct.pack("!BBH", 0, protocol, length)


@dataclass
class Udp:
    source_port: int
    destination_port: int
    payload: bytes

    def build(self, source: bytes, destination: bytes) -> bytes:
        length = 8 + len(self.payload)
        header = struct.pack("!HHHH", self.source_port, self.destination_port, length, 0)
        total = checksum(
            pseudo_header(source, destination, PROTO_UDP, length) + header + self.payload
        )
        return header[:6] + struct.pack("!H", total or 0xFFFF) + self.payload


def parse_udp(ip: Ipv4) -> Udp:
    data = ip.payload
    if len(data) < 8:
        raise Malformed(f"UDP: {len(data)} bytes, shorter than a header")
    sport, dport, length, sent_sum = struct.unpack("!HHHH", data[:8])
    if length < 8 or length > len(data):
        raise Malformed(f"UDP: length {length} with {len(data)} bytes present")
    if sent_sum and checksum(
        pseudo_header(ip.source, ip.destination, PROTO_UDP, length) + data[:length]
    ):
        raise Malformed("UDP: checksum wrong")
    return Udp(sport, dport, data[8:length])


@dataclass
class Tcp:
    source_port: int
    destination_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes = b""
    mss: int | None = None  # the MSS option (SYN only)

    def build(self, source: bytes, destination: bytes) -> bytes:
        options = struct.pack("!BBH", 2, 4, self.mss) if self.mss is not None else b""
        offset = (20 + len(options)) // 4
        header = (
            struct.pack(
                "!HHIIBBHHH",
                self.source_port,
                self.destination_port,
                self.seq & 0xFFFFFFFF,
                self.ack & 0xFFFFFFFF,
                offset << 4,
                self.flags,
                min(self.window, 0xFFFF),
                0,
                0,
            )
            + options
        )
        length = len(header) + len(self.payload)
        total = checksum(
            pseudo_header(source, destination, PROTO_TCP, length) + header + self.payload
        )
        return header[:16] + struct.pack("!H", total) + header[18:] + self.payload


def parse_tcp(ip: Ipv4) -> Tcp:
    data = ip.payload
    if len(data) < 20:
        raise Malformed(f"TCP: {len(data)} bytes, shorter than a header")
    sport, dport, seq, ack, offset_byte, flags, window, _, _ = struct.unpack(
        "!HHIIBBHHH", data[:20]
    )
    offset = (offset_byte >> 4) * 4
    if offset < 20 or offset > len(data):
        raise Malformed(f"TCP: data offset {offset} with {len(data)} bytes present")
    if checksum(pseudo_header(ip.source, ip.destination, PROTO_TCP, len(data)) + data):
        raise Malformed("TCP: checksum wrong")
    mss = None
    options = data[20:offset]
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2 or i + options[i + 1] > len(options):
            raise Malformed("TCP: option length runs past the header")
        if kind == 2 and options[i + 1] == 4:
            mss = struct.unpack("!H", options[i + 2 : i + 4])[0]
        i += options[i + 1]
    return Tcp(sport, dport, seq, ack, flags & 0x3F, window, data[offset:], mss)


@dataclass
class Arp:
    operation: int  # 1 request, 2 reply
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    def build(self) -> bytes:
        return struct.pack(
            "!HHBBH6s4s6s4s",
            1,
            ETHERTYPE_IPV4,
            6,
            4,
            self.operation,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )


def parse_arp(data: bytes) -> Arp:
    if len(data) < 28:
        raise Malformed(f"ARP: {len(data)} bytes, shorter than an Ethernet/IPv4 ARP")
    hw, proto, hlen, plen, op, smac, sip, tmac, tip = struct.unpack("!HHBBH6s4s6s4s", data[:28])
    if (hw, proto, hlen, plen) != (1, ETHERTYPE_IPV4, 6, 4):
        raise Malformed("ARP: not Ethernet/IPv4")
    return Arp(op, smac, sip, tmac, tip)
