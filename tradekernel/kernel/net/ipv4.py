"""IPv4 (RFC 791, RFC 1122 3.2.1/3.3): header parsing and building, the routing table, fragment
reassembly with limits, and fragmentation on output.

Receive checks version, header length, total length, header checksum and the destination
(ours, limited or directed broadcast, or a joined multicast group; this host never forwards),
reassembles fragments (an overlap other than an exact duplicate drops the whole datagram, as
Linux does since FragmentSmack; memory, queue count and time are bounded by params), and hands
(header, payload) up. Send picks a route (longest prefix, then the default route), builds the
header and fragments to the MTU unless DF is set. Standard library and this package only.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import TimerHandle, Timers
from tradekernel.kernel.net.counters import Counters
from tradekernel.kernel.net.wire import Malformed, checksum, ip_str, prefix_mask

PROTO_ICMP, PROTO_IGMP, PROTO_TCP, PROTO_UDP = 1, 2, 6, 17
FLAG_DF, FLAG_MF = 0x4000, 0x2000
LIMITED_BROADCAST = 0xFFFFFFFF
_HDR = struct.Struct("!BBHHHBBH4s4s")
# An Ethernet header (destination, source, type) and an IPv4 header without options, addresses
# as integers: what the unicast fast path of NetStack.ip_output packs in one call.
ETH_IP_HEADER = struct.Struct("!6s6sHBBHHHBBHII")


def is_multicast(addr: int) -> bool:
    return addr >> 28 == 0xE


@dataclass(frozen=True)
class IPHeader:
    src: int
    dst: int
    proto: int
    ttl: int
    ident: int
    tos: int
    header_len: int
    total_len: int
    flags_frag: int
    raw: bytes  # the header bytes as received (for ICMP error quoting)


def parse_header(packet: bytes) -> IPHeader:
    if len(packet) < 20:
        raise Malformed("ip.truncated")
    vihl, tos, total, ident, ff, ttl, proto, _ck, src, dst = _HDR.unpack_from(packet)
    if vihl >> 4 != 4:
        raise Malformed("ip.bad_version")
    hlen = (vihl & 0xF) * 4
    if hlen < 20 or hlen > len(packet):
        raise Malformed("ip.bad_header_length")
    if total < hlen or total > len(packet):
        raise Malformed("ip.bad_total_length")
    if checksum(packet[:hlen]):
        raise Malformed("ip.bad_checksum")
    return IPHeader(
        int.from_bytes(src, "big"),
        int.from_bytes(dst, "big"),
        proto,
        ttl,
        ident,
        tos,
        hlen,
        total,
        ff,
        bytes(packet[:hlen]),
    )


def header_checksum(tos: int, total: int, ident: int, flags_frag: int, ttl: int, proto: int,
                    src: int, dst: int) -> int:
    """The checksum of an option-less header with these fields, from its 16-bit words without
    building it (wire.checksum's arithmetic: the sum mod 0xFFFF, a nonzero multiple being the
    one's complement negative zero). The version/IHL word makes the sum nonzero."""
    folded = ((0x4500 | tos) + total + ident + flags_frag + (ttl << 8 | proto) + (src >> 16)
              + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)) % 0xFFFF
    return 0xFFFF - folded if folded else 0


