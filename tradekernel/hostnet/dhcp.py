"""The user-mode NAT's DHCP server (RFC 2131/2132): one guest, one address.

`answer(request)` takes a BOOTP/DHCP message the guest sent to port 67 and returns the reply
message (or None): DISCOVER gets an OFFER, REQUEST for our address gets an ACK (a NAK for any
other address), INFORM an ACK without a lease, RELEASE/DECLINE nothing. Replies carry the
options a real server sends: server identifier, lease time, renewal (T1) and rebinding (T2)
times, subnet mask, router, DNS server, broadcast address. Bounds: a message shorter than the
fixed BOOTP header plus magic cookie, or with options running past its end, is Malformed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tradekernel.hostnet.packets import Malformed

BOOTP_FIXED = 236
MAGIC = b"\x63\x82\x53\x63"
BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
OPT_PAD, OPT_END = 0, 255
OPT_MASK, OPT_ROUTER, OPT_DNS, OPT_BROADCAST = 1, 3, 6, 28
OPT_REQUESTED_IP, OPT_LEASE, OPT_TYPE, OPT_SERVER_ID = 50, 51, 53, 54
OPT_T1, OPT_T2 = 58, 59
FLAG_BROADCAST = 0x8000


@dataclass(frozen=True)
class DhcpConfig:
    client_ip: bytes
    server_ip: bytes
    netmask: bytes
    router: bytes
    dns: bytes
    lease_s: int


@dataclass
class DhcpMessage:
    xid: int
    flags: int
    ciaddr: bytes
    chaddr: bytes
    options: dict[int, bytes]

    @property
    def type(self) -> int | None:
        value = self.options.get(OPT_TYPE)
        return value[0] if value else None


def parse(data: bytes) -> DhcpMessage:
    if len(data) < BOOTP_FIXED + 4:
        raise Malformed(f"DHCP: {len(data)} bytes, shorter than BOOTP and the magic cookie")
    op, htype, hlen = data[0], data[1], data[2]
    if op != BOOTREQUEST or htype != 1 or hlen != 6:
        raise Malformed("DHCP: not an Ethernet BOOTREQUEST")
    if data[BOOTP_FIXED : BOOTP_FIXED + 4] != MAGIC:
        raise Malformed("DHCP: no magic cookie")
    xid, _secs, flags = struct.unpack("!IHH", data[4:12])
    options: dict[int, bytes] = {}
    i = BOOTP_FIXED + 4
    while i < len(data):
        code = data[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            raise Malformed(f"DHCP: option {code} runs past the message")
        options[code] = data[i + 2 : i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return DhcpMessage(xid, flags, data[12:16], data[28:34], options)


def _option(code: int, value: bytes) -> bytes:
    return bytes((code, len(value))) + value


def answer(message: DhcpMessage, config: DhcpConfig) -> tuple[int, bytes] | None:
    """(DHCP message type sent, reply bytes), or None when no reply is due."""
    kind = message.type
    if kind == DISCOVER:
        reply_type = OFFER
    elif kind == REQUEST:
        wanted = message.options.get(OPT_REQUESTED_IP) or message.ciaddr
        server = message.options.get(OPT_SERVER_ID)
        if server is not None and server != config.server_ip:
            return None  # the guest chose another server's offer
        reply_type = ACK if wanted == config.client_ip else NAK
    elif kind == INFORM:
        reply_type = ACK
    else:
        return None
    yiaddr = config.client_ip if reply_type in (OFFER, ACK) and kind != INFORM else bytes(4)
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        BOOTREPLY,
        1,
        6,
        0,
        message.xid,
        0,
        message.flags,
        message.ciaddr if kind == INFORM else bytes(4),
        yiaddr,
        config.server_ip,
        bytes(4),
        message.chaddr.ljust(16, b"\0"),
        b"",
        b"",
    )
    options = _option(OPT_TYPE, bytes((reply_type,))) + _option(OPT_SERVER_ID, config.server_ip)
    if reply_type != NAK:
        broadcast = bytes(
            (c & m) | (~m & 0xFF) for c, m in zip(config.client_ip, config.netmask, strict=True)
        )
        if kind != INFORM:
            options += _option(OPT_LEASE, struct.pack("!I", config.lease_s))
            options += _option(OPT_T1, struct.pack("!I", config.lease_s // 2))
            options += _option(OPT_T2, struct.pack("!I", config.lease_s * 7 // 8))
        options += _option(OPT_MASK, config.netmask)
        options += _option(OPT_ROUTER, config.router)
        options += _option(OPT_DNS, config.dns)
        options += _option(OPT_BROADCAST, broadcast)
    return reply_type, header + MAGIC + options + bytes((OPT_END,))
