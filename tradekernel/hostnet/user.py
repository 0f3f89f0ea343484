"""`--net user`: a NAT inside the emulator, like QEMU's user networking (slirp). No root needed.

The guest sits alone on 10.0.2.0/24 behind a virtual router:
  - 10.0.2.2 is the gateway and stands for the host itself (connections to it reach the host's
    127.0.0.1); 10.0.2.3 is the DNS server; both answer ARP (with GATEWAY_MAC) and ping.
  - A DHCP server hands the guest 10.0.2.15/24 with router, DNS and lease options (dhcp.py).
  - DNS queries to 10.0.2.3:53 are answered from the host's resolver (dns.py) on a worker
    thread, so a slow resolver never stops the machine.
  - Outbound UDP is carried by one host UDP socket per guest source port (idle ones expire).
    Datagrams for the guest (replies, hostfwd udp) are read UDP_BATCH at most per socket and
    poll, in one recvmmsg (batchrecv.py), and framed where they landed (`_drain_udp`).
  - Outbound TCP is terminated here: each guest connection is a TcpRelay (tcprelay.py) spliced
    to a non-blocking host socket; the guest's SYN is answered only once the host connect
    succeeds (RST if it is refused or times out). The bulk of an upload, in-order data
    segments of an established relay, is read with one header unpack and both checksums
    verified in place (`_tcp_data`); every other frame takes the general parse.
  - --hostfwd tcp:[HOSTADDR:]HOSTPORT-[GUESTADDR]:GUESTPORT (and udp:) listens on the host
    (default address 127.0.0.1) and opens a connection into the guest for each client, which
    the guest sees coming from 10.0.2.2 with the client's port.
Other destinations inside 10.0.2.0/24, broadcasts and multicasts are dropped; ICMP echo is
answered for the gateway and DNS addresses only; IPv4 fragments and frames that do not parse
are dropped and counted in `counters` (a hostile guest cannot raise out of `send`).

Threads: none touch the guest. Every socket is non-blocking and read in `poll()`, which the
machine loop calls; the only worker threads run getaddrinfo and wake `poll()` through a pipe.
All sockets (and that pipe) sit in one epoll selector whose descriptor is `filenos()`.
"""

from __future__ import annotations

import errno
import os
import random
import selectors
import socket
import struct
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from tradekernel.hostnet import dhcp, dns
from tradekernel.hostnet.batchrecv import DatagramBatch
from tradekernel.hostnet.link import Deliver
from tradekernel.hostnet.packets import (
    ACK,
    BROADCAST_MAC,
    DEFAULT_TTL,
    ETH_HEADER,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    PSH,
    RST,
    SYN,
    Arp,
    Ipv4,
    Malformed,
    Tcp,
    Udp,
    checksum,
    ip_to_bytes,
    ipv4_header,
    parse_arp,
    parse_ipv4,
    parse_tcp,
    parse_udp,
)
from tradekernel.hostnet.tcprelay import TcpRelay

NETWORK = ip_to_bytes("10.0.2.0")
NETMASK = ip_to_bytes("255.255.255.0")
GATEWAY = ip_to_bytes("10.0.2.2")
DNS_SERVER = ip_to_bytes("10.0.2.3")
GUEST = ip_to_bytes("10.0.2.15")
GATEWAY_MAC = bytes.fromhex("52550a000202")
HOST_LOOPBACK = "127.0.0.1"
LEASE_S = 86400
MAX_TCP = 256  # relayed TCP connections at once
MAX_UDP = 256  # outbound UDP bindings at once (the least recently used one goes)
UDP_IDLE_S = 120.0
MAX_UDP_PAYLOAD = 1472  # what fits one frame without fragments
MAX_DNS_PENDING = 64
MAX_HELD_FRAMES = 64  # frames waiting for the guest's MAC address (before it has spoken)
MAX_EVENTS_PER_POLL = 512
UDP_BATCH = 64  # datagrams read from one host UDP socket per poll (a flood cannot starve the guest)
# Host UDP sockets' receive buffer (SO_RCVBUF; Linux caps it at net.core.rmem_max): room for
# a feed's datagrams while the machine loop is busy (the default, ~200 KiB, holds ~250 small
# ones, 50 ms of a 5k/s feed)
UDP_SOCKET_BUFFER = 1 << 20
MAX_UDP_FLOWS = 256  # per socket: precomputed header sums kept for this many peers at once
DNS_WORKERS = 2
LISTEN_BACKLOG = 16

