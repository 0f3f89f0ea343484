"""Hostile input: hypothesis mutates scapy-built packets of every protocol the stack speaks
(truncations, flipped bytes, forged lengths, random flags, sequence numbers and options) and
throws them at a stack with live TCP, UDP, multicast, DHCP and DNS state. Nothing may escape
`receive` or a timer (internal_errors stays 0) and every buffer stays within its bound."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.igmp import IGMP
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, fragment, in4_chksum
from scapy.layers.l2 import ARP, Ether
from scapy.utils import checksum

from tests.net.crafted import PEER_IP, PEER_MAC, STACK_IP, Host
from tradekernel.kernel.net import params
from tradekernel.kernel.net.sockets import IP_ADD_MEMBERSHIP, IPPROTO_IP
from tradekernel.kernel.net.tcp import State

GROUP = "239.1.1.1"


def live_host() -> tuple[Host, dict]:
    """A stack with a listener, an established connection, UDP, a group, DHCP and DNS busy."""
    h = Host()
    listener = h.stack.open("tcp")
    listener.bind(("", 80))
    listener.listen(4)
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40000, dport=80, flags="S", seq=1000,
                                                 options=[("MSS", 1000), ("WScale", 5)]))
    synack = [f for f in h.sent() if TCP in f][0][TCP]
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40000, dport=80, flags="A", seq=1001,
                                                 ack=synack.seq + 1))
    conn = listener.accept()
    conn.send(b"x" * 5000)
    udp = h.stack.open("udp")
    udp.bind(("", 5000))
    udp.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, socket.inet_aton(GROUP) + bytes(4))
    h.stack.dns.servers = [0x0A000035]
    query = h.stack.dns.lookup("feed.test")
    h.stack.dhcp.start()
    h.sent()
    return h, {"conn": conn, "iss": synack.seq + 1, "udp": udp, "query": query,
               "listener": listener}


def templates(state: dict) -> list[bytes]:
    iss = state["iss"]
    tcp = IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40000, dport=80, seq=1001, ack=iss,
                                             flags="PA") / (b"d" * 300)
    frags = fragment(IP(src=PEER_IP, dst=STACK_IP, id=9) / UDP(sport=1, dport=5000) /
                     bytes(3000), fragsize=800)
    quoted = IP(src=STACK_IP, dst=PEER_IP) / TCP(sport=80, dport=40000, seq=iss)
    dns = DNS(id=1, qr=1, qd=DNSQR(qname="feed.test"),
              an=DNSRR(rrname="feed.test", rdata="10.1.1.1"))
    pkts = [
        tcp,
        IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40001, dport=80, flags="S", seq=5,
                                           options=[("MSS", 536), ("WScale", 14), ("SAckOK", b""),
                                                    ("Timestamp", (1, 0))]),
        IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=1, dport=5000) / b"quote",
        IP(src=PEER_IP, dst=GROUP) / UDP(sport=1, dport=5000) / b"itch",
        IP(src=PEER_IP, dst=STACK_IP) / ICMP(type=8) / b"ping",
        IP(src=PEER_IP, dst=STACK_IP) / ICMP(type=3, code=3) / IPerror(bytes(quoted)[:20]) /
        TCPerror(bytes(quoted)[20:28]),
        IP(src="10.0.0.254", dst="224.0.0.1") / IGMP(type=0x11, mrcode=10),
        IP(src="10.0.0.53", dst=STACK_IP) / UDP(sport=53, dport=4000) / dns,
        IP(src="10.0.0.254", dst="255.255.255.255") / UDP(sport=67, dport=68) /
        BOOTP(op=2, xid=1, yiaddr="10.0.0.5", chaddr=b"\x52\x54\0\x12\x34\x01") /
        DHCP(options=[("message-type", "offer"), ("server_id", "10.0.0.254"), "end"]),
        *frags,
    ]
    frames = [bytes(Ether(dst="52:54:00:12:34:01", src=PEER_MAC) / p) for p in pkts]
    frames.append(bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC) /
                        ARP(op=1, hwsrc=PEER_MAC, psrc=PEER_IP, pdst=STACK_IP)))
    return frames


mutation = st.tuples(
    st.integers(0, 20),                                   # which template
    st.lists(st.tuples(st.one_of(st.integers(0, 80), st.integers(0, 1600)),  # byte writes,
                       st.integers(0, 255)), max_size=6),               # mostly in headers
    st.one_of(st.none(), st.integers(0, 80), st.integers(-40, -1)),      # truncate at
    st.integers(0, 3).map(lambda n: n * 250 * params.MS),  # time passing before it
    st.booleans(),                                        # make checksums and lengths agree
)


def make_consistent(frame: bytes) -> bytes:
    """Rewrite the IPv4 total length and every checksum of a mutated or truncated frame (with
    scapy's checksum routines), so the damage reaches the layers behind them."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ip = bytearray(frame[14:])
    hlen = (ip[0] & 0xF) * 4
    if hlen < 20 or hlen > len(ip):
        return frame
    ip[2:4] = len(ip).to_bytes(2, "big")
    ip[10:12] = b"\0\0"
    ip[10:12] = checksum(bytes(ip[:hlen])).to_bytes(2, "big")
    body = bytearray(ip[hlen:])
    proto, offset = ip[9], {1: 2, 2: 2, 6: 16, 17: 6}.get(ip[9])
    if offset is not None and len(body) >= offset + 2:
        if proto == 17 and len(body) >= 8:
            body[4:6] = len(body).to_bytes(2, "big")
        body[offset:offset + 2] = b"\0\0"
        if proto in (6, 17):
            value = in4_chksum(proto, IP(bytes(ip[:hlen])), bytes(body))
        else:
            value = checksum(bytes(body))
        body[offset:offset + 2] = value.to_bytes(2, "big")
    return frame[:14] + bytes(ip[:hlen]) + bytes(body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=25))
