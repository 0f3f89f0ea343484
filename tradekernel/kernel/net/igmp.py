"""IGMPv2 host side (RFC 2236) and the multicast membership the link and IP filters consult.

Sockets join and leave groups (reference counted); the first join sends an unsolicited
Membership Report and repeats it once after IGMP_UNSOLICITED_INTERVAL, the last leave sends a
Leave Group to 224.0.0.2 if we were the last to report. Queries (general or group-specific,
IGMPv1's max response 0 read as 10 s) schedule a report at a random delay within the maximum
response time; hearing another member's report first suppresses ours. 224.0.0.1 is always
joined and never reported. Reports carry TTL 1 and the Router Alert option (RFC 2113).
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import SocketError, Stack, TimerHandle
from tradekernel.kernel.net.ipv4 import PROTO_IGMP, IPHeader, is_multicast
from tradekernel.kernel.net.wire import Malformed, checksum

QUERY, V1_REPORT, V2_REPORT, LEAVE = 0x11, 0x12, 0x16, 0x17
ALL_HOSTS, ALL_ROUTERS = 0xE0000001, 0xE0000002
ROUTER_ALERT = b"\x94\x04\x00\x00"


def multicast_mac(group: int) -> bytes:
    """RFC 1112 6.4: 01:00:5e and the group's low 23 bits."""
    return b"\x01\x00\x5e" + (group & 0x7FFFFF).to_bytes(3, "big")


@dataclass
class Membership:
    refs: int = 1
    last_reporter: bool = True
    timer: TimerHandle | None = None


class Igmp:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.groups: dict[int, Membership] = {}

    def member(self, group: int) -> bool:
        return group == ALL_HOSTS or group in self.groups

    def mac_wanted(self, mac: bytes) -> bool:
        return mac == multicast_mac(ALL_HOSTS) or any(multicast_mac(g) == mac for g in self.groups)

    def join(self, group: int) -> None:
        if not is_multicast(group):
            raise SocketError(errno.EINVAL, "not a multicast group")
        if group == ALL_HOSTS:
            return
        entry = self.groups.get(group)
        if entry is not None:
            entry.refs += 1
            return
        if len(self.groups) >= params.IGMP_MAX_GROUPS:
            raise SocketError(errno.ENOBUFS, "too many multicast groups")
        entry = self.groups[group] = Membership()
        self._report(group)
        entry.timer = self.stack.timers.after(
            params.IGMP_UNSOLICITED_INTERVAL, lambda: self._report(group)
        )

    def report_all(self) -> None:
        """Announce every membership again (the interface just got an address)."""
        for group in self.groups:
            self._report(group)

    def leave(self, group: int) -> None:
        entry = self.groups.get(group)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs > 0:
            return
        del self.groups[group]
        if entry.timer:
            entry.timer.cancel()
        if entry.last_reporter:
            self._send(LEAVE, group, ALL_ROUTERS)

    def input(self, hdr: IPHeader, payload: bytes) -> None:
        if len(payload) < 8:
            raise Malformed("igmp.truncated")
        if checksum(payload):
            raise Malformed("igmp.bad_checksum")
        kind, max_resp = payload[0], payload[1]
        group = int.from_bytes(payload[4:8], "big")
        self.stack.counters.inc("igmp.in")
        if kind == QUERY:
            limit = (max_resp or 100) * params.SECOND // 10
            targets = list(self.groups) if group == 0 else [group] if group in self.groups else []
            for g in targets:
                entry = self.groups[g]
                delay = self.stack.rng.randrange(max(1, limit))
                due = self.stack.now() + delay
                if entry.timer is None or entry.timer.cancelled or entry.timer.deadline > due:
                    if entry.timer:
                        entry.timer.cancel()
                    entry.timer = self.stack.timers.at(due, lambda g=g: self._report(g))
        elif kind in (V1_REPORT, V2_REPORT) and group in self.groups:
            entry = self.groups[group]
            if entry.timer:
                entry.timer.cancel()
                entry.timer = None
            entry.last_reporter = False

    def _report(self, group: int) -> None:
        entry = self.groups.get(group)
        if entry is None:
            return
        entry.last_reporter = True
        entry.timer = None
        self._send(V2_REPORT, group, group)

    def _send(self, kind: int, group: int, dst: int) -> None:
        if not self.stack.addr:
            return
        msg = bytearray(struct.pack("!BBHI", kind, 0, 0, group))
        struct.pack_into("!H", msg, 2, checksum(msg))
        self.stack.ip_output(dst, PROTO_IGMP, bytes(msg), ttl=1, options=ROUTER_ALERT)
        self.stack.counters.inc("igmp.out")