# An Ethernet frame's IPv4 header (no options) and TCP header up to the window, as
# UserNetwork._tcp_data reads them: ethertype, version/IHL, total length, flags/fragment
# offset, protocol, ports, sequence and acknowledgement numbers, data offset, flags, window.
_TCP_FRAME = struct.Struct("!12xHBxH2xHxB10xHHIIBBH")
_TCP_FRAME_MIN = 54

# The headers of a UDP datagram for the guest, Ethernet to UDP, packed at once in front of the
# payload by UserNetwork._drain_udp: MACs, ethertype, version/IHL, TOS, total length,
# identification, flags/fragment offset, TTL, protocol, header checksum, addresses, ports,
# UDP length and checksum.
_UDP_FRAME = struct.Struct("!6s6sHBBHHHBBH4s4sHHHH")
_UDP_FRAME_HEADER = _UDP_FRAME.size  # 42
# The constant words of that IPv4 header: version/IHL/TOS, DF, TTL/protocol
_UDP_IP_WORDS = 0x4500 + 0x4000 + (DEFAULT_TTL << 8 | PROTO_UDP)

_DHCP = dhcp.DhcpConfig(GUEST, GATEWAY, NETMASK, GATEWAY, DNS_SERVER, LEASE_S)


@dataclass
class HostForward:
    protocol: str  # "tcp" or "udp"
    host_address: str
    host_port: int
    guest_port: int
    sock: socket.socket | None = None
    clients: OrderedDict[int, tuple[str, int]] = field(default_factory=OrderedDict)  # udp
    flows: dict[bytes, _UdpFlow] = field(default_factory=dict)  # udp

    @property
    def bound_port(self) -> int:
        """The host port actually listened on (a requested port 0 picks a free one)."""
        assert self.sock is not None
        return int(self.sock.getsockname()[1])


def parse_hostfwd(text: str) -> HostForward:
    """'tcp:8080-:80', 'udp:127.0.0.1:5000-10.0.2.15:5000' (QEMU's hostfwd syntax)."""
    protocol, _, rest = text.partition(":")
    if protocol not in ("tcp", "udp") or "-" not in rest:
        raise ValueError(
            f"--hostfwd {text!r}: expected tcp|udp:[HOSTADDR:]HOSTPORT-[GUESTADDR]:GUESTPORT"
        )
    host_part, _, guest_part = rest.partition("-")
    host_address, _, host_port = host_part.rpartition(":")
    guest_address, _, guest_port = guest_part.rpartition(":")
    if not host_port.isdigit() or not guest_port.isdigit():
        raise ValueError(f"--hostfwd {text!r}: ports must be numbers")
    if guest_address not in ("", "10.0.2.15"):
        raise ValueError(f"--hostfwd {text!r}: the guest is 10.0.2.15")
    if int(host_port) > 65535 or not 0 < int(guest_port) <= 65535:
        raise ValueError(f"--hostfwd {text!r}: port out of range")
    return HostForward(protocol, host_address or HOST_LOOPBACK, int(host_port), int(guest_port))


@dataclass
class _UdpBinding:
    guest_port: int
    sock: socket.socket
    last_used: float
    flows: dict[bytes, _UdpFlow] = field(default_factory=dict)