def test_hostile_packets_are_counted_never_raise_and_stay_bounded(
        mutations: list[tuple[int, list[tuple[int, int]], int | None, int, bool]]) -> None:
    h, state = live_host()
    frames = templates(state)
    for which, writes, cut, wait, fix in mutations:
        frame = bytearray(frames[which % len(frames)])
        for pos, value in writes:
            if pos < len(frame):
                frame[pos] = value
        if cut is not None:
            frame = frame[:cut]
        h.clock.run(limit_ns=wait)
        h.stack.receive(make_consistent(bytes(frame)) if fix else bytes(frame))
    h.clock.run(limit_ns=5 * params.SECOND)
    stack = h.stack
    assert stack.counters["stack.internal_errors"] == 0, list(stack.log_lines)
    assert stack.reasm.memory <= params.IP_REASM_MAX_BYTES
    assert len(stack.tcp.conns) <= params.TCP_MAX_CONNECTIONS
    assert len(stack.arp.cache) <= params.ARP_MAX_ENTRIES
    conn = state["conn"]
    assert len(conn.ooo) <= params.TCP_OOO_MAX_SEGMENTS
    assert len(conn.rcvbuf) <= params.TCP_RCVBUF and len(conn.sndbuf) <= params.TCP_SNDBUF
    assert state["udp"].queued_bytes <= params.UDP_RCVBUF
    assert len(state["listener"].syn_queue) <= params.TCP_MAX_SYN_QUEUE
    assert conn.state in State


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1600))
def test_random_bytes_never_raise(blob: bytes) -> None:
    h, _ = live_host()
    h.stack.receive(blob)
    h.stack.receive(bytes(Ether(dst="52:54:00:12:34:01", src=PEER_MAC, type=0x0800)) + blob)
    assert h.stack.counters["stack.internal_errors"] == 0, list(h.stack.log_lines)
