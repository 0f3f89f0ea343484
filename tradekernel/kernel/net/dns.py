"""DNS stub resolver (RFC 1035, RFC 1123 6.1.3, RFC 2308 negative caching, RFC 5452 ports).

`lookup(name, done)` returns a `DnsQuery` at once: already finished for an address literal or
a cached answer, otherwise finished later from `receive` or a timer, when `done(query)` runs.
Each query uses its own connected UDP socket on a random ephemeral port and a random id, asks
for the A record, waits DNS_TIMEOUT per try and cycles through the servers DNS_TRIES times.
Answers follow CNAME chains inside the answer section; the cache keeps addresses for the
smallest TTL of the chain (capped), NXDOMAIN for the SOA's negative TTL (capped). Names are
decoded with bounds on length, label count and compression jumps; anything malformed, a
mismatched id or question, or a truncated reply is counted and that server is treated as
having failed. Standard library and this package only.
"""

from __future__ import annotations

import errno
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import SocketError, Stack, TimerHandle
from tradekernel.kernel.net.wire import Malformed, ip_str, ip_to_int

if TYPE_CHECKING:
    from tradekernel.kernel.net.udp import UdpSocket

TYPE_A, TYPE_CNAME, TYPE_SOA, CLASS_IN = 1, 5, 6, 1
RCODE_NXDOMAIN = 3
MAX_NAME = 255
MAX_JUMPS = 32
MAX_RECORDS = 64


@dataclass
class DnsQuery:
    name: str
    done: bool = False
    addresses: list[str] = field(default_factory=list)
    error: str = ""  # "" when addresses were found
    callback: Callable[[DnsQuery], None] | None = None
    tries: int = 0
    ident: int = 0
    sock: UdpSocket | None = None
    timer: TimerHandle | None = None


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS name {name!r}")
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > MAX_NAME:
        raise ValueError(f"DNS name too long: {name!r}")
    return bytes(out) + b"\0"