class _UdpFlow(NamedTuple):
    """What every datagram from one host peer to one guest port shares: the addresses and
    ports the guest sees, and the header words' sums that do not change (reduced modulo
    0xFFFF), so a datagram's checksums cost its payload's sum and two additions."""

    source: bytes
    source_port: int
    ip_sum: int  # the IPv4 header's constant words
    udp_sum: int  # the pseudo header's addresses and protocol, and the two ports
    peer: tuple[str, int]  # the host peer's address, as a socket gives it


def _udp_flow(source: bytes, peer: tuple[str, int], guest_port: int) -> _UdpFlow:
    addresses = int.from_bytes(source + GUEST, "big")
    return _UdpFlow(source, peer[1], (_UDP_IP_WORDS + addresses) % 0xFFFF,
                    (addresses + PROTO_UDP + peer[1] + guest_port) % 0xFFFF, peer)  # fmt: skip


class UserNetwork:
    name = "user"

    def __init__(
        self,
        hostfwd: list[str] | tuple[str, ...] = (),
        now: Callable[[], float] = time.monotonic,
        resolver: Callable[[str, bytes], tuple[int, list[bytes]]] = dns.resolve,
        seed: int | None = None,
    ) -> None:
        """`seed` fixes the TCP initial sequence numbers (deterministic runs); None draws them
        from the OS as RFC 9293 asks."""
        self._random = random.Random(seed) if seed is not None else random.SystemRandom()
        self._now = now
        self._resolver = resolver
        self._deliver: Deliver | None = None
        self._selector = selectors.DefaultSelector()
        self.counters: Counter[str] = Counter()
        self.guest_mac: bytes | None = None
        self._held: list[tuple[bytes, int]] = []  # (IP packet, ethertype) until the MAC is known
        self._ip_id = 0
        self.tcp: dict[tuple[int, bytes, int], TcpRelay] = {}
        self._tcp_keys: dict[int, tuple[int, bytes, int]] = {}  # id(relay) -> key
        # id(relay) -> the events its socket is registered for ("tcp"), kept here because asking
        # the selector about an unregistered socket costs an exception with the socket's repr
        self._tcp_events: dict[int, int] = {}
        self.udp: OrderedDict[int, _UdpBinding] = OrderedDict()
        self._dns_pending: list[tuple[Future[tuple[int, list[bytes]]], dns.Query, int]] = []
        self._dns_pool: ThreadPoolExecutor | None = None
        # datagrams from host sockets are received here, behind room for their headers
        self._batch = DatagramBatch(UDP_BATCH, MAX_UDP_PAYLOAD + 1, _UDP_FRAME_HEADER)
        self._batch_view = memoryview(self._batch.buffer)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self.forwards: list[HostForward] = []
        try:
            for spec in hostfwd:
                self._listen(parse_hostfwd(spec))
        except BaseException:
            self.close()
            raise

    # -- Backend interface -----------------------------------------------------------------

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def filenos(self) -> list[int]:
        return [self._selector.fileno()] if hasattr(self._selector, "fileno") else []

    def next_timeout(self) -> float | None:
        earliest = None  # asked after every guest frame (the waker's refresh): one pass
        for relay in self.tcp.values():
            due = relay.next_deadline
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        return None if earliest is None else max(0.0, earliest - self._now())

    def close(self) -> None:
        for relay in list(self.tcp.values()):
            relay.abort(send_rst=False)
        self.tcp.clear()
        for binding in self.udp.values():
            binding.sock.close()
        self.udp.clear()
        for forward in self.forwards:
            if forward.sock is not None:
                forward.sock.close()
        if self._dns_pool is not None:
            self._dns_pool.shutdown(wait=False, cancel_futures=True)
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def send(self, frame: bytes) -> None:
        """A frame from the guest. Malformed input is counted and dropped, never raised."""
        try:
            self._from_guest(frame)
        except Malformed as error:
            self.counters["malformed"] += 1
            self.counters[f"malformed: {str(error).split(':')[0]}"] += 1

    def poll(self) -> None:
        now = self._now()
        for key, events in self._selector.select(0)[:MAX_EVENTS_PER_POLL]:
            kind, item = key.data
            if kind == "wake":
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            elif kind == "connect":
                self._connected(item, now)
            elif kind == "tcp":
                if events & selectors.EVENT_WRITE:
                    item.flush_to_host()
                if events & selectors.EVENT_READ:
                    item.host_readable(now)
                self._sync(item)
            elif kind == "udp":
                self._udp_readable(item, now)
            elif kind == "listen-tcp":
                self._accept(item, now)
            elif kind == "listen-udp":
                self._forward_datagram(item)
        for relay in list(self.tcp.values()):
            relay.on_timer(now)
            self._sync(relay)
        self._answer_dns()
        self._expire_udp(now)

    # -- frames from the guest -------------------------------------------------------------

    def _from_guest(self, frame: bytes) -> None:
        if len(frame) >= _TCP_FRAME_MIN and frame[6:12] == self.guest_mac and self._tcp_data(frame):
            return
        if len(frame) < 14:
            raise Malformed(f"Ethernet: {len(frame)} bytes, shorter than a header")
        source = frame[6:12]
        if not source[0] & 1 and source != self.guest_mac:
            self.guest_mac = source
            self._release_held()
        ethertype = frame[12] << 8 | frame[13]
        if ethertype == ETHERTYPE_IPV4:
            self._ipv4(parse_ipv4(frame, ETH_HEADER))
        elif ethertype == ETHERTYPE_ARP:
            self._arp(parse_arp(frame[14:]))
        else:
            self.counters["other ethertype"] += 1

    def _tcp_data(self, frame: bytes) -> bool:
        """The common frame of a guest's upload, taken with one header unpack: an option-less
        IPv4 datagram (not a fragment) holding a TCP segment with data, no options and no flag
        but ACK and PSH, for a relay whose header prediction (TcpRelay.guest_data) takes it.
        Both checksums are verified (the TCP one over the pseudo header's addresses, which
        sit just before the segment, and the segment in place). False: not that frame, or a
        checksum is wrong; nothing done, and the general path parses it (and counts what is
        wrong)."""
        (ethertype, version_ihl, total, fragment, protocol, source_port, destination_port,
         seq, ack, offset, flags, window) = _TCP_FRAME.unpack_from(frame)  # fmt: skip
        if (
            ethertype != ETHERTYPE_IPV4
            or version_ihl != 0x45
            or protocol != PROTO_TCP
            or fragment & 0x3FFF
            or offset != 0x50
            or flags & ~PSH != ACK
            or not 40 < total <= len(frame) - ETH_HEADER
        ):
            return False
        relay = self.tcp.get((source_port, frame[30:34], destination_port))
        if relay is None:
            return False
        view = memoryview(frame)
        end = ETH_HEADER + total
        if checksum(view[14:34]) or checksum(view[26:end], PROTO_TCP + total - 20):
            return False
        if not relay.guest_data(seq, ack, flags, window, view[54:end], self._now()):
            return False
        self._sync(relay)
        return True

    def _arp(self, arp: Arp) -> None:
        if arp.operation == 1 and arp.target_ip in (GATEWAY, DNS_SERVER):
            reply = Arp(2, GATEWAY_MAC, arp.target_ip, arp.sender_mac, arp.sender_ip)
            self._emit_frame(arp.sender_mac, ETHERTYPE_ARP, reply.build())
            self.counters["arp replies"] += 1

    def _ipv4(self, ip: Ipv4) -> None:
        if ip.protocol == PROTO_UDP:
            self._udp(ip, parse_udp(ip))
        elif ip.protocol == PROTO_TCP:
            self._tcp(ip, parse_tcp(ip))
        elif ip.protocol == PROTO_ICMP:
            self._icmp(ip)
        else:
            self.counters["other protocol"] += 1

    def _icmp(self, ip: Ipv4) -> None:
        data = ip.payload
        if len(data) < 8 or checksum(data):
            raise Malformed("ICMP: short or bad checksum")
        if data[0] != 8 or ip.destination not in (GATEWAY, DNS_SERVER):
            self.counters["icmp dropped"] += 1
            return
        reply = b"\0\0\0\0" + data[4:]
        reply = reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:]
        self._emit_ip(ip.destination, PROTO_ICMP, reply)
        self.counters["ping replies"] += 1

    def _udp(self, ip: Ipv4, udp: Udp) -> None:
        if udp.destination_port == 67 and ip.destination in (b"\xff" * 4, GATEWAY):
            self._dhcp(udp)
            return
        if ip.destination == DNS_SERVER and udp.destination_port == 53:
            self._dns(udp)
            return
        if ip.destination == GATEWAY:
            for forward in self.forwards:
                if (
                    forward.protocol == "udp"
                    and forward.guest_port == udp.source_port
                    and udp.destination_port in forward.clients
                ):
                    self._sendto(forward.sock, udp.payload, forward.clients[udp.destination_port])
                    return
        target = self._host_address(ip.destination)
        if target is None:
            self.counters["udp dropped"] += 1
            return
        binding = self._udp_binding(udp.source_port)
        if binding is not None:
            binding.last_used = self._now()
            self._sendto(binding.sock, udp.payload, (target, udp.destination_port))

    def _sendto(self, sock: socket.socket | None, data: bytes, address: tuple[str, int]) -> None:
        if sock is None:
            return
        try:
            sock.sendto(data, address)
            self.counters["udp out"] += 1
        except OSError:
            self.counters["udp send errors"] += 1

    def _host_address(self, destination: bytes) -> str | None:
        """Where a guest packet for `destination` goes on the host; None if nowhere."""
        if destination == GATEWAY:
            return HOST_LOOPBACK
        if bytes(a & m for a, m in zip(destination, NETMASK, strict=True)) == NETWORK:
            return None
        if destination[0] >= 224 or destination[0] in (0, 127):
            return None
        return socket.inet_ntoa(destination)

    # -- DHCP and DNS ----------------------------------------------------------------------

    def _dhcp(self, udp: Udp) -> None:
        message = dhcp.parse(udp.payload)
        result = dhcp.answer(message, _DHCP)
        if result is None:
            return
        _, reply = result
        broadcast = bool(message.flags & dhcp.FLAG_BROADCAST)
        destination_ip = b"\xff" * 4 if broadcast else GUEST
        destination_mac = BROADCAST_MAC if broadcast else message.chaddr
        packet = Udp(67, 68, reply).build(GATEWAY, destination_ip)
        ip = Ipv4(GATEWAY, destination_ip, PROTO_UDP, packet, identification=self._next_id())
        self._emit_frame(destination_mac, ETHERTYPE_IPV4, ip.build())
        self.counters["dhcp replies"] += 1

    def _dns(self, udp: Udp) -> None:
        query = dns.parse_query(udp.payload)
        if not query.standard:
            self._emit_udp(DNS_SERVER, 53, udp.source_port, dns.not_implemented(query))
            return
        if len(self._dns_pending) >= MAX_DNS_PENDING:
            self._emit_udp(
                DNS_SERVER, 53, udp.source_port, dns.build_answer(query, dns.RCODE_SERVFAIL, [])
            )
            return
        if self._dns_pool is None:
            self._dns_pool = ThreadPoolExecutor(DNS_WORKERS, thread_name_prefix="hostnet-dns")
        future = self._dns_pool.submit(self._resolver, query.name, GATEWAY)
        future.add_done_callback(self._wake)
        self._dns_pending.append((future, query, udp.source_port))

    def _wake(self, _future: object = None) -> None:
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass  # pipe full (already awake) or closed (shutting down)

    def _answer_dns(self) -> None:
        still = []
        for future, query, port in self._dns_pending:
            if not future.done():
                still.append((future, query, port))
                continue
            try:
                rcode, addresses = future.result()
            except Exception:  # noqa: BLE001 - a resolver failure is SERVFAIL for the guest
                rcode, addresses = dns.RCODE_SERVFAIL, []
            self._emit_udp(DNS_SERVER, 53, port, dns.build_answer(query, rcode, addresses))
            self.counters["dns answers"] += 1
        self._dns_pending = still

    # -- UDP -------------------------------------------------------------------------------

    def _udp_binding(self, guest_port: int) -> _UdpBinding | None:
        binding = self.udp.get(guest_port)
        if binding is not None:
            self.udp.move_to_end(guest_port)
            return binding
        if len(self.udp) >= MAX_UDP:
            _, oldest = self.udp.popitem(last=False)
            self._drop_socket(oldest.sock)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER)
        try:
            sock.bind(("0.0.0.0", 0))
        except OSError:
            sock.close()
            return None
        binding = _UdpBinding(guest_port, sock, self._now())
        self.udp[guest_port] = binding
        self._selector.register(sock, selectors.EVENT_READ, ("udp", binding))
        return binding

    def _udp_readable(self, binding: _UdpBinding, now: float) -> None:
        binding.last_used = now
        self._drain_udp(binding.sock, binding.guest_port, binding.flows, None)

    def _expire_udp(self, now: float) -> None:
        for port in [p for p, b in self.udp.items() if now - b.last_used > UDP_IDLE_S]:
            self._drop_socket(self.udp.pop(port).sock)

    def _forward_datagram(self, forward: HostForward) -> None:
        assert forward.sock is not None
        self._drain_udp(forward.sock, forward.guest_port, forward.flows, forward)

    def _drain_udp(self, sock: socket.socket, guest_port: int, flows: dict[bytes, _UdpFlow],
                   forward: HostForward | None) -> None:
        """Up to UDP_BATCH datagrams from `sock` (one recvmmsg) to the guest's `guest_port`:
        from the peer itself on an outbound binding (10.0.2.2 for the host's loopback), from
        10.0.2.2 with the client's port through a hostfwd (`forward`, whose client table
        learns the port). Each lies in its batch slot behind room for its headers, which one
        pack writes with both checksums summed from the flow's precomputed words and the
        payload in place; the frame is the one copy of it handed on."""
        batch = self._batch
        got = batch.receive(sock)
        if not got:
            return
        frame, view, slot = batch.buffer, self._batch_view, batch.slot
        pack_into, deliver, mac = _UDP_FRAME.pack_into, self._deliver, self.guest_mac
        for i in range(got):
            size = batch.size(i)
            if size > MAX_UDP_PAYLOAD:
                self.counters["udp too big"] += 1
                continue
            peer = batch.peer(i)
            flow = flows.get(peer)
            if flow is None:
                flow = self._new_flow(flows, peer, guest_port, forward is None)
            if forward is not None:
                clients = forward.clients
                clients[flow.source_port] = flow.peer
                clients.move_to_end(flow.source_port)
                if len(clients) > MAX_UDP:
                    clients.popitem(last=False)
            start = i * slot
            end = start + _UDP_FRAME_HEADER + size
            if mac is None or deliver is None:  # held until the guest's MAC is known
                self._emit_udp(flow.source, flow.source_port, guest_port,
                               bytes(view[start + _UDP_FRAME_HEADER : end]))  # fmt: skip
                continue
            ip_id = self._ip_id = (self._ip_id + 1) & 0xFFFF
            length = 8 + size
            data = int.from_bytes(view[start + _UDP_FRAME_HEADER : end], "big")
            if size & 1:
                data <<= 8
            ip_sum = (flow.ip_sum + 20 + length + ip_id) % 0xFFFF
            pack_into(frame, start, mac, GATEWAY_MAC, ETHERTYPE_IPV4, 0x45, 0, 20 + length,
                      ip_id, 0x4000, DEFAULT_TTL, PROTO_UDP, 0xFFFF - (ip_sum or 0xFFFF),
                      flow.source, GUEST, flow.source_port, guest_port, length,
                      0xFFFF - (flow.udp_sum + 2 * length + data) % 0xFFFF)  # fmt: skip
            deliver(bytes(view[start:end]))

    def _new_flow(self, flows: dict[bytes, _UdpFlow], peer: bytes, guest_port: int,
                  outbound: bool) -> _UdpFlow:
        """The flow for datagrams from `peer` (port and address as in a sockaddr_in;
        outbound: an outbound binding's, seen from the peer's own address; else a hostfwd's,
        seen from 10.0.2.2)."""
        if len(flows) >= MAX_UDP_FLOWS:
            flows.clear()
        address = peer[2:]
        source = address if outbound and address[0] != 127 else GATEWAY
        flow = _udp_flow(source, (socket.inet_ntoa(address), int.from_bytes(peer[:2], "big")),
                         guest_port)  # fmt: skip
        flows[peer] = flow
        return flow

    # -- TCP -------------------------------------------------------------------------------

    def _tcp(self, ip: Ipv4, segment: Tcp) -> None:
        key = (segment.source_port, ip.destination, segment.destination_port)
        relay = self.tcp.get(key)
        now = self._now()
        if relay is not None:
            relay.guest_segment(segment, now)
            self._sync(relay)
            return
        if segment.flags & RST:
            return
        if segment.flags & (SYN | ACK) != SYN:
            self._refuse(ip, segment)
            return
        target = self._host_address(ip.destination)
        if target is None or len(self.tcp) >= MAX_TCP:
            self.counters["tcp refused"] += 1
            self._refuse(ip, segment)
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        relay = TcpRelay(sock, segment.source_port, segment.destination_port,
                         self._relay_emitter(ip.destination), self._iss())  # fmt: skip
        relay.guest_syn(segment, now)
        self._add_relay(key, relay)
        error = sock.connect_ex((target, segment.destination_port))
        if error not in (0, errno.EINPROGRESS, errno.EAGAIN):
            relay.abort(send_rst=True)
            self._sync(relay)
            return
        self._selector.register(sock, selectors.EVENT_WRITE, ("connect", relay))
        self.counters["tcp connects"] += 1

    def _iss(self) -> int:
        return self._random.getrandbits(32)

    def _refuse(self, ip: Ipv4, segment: Tcp) -> None:
        """RST for a segment that belongs to no connection (RFC 9293 3.10.7.1)."""
        if segment.flags & ACK:
            reply = Tcp(segment.destination_port, segment.source_port, segment.ack, 0, RST, 0)
        else:
            length = len(segment.payload) + (1 if segment.flags & SYN else 0)
            reply = Tcp(segment.destination_port, segment.source_port, 0,
                        segment.seq + length, RST | ACK, 0)  # fmt: skip
        self._emit_ip(ip.destination, PROTO_TCP, reply.build(ip.destination, GUEST))

    def _relay_emitter(self, remote: bytes) -> Callable[[Tcp], None]:
        def emit(segment: Tcp) -> None:
            self._emit_ip(remote, PROTO_TCP, segment.build(remote, GUEST))

        return emit

    def _add_relay(self, key: tuple[int, bytes, int], relay: TcpRelay) -> None:
        self.tcp[key] = relay
        self._tcp_keys[id(relay)] = key

    def _connected(self, relay: TcpRelay, now: float) -> None:
        error = relay.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._selector.unregister(relay.sock)
        if error:
            self.counters["tcp connect failed"] += 1
            relay.abort(send_rst=True)
        else:
            relay.host_connected(now)
            self._selector.register(relay.sock, selectors.EVENT_READ, ("tcp", relay))
            self._tcp_events[id(relay)] = selectors.EVENT_READ
        self._sync(relay)

    def _sync(self, relay: TcpRelay) -> None:
        """Keep the selector's interest in a relay's socket in step with its state."""
        key = self._tcp_keys.get(id(relay))
        if key is None:
            return
        if relay.state == "closed":
            del self.tcp[key], self._tcp_keys[id(relay)]
            self._tcp_events.pop(id(relay), None)
            try:
                self._selector.unregister(relay.sock)
            except (KeyError, ValueError):
                pass
            return
        if relay.state == "connecting":
            return
        events = (selectors.EVENT_READ if relay.wants_read() else 0) | (
            selectors.EVENT_WRITE if relay.wants_write() else 0
        )
        registered = self._tcp_events.get(id(relay), 0)
        if registered == events:
            return
        if not events:
            self._selector.unregister(relay.sock)
        elif not registered:
            self._selector.register(relay.sock, events, ("tcp", relay))
        else:
            self._selector.modify(relay.sock, events, ("tcp", relay))
        self._tcp_events[id(relay)] = events

    def _accept(self, forward: HostForward, now: float) -> None:
        assert forward.sock is not None
        for _ in range(LISTEN_BACKLOG):
            try:
                sock, client = forward.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            key = (forward.guest_port, GATEWAY, client[1])
            if key in self.tcp or len(self.tcp) >= MAX_TCP:
                sock.close()
                self.counters["hostfwd refused"] += 1
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            relay = TcpRelay(
                sock, forward.guest_port, client[1], self._relay_emitter(GATEWAY), self._iss()
            )
            self._add_relay(key, relay)
            relay.open_to_guest(now)
            self._sync(relay)
            self.counters["hostfwd connections"] += 1

    def _listen(self, forward: HostForward) -> None:
        kind = socket.SOCK_STREAM if forward.protocol == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if forward.protocol == "udp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER)
        try:
            sock.bind((forward.host_address, forward.host_port))
            if forward.protocol == "tcp":
                sock.listen(LISTEN_BACKLOG)
        except OSError as error:
            sock.close()
            raise ValueError(
                f"--hostfwd {forward.protocol}:{forward.host_address}:{forward.host_port}: "
                f"cannot listen: {error.strerror}"
            ) from None
        sock.setblocking(False)
        forward.sock = sock
        self.forwards.append(forward)
        self._selector.register(sock, selectors.EVENT_READ, (f"listen-{forward.protocol}", forward))

    def _drop_socket(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    # -- frames to the guest ---------------------------------------------------------------

    def _next_id(self) -> int:
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        return self._ip_id

    def _emit_udp(self, source: bytes, source_port: int, guest_port: int, data: bytes) -> None:
        packet = Udp(source_port, guest_port, data).build(source, GUEST)
        self._emit_ip(source, PROTO_UDP, packet)

    def _emit_ip(self, source: bytes, protocol: int, payload: bytes) -> None:
        packet = ipv4_header(source, GUEST, protocol, len(payload), self._next_id()) + payload
        if self.guest_mac is None:
            if len(self._held) < MAX_HELD_FRAMES:
                self._held.append((packet, ETHERTYPE_IPV4))
            who_has = Arp(1, GATEWAY_MAC, GATEWAY, bytes(6), GUEST)
            self._emit_frame(BROADCAST_MAC, ETHERTYPE_ARP, who_has.build())
            return
        self._emit_frame(self.guest_mac, ETHERTYPE_IPV4, packet)

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for packet, ethertype in held:
            assert self.guest_mac is not None
            self._emit_frame(self.guest_mac, ethertype, packet)

    def _emit_frame(self, destination: bytes, ethertype: int, payload: bytes) -> None:
        if self._deliver is not None:
            self._deliver(destination + GATEWAY_MAC + ethertype.to_bytes(2, "big") + payload)
