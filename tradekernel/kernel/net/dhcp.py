"""DHCP client (RFC 2131, options per RFC 2132): INIT -> SELECTING -> REQUESTING -> BOUND ->
RENEWING (T1, unicast to the server) -> REBINDING (T2, broadcast) -> lease expiry -> INIT.

Retransmission follows RFC 2131 4.1 (4, 8, ... 64 s with +-1 s of jitter) while selecting and
requesting, and 4.4.5 (half the time left, at least 60 s) while renewing and rebinding. A NAK
or an expired lease removes the address and starts over. Requests ask for the broadcast flag
while unconfigured, since this stack does not accept unicast IP for an address it lacks. Reads
the options a real server (dnsmasq, ISC) sends: subnet mask, router, DNS servers, domain name,
host name, broadcast address, MTU, NTP servers, lease time, server id, T1, T2, and follows the
option-overload option into the file and sname fields. Everything bounded and checked; a
malformed reply is counted (`dhcp.malformed`) and ignored.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import SocketError, Stack, TimerHandle
from tradekernel.kernel.net.sockets import SO_BROADCAST, SO_REUSEADDR, SOL_SOCKET
from tradekernel.kernel.net.wire import Malformed, ip_str

if TYPE_CHECKING:
    from tradekernel.kernel.net.udp import UdpSocket

CLIENT_PORT, SERVER_PORT = 68, 67
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7
OPT_MASK, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN, OPT_MTU, OPT_BROADCAST = (
    1,
    3,
    6,
    12,
    15,
    26,
    28,
)
OPT_NTP, OPT_REQUESTED, OPT_LEASE, OPT_OVERLOAD, OPT_TYPE, OPT_SERVER = 42, 50, 51, 52, 53, 54
OPT_PARAMS, OPT_MAXSIZE, OPT_T1, OPT_T2, OPT_CLIENT_ID = 55, 57, 58, 59, 61
PARAM_REQUEST = bytes(
    [
        OPT_MASK,
        OPT_ROUTER,
        OPT_DNS,
        OPT_HOSTNAME,
        OPT_DOMAIN,
        OPT_MTU,
        OPT_BROADCAST,
        OPT_NTP,
        OPT_LEASE,
        OPT_SERVER,
        OPT_T1,
        OPT_T2,
    ]
)
REQUEST_TRIES = 4
_FIXED = struct.Struct("!BBBBIHHIIII16s64s128s")


class DhcpState(enum.Enum):
    STOPPED = "stopped"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    BOUND = "bound"
    RENEWING = "renewing"
    REBINDING = "rebinding"


@dataclass
class Lease:
    address: int
    prefix_len: int
    server: int
    lease_ns: int
    t1_ns: int
    t2_ns: int
    obtained_ns: int
    routers: list[int] = field(default_factory=list)
    dns: list[int] = field(default_factory=list)
    ntp: list[int] = field(default_factory=list)
    domain: str = ""
    hostname: str = ""
    mtu: int = 0
    broadcast: int = 0

    def describe(self, now: int) -> list[str]:
        left = max(0, self.obtained_ns + self.lease_ns - now) // params.SECOND
        return [
            f"address {ip_str(self.address)}/{self.prefix_len} from {ip_str(self.server)}",
            "router " + " ".join(map(ip_str, self.routers)),
            "dns " + " ".join(map(ip_str, self.dns)),
            f"domain {self.domain}",
            f"lease {self.lease_ns // params.SECOND} s, {left} s left",
        ]


def parse_options(data: bytes, into: dict[int, bytes]) -> None:
    i = 0
    while i < len(data):
        code = data[i]
        if code == 255:
            return
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            raise Malformed("dhcp.malformed")
        value = data[i + 2 : i + 2 + data[i + 1]]
        into[code] = into.get(code, b"") + value  # RFC 3396: concatenate repeats
        i += 2 + data[i + 1]


def _addrs(value: bytes) -> list[int]:
    return [int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value) - 3, 4)]


class DhcpClient:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.state = DhcpState.STOPPED
        self.lease: Lease | None = None
        self.listeners: list[Callable[[DhcpClient], None]] = []
        self._sock: UdpSocket | None = None
        self._xid = 0
        self._offer: tuple[int, int] | None = None  # (address, server)
        self._tries = 0
        self._started = 0
        self._timers: list[TimerHandle] = []

    # -- control (the `dhcp` shell command)
    def start(self) -> None:
        """Begin (or restart) acquiring a lease."""
        self._open()
        self._discover()

    def renew(self) -> None:
        if self.lease is None or self.state is not DhcpState.BOUND:
            self.start()
            return
        self._enter(DhcpState.RENEWING)
        self._send_request(self.lease.server)

    def release(self) -> None:
        if self.lease is not None and self.stack.addr == self.lease.address:
            self._xid = self.stack.rng.getrandbits(32)
            self._send(
                RELEASE,
                self.lease.server,
                ciaddr=self.lease.address,
                extra={OPT_SERVER: self.lease.server.to_bytes(4, "big")},
            )
        self.stop()

    def stop(self) -> None:
        self._cancel()
        if self.lease is not None and self.stack.addr == self.lease.address:
            self.stack.unconfigure()
        self.lease = None
        self._enter(DhcpState.STOPPED)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- internals
    def _open(self) -> None:
        if self._sock is None:
            sock = self.stack.open("udp")
            sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1)
            sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
            sock.bind(("", CLIENT_PORT))  # type: ignore[attr-defined]
            sock.set_callback(lambda _s: self._drain())
            self._sock = sock  # type: ignore[assignment]

    def _enter(self, state: DhcpState) -> None:
        self.state = state
        self.stack.counters.inc(f"dhcp.state_{state.value}")
        for listener in list(self.listeners):
            listener(self)

    def _cancel(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()

    def _after(self, delay: int, fn: Callable[[], None]) -> None:
        self._timers.append(self.stack.timers.after(delay, fn))

    def _jittered(self) -> int:
        base = min(params.DHCP_RETRY_FIRST << self._tries, params.DHCP_RETRY_MAX)
        return base + self.stack.rng.randrange(-params.SECOND, params.SECOND + 1)

    def _discover(self) -> None:
        self._cancel()
        if self.state is not DhcpState.SELECTING:
            self._tries = 0
            self._started = self.stack.now()
            self._xid = self.stack.rng.getrandbits(32)
            self._enter(DhcpState.SELECTING)
        self._send(DISCOVER, 0xFFFFFFFF)
        self._after(self._jittered(), self._retry_discover)

    def _retry_discover(self) -> None:
        self._tries += 1
        self._discover()

    def _request_selected(self) -> None:
        self._cancel()
        if self._offer is None:
            return
        if self._tries >= REQUEST_TRIES:
            self._enter(DhcpState.STOPPED)
            self._discover()
            return
        addr, server = self._offer
        self._send(
            REQUEST,
            0xFFFFFFFF,
            extra={OPT_REQUESTED: addr.to_bytes(4, "big"), OPT_SERVER: server.to_bytes(4, "big")},
        )
        self._after(self._jittered(), self._retry_request)

    def _retry_request(self) -> None:
        self._tries += 1
        self._request_selected()

    def _send_request(self, dst: int) -> None:
        assert self.lease is not None
        self._xid = self.stack.rng.getrandbits(32)
        self._send(REQUEST, dst, ciaddr=self.lease.address)

    def _send(
        self, kind: int, dst: int, ciaddr: int = 0, extra: dict[int, bytes] | None = None
    ) -> None:
        if self._sock is None:
            return
        mac = self.stack.mac
        secs = min(0xFFFF, (self.stack.now() - self._started) // params.SECOND)
        flags = 0 if ciaddr else 0x8000
        msg = bytearray(
            _FIXED.pack(
                1, 1, 6, 0, self._xid, secs, flags, ciaddr, 0, 0, 0, mac + b"\0" * 10, b"", b""
            )
            + MAGIC
        )
        opts: dict[int, bytes] = {OPT_TYPE: bytes([kind]), OPT_CLIENT_ID: b"\x01" + mac}
        if kind in (DISCOVER, REQUEST):
            opts[OPT_PARAMS] = PARAM_REQUEST
            opts[OPT_MAXSIZE] = struct.pack("!H", 1500)
        opts.update(extra or {})
        for code, value in opts.items():
            msg += bytes([code, len(value)]) + value
        msg += b"\xff"
        msg += b"\0" * max(0, 300 - len(msg))  # BOOTP minimum size
        try:
            self._sock.sendto(bytes(msg), (ip_str(dst), SERVER_PORT))
            self.stack.counters.inc("dhcp.out")
        except SocketError as exc:
            self.stack.counters.inc("dhcp.send_errors")
            self.stack.log(f"dhcp: cannot send: {exc.why or exc.errno}")

    def _drain(self) -> None:
        while self._sock is not None and self._sock.queue:
            data, _addr = self._sock.recvfrom()
            try:
                self._input(data)
            except Malformed as bad:
                self.stack.counters.inc(bad.counter)

    def _input(self, data: bytes) -> None:
        if len(data) < _FIXED.size + 4 or data[_FIXED.size : _FIXED.size + 4] != MAGIC:
            raise Malformed("dhcp.malformed")
        op, _ht, hlen, _hops, xid, _secs, _fl, _ci, yiaddr, _si, _gi, chaddr, sname, file_ = (
            _FIXED.unpack_from(data)
        )
        if op != 2 or xid != self._xid or hlen != 6 or chaddr[:6] != self.stack.mac:
            self.stack.counters.inc("dhcp.ignored")
            return
        opts: dict[int, bytes] = {}
        parse_options(data[_FIXED.size + 4 :], opts)
        overload = opts.get(OPT_OVERLOAD, b"\0")[:1]
        if overload and overload[0] & 1:
            parse_options(file_, opts)
        if overload and overload[0] & 2:
            parse_options(sname, opts)
        kind = opts.get(OPT_TYPE, b"\0")[0]
        self.stack.counters.inc(f"dhcp.in_type{kind}")
        server = int.from_bytes(opts.get(OPT_SERVER, b"\0\0\0\0")[:4], "big")
        if kind == OFFER and self.state is DhcpState.SELECTING:
            if not yiaddr or not server:
                raise Malformed("dhcp.malformed")
            self._offer = (yiaddr, server)
            self._tries = 0
            self._enter(DhcpState.REQUESTING)
            self._request_selected()
        elif kind == ACK and self.state in (
            DhcpState.REQUESTING,
            DhcpState.RENEWING,
            DhcpState.REBINDING,
        ):
            self._bind(yiaddr, server, opts)
        elif kind == NAK and self.state is not DhcpState.BOUND:
            self.stack.log("dhcp: NAK, starting over")
            if self.lease is not None and self.stack.addr == self.lease.address:
                self.stack.unconfigure()
            self.lease = None
            self._enter(DhcpState.STOPPED)
            self._discover()

    def _bind(self, yiaddr: int, server: int, opts: dict[int, bytes]) -> None:
        if not yiaddr:
            raise Malformed("dhcp.malformed")
        lease_s = int.from_bytes(opts.get(OPT_LEASE, b"\xff\xff\xff\xff")[:4], "big")
        lease_ns = max(lease_s * params.SECOND, params.DHCP_MIN_LEASE)
        t1 = (
            int.from_bytes(opts[OPT_T1][:4], "big") * params.SECOND
            if OPT_T1 in opts
            else lease_ns // 2
        )
        t2 = (
            int.from_bytes(opts[OPT_T2][:4], "big") * params.SECOND
            if OPT_T2 in opts
            else lease_ns * 7 // 8
        )
        t2 = min(t2, lease_ns)
        t1 = min(t1, t2)
        mask = int.from_bytes(opts.get(OPT_MASK, b"\xff\xff\xff\0")[:4], "big")
        prefix = bin(mask).count("1")
        lease = Lease(
            yiaddr,
            prefix,
            server or (self.lease.server if self.lease else 0),
            lease_ns,
            t1,
            t2,
            self.stack.now(),
            routers=_addrs(opts.get(OPT_ROUTER, b"")),
            dns=_addrs(opts.get(OPT_DNS, b"")),
            ntp=_addrs(opts.get(OPT_NTP, b"")),
            domain=opts.get(OPT_DOMAIN, b"").decode("ascii", "replace"),
            hostname=opts.get(OPT_HOSTNAME, b"").decode("ascii", "replace"),
            mtu=int.from_bytes(opts.get(OPT_MTU, b"\0\0")[:2], "big"),
            broadcast=int.from_bytes(opts.get(OPT_BROADCAST, b"\0\0\0\0")[:4], "big"),
        )
        self._cancel()
        changed = self.lease is None or (
            self.lease.address,
            self.lease.prefix_len,
            self.lease.routers,
        ) != (yiaddr, prefix, lease.routers)
        self.lease = lease
        if changed or self.stack.addr != yiaddr:
            self.stack.configure(yiaddr, prefix, lease.routers[0] if lease.routers else None)
        if 576 <= lease.mtu <= params.ETH_MTU:
            self.stack.mtu = lease.mtu
        if lease.dns:
            self.stack.dns.servers = list(lease.dns)
        self._enter(DhcpState.BOUND)
        self._after(t1, self._t1)
        self._after(t2, self._t2)
        self._after(lease_ns, self._expire)

    def _t1(self) -> None:
        if self.lease is None:
            return
        self._enter(DhcpState.RENEWING)
        self._send_request(self.lease.server)
        self._retransmit_until(self.lease.obtained_ns + self.lease.t2_ns, self._t1_again)

    def _t1_again(self) -> None:
        if self.state is DhcpState.RENEWING and self.lease is not None:
            self._send(REQUEST, self.lease.server, ciaddr=self.lease.address)
            self._retransmit_until(self.lease.obtained_ns + self.lease.t2_ns, self._t1_again)

    def _t2(self) -> None:
        if self.lease is None:
            return
        self._enter(DhcpState.REBINDING)
        self._send_request(0xFFFFFFFF)
        self._retransmit_until(self.lease.obtained_ns + self.lease.lease_ns, self._t2_again)

    def _t2_again(self) -> None:
        if self.state is DhcpState.REBINDING and self.lease is not None:
            self._send(REQUEST, 0xFFFFFFFF, ciaddr=self.lease.address)
            self._retransmit_until(self.lease.obtained_ns + self.lease.lease_ns, self._t2_again)

    def _retransmit_until(self, deadline: int, fn: Callable[[], None]) -> None:
        left = deadline - self.stack.now()
        delay = max(left // 2, params.DHCP_MIN_RETRANSMIT)
        if delay < left:
            self._after(delay, fn)

    def _expire(self) -> None:
        self.stack.log("dhcp: lease expired")
        self._cancel()
        if self.lease is not None and self.stack.addr == self.lease.address:
            self.stack.unconfigure()
        self.lease = None
        self._enter(DhcpState.STOPPED)
        self._discover()
