"""NetStack: one Ethernet interface with its IPv4 configuration, and the glue between the layers.

`receive(frame)` is the only way in from below and never raises (a driver may bracket what one
interrupt found with `begin_burst()`/`end_burst()`: TCP then sends one ACK per connection at the
end instead of one per two segments, what Linux's GRO achieves, and a UDP socket tells its
reader once, at the end, of every datagram the burst brought); a malformed packet bumps a
named counter (see `counters`) and is dropped (the common UDP datagram takes a fast path
that makes the same checks and counts from one header unpack); an unexpected error inside a
protocol is counted as `stack.internal_errors` and logged, and the stack goes on. Everything
timed uses the injected clock and timer, and every choice that looks random (ISNs, ephemeral ports,
IP ids, DHCP xids, DNS ids, report delays) comes from one `random.Random(seed)`, so the same
inputs at the same times give byte-identical packets. Upward, `open(kind)` makes sockets
("tcp", "udp", "icmp") and the attributes `arp`, `routes`, `dhcp`, `dns`, `counters` serve
the shell's ifconfig/route/arp/dhcp/nslookup/netstat. Standard library and this package only.
"""

from __future__ import annotations

import errno
import random
import struct
from collections import deque
from collections.abc import Callable

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import Clock, Link, SocketError, Timer, Timers
from tradekernel.kernel.net.arp import ETH_P_ARP, ETH_P_IP, Arp
from tradekernel.kernel.net.counters import Counters
from tradekernel.kernel.net.dhcp import DhcpClient
from tradekernel.kernel.net.dns import Resolver
from tradekernel.kernel.net.icmp import Icmp, IcmpSocket
from tradekernel.kernel.net.igmp import Igmp, multicast_mac
from tradekernel.kernel.net.ipv4 import (
    ETH_IP_HEADER,
    FLAG_DF,
    FLAG_MF,
    LIMITED_BROADCAST,
    PROTO_ICMP,
    PROTO_IGMP,
    PROTO_TCP,
    PROTO_UDP,
    IPHeader,
    Reassembler,
    Route,
    RoutingTable,
    build_header,
    header_checksum,
    is_multicast,
    parse_header,
)
from tradekernel.kernel.net.sockets import Socket
from tradekernel.kernel.net.tcp import Tcp, TcpSocket
from tradekernel.kernel.net.udp import Udp, UdpSocket
from tradekernel.kernel.net.wire import Malformed, ip_str, mac_str, prefix_mask

BROADCAST_MAC = b"\xff" * 6
LOG_LINES = 200
# What the UDP fast path reads in one unpack: the Ethernet header (destination, source, type),
# an IPv4 header without options (version/IHL, total length, flags/fragment offset, protocol,
# addresses) and the UDP header (ports, length, checksum): 42 bytes.
ETH_IP_UDP = struct.Struct("!6s6sHBxHxxHxBxxIIHHHH")
UDP_DATA = ETH_IP_UDP.size