def decode_name(msg: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset just after it (compression pointers followed)."""
    labels: list[str] = []
    end = None
    jumps = total = 0
    while True:
        if offset >= len(msg):
            raise Malformed("dns.malformed")
        size = msg[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(msg) or jumps >= MAX_JUMPS:
                raise Malformed("dns.malformed")
            if end is None:
                end = offset + 2
            offset = ((size & 0x3F) << 8) | msg[offset + 1]
            jumps += 1
            continue
        if size & 0xC0:
            raise Malformed("dns.malformed")
        if size == 0:
            return ".".join(labels), (end if end is not None else offset + 1)
        total += size + 1
        if total > MAX_NAME or offset + 1 + size > len(msg):
            raise Malformed("dns.malformed")
        labels.append(msg[offset + 1 : offset + 1 + size].decode("ascii", "replace"))
        offset += 1 + size


def build_query(ident: int, name: str) -> bytes:
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", TYPE_A, CLASS_IN)
    )


def parse_response(msg: bytes, ident: int, name: str) -> tuple[int, list[int], int]:
    """(rcode, addresses, ttl seconds) of a reply to our query, or Malformed."""
    if len(msg) < 12:
        raise Malformed("dns.malformed")
    rid, flags, qd, an, ns, _ar = struct.unpack_from("!HHHHHH", msg)
    if rid != ident or not flags & 0x8000:
        raise Malformed("dns.mismatched")
    if flags & 0x0200:
        raise Malformed("dns.truncated")
    if qd != 1 or an + ns > MAX_RECORDS:
        raise Malformed("dns.malformed")
    qname, off = decode_name(msg, 12)
    if (
        off + 4 > len(msg)
        or qname.lower() != name.lower().rstrip(".")
        or struct.unpack_from("!HH", msg, off) != (TYPE_A, CLASS_IN)
    ):
        raise Malformed("dns.mismatched")
    off += 4
    rcode = flags & 0xF
    target, addresses, ttl = name.lower().rstrip("."), [], params.DNS_MAX_TTL // params.SECOND
    records = []
    for _ in range(an + ns):
        rname, off = decode_name(msg, off)
        if off + 10 > len(msg):
            raise Malformed("dns.malformed")
        rtype, rclass, rttl, rdlen = struct.unpack_from("!HHIH", msg, off)
        off += 10
        if off + rdlen > len(msg):
            raise Malformed("dns.malformed")
        records.append((rname.lower(), rtype, rclass, rttl, off, rdlen))
        off += rdlen
    answers, authority = records[:an], records[an:]
    for _ in range(MAX_RECORDS):  # follow the CNAME chain, bounded
        step = None
        for rname, rtype, rclass, rttl, roff, rdlen in answers:
            if rname != target or rclass != CLASS_IN:
                continue
            if rtype == TYPE_A and rdlen == 4:
                addresses.append(int.from_bytes(msg[roff : roff + 4], "big"))
                ttl = min(ttl, rttl)
            elif rtype == TYPE_CNAME:
                step = decode_name(msg, roff)[0].lower()
                ttl = min(ttl, rttl)
        if addresses or step is None:
            break
        target = step
    if rcode == RCODE_NXDOMAIN:
        ttl = params.DNS_NEGATIVE_TTL // params.SECOND
        for _rname, rtype, _rc, rttl, roff, rdlen in authority:
            if rtype == TYPE_SOA and rdlen >= 22:
                minimum = int.from_bytes(msg[roff + rdlen - 4 : roff + rdlen], "big")
                ttl = min(ttl, rttl, minimum)
    return rcode, addresses, ttl


class Resolver:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.servers: list[int] = []
        self.cache: OrderedDict[str, tuple[list[str], str, int]] = OrderedDict()
        self.pending: list[DnsQuery] = []

    def lookup(self, name: str, done: Callable[[DnsQuery], None] | None = None) -> DnsQuery:
        query = DnsQuery(name, callback=done)
        try:
            query.addresses = [ip_str(ip_to_int(name))]
            query.done = True
            return query
        except ValueError:
            pass
        key = name.lower().rstrip(".")
        hit = self.cache.get(key)
        if hit is not None and hit[2] > self.stack.now():
            self.stack.counters.inc("dns.cache_hits")
            query.addresses, query.error, query.done = list(hit[0]), hit[1], True
            return query
        try:
            encode_name(name)
        except (ValueError, UnicodeEncodeError):
            return self._finish(query, "bad name", notify=False)
        if not self.servers:
            return self._finish(query, "no DNS server configured", notify=False)
        if len(self.pending) >= params.DNS_MAX_PENDING:
            return self._finish(query, "too many lookups in progress", notify=False)
        self.pending.append(query)
        self._try(query)
        return query

    def _try(self, query: DnsQuery) -> None:
        if query.sock is not None:
            query.sock.close()
            query.sock = None
        if query.tries >= params.DNS_TRIES * len(self.servers):
            self._finish(query, "timed out")
            return
        server = self.servers[query.tries % len(self.servers)]
        query.tries += 1
        query.ident = self.stack.rng.getrandbits(16)
        sock = self.stack.open("udp")
        try:
            sock.connect((ip_str(server), 53))  # type: ignore[attr-defined]
            sock.send(build_query(query.ident, query.name))  # type: ignore[attr-defined]
        except SocketError as exc:
            sock.close()  # type: ignore[attr-defined]
            self._finish(query, f"cannot send: {errno.errorcode.get(exc.errno, exc.errno)}")
            return
        query.sock = sock  # type: ignore[assignment]
        sock.set_callback(lambda _s: self._receive(query))
        self.stack.counters.inc("dns.queries")
        query.timer = self.stack.timers.after(params.DNS_TIMEOUT, lambda: self._timeout(query))

    def _timeout(self, query: DnsQuery) -> None:
        if not query.done:
            self.stack.counters.inc("dns.timeouts")
            self._try(query)

    def _receive(self, query: DnsQuery) -> None:
        sock = query.sock
        if sock is None or query.done:
            return
        if sock.error:  # ICMP port unreachable from the server
            sock.take_error()
            self._retry_now(query)
            return
        while sock.queue:
            data, _addr = sock.recvfrom()
            try:
                rcode, addrs, ttl = parse_response(data, query.ident, query.name)
            except Malformed as bad:
                self.stack.counters.inc(bad.counter)
                if bad.counter == "dns.truncated":
                    self._retry_now(query)
                    return
                continue
            if rcode not in (0, RCODE_NXDOMAIN):
                self.stack.counters.inc("dns.server_failures")
                self._retry_now(query)
                return
            error = "" if addrs else ("no such name" if rcode else "no address record")
            expires = self.stack.now() + min(ttl * params.SECOND, params.DNS_MAX_TTL)
            key = query.name.lower().rstrip(".")
            self.cache[key] = ([ip_str(a) for a in addrs], error, expires)
            self.cache.move_to_end(key)
            while len(self.cache) > params.DNS_CACHE_ENTRIES:
                self.cache.popitem(last=False)
            query.addresses = [ip_str(a) for a in addrs]
            self._finish(query, error)
            return

    def _retry_now(self, query: DnsQuery) -> None:
        if query.timer:
            query.timer.cancel()
        self._try(query)

    def _finish(self, query: DnsQuery, error: str, notify: bool = True) -> DnsQuery:
        query.error, query.done = error, True
        if query.timer:
            query.timer.cancel()
        if query.sock is not None:
            query.sock.close()
            query.sock = None
        if query in self.pending:
            self.pending.remove(query)
        if notify and query.callback is not None:
            query.callback(query)
        return query
