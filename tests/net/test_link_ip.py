"""Ethernet, ARP, IPv4 and ICMP of the stack, driven by frames scapy crafts."""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror, fragment
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from tests.net.crafted import PEER_IP, PEER_MAC, STACK_IP, Host
from tradekernel.kernel.net import SocketError, params
from tradekernel.kernel.net.tcp import State
from tradekernel.kernel.net.wire import ip_to_int

SECOND = params.SECOND


def test_arp_request_for_us_is_answered_and_sender_learned() -> None:
    h = Host()
    h.inject(ARP(op=1, hwsrc="02:00:00:00:00:42", psrc="10.0.0.42", pdst=STACK_IP),
             dst="ff:ff:ff:ff:ff:ff")
    (reply,) = h.sent()
    assert reply[ARP].op == 2 and reply[ARP].psrc == STACK_IP and reply.dst == "02:00:00:00:00:42"
    assert reply[ARP].hwsrc == h.mac and reply[ARP].pdst == "10.0.0.42"
    assert any(ip == ip_to_int("10.0.0.42") for ip, _, _ in h.stack.arp.entries())
    # a request for someone else teaches nothing (RFC 826: only if already cached)
    h.inject(ARP(op=1, hwsrc="02:00:00:00:00:43", psrc="10.0.0.43", pdst="10.0.0.50"),
             dst="ff:ff:ff:ff:ff:ff")
    assert h.sent() == [] and all(ip != ip_to_int("10.0.0.43") for ip, _, _ in
                                  h.stack.arp.entries())


def test_arp_pending_queue_retries_and_host_unreachable() -> None:
    h = Host()
    sock = h.stack.open("udp")
    for i in range(params.ARP_QUEUE_PER_ADDR + 3):
        sock.sendto(b"x%d" % i, ("10.0.0.77", 9))
    (req,) = h.sent()
    assert req[ARP].op == 1 and req[ARP].pdst == "10.0.0.77" and req.dst == "ff:ff:ff:ff:ff:ff"
    assert h.stack.counters["arp.queue_drops"] == 3
    h.advance(params.ARP_RETRY_INTERVAL * params.ARP_MAX_TRIES + SECOND)
    assert len([f for f in h.sent() if ARP in f]) == params.ARP_MAX_TRIES - 1
    assert h.stack.counters["arp.resolve_failed"] == 1
    # a TCP connect to an address nobody answers for fails with EHOSTUNREACH
    tcp = h.stack.open("tcp")
    with pytest.raises(SocketError):
        tcp.connect(("10.0.0.78", 80))
    h.advance(10 * SECOND)
    assert tcp.state is State.CLOSED and tcp.take_error() == errno.EHOSTUNREACH


def test_arp_queue_flushes_in_order_once_resolved_then_expires() -> None:
    h = Host()
    sock = h.stack.open("udp")
    for i in range(3):
        sock.sendto(b"p%d" % i, ("10.0.0.77", 9))
    h.sent()
    h.inject(ARP(op=2, hwsrc="02:00:00:00:00:77", psrc="10.0.0.77", hwdst=h.mac, pdst=STACK_IP))
    out = h.sent()
    assert [f[Raw].load for f in out] == [b"p0", b"p1", b"p2"]
    assert all(f.dst == "02:00:00:00:00:77" for f in out)
    h.advance(params.ARP_CACHE_TTL + SECOND)
    sock.sendto(b"again", ("10.0.0.77", 9))
    assert ARP in h.sent()[0]                       # the entry expired: asked again


def test_gratuitous_arp_updates_and_conflict_is_counted() -> None:
    h = Host()
    h.inject(ARP(op=1, hwsrc="02:00:00:00:00:aa", psrc=PEER_IP, pdst=PEER_IP),
             dst="ff:ff:ff:ff:ff:ff")
    assert dict((ip, mac) for ip, mac, _ in h.stack.arp.entries())[ip_to_int(PEER_IP)] == \
        bytes.fromhex("0200000000aa")
    assert h.stack.counters["arp.gratuitous_updates"] == 1
    h.inject(ARP(op=1, hwsrc="02:00:00:00:00:bb", psrc=STACK_IP, pdst=STACK_IP),
             dst="ff:ff:ff:ff:ff:ff")
    assert h.stack.counters["arp.conflicts"] == 1


def test_echo_reply_and_broadcast_echo_ignored() -> None:
    h = Host()
    h.inject(IP(src=PEER_IP, dst=STACK_IP, ttl=9) / ICMP(type=8, id=7, seq=3) / b"payload")
    (reply,) = h.sent()
    assert reply[IP].dst == PEER_IP and reply[IP].ttl == params.IP_DEFAULT_TTL
    assert reply[ICMP].type == 0 and (reply[ICMP].id, reply[ICMP].seq) == (7, 3)
    assert reply[Raw].load == b"payload"
    h.inject(IP(src=PEER_IP, dst="10.0.0.255") / ICMP(type=8), dst="ff:ff:ff:ff:ff:ff")
    assert h.sent() == [] and h.stack.counters["icmp.echo_ignored_broadcast"] == 1


def test_bad_checksums_lengths_and_foreign_frames_are_counted() -> None:
    h = Host()
    good = bytes(Ether(dst=h.mac, src=PEER_MAC) / IP(src=PEER_IP, dst=STACK_IP) / ICMP())
    bad_ip = bytearray(good)
    bad_ip[24] ^= 0xFF                                       # IP header checksum
    h.raw(bytes(bad_ip))
    bad_icmp = bytearray(good)
    bad_icmp[36] ^= 0xFF
    h.raw(bytes(bad_icmp))
    h.raw(good[:40])                                         # total length beyond the frame
    h.raw(good[:10])
    h.raw(bytes(Ether(dst="02:11:22:33:44:55", src=PEER_MAC) / IP(dst=STACK_IP) / ICMP()))
    h.raw(good + bytes(2000))
    c = h.stack.counters
    assert (c["ip.bad_checksum"], c["icmp.bad_checksum"], c["ip.bad_total_length"],
            c["eth.truncated"], c["eth.not_for_us"], c["eth.oversized"]) == (1, 1, 1, 1, 1, 1)
    assert h.sent() == []


