"""UDP sockets and IGMPv2 multicast membership, against scapy-crafted datagrams and queries."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from scapy.layers.igmp import IGMP
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.packet import Raw

from tests.net.crafted import PEER_IP, STACK_IP, Host
from tradekernel.kernel.net import POLLERR, POLLIN, SocketError, params
from tradekernel.kernel.net.sockets import (
    IP_ADD_MEMBERSHIP,
    IP_DROP_MEMBERSHIP,
    IPPROTO_IP,
    SO_BROADCAST,
    SO_REUSEADDR,
    SOL_SOCKET,
)

GROUP = "239.1.2.3"
MREQ = socket.inet_aton(GROUP) + socket.inet_aton("0.0.0.0")


def test_datagrams_checksums_and_bounded_queue() -> None:
    h = Host()
    sock = h.stack.open("udp")
    sock.bind(("", 5000))
    woken = []
    sock.set_callback(lambda s: woken.append(s.readiness()))
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=7, dport=5000) / b"tick")
    assert woken == [POLLIN | 4] and sock.recvfrom() == (b"tick", (PEER_IP, 7))
    bad = IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=7, dport=5000, chksum=0x1234) / b"x"
    h.inject(bad)
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=7, dport=5000, len=200) / b"short")
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=7, dport=5000, chksum=0) / b"nocheck")
    assert h.stack.counters["udp.bad_checksum"] == 1 and h.stack.counters["udp.bad_length"] == 1
    assert sock.recvfrom() == (b"nocheck", (PEER_IP, 7))
    for _ in range(params.UDP_RCVQUEUE + 5):
        h.inject(IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=7, dport=5000) / b"flood")
    assert len(sock.queue) == params.UDP_RCVQUEUE
    assert h.stack.counters["udp.rcvbuf_errors"] == 5
    with pytest.raises(SocketError) as info:
        h.stack.open("udp").bind(("", 5000))
    assert info.value.errno == errno.EADDRINUSE


def test_sent_datagram_has_a_valid_checksum_and_broadcast_needs_permission() -> None:
    h = Host()
    sock = h.stack.open("udp")
    sock.sendto(b"order", (PEER_IP, 9999))
    (frame,) = h.sent()
    reparsed = IP(bytes(frame[IP]))
    expected = reparsed[UDP].chksum
    del reparsed[UDP].chksum
    assert IP(bytes(reparsed))[UDP].chksum == expected and reparsed[Raw].load == b"order"
    with pytest.raises(SocketError) as info:
        sock.sendto(b"all", ("255.255.255.255", 9))
    assert info.value.errno == errno.EACCES
    sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1)
    sock.sendto(b"all", ("10.0.0.255", 9))
    assert h.sent()[0].dst == "ff:ff:ff:ff:ff:ff"


def test_port_unreachable_reaches_the_connected_socket() -> None:
    h = Host()
    sock = h.stack.open("udp")
    sock.connect((PEER_IP, 53))
    sock.send(b"query")
    (out,) = h.sent()
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / ICMP(type=3, code=3) / IPerror(bytes(out[IP])[:28]))
    assert sock.readiness() & POLLERR
    with pytest.raises(SocketError) as info:
        sock.recvfrom()
    assert info.value.errno == errno.ECONNREFUSED
    # a datagram from another peer does not reach a connected socket
    h.inject(IP(src="10.0.0.98", dst=STACK_IP) / UDP(sport=53, dport=sock.local_port) / b"x")
    assert not sock.queue


def test_multicast_join_reports_receive_and_leave() -> None:
    h = Host()
    a, b = h.stack.open("udp"), h.stack.open("udp")
    for s in (a, b):
        s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        s.bind(("", 30001))
    a.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, MREQ)
    (report,) = h.sent()
    assert report.dst == "01:00:5e:01:02:03" and report[IP].dst == GROUP and report[IP].ttl == 1
    assert report[IP].options[0].option == 20                  # Router Alert
    assert report[IGMP].type == 0x16 and report[IGMP].gaddr == GROUP
    h.advance(params.IGMP_UNSOLICITED_INTERVAL + 1)
    assert [f[IGMP].type for f in h.sent()] == [0x16]            # repeated once
    b.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, MREQ)
    assert h.sent() == []                                       # already a member
    h.inject(IP(src=PEER_IP, dst=GROUP, ttl=1) / UDP(sport=1, dport=30001) / b"ITCH",
             dst="01:00:5e:01:02:03")
    assert a.recvfrom()[0] == b"ITCH" and b.recvfrom()[0] == b"ITCH"
    h.inject(IP(src=PEER_IP, dst="239.9.9.9") / UDP(sport=1, dport=30001) / b"no",
             dst="01:00:5e:09:09:09")
    assert not a.queue and h.stack.counters["eth.not_for_us"] == 1
    a.setsockopt(IPPROTO_IP, IP_DROP_MEMBERSHIP, MREQ)
    assert h.sent() == []                                       # b still a member
    b.close()
    (leave,) = h.sent()
    assert leave[IGMP].type == 0x17 and leave[IP].dst == "224.0.0.2"


def test_igmp_queries_are_answered_within_max_response_and_suppressed() -> None:
    h = Host()
    sock = h.stack.open("udp")
    sock.bind(("", 30001))
    sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, MREQ)
    h.advance(2 * params.SECOND)
    h.sent()
    query = IP(src="10.0.0.254", dst="224.0.0.1", ttl=1) / IGMP(type=0x11, mrcode=20,
                                                                gaddr="0.0.0.0")
    h.inject(query, dst="01:00:5e:00:00:01")
    assert h.sent() == []
    h.advance(2 * params.SECOND)                                # max response 2.0 s
    (report,) = h.sent()
    assert report[IGMP].type == 0x16 and report[IGMP].gaddr == GROUP
    # another member reports first: ours is suppressed, and we no longer send the leave
    h.inject(query, dst="01:00:5e:00:00:01")
    h.inject(IP(src="10.0.0.50", dst=GROUP, ttl=1) / IGMP(type=0x16, gaddr=GROUP),
             dst="01:00:5e:01:02:03")
    h.advance(3 * params.SECOND)
    assert h.sent() == []
    sock.close()
    assert h.sent() == []
    bad = bytearray(bytes(IP(src=PEER_IP, dst="224.0.0.1") / IGMP(type=0x11)))
    bad[-1] ^= 1
    h.inject(IP(bytes(bad)), dst="01:00:5e:00:00:01")
    assert h.stack.counters["igmp.bad_checksum"] == 1


def test_membership_request_must_be_a_struct() -> None:
    h = Host()
    sock = h.stack.open("udp")
    with pytest.raises(SocketError):
        sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, b"\x01")
    with pytest.raises(SocketError):
        sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP,
                        struct.pack("!4s4s", socket.inet_aton("10.1.1.1"), b"\0" * 4))
