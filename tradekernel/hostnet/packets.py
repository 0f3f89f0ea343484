"""Ethernet, ARP, IPv4, ICMP, UDP and TCP headers: parse what the guest sends, build what it gets.

Host-side helpers for the user-mode NAT (hostnet/user.py). Parsing never trusts a length field:
every field is checked against the bytes present, and anything malformed raises `Malformed`
(the caller counts and drops it). IPv4 fragments are refused (Malformed): the NAT carries only
whole datagrams. Checksums are the RFC 1071 ones' complement sums, every one verified.
Parsed IPv4 and TCP payloads are memoryviews into the frame (a full segment is not copied on
its way to the host socket); UDP payloads are bytes. Standard library only.
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


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum (RFC 1071) of `data`, plus `initial` (an unfolded sum of words
    that precede it, such as `pseudo_sum`'s). The ones' complement sum of 16-bit words is
    the big-endian integer of the data modulo 0xFFFF (with 0xFFFF, not 0, for a nonzero
    multiple), which one C-level conversion computes; an odd length is padded with a zero
    byte, which multiplies that integer by 256."""
    number = int.from_bytes(data, "big")
    if len(data) & 1:
        number <<= 8
    return fold(number + initial)


def fold(number: int) -> int:
    """The Internet checksum of an unfolded sum of 16-bit words (or any number congruent to
    it modulo 0xFFFF): its ones' complement sum, complemented."""
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


@dataclass(slots=True)
class Ipv4:
    source: bytes
    destination: bytes
    protocol: int
    payload: bytes | memoryview
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


def parse_ipv4(packet: bytes | memoryview, offset: int = 0) -> Ipv4:
    """The datagram at `offset` in `packet` (14 for the Ethernet frame around it); its payload
    is a memoryview into `packet`."""
    present = len(packet) - offset
    if present < 20:
        raise Malformed(f"IPv4: {present} bytes, shorter than a header")
    version_ihl, _, total, ident, frag, ttl, proto, _, src, dst = _IPV4_HEADER.unpack_from(
        packet, offset
    )
    header_len = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or header_len < 20:
        raise Malformed(f"IPv4: version/IHL byte {version_ihl:#04x}")
    if total < header_len or total > present:
        raise Malformed(f"IPv4: total length {total} with {present} bytes present")
    view = memoryview(packet)
    if checksum(view[offset : offset + header_len]) != 0:
        raise Malformed("IPv4: header checksum wrong")
    if frag & 0x3FFF:
        raise Malformed("IPv4: fragment (not carried by the NAT)")
    return Ipv4(src, dst, proto, view[offset + header_len : offset + total], ttl, ident)


def pseudo_sum(source: bytes, destination: bytes, protocol: int, length: int) -> int:
    """The pseudo header's words as an unfolded sum for `checksum`'s `initial` (the addresses'
    eight bytes as one integer: congruent to their word sum modulo 0xFFFF)."""
    return int.from_bytes(source + destination, "big") + protocol + length


@dataclass
class Udp:
    source_port: int
    destination_port: int
    payload: bytes

    def build(self, source: bytes, destination: bytes) -> bytes:
        length = 8 + len(self.payload)
        header = struct.pack("!HHHH", self.source_port, self.destination_port, length, 0)
        total = checksum(self.payload, pseudo_sum(source, destination, PROTO_UDP, length)
                         + int.from_bytes(header, "big"))  # fmt: skip
        return header[:6] + struct.pack("!H", total or 0xFFFF) + self.payload


def parse_udp(ip: Ipv4) -> Udp:
    data = ip.payload
    if len(data) < 8:
        raise Malformed(f"UDP: {len(data)} bytes, shorter than a header")
    sport, dport, length, sent_sum = struct.unpack_from("!HHHH", data)
    if length < 8 or length > len(data):
        raise Malformed(f"UDP: length {length} with {len(data)} bytes present")
    if sent_sum and checksum(data[:length], pseudo_sum(ip.source, ip.destination, PROTO_UDP,
                                                       length)):  # fmt: skip
        raise Malformed("UDP: checksum wrong")
    return Udp(sport, dport, bytes(data[8:length]))


_TCP_HEADER = struct.Struct("!HHIIBBHHH")
_TCP_FIELDS = struct.Struct("!HHIIBBH")  # the header up to the window (checksum verified whole)


@dataclass(slots=True)
class Tcp:
    source_port: int
    destination_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes | memoryview = b""
    mss: int | None = None  # the MSS option (SYN only)

    def build(self, source: bytes, destination: bytes) -> bytes:
        """The segment with its checksum, summed over the header and the payload where they
        lie (the header's length is even, so the sums add), not over a joined copy."""
        mss, payload = self.mss, self.payload
        header = bytearray(_TCP_HEADER.pack(
            self.source_port, self.destination_port, self.seq & 0xFFFFFFFF,
            self.ack & 0xFFFFFFFF, (5 if mss is None else 6) << 4, self.flags,
            min(self.window, 0xFFFF), 0, 0,
        ))  # fmt: skip
        if mss is not None:
            header += struct.pack("!BBH", 2, 4, mss)
        length = len(header) + len(payload)
        header[16:18] = checksum(
            payload, pseudo_sum(source, destination, PROTO_TCP, length)
            + int.from_bytes(header, "big")
        ).to_bytes(2, "big")  # fmt: skip
        return bytes(header) + payload


def parse_tcp(ip: Ipv4) -> Tcp:
    """The segment in `ip`; its payload is a view of `ip.payload` (no copy)."""
    data = ip.payload
    if len(data) < 20:
        raise Malformed(f"TCP: {len(data)} bytes, shorter than a header")
    sport, dport, seq, ack, offset_byte, flags, window = _TCP_FIELDS.unpack_from(data)
    offset = (offset_byte >> 4) * 4
    if offset < 20 or offset > len(data):
        raise Malformed(f"TCP: data offset {offset} with {len(data)} bytes present")
    if checksum(data, pseudo_sum(ip.source, ip.destination, PROTO_TCP, len(data))):
        raise Malformed("TCP: checksum wrong")
    mss = None
    if offset > 20:
        options = bytes(data[20:offset])
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
    return Tcp(sport, dport, seq, ack, flags & 0x3F, window, memoryview(data)[offset:], mss)


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