def test_unknown_protocol_and_closed_udp_port_get_icmp_errors() -> None:
    h = Host()
    h.inject(IP(src=PEER_IP, dst=STACK_IP, proto=99) / b"whatever")
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=1234, dport=4321) / b"hello")
    proto_unreach, port_unreach = h.sent()
    assert (proto_unreach[ICMP].type, proto_unreach[ICMP].code) == (3, 2)
    assert (port_unreach[ICMP].type, port_unreach[ICMP].code) == (3, 3)
    assert port_unreach[IPerror].dst == STACK_IP and port_unreach[UDPerror].dport == 4321
    # never about a broadcast
    h.inject(IP(src=PEER_IP, dst="255.255.255.255") / UDP(dport=4321), dst="ff:ff:ff:ff:ff:ff")
    assert h.sent() == []


def test_icmp_errors_are_rate_limited() -> None:
    h = Host()
    for _ in range(params.ICMP_ERROR_RATE + 50):
        h.inject(IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=1, dport=2))
    assert len(h.sent()) == params.ICMP_ERROR_RATE
    assert h.stack.counters["icmp.out_rate_limited"] == 50


def test_fragments_reassemble_in_any_order_and_overlaps_drop_the_datagram() -> None:
    h = Host()
    sock = h.stack.open("udp")
    sock.bind(("", 5000))
    data = bytes(range(256)) * 12
    frags = fragment(IP(src=PEER_IP, dst=STACK_IP, id=77) / UDP(sport=9, dport=5000) / data,
                     fragsize=400)
    for f in reversed(frags):
        h.inject(f)
    assert sock.recvfrom()[0] == data
    assert h.stack.reasm.memory == 0 and not h.stack.reasm.queues
    # an overlapping fragment (Teardrop-style) drops the whole datagram
    frags = fragment(IP(src=PEER_IP, dst=STACK_IP, id=78) / UDP(sport=9, dport=5000) / data,
                     fragsize=400)
    evil = IP(bytes(frags[1]))
    evil.frag -= 10
    del evil.chksum
    for f in [frags[0], evil, *frags[1:]]:
        h.inject(f)
    assert not sock.queue and h.stack.counters["ip.reasm_overlap"] == 1


def test_reassembly_times_out_with_time_exceeded_and_memory_is_bounded() -> None:
    h = Host()
    frags = fragment(IP(src=PEER_IP, dst=STACK_IP, id=5) / UDP(sport=9, dport=5000) /
                     bytes(3000), fragsize=1000)
    h.inject(frags[0])
    h.advance(params.IP_REASM_TIMEOUT + SECOND)
    (err,) = h.sent()
    assert (err[ICMP].type, err[ICMP].code) == (11, 1)
    assert not h.stack.reasm.queues and h.stack.reasm.memory == 0
    for ident in range(2000):                               # a fragment flood
        h.inject(IP(src=PEER_IP, dst=STACK_IP, id=ident, flags="MF") / bytes(1400))
    assert h.stack.reasm.memory <= params.IP_REASM_MAX_BYTES
    assert len(h.stack.reasm.queues) <= params.IP_REASM_MAX_QUEUES


def test_routing_table_longest_prefix_and_default() -> None:
    h = Host()
    routes = h.stack.routes
    assert routes.lookup(ip_to_int("10.0.0.5")).gateway == 0                 # type: ignore
    assert routes.lookup(ip_to_int("8.8.8.8")).gateway == ip_to_int("10.0.0.254")  # type: ignore
    sock = h.stack.open("udp")
    sock.sendto(b"far", ("8.8.8.8", 53))
    (req,) = h.sent()
    assert req[ARP].pdst == "10.0.0.254"                    # next hop is the gateway
    routes.delete(0, 0)
    with pytest.raises(SocketError) as info:
        sock.sendto(b"far", ("8.8.8.8", 53))
    assert info.value.errno == errno.ENETUNREACH


def test_large_udp_datagram_is_fragmented_on_output() -> None:
    h = Host()
    sock = h.stack.open("udp")
    sock.sendto(bytes(4000), (PEER_IP, 9))
    frags = h.sent()
    assert len(frags) == 3 and all(len(f[IP]) <= 1500 for f in frags)
    assert [f[IP].flags.MF for f in frags] == [1, 1, 0]
    assert sum(len(f[IP].payload) for f in frags) == 4008


def test_echo_from_an_unroutable_source_is_dropped_quietly() -> None:
    h = Host()
    h.stack.routes.delete(0, 0)
    h.inject(IP(src="192.168.5.5", dst=STACK_IP) / ICMP(type=8))
    assert h.sent() == [] and h.stack.counters["ip.reply_unroutable"] == 1
    assert h.stack.counters["stack.internal_errors"] == 0


def test_icmp_error_quoting_too_little_is_counted() -> None:
    h = Host()
    quote = bytes(IP(src=STACK_IP, dst=PEER_IP, proto=6) / Raw(bytes(8)))
    for cut in (10, 20, 27):
        h.inject(IP(src=PEER_IP, dst=STACK_IP) / ICMP(type=3, code=3) / quote[:cut])
    assert h.stack.counters["icmp.bad_quote"] == 3
    assert h.stack.counters["stack.internal_errors"] == 0