class NetStack:
    def __init__(
        self,
        link: Link,
        clock: Clock,
        timer: Timer,
        *,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.link, self.clock = link, clock
        self.mac = bytes(link.mac)
        self.counters = Counters()
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self._log = log
        self.timers = Timers(clock, timer, self._internal_error)
        self.rng = random.Random(seed)
        self.addr = 0
        self.prefix_len = 0
        self.mtu = params.ETH_MTU
        # A link whose receive buffer holds only a few frames and cannot hold the sender back
        # says how many: TCP then offers no larger a window than that many full segments, since
        # a peer's burst beyond it is lost and costs a retransmission timeout. (The NE2000 does
        # not: the emulated cable waits for room in its ring, see hostnet/link.py.)
        burst = getattr(link, "receive_burst_frames", None)
        self.window_cap = burst * (self.mtu - 40) if burst else None
        self.routes = RoutingTable()
        # ip_output's next hop per unicast destination, valid while the routing table's
        # generation and our address are the ones it was filled under (see _route_key)
        self._next_hops: dict[int, int] = {}
        self._next_hops_key = (-1, -1, -1)
        # Between begin_burst and end_burst (a driver handing over what one interrupt found),
        # TCP's every-second-segment ACKs wait for the end of the burst: one ACK then covers
        # every segment of a connection in it, as Linux's GRO makes one segment of them.
        self.in_burst = False
        self._deferred_acks: dict[int, TcpSocket] = {}
        # UDP sockets that got datagrams in the burst: told once at its end, so a reader
        # sleeping in recvmmsg wakes to all of them rather than to the first (NAPI's batching)
        self._deferred_notes: dict[int, UdpSocket] = {}
        self._ip_ident = self.rng.randrange(1 << 16)
        self.arp = Arp(self, self.timers, clock.now_ns, self.counters)
        self.reasm = Reassembler(self.timers, clock.now_ns, self.counters, self._reasm_timeout)
        self.icmp = Icmp(self)
        self.igmp = Igmp(self)
        self.udp = Udp(self)
        self.tcp = Tcp(self)
        self.dhcp = DhcpClient(self)
        self.dns = Resolver(self)

    # -- time and logging
    def now(self) -> int:
        return self.clock.now_ns()

    def log(self, line: str) -> None:
        self.log_lines.append(line)
        if self._log is not None:
            self._log(line)

    def _internal_error(self, exc: BaseException) -> None:
        self.counters.inc("stack.internal_errors")
        self.log(f"net: internal error {type(exc).__name__}: {exc}")

    # -- configuration (ifconfig, route, DHCP)
    def our_ip(self) -> int:
        return self.addr

    def configure(self, addr: int, prefix_len: int, gateway: int | None = None) -> None:
        """Set the interface address, its connected route and (optionally) the default route."""
        if self.addr:
            self.routes.delete(self.addr & prefix_mask(self.prefix_len), self.prefix_len)
        self.addr, self.prefix_len = addr, prefix_len
        self.routes.add(Route(addr & prefix_mask(prefix_len), prefix_len, 0))
        if gateway:
            self.routes.add(Route(0, 0, gateway))
        self.arp.announce()
        self.igmp.report_all()
        self.log(
            f"net: {ip_str(addr)}/{prefix_len}" + (f" via {ip_str(gateway)}" if gateway else "")
        )

    def unconfigure(self) -> None:
        self.routes.clear()
        self.addr = self.prefix_len = 0
        self.arp.flush()

    def broadcast_addr(self) -> int:
        return self.addr | (~prefix_mask(self.prefix_len) & 0xFFFFFFFF) if self.addr else 0

    def interface(self) -> dict[str, object]:
        """What `ifconfig` shows: addresses, MTU and the link's packet and byte counts."""
        c = self.counters
        return {
            "mac": mac_str(self.mac),
            "addr": ip_str(self.addr),
            "prefix_len": self.prefix_len,
            "broadcast": ip_str(self.broadcast_addr()),
            "mtu": self.mtu,
            "rx_packets": c["eth.in"],
            "rx_bytes": c["eth.in_bytes"],
            "tx_packets": c["eth.out"],
            "tx_bytes": c["eth.out_bytes"],
            "groups": [ip_str(g) for g in self.igmp.groups],
        }

    def socket_table(self) -> list[dict[str, object]]:
        """What `netstat` shows: one row per TCP listener/connection and UDP socket."""
        rows = [{"proto": "tcp", **sock.info()} for sock in self.tcp.sockets()]
        for port, socks in sorted(self.udp.ports.items()):
            for sock in socks:
                peer = f"{ip_str(sock.peer[0])}:{sock.peer[1]}" if sock.peer else "*:*"
                rows.append(
                    {
                        "proto": "udp",
                        "state": "",
                        "recv_q": sock.queued_bytes,
                        "send_q": 0,
                        "local": f"{ip_str(sock.local_ip)}:{port}",
                        "peer": peer,
                    }
                )
        return rows

    def open(self, kind: str) -> Socket:
        """A new socket: "tcp" (SOCK_STREAM), "udp" (SOCK_DGRAM), "icmp" (ping socket)."""
        if kind == "tcp":
            return TcpSocket(self)
        if kind == "udp":
            return UdpSocket(self)
        if kind == "icmp":
            return IcmpSocket(self)
        raise SocketError(errno.EPROTONOSUPPORT, f"no socket kind {kind!r}")

    # -- from the driver
    def begin_burst(self) -> None:
        self.in_burst = True

    def defer_ack(self, conn: TcpSocket) -> None:
        """`conn.flush_ack()` at the end of the burst."""
        self._deferred_acks[id(conn)] = conn

    def defer_notify(self, sock: UdpSocket) -> None:
        """`sock.notify()` at the end of the burst."""
        self._deferred_notes[id(sock)] = sock

    def end_burst(self) -> None:
        self.in_burst = False
        deferred, self._deferred_acks = self._deferred_acks, {}
        for conn in deferred.values():
            try:
                conn.flush_ack()
            except Exception as exc:  # containment, as in receive
                self._internal_error(exc)
        notes, self._deferred_notes = self._deferred_notes, {}
        for sock in notes.values():
            try:
                sock.notify()
            except Exception as exc:  # containment, as in receive
                self._internal_error(exc)

    def receive(self, frame: bytes) -> None:
        """One received Ethernet frame (no FCS). Never raises."""
        if frame.__class__ is not bytes:
            frame = bytes(frame)  # what is queued for a socket must not change under it
        try:
            if not self._udp_fast(frame):
                self._ether_input(frame)
        except Malformed as bad:
            self.counters.inc(bad.counter)
        except SocketError:
            self.counters.inc("ip.reply_unroutable")  # an answer we have no route for
        except Exception as exc:  # containment: a protocol bug drops one packet, not the kernel
            self._internal_error(exc)

    def _udp_fast(self, frame: bytes) -> bool:
        """Take a frame of the common kind whole, market data's: an unfragmented IPv4 datagram
        without options carrying UDP, to our address or a joined group, checksums good, for a
        port a socket takes it on. Every check of the general path is made, from one header
        unpack, before anything is counted; anything else answers False with nothing done and
        goes the general way, which counts it or says why it is dropped."""
        size = len(frame)
        if not UDP_DATA <= size <= params.ETH_MAX_FRAME or frame[23] != PROTO_UDP:
            return False  # (byte 23: the IPv4 protocol field, checked again below)
        (dmac, smac, ethertype, vihl, total, flags_frag, proto, src, dst, sport, dport, length,
         ck) = ETH_IP_UDP.unpack_from(frame)
        if (ethertype != ETH_P_IP or vihl != 0x45 or proto != PROTO_UDP or smac[0] & 1
                or flags_frag & (FLAG_MF | 0x1FFF) or not 28 <= total <= size - 14
                or not 8 <= length <= total - 20
                or src >> 28 == 0xE or src == LIMITED_BROADCAST):
            return False
        if dst == self.addr and dst and dmac == self.mac:
            group = False
        elif dst >> 28 == 0xE and dmac == multicast_mac(dst) and self.igmp.member(dst):
            group = True
        else:
            return False
        # The checksums (wire.checksum's arithmetic, inline): a header or datagram is intact
        # when its 16-bit words, with the pseudo header's for UDP, sum to a nonzero multiple
        # of 0xFFFF (one's complement), RFC 1071.
        header = int.from_bytes(frame[14:34], "big")
        if header % 0xFFFF or not header:
            return False
        end = 34 + length
        if ck:
            words = int.from_bytes(
                frame[34:end] if not length & 1 else frame[34:end] + b"\0", "big") + (
                (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + PROTO_UDP + length)
            if words % 0xFFFF or not words:
                return False
        candidates = self.udp.receivers(src, sport, dst, dport)
        if not candidates:
            return False  # the general path answers with port unreachable
        counts = self.counters.counts
        counts["eth.in"] += 1
        counts["eth.in_bytes"] += size
        counts["ip.in_receives"] += 1
        counts["ip.in_delivers"] += 1
        counts["udp.in_datagrams"] += 1
        if len(candidates) == 1:  # one reader, unicast or group: no choosing
            candidates[0].deliver(frame[UDP_DATA:end], src, sport)
        else:
            self.udp.hand_over(candidates, group, frame[UDP_DATA:end], src, sport)
        return True

    def _ether_input(self, frame: bytes) -> None:
        counts = self.counters.counts
        counts["eth.in"] += 1
        counts["eth.in_bytes"] += len(frame)
        if len(frame) < 14:
            raise Malformed("eth.truncated")
        if len(frame) > params.ETH_MAX_FRAME:
            raise Malformed("eth.oversized")
        dst = frame[:6]
        if frame[6] & 1:
            raise Malformed("eth.bad_source")
        if dst != self.mac and dst != BROADCAST_MAC and not (
            dst[0] & 1 and self.igmp.mac_wanted(dst)
        ):
            counts["eth.not_for_us"] += 1
            return
        ethertype = frame[12] << 8 | frame[13]
        if ethertype == ETH_P_IP:
            self.ip_input(frame[14:])
        elif ethertype == ETH_P_ARP:
            self.arp.input(frame[14:])
        else:
            counts["eth.unknown_type"] += 1

    def send_frame(self, dst_mac: bytes, ethertype: int, payload: bytes) -> None:
        frame = dst_mac + self.mac + ethertype.to_bytes(2, "big") + payload
        if len(frame) < params.ETH_MIN_FRAME:
            frame += b"\0" * (params.ETH_MIN_FRAME - len(frame))
        self.counters.inc("eth.out")
        self.counters.inc("eth.out_bytes", len(frame))
        self.link.send(frame)

    # -- IPv4 in
    def ip_input(self, packet: bytes) -> None:
        hdr = parse_header(packet)
        counts = self.counters.counts
        counts["ip.in_receives"] += 1
        payload = packet[hdr.header_len : hdr.total_len]
        src, dst = hdr.src, hdr.dst
        if src >> 28 == 0xE or src == LIMITED_BROADCAST:  # multicast or broadcast source
            raise Malformed("ip.bad_source")
        if dst != self.addr or not dst:
            if not self._for_us(dst):
                counts["ip.not_for_us"] += 1
                return
        if hdr.flags_frag & (FLAG_MF | 0x1FFF):
            whole = self.reasm.add(hdr, payload)
            if whole is None:
                return
            payload = whole
        counts["ip.in_delivers"] += 1
        proto = hdr.proto
        if proto == PROTO_UDP:
            self.udp.input(hdr, payload)
        elif proto == PROTO_TCP:
            self.tcp.input(hdr, payload)
        elif proto == PROTO_ICMP:
            self.icmp.input(hdr, payload)
        elif proto == PROTO_IGMP:
            self.igmp.input(hdr, payload)
        else:
            counts["ip.unknown_protocol"] += 1
            if dst == self.addr:
                self.icmp.send_error(3, 2, hdr, payload)

    def _for_us(self, dst: int) -> bool:
        if dst == LIMITED_BROADCAST:
            return True
        if is_multicast(dst):
            return self.igmp.member(dst)
        return bool(self.addr) and (
            dst == self.addr or dst == self.broadcast_addr() or dst >> 24 == 127
        )

    def is_broadcast(self, dst: int) -> bool:
        return dst == LIMITED_BROADCAST or (bool(self.addr) and dst == self.broadcast_addr())

    def _reasm_timeout(self, hdr: IPHeader, first: bytes) -> None:
        self.icmp.send_error(11, 1, hdr, first)

    # -- IPv4 out
    def source_for(self, dst: int) -> int:
        """The source address for a packet to `dst` (one interface: ours, or ENETUNREACH)."""
        if not self.addr:
            raise SocketError(errno.ENETUNREACH, "no address configured")
        if dst != LIMITED_BROADCAST and not is_multicast(dst) and self.routes.lookup(dst) is None:
            raise SocketError(errno.ENETUNREACH, f"no route to {ip_str(dst)}")
        return self.addr

    def ip_output(
        self,
        dst: int,
        proto: int,
        payload: bytes,
        *,
        src: int | None = None,
        ttl: int = params.IP_DEFAULT_TTL,
        tos: int = 0,
        options: bytes = b"",
        df: bool = False,
    ) -> None:
        """Route, build and send one datagram, fragmenting it to the MTU.

        The common datagram (TCP's and UDP's: unicast to a destination routed before, no
        options, within the MTU, its next hop's MAC in the ARP cache) is built with its
        Ethernet header in one pack and sent at once; the bytes and counts are those of the
        general path (`_ip_output`), which takes everything else."""
        if options or len(payload) > self.mtu - 20:
            return self._ip_output(dst, proto, payload, src, ttl, tos, options, df)
        if self._next_hops_key != (self.routes.generation, self.addr, self.prefix_len):
            self._next_hops.clear()
            self._next_hops_key = (self.routes.generation, self.addr, self.prefix_len)
        next_hop = self._next_hops.get(dst)
        if next_hop is None:
            return self._ip_output(dst, proto, payload, src, ttl, tos, options, df)
        entry = self.arp.cache.get(next_hop)
        if entry is None or entry.mac is None or entry.expires <= self.clock.now_ns():
            return self._ip_output(dst, proto, payload, src, ttl, tos, options, df)
        src = self.addr if src is None else src
        ident = self._ip_ident
        self._ip_ident = (ident + 1) & 0xFFFF
        total = 20 + len(payload)
        flags = FLAG_DF if df else 0
        frame = ETH_IP_HEADER.pack(
            entry.mac, self.mac, ETH_P_IP, 0x45, tos, total, ident, flags, ttl, proto,
            header_checksum(tos, total, ident, flags, ttl, proto, src, dst), src, dst,
        ) + payload
        if total < params.ETH_MIN_FRAME - 14:
            frame += bytes(params.ETH_MIN_FRAME - 14 - total)
        counts = self.counters.counts
        counts["ip.out_requests"] += 1
        counts["eth.out"] += 1
        counts["eth.out_bytes"] += len(frame)
        self.link.send(frame)

    def _ip_output(self, dst: int, proto: int, payload: bytes, src: int | None, ttl: int,
                   tos: int, options: bytes, df: bool) -> None:
        """ip_output's general path: any destination, options, fragments, ARP to resolve. A
        unicast destination's next hop is remembered for the fast path."""
        src = self.addr if src is None else src
        if dst == self.addr or dst >> 24 == 127:
            next_mac: bytes | None = None  # loopback, delivered after this call
        elif dst == LIMITED_BROADCAST or self.is_broadcast(dst):
            next_mac = BROADCAST_MAC
        elif is_multicast(dst):
            next_mac = multicast_mac(dst)
        else:
            route = self.routes.lookup(dst)
            if route is None:
                self.counters.inc("ip.out_no_routes")
                raise SocketError(errno.ENETUNREACH, f"no route to {ip_str(dst)}")
            next_hop = route.gateway or dst
            next_mac = b""  # resolved by ARP
            if self._next_hops_key == (self.routes.generation, self.addr, self.prefix_len):
                if len(self._next_hops) >= params.ROUTE_CACHE_SIZE:
                    self._next_hops.clear()
                self._next_hops[dst] = next_hop
        if len(payload) + 20 + len(options) > params.IP_MAX_DATAGRAM:
            raise SocketError(errno.EMSGSIZE, "datagram too large")
        ident = self._ip_ident
        self._ip_ident = (ident + 1) & 0xFFFF
        hlen = 20 + (len(options) + 3) // 4 * 4
        room = (self.mtu - hlen) & ~7
        if len(payload) + hlen > self.mtu and df:
            raise SocketError(errno.EMSGSIZE, "larger than the MTU with DF set")
        offset = 0
        while True:
            chunk = payload[offset : offset + room]
            more = offset + len(chunk) < len(payload)
            flags = (FLAG_DF if df else 0) | (FLAG_MF if more else 0) | (offset // 8)
            packet = (
                build_header(
                    src,
                    dst,
                    proto,
                    len(chunk),
                    ident,
                    ttl,
                    flags,
                    tos,
                    options if offset == 0 else b"",
                )
                + chunk
            )
            self.counters.inc("ip.out_requests" if offset == 0 else "ip.frag_creates")
            if next_mac is None:
                self.timers.after(0, lambda p=packet: self.receive_ip_loopback(p))
            elif next_mac:
                self.send_frame(next_mac, ETH_P_IP, packet)
            else:
                self.arp.resolve(next_hop, packet)
            offset += len(chunk)
            if not more:
                break

    def receive_ip_loopback(self, packet: bytes) -> None:
        try:
            self.ip_input(packet)
        except Malformed as bad:
            self.counters.inc(bad.counter)

    def arp_failed(self, packets: list[bytes]) -> None:
        """ARP gave up: tell the senders, as a router's ICMP host unreachable would."""
        for packet in packets:
            try:
                hdr = parse_header(packet)
            except Malformed:
                continue
            self.icmp.deliver_error(3, 1, packet[: hdr.header_len + 8])