def build_header(
    src: int,
    dst: int,
    proto: int,
    payload_len: int,
    ident: int,
    ttl: int,
    flags_frag: int = 0,
    tos: int = 0,
    options: bytes = b"",
) -> bytes:
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)
    hlen = 20 + len(options)
    hdr = bytearray(
        _HDR.pack(
            (4 << 4) | (hlen // 4),
            tos,
            hlen + payload_len,
            ident,
            flags_frag,
            ttl,
            proto,
            0,
            src.to_bytes(4, "big"),
            dst.to_bytes(4, "big"),
        )
    )
    hdr += options
    struct.pack_into("!H", hdr, 10, checksum(hdr))
    return bytes(hdr)


@dataclass(frozen=True)
class Route:
    dest: int
    prefix_len: int
    gateway: int  # 0: directly connected
    metric: int = 0

    def matches(self, addr: int) -> bool:
        return addr & prefix_mask(self.prefix_len) == self.dest

    def __str__(self) -> str:
        gw = ip_str(self.gateway) if self.gateway else "*"
        return f"{ip_str(self.dest)}/{self.prefix_len} via {gw} metric {self.metric}"


class RoutingTable:
    """The routes, longest prefix first. `generation` moves on every change, so a cache of
    lookups (the stack's per-destination next hops) knows when it is stale."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.generation = 0

    def add(self, route: Route) -> None:
        self.delete(route.dest, route.prefix_len)
        self.routes.append(route)
        self.routes.sort(key=lambda r: (-r.prefix_len, r.metric))
        self.generation += 1

    def delete(self, dest: int, prefix_len: int) -> bool:
        before = len(self.routes)
        self.routes = [r for r in self.routes if (r.dest, r.prefix_len) != (dest, prefix_len)]
        self.generation += 1
        return len(self.routes) != before

    def clear(self) -> None:
        self.routes = []
        self.generation += 1

    def lookup(self, addr: int) -> Route | None:
        """Longest prefix first, lower metric among equals; the /0 default route is last."""
        return next((r for r in self.routes if r.matches(addr)), None)


@dataclass
class _Partial:
    first_seen: int
    pieces: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    total: int | None = None  # payload length, once last seen
    size: int = 0
    first_header: IPHeader | None = None
    timer: TimerHandle | None = None


class Reassembler:
    """Holds fragments per (src, dst, proto, id) under global limits; returns whole payloads."""

    def __init__(
        self,
        timers: Timers,
        now: Callable[[], int],
        counters: Counters,
        on_timeout: Callable[[IPHeader, bytes], None],
    ) -> None:
        self.timers, self.now, self.counters, self.on_timeout = timers, now, counters, on_timeout
        self.queues: OrderedDict[tuple[int, int, int, int], _Partial] = OrderedDict()
        self.memory = 0

    def add(self, hdr: IPHeader, data: bytes) -> bytes | None:
        key = (hdr.src, hdr.dst, hdr.proto, hdr.ident)
        offset = (hdr.flags_frag & 0x1FFF) * 8
        more = bool(hdr.flags_frag & FLAG_MF)
        self.counters.inc("ip.reasm_fragments")
        if offset + len(data) > params.IP_MAX_DATAGRAM - 20 or (more and len(data) % 8):
            self.counters.inc("ip.reasm_bad_fragment")
            return None
        part = self.queues.get(key)
        if part is None:
            while (
                len(self.queues) >= params.IP_REASM_MAX_QUEUES
                or self.memory + len(data) > params.IP_REASM_MAX_BYTES
            ) and self.queues:
                self._drop(next(iter(self.queues)), "ip.reasm_evicted")
            if len(data) > params.IP_REASM_MAX_BYTES:
                return None
            part = self.queues[key] = _Partial(self.now())
            part.timer = self.timers.after(params.IP_REASM_TIMEOUT, lambda: self._expire(key))
        elif self.memory + len(data) > params.IP_REASM_MAX_BYTES:
            self._drop(key, "ip.reasm_memory")
            return None
        end = offset + len(data)
        if part.total is not None and (end > part.total or (not more and end != part.total)):
            self._drop(key, "ip.reasm_bad_fragment")
            return None
        existing = part.pieces.get(offset)
        if existing is not None and existing == data:
            self.counters.inc("ip.reasm_duplicates")
            return None
        for off, piece in part.pieces.items():
            if off < end and offset < off + len(piece):
                self._drop(key, "ip.reasm_overlap")
                return None
        if not more:
            if any(off + len(p) > end for off, p in part.pieces.items()):
                self._drop(key, "ip.reasm_bad_fragment")
                return None
            part.total = end
        if offset == 0:
            part.first_header = hdr
        part.pieces[offset] = data
        part.size += len(data)
        self.memory += len(data)
        if part.total is None or part.size != part.total:
            return None
        self._drop(key, None)
        self.counters.inc("ip.reasm_ok")
        return b"".join(part.pieces[o] for o in sorted(part.pieces))

    def _drop(self, key: tuple[int, int, int, int], counter: str | None) -> None:
        part = self.queues.pop(key)
        self.memory -= part.size
        if part.timer:
            part.timer.cancel()
        if counter:
            self.counters.inc(counter)

    def _expire(self, key: tuple[int, int, int, int]) -> None:
        part = self.queues.get(key)
        if part is None:
            return
        self._drop(key, "ip.reasm_timeout")
        if part.first_header is not None:  # RFC 792: time exceeded, code 1
            self.on_timeout(part.first_header, part.pieces[0])
