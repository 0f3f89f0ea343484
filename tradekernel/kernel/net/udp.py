"""UDP (RFC 768, RFC 1122 4.1): checksummed datagrams between ports, unicast, broadcast and
multicast receive, ICMP port unreachable for closed ports and its delivery back to senders.

Each socket's queue is bounded in datagrams and bytes (params.UDP_RCVQUEUE/UDP_RCVBUF); a full
queue drops and counts (`udp.rcvbuf_errors`); between the driver's begin_burst and end_burst a
socket tells its reader once, at the end (NetStack.defer_notify), not once per datagram.
Broadcast and multicast datagrams go to every socket bound to the port (SO_REUSEADDR lets
several share one); unicast goes to the best match (connected peer, then bound address, then
wildcard). Sending to a broadcast address needs
SO_BROADCAST (EACCES otherwise), as on Linux; multicast goes out with TTL 1 unless
IP_MULTICAST_TTL says otherwise. Also used inside the stack by DHCP and DNS.
"""

from __future__ import annotations

import errno
import struct
from collections import deque

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import POLLERR, POLLIN, POLLOUT, SocketError, Stack
from tradekernel.kernel.net.ipv4 import PROTO_UDP, IPHeader, is_multicast
from tradekernel.kernel.net.sockets import (
    IP_ADD_MEMBERSHIP,
    IP_DROP_MEMBERSHIP,
    IP_MULTICAST_TTL,
    IP_TTL,
    IPPROTO_IP,
    SO_BROADCAST,
    SO_REUSEADDR,
    SOL_SOCKET,
    Address,
    Socket,
)
from tradekernel.kernel.net.wire import Malformed, checksum, ip_str, ip_to_int, pseudo_header_sum

MAX_PAYLOAD = 65507
_UDP = struct.Struct("!HHHH")


def build_datagram(src: int, dst: int, sport: int, dport: int, data: bytes) -> bytes:
    length = 8 + len(data)
    seg = bytearray(struct.pack("!HHHH", sport, dport, length, 0) + data)
    ck = checksum(seg, pseudo_header_sum(src, dst, PROTO_UDP, length)) or 0xFFFF
    struct.pack_into("!H", seg, 6, ck)
    return bytes(seg)


class Udp:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ports: dict[int, list[UdpSocket]] = {}

    def input(self, hdr: IPHeader, payload: bytes) -> None:
        counts = self.stack.counters.counts
        if len(payload) < 8:
            raise Malformed("udp.truncated")
        sport, dport, length, ck = _UDP.unpack_from(payload)
        if length < 8 or length > len(payload):
            raise Malformed("udp.bad_length")
        if length != len(payload):
            payload = payload[:length]
        src, dst = hdr.src, hdr.dst
        if ck and checksum(payload, pseudo_header_sum(src, dst, PROTO_UDP, length)):
            raise Malformed("udp.bad_checksum")
        if dport == 0:
            raise Malformed("udp.bad_port")
        counts["udp.in_datagrams"] += 1
        group = dst != self.stack.addr and (is_multicast(dst) or self.stack.is_broadcast(dst))
        candidates = self.receivers(src, sport, dst, dport)
        if not candidates:
            counts["udp.no_ports"] += 1
            if not group:
                self.stack.icmp.send_error(3, 3, hdr, payload)
            return
        self.hand_over(candidates, group, payload[8:], src, sport)

    def receivers(self, src: int, sport: int, dst: int, dport: int) -> list[UdpSocket]:
        """The sockets bound to `dport` that take a datagram from src:sport to dst: bound to
        that address or the wildcard, and unconnected or connected to src:sport."""
        bound = self.ports.get(dport)
        if not bound:
            return []
        return [s for s in bound if (not s.local_ip or s.local_ip == dst) and (
            (peer := s.peer) is None or (peer[0] == src and peer[1] == sport))]

    @staticmethod
    def hand_over(candidates: list[UdpSocket], group: bool, data: bytes, src: int,
                  sport: int) -> None:
        """A group (multicast or broadcast) datagram goes to every candidate, a unicast one to
        the best: connected peer first, then a bound address, then the wildcard."""
        if group:
            for sock in candidates:
                sock.deliver(data, src, sport)
        elif len(candidates) == 1:
            candidates[0].deliver(data, src, sport)
        else:
            max(candidates, key=lambda s: (s.peer is not None, s.local_ip != 0)).deliver(
                data, src, sport)

    def icmp_error(self, icmp_type: int, code: int, src: int, dst: int, head: bytes) -> None:
        sport, dport = struct.unpack_from("!HH", head)
        for sock in self.ports.get(sport, ()):
            if sock.peer == (dst, dport):
                sock.error = (
                    errno.ECONNREFUSED if (icmp_type, code) == (3, 3) else errno.EHOSTUNREACH
                )
                sock.notify()
        self.stack.counters.inc("udp.icmp_errors")

    def bind(self, sock: UdpSocket, ip: int, port: int) -> int:
        if port == 0:
            port = self.ephemeral()
        users = self.ports.get(port, [])
        for other in users:
            shared = sock.options.get((SOL_SOCKET, SO_REUSEADDR)) and other.options.get(
                (SOL_SOCKET, SO_REUSEADDR)
            )
            if not shared and (other.local_ip in (0, ip) or ip == 0):
                raise SocketError(errno.EADDRINUSE, f"UDP port {port} in use")
        self.ports.setdefault(port, []).append(sock)
        return port

    def ephemeral(self) -> int:
        span = params.EPHEMERAL_LAST - params.EPHEMERAL_FIRST + 1
        start = self.stack.rng.randrange(span)
        for i in range(span):
            port = params.EPHEMERAL_FIRST + (start + i) % span
            if port not in self.ports:
                return port
        raise SocketError(errno.EADDRINUSE, "no free UDP port")

    def unbind(self, sock: UdpSocket) -> None:
        users = self.ports.get(sock.local_port, [])
        if sock in users:
            users.remove(sock)
        if not users:
            self.ports.pop(sock.local_port, None)


