"""The user-mode NAT's DNS server at 10.0.2.3: queries answered from the host's resolver.

`parse_query` checks a query (one question, standard opcode) within bounds; `resolve` looks the
name up with `socket.getaddrinfo` (so /etc/hosts and the host's resolver configuration apply);
`build_answer` makes the response. The NAT runs `resolve` on a worker thread, because the host
resolver can block for seconds and must not stop the machine; the answer goes to the guest from
the machine loop when it is ready.

A (IPv4) queries get every address found; the host's loopback (127.0.0.0/8) is answered as the
NAT gateway, which is where the guest reaches the host's own services. Other types get an
empty NOERROR answer when the name exists. A name that does not exist gets NXDOMAIN; a resolver
failure SERVFAIL; anything but a standard query NOTIMP.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from tradekernel.hostnet.packets import Malformed

TYPE_A, CLASS_IN = 1, 1
RCODE_OK, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 2, 3, 4
ANSWER_TTL = 60
MAX_NAME = 255
MAX_ANSWERS = 16


@dataclass
class Query:
    ident: int
    flags: int
    name: str
    qtype: int
    qclass: int
    question: bytes  # the question section as sent, echoed in the answer
    standard: bool


def parse_query(data: bytes) -> Query:
    if len(data) < 12:
        raise Malformed(f"DNS: {len(data)} bytes, shorter than a header")
    ident, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000:
        raise Malformed("DNS: a response, not a query")
    if qdcount != 1:
        raise Malformed(f"DNS: {qdcount} questions (one expected)")
    labels = []
    i = 12
    while True:
        if i >= len(data):
            raise Malformed("DNS: question name runs past the message")
        length = data[i]
        if length & 0xC0:
            raise Malformed("DNS: compressed name in a question")
        i += 1
        if length == 0:
            break
        if i + length > len(data):
            raise Malformed("DNS: label runs past the message")
        labels.append(data[i : i + length].decode("ascii", errors="replace"))
        i += length
        if i - 12 > MAX_NAME:
            raise Malformed("DNS: name longer than 255 bytes")
    if i + 4 > len(data):
        raise Malformed("DNS: question lacks type and class")
    qtype, qclass = struct.unpack("!HH", data[i : i + 4])
    standard = (flags >> 11) & 0x0F == 0
    return Query(ident, flags, ".".join(labels), qtype, qclass, data[12 : i + 4], standard)


def resolve(name: str, gateway: bytes) -> tuple[int, list[bytes]]:
    """(rcode, IPv4 addresses) for `name` from the host's resolver (blocking)."""
    if not name:
        return RCODE_NXDOMAIN, []
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as error:
        if error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return RCODE_NXDOMAIN, []
        return RCODE_SERVFAIL, []
    except (UnicodeError, OSError):
        return RCODE_SERVFAIL, []
    addresses: list[bytes] = []
    for info in infos:
        raw = socket.inet_aton(str(info[4][0]))
        raw = gateway if raw[0] == 127 else raw
        if raw not in addresses:
            addresses.append(raw)
    return RCODE_OK, addresses[:MAX_ANSWERS]


def build_answer(query: Query, rcode: int, addresses: list[bytes]) -> bytes:
    answers = b""
    if rcode == RCODE_OK and query.qtype == TYPE_A and query.qclass == CLASS_IN:
        for address in addresses:
            answers += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ANSWER_TTL, 4) + address
        count = len(addresses)
    else:
        count = 0
    flags = 0x8000 | (query.flags & 0x7900) | 0x0080 | rcode  # QR, opcode+RD copied, RA
    return struct.pack("!HHHHHH", query.ident, flags, 1, count, 0, 0) + query.question + answers


def not_implemented(query: Query) -> bytes:
    return build_answer(query, RCODE_NOTIMP, [])
