"""ARP for IPv4 over Ethernet (RFC 826, RFC 1122 2.3.2, RFC 5227 announcements).

A cache of IPv4 -> MAC entries that expire after ARP_CACHE_TTL; packets for an unresolved
next hop wait in a bounded per-address queue while requests are retried, and are handed back
to the IP layer as undeliverable (host unreachable) when the retries run out. Follows RFC 826's
merge rule: a packet from a sender already cached refreshes it, and a packet aimed at us adds
its sender; gratuitous ARP (sender == target) therefore updates an existing entry, and a
packet that claims our own address from another MAC is counted as a conflict. Uses the stack
only through the small `ArpHost` protocol below.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import TimerHandle, Timers
from tradekernel.kernel.net.counters import Counters
from tradekernel.kernel.net.wire import Malformed

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST_MAC = b"\xff" * 6
OP_REQUEST, OP_REPLY = 1, 2
_ARP = struct.Struct("!HHBBH6s4s6s4s")


class ArpHost(Protocol):
    mac: bytes

    def our_ip(self) -> int: ...
    def send_frame(self, dst_mac: bytes, ethertype: int, payload: bytes) -> None: ...
    def arp_failed(self, packets: list[bytes]) -> None: ...


@dataclass
class ArpEntry:
    mac: bytes | None  # None while resolving
    expires: int = 0
    tries: int = 0
    queue: deque[bytes] = field(default_factory=deque)
    retry: TimerHandle | None = None


class Arp:
    def __init__(
        self, host: ArpHost, timers: Timers, clock_ns: Callable[[], int], counters: Counters
    ) -> None:
        self.host, self.timers, self.now, self.counters = host, timers, clock_ns, counters
        self.cache: OrderedDict[int, ArpEntry] = OrderedDict()

    # -- receive
    def input(self, payload: bytes) -> None:
        if len(payload) < _ARP.size:
            raise Malformed("arp.truncated")
        htype, ptype, hlen, plen, op, sha, spa_b, _tha, tpa_b = _ARP.unpack_from(payload)
        if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4:
            raise Malformed("arp.unsupported")
        if sha[0] & 1:
            raise Malformed("arp.bad_sender_mac")
        spa, tpa = int.from_bytes(spa_b, "big"), int.from_bytes(tpa_b, "big")
        ours = self.host.our_ip()
        self.counters.inc("arp.in")
        if ours and spa == ours:
            if sha != self.host.mac:
                self.counters.inc("arp.conflicts")
            return
        if spa == 0:  # an RFC 5227 probe: answer, learn nothing
            if ours and tpa == ours and op == OP_REQUEST:
                self._send(OP_REPLY, sha, spa)
            return
        entry = self.cache.get(spa)
        if entry is not None:
            self._learn(spa, sha)
            if spa == tpa:
                self.counters.inc("arp.gratuitous_updates")
        elif ours and tpa == ours:
            self._learn(spa, sha)
        if ours and tpa == ours and op == OP_REQUEST:
            self._send(OP_REPLY, sha, spa)

    def _learn(self, ip: int, mac: bytes) -> None:
        entry = self.cache.get(ip)
        if entry is None:
            self._make_room()
            entry = self.cache[ip] = ArpEntry(None)
        entry.mac, entry.expires, entry.tries = mac, self.now() + params.ARP_CACHE_TTL, 0
        if entry.retry:
            entry.retry.cancel()
            entry.retry = None
        self.cache.move_to_end(ip)
        while entry.queue:
            self.host.send_frame(mac, ETH_P_IP, entry.queue.popleft())

    def _make_room(self) -> None:
        while len(self.cache) >= params.ARP_MAX_ENTRIES:
            _, old = self.cache.popitem(last=False)
            if old.retry:
                old.retry.cancel()
            if old.queue:
                self.host.arp_failed(list(old.queue))
            self.counters.inc("arp.evictions")

    # -- send
    def resolve(self, ip: int, packet: bytes) -> None:
        """Send `packet` (a whole IPv4 datagram) to next hop `ip` now or once resolved."""
        entry = self.cache.get(ip)
        if entry is not None and entry.mac is not None and entry.expires > self.now():
            self.host.send_frame(entry.mac, ETH_P_IP, packet)
            return
        if entry is None or entry.mac is not None:  # unknown, or expired: resolve again
            if entry is None:
                self._make_room()
            old_queue = entry.queue if entry else deque()
            entry = self.cache[ip] = ArpEntry(None, queue=old_queue)
        if len(entry.queue) >= params.ARP_QUEUE_PER_ADDR:
            entry.queue.popleft()
            self.counters.inc("arp.queue_drops")
        entry.queue.append(packet)
        if entry.retry is None:
            self._request(ip)

    def _request(self, ip: int) -> None:
        entry = self.cache.get(ip)
        if entry is None or entry.mac is not None:
            return
        if entry.tries >= params.ARP_MAX_TRIES:
            del self.cache[ip]
            self.counters.inc("arp.resolve_failed")
            self.host.arp_failed(list(entry.queue))
            return
        entry.tries += 1
        self._send(OP_REQUEST, BROADCAST_MAC, ip)
        entry.retry = self.timers.after(params.ARP_RETRY_INTERVAL, lambda: self._request(ip))

    def announce(self) -> None:
        """A gratuitous ARP request for our address (RFC 5227 2.3), after configuring it."""
        ours = self.host.our_ip()
        if ours:
            self._send(OP_REQUEST, BROADCAST_MAC, ours, target_mac=b"\0" * 6)

    def _send(
        self, op: int, dst_mac: bytes, target_ip: int, target_mac: bytes | None = None
    ) -> None:
        ours = self.host.our_ip()
        if op == OP_REQUEST and target_ip == ours:
            tha, tpa = b"\0" * 6, ours  # announcement: sender == target
        else:
            tha, tpa = (dst_mac if target_mac is None else target_mac), target_ip
        if op == OP_REQUEST and tha == BROADCAST_MAC:
            tha = b"\0" * 6
        payload = _ARP.pack(
            1,
            ETH_P_IP,
            6,
            4,
            op,
            self.host.mac,
            ours.to_bytes(4, "big"),
            tha,
            tpa.to_bytes(4, "big"),
        )
        self.counters.inc("arp.out")
        self.host.send_frame(dst_mac, ETH_P_ARP, payload)

    # -- for `arp` in the shell
    def entries(self) -> list[tuple[int, bytes | None, int]]:
        """(ip, mac or None while resolving, ns left) for every entry."""
        now = self.now()
        return [(ip, e.mac, max(0, e.expires - now)) for ip, e in self.cache.items()]

    def flush(self) -> None:
        for entry in self.cache.values():
            if entry.retry:
                entry.retry.cancel()
        self.cache.clear()
