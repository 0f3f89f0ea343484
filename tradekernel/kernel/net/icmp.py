"""ICMP (RFC 792, RFC 1122 3.2.2): echo both ways, error generation and error delivery.

Echo requests to us are answered (not those sent to a broadcast or multicast address, as Linux's
icmp_echo_ignore_broadcasts); echo replies go to the ping socket whose identifier they carry.
Errors are generated under RFC 1122's rules (never about an ICMP error, a broadcast, a non-first
fragment or a non-unicast source) and a token bucket; received destination-unreachable and
time-exceeded messages are matched by the quoted header to the UDP or TCP socket they concern.
`IcmpSocket` is Linux's ping socket (SOCK_DGRAM, IPPROTO_ICMP): the caller writes an echo
request, the stack sets its identifier and checksum, and reads back the matching replies.
"""

from __future__ import annotations

import errno
import struct
from collections import deque

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import POLLIN, POLLOUT, SocketError, Stack
from tradekernel.kernel.net.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, IPHeader
from tradekernel.kernel.net.sockets import Address, Socket
from tradekernel.kernel.net.wire import Malformed, checksum, ip_str, ip_to_int

ECHO_REPLY, DEST_UNREACH, ECHO_REQUEST, TIME_EXCEEDED = 0, 3, 8, 11
ERROR_TYPES = (DEST_UNREACH, 4, 5, TIME_EXCEEDED, 12)
PING_QUEUE = 64


def build(icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    msg = bytearray(struct.pack("!BBH", icmp_type, code, 0) + rest + body)
    struct.pack_into("!H", msg, 2, checksum(msg))
    return bytes(msg)


class Icmp:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sockets: dict[int, IcmpSocket] = {}
        self._tokens = float(params.ICMP_ERROR_RATE)
        self._tokens_at = stack.now()

    def input(self, hdr: IPHeader, payload: bytes) -> None:
        c = self.stack.counters
        if len(payload) < 8:
            raise Malformed("icmp.truncated")
        if checksum(payload):
            raise Malformed("icmp.bad_checksum")
        icmp_type, code = payload[0], payload[1]
        c.inc(f"icmp.in_type{icmp_type}")
        if icmp_type == ECHO_REQUEST:
            if hdr.dst != self.stack.addr:
                c.inc("icmp.echo_ignored_broadcast")
                return
            self.stack.ip_output(
                hdr.src, PROTO_ICMP, build(ECHO_REPLY, 0, payload[4:8], payload[8:])
            )
            c.inc("icmp.out_echo_replies")
        elif icmp_type == ECHO_REPLY:
            ident = int.from_bytes(payload[4:6], "big")
            sock = self.sockets.get(ident)
            if sock is None:
                c.inc("icmp.echo_reply_unmatched")
                return
            sock.deliver(hdr.src, payload)
        elif icmp_type in (DEST_UNREACH, TIME_EXCEEDED):
            self.deliver_error(icmp_type, code, payload[8:])

    def deliver_error(self, icmp_type: int, code: int, quoted: bytes) -> None:
        """Hand an error about one of our datagrams (its header + 8 bytes) to its socket."""
        if len(quoted) < 20 or quoted[0] >> 4 != 4 or len(quoted) < (quoted[0] & 0xF) * 4 + 8:
            raise Malformed("icmp.bad_quote")
        hlen = (quoted[0] & 0xF) * 4
        proto = quoted[9]
        src, dst = int.from_bytes(quoted[12:16], "big"), int.from_bytes(quoted[16:20], "big")
        head = quoted[hlen : hlen + 8]
        if proto == PROTO_UDP:
            self.stack.udp.icmp_error(icmp_type, code, src, dst, head)
        elif proto == PROTO_TCP:
            self.stack.tcp.icmp_error(icmp_type, code, src, dst, head)

    def send_error(self, icmp_type: int, code: int, hdr: IPHeader, payload: bytes) -> None:
        """An ICMP error about a received datagram, within RFC 1122 3.2.2's limits."""
        stack, c = self.stack, self.stack.counters
        if hdr.proto == PROTO_ICMP and (len(payload) < 1 or payload[0] not in (0, 8, 13, 15, 17)):
            return  # never about an ICMP error
        if (
            (hdr.flags_frag & 0x1FFF)
            or not hdr.src
            or stack.is_broadcast(hdr.dst)
            or stack.is_broadcast(hdr.src)
            or hdr.dst >> 28 == 0xE
            or hdr.src >> 28 == 0xE
        ):
            return
        now = stack.now()
        self._tokens = min(
            float(params.ICMP_ERROR_RATE),
            self._tokens + (now - self._tokens_at) * params.ICMP_ERROR_RATE / 1e9,
        )
        self._tokens_at = now
        if self._tokens < 1:
            c.inc("icmp.out_rate_limited")
            return
        self._tokens -= 1
        body = hdr.raw + payload[:8]
        try:
            stack.ip_output(hdr.src, PROTO_ICMP, build(icmp_type, code, b"\0" * 4, body))
        except SocketError:
            return
        c.inc(f"icmp.out_type{icmp_type}")

    def free_ident(self) -> int:
        for _ in range(1000):
            ident = self.stack.rng.randrange(1, 1 << 16)
            if ident not in self.sockets:
                return ident
        raise SocketError(errno.EADDRINUSE, "no free ICMP identifier")


class IcmpSocket(Socket):
    """A ping socket: sendto(echo request, (host, 0)); recvfrom gives the replies for it."""

    kind = "icmp"

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.ident = stack.icmp.free_ident()
        stack.icmp.sockets[self.ident] = self
        self.queue: deque[tuple[bytes, Address]] = deque()

    def sendto(self, message: bytes, addr: Address) -> int:
        self.check_open()
        if len(message) < 8 or message[0] != ECHO_REQUEST or message[1] != 0:
            raise SocketError(errno.EINVAL, "only echo requests can be sent")
        dst = ip_to_int(addr[0])
        self.stack.source_for(dst)
        body = struct.pack("!H", self.ident) + message[6:8]
        self.stack.ip_output(dst, PROTO_ICMP, build(ECHO_REQUEST, 0, body, message[8:]))
        self.stack.counters.inc("icmp.out_echo_requests")
        return len(message)

    def deliver(self, src: int, message: bytes) -> None:
        if len(self.queue) >= PING_QUEUE:
            self.stack.counters.inc("icmp.rcvbuf_errors")
            return
        self.queue.append((message, (ip_str(src), 0)))
        self.notify()

    def recvfrom(self, maxlen: int = 65536) -> tuple[bytes, Address]:
        self.check_open()
        if not self.queue:
            raise SocketError(errno.EAGAIN)
        data, addr = self.queue.popleft()
        return data[:maxlen], addr

    def readiness(self) -> int:
        return (POLLIN if self.queue else 0) | POLLOUT

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.stack.icmp.sockets.pop(self.ident, None)