class UdpSocket(Socket):
    kind = "udp"

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.local_ip = 0
        self.local_port = 0
        self.peer: tuple[int, int] | None = None
        self.queue: deque[tuple[bytes, Address]] = deque()
        self.queued_bytes = 0
        self.groups: set[int] = set()

    # -- addresses
    def bind(self, addr: Address) -> None:
        self.check_open()
        if self.local_port:
            raise SocketError(errno.EINVAL, "already bound")
        ip = ip_to_int(addr[0]) if addr[0] else 0
        if ip and ip != self.stack.addr and not is_multicast(ip) and ip != 0xFFFFFFFF:
            raise SocketError(errno.EADDRNOTAVAIL, f"{addr[0]} is not ours")
        self.local_port = self.stack.udp.bind(self, ip, addr[1])
        self.local_ip = ip

    def connect(self, addr: Address) -> None:
        self.check_open()
        self.peer = (ip_to_int(addr[0]), addr[1])
        if not self.local_port:
            self.bind(("", 0))

    def getsockname(self) -> Address:
        return ip_str(self.local_ip or self.stack.addr), self.local_port

    def getpeername(self) -> Address:
        if self.peer is None:
            raise SocketError(errno.ENOTCONN)
        return ip_str(self.peer[0]), self.peer[1]

    # -- data
    def sendto(self, data: bytes, addr: Address | None = None) -> int:
        self.check_open()
        if self.error:
            raise SocketError(self.take_error())
        if addr is None:
            if self.peer is None:
                raise SocketError(errno.EDESTADDRREQ)
            dst, dport = self.peer
        else:
            dst, dport = ip_to_int(addr[0]), addr[1]
        if not 0 < dport < 65536:
            raise SocketError(errno.EINVAL, "bad port")
        if len(data) > MAX_PAYLOAD:
            raise SocketError(errno.EMSGSIZE)
        if self.stack.is_broadcast(dst) and not self.options.get((SOL_SOCKET, SO_BROADCAST)):
            raise SocketError(errno.EACCES, "broadcast needs SO_BROADCAST")
        src = self.stack.source_for(dst) if self.stack.addr else 0
        if not self.local_port:
            self.bind(("", 0))
        ttl = (
            self.options.get((IPPROTO_IP, IP_MULTICAST_TTL), 1)
            if is_multicast(dst)
            else self.options.get((IPPROTO_IP, IP_TTL), params.IP_DEFAULT_TTL)
        )
        self.stack.ip_output(
            dst,
            PROTO_UDP,
            build_datagram(src, dst, self.local_port, dport, bytes(data)),
            src=src,
            ttl=ttl,
        )
        self.stack.counters.inc("udp.out_datagrams")
        return len(data)

    send = sendto

    def deliver(self, data: bytes, src: int, sport: int) -> None:
        if (
            len(self.queue) >= params.UDP_RCVQUEUE
            or self.queued_bytes + len(data) > params.UDP_RCVBUF
        ):
            self.stack.counters.inc("udp.rcvbuf_errors")
            return
        self.queue.append((data, (ip_str(src), sport)))
        self.queued_bytes += len(data)
        if self.stack.in_burst:
            self.stack.defer_notify(self)  # told once, at the end of the driver's burst
        else:
            self.notify()

    def recvfrom(self, maxlen: int = 65536) -> tuple[bytes, Address]:
        self.check_open()
        if self.error:
            raise SocketError(self.take_error())
        if not self.queue:
            raise SocketError(errno.EAGAIN)
        data, addr = self.queue.popleft()
        self.queued_bytes -= len(data)
        return (data if len(data) <= maxlen else data[:maxlen]), addr

    def recv(self, maxlen: int = 65536) -> bytes:
        return self.recvfrom(maxlen)[0]

    def readiness(self) -> int:
        return (POLLIN if self.queue else 0) | POLLOUT | (POLLERR if self.error else 0)

    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        self.check_open()
        if level == IPPROTO_IP and name in (IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP):
            if not isinstance(value, bytes) or len(value) < 8:
                raise SocketError(errno.EINVAL, "needs a struct ip_mreq")
            group = int.from_bytes(value[:4], "big")
            if name == IP_ADD_MEMBERSHIP:
                if group in self.groups:
                    raise SocketError(errno.EADDRINUSE, "already a member")
                self.stack.igmp.join(group)
                self.groups.add(group)
            else:
                if group not in self.groups:
                    raise SocketError(errno.EADDRNOTAVAIL, "not a member")
                self.groups.discard(group)
                self.stack.igmp.leave(group)
            return
        super().setsockopt(level, name, value)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for group in self.groups:
            self.stack.igmp.leave(group)
        self.groups.clear()
        if self.local_port:
            self.stack.udp.unbind(self)
        self.queue.clear()
        self.queued_bytes = 0
