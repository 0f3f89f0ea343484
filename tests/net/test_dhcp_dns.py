"""The DHCP client's whole lease life and the DNS resolver, against server replies scapy
builds (independently of the stack's own encoders)."""

from __future__ import annotations

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSRR, DNSRRSOA
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from tests.net.crafted import Host
from tests.net.sim import SimClock, make_stack
from tradekernel.kernel.net import params
from tradekernel.kernel.net.dhcp import DhcpState
from tradekernel.kernel.net.wire import ip_to_int

SECOND = params.SECOND
SERVER = "10.9.0.1"


class DhcpWorld:
    def __init__(self) -> None:
        self.clock = SimClock()
        self.stack = make_stack(self.clock, 3)
        self.mac = ":".join(f"{b:02x}" for b in self.stack.mac)

    def out(self) -> list[Packet]:
        frames = [Ether(f) for f in self.stack.link.sent]          # type: ignore[attr-defined]
        self.stack.link.sent.clear()                               # type: ignore[attr-defined]
        self.stack.link.times.clear()                              # type: ignore[attr-defined]
        return frames

    def reply(self, request: Packet, kind: str, lease: int = 600, extra: list | None = None,
              yiaddr: str = "10.9.0.77") -> None:
        options = [("message-type", kind), ("server_id", SERVER), ("lease_time", lease),
                   ("subnet_mask", "255.255.255.0"), ("router", SERVER),
                   ("name_server", SERVER, "10.9.0.2"), ("domain", b"market.test"),
                   *(extra or []), "end"]
        pkt = Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:01") / \
            IP(src=SERVER, dst="255.255.255.255") / UDP(sport=67, dport=68) / \
            BOOTP(op=2, xid=request[BOOTP].xid, yiaddr=yiaddr, siaddr=SERVER,
                  chaddr=self.stack.mac) / DHCP(options=options)
        self.stack.receive(bytes(pkt))


def options(pkt: Packet) -> dict:
    return {o[0]: o[1:] for o in pkt[DHCP].options if isinstance(o, tuple)}


def test_dhcp_discover_offer_request_ack_and_lease_life() -> None:
    w = DhcpWorld()
    w.stack.dhcp.start()
    (discover,) = w.out()
    assert discover[IP].src == "0.0.0.0" and discover[IP].dst == "255.255.255.255"
    assert options(discover)["message-type"] == (1,) and discover[BOOTP].flags == 0x8000
    assert 3 in options(discover)["param_req_list"][0]
    w.clock.run(limit_ns=5 * SECOND + 1)
    (again,) = w.out()                                          # retried after 4 +- 1 s
    assert again[BOOTP].xid == discover[BOOTP].xid
    w.reply(again, "offer")
    (request,) = w.out()
    opts = options(request)
    assert opts["message-type"] == (3,) and opts["requested_addr"] == ("10.9.0.77",)
    assert opts["server_id"] == (SERVER,)
    w.reply(request, "ack", lease=600, extra=[("renewal_time", 100), ("rebinding_time", 200)])
    lease = w.stack.dhcp.lease
    assert lease is not None and w.stack.dhcp.state is DhcpState.BOUND
    assert w.stack.addr == ip_to_int("10.9.0.77") and w.stack.prefix_len == 24
    assert w.stack.dns.servers == [ip_to_int(SERVER), ip_to_int("10.9.0.2")]
    assert lease.domain == "market.test"
    assert any("ARP" in f.summary() for f in w.out())             # gratuitous announcement
    # T1: a unicast REQUEST to the server with ciaddr set
    w.clock.run(limit_ns=100 * SECOND + 1)
    renew = [f for f in w.out() if BOOTP in f]
    assert w.stack.dhcp.state is DhcpState.RENEWING
    assert not renew                                            # the server MAC is unknown yet
    w.stack.receive(bytes(Ether(dst=w.mac, src="02:00:00:00:00:01") / ARP(
        op=2, hwsrc="02:00:00:00:00:01", psrc=SERVER, pdst="10.9.0.77", hwdst=w.mac)))
    (renew,) = [f for f in w.out() if BOOTP in f]
    assert renew[IP].dst == SERVER and renew[BOOTP].ciaddr == "10.9.0.77"
    assert "requested_addr" not in options(renew)
    # no answer: T2 rebinding broadcasts, then the lease runs out and the address goes
    w.clock.run(limit_ns=100 * SECOND + 1)
    assert w.stack.dhcp.state is DhcpState.REBINDING
    sent = [f[IP].dst for f in w.out() if BOOTP in f]
    assert sent == [SERVER, "255.255.255.255"]       # one more renewal at T1 + 60 s, then T2
    w.clock.run(limit_ns=400 * SECOND)
    assert w.stack.addr == 0 and w.stack.dhcp.state is DhcpState.SELECTING
    kinds = [options(f)["message-type"][0] for f in w.out() if BOOTP in f]
    assert kinds[:3] == [3, 3, 3] and 1 in kinds             # rebinding, then DISCOVER again


def test_dhcp_nak_restarts_and_foreign_replies_are_ignored() -> None:
    w = DhcpWorld()
    w.stack.dhcp.start()
    (discover,) = w.out()
    other = discover.copy()
    other[BOOTP].xid ^= 1
    w.reply(other, "offer")
    assert w.out() == [] and w.stack.counters["dhcp.ignored"] == 1
    w.reply(discover, "offer")
    (request,) = w.out()
    w.reply(request, "nak")
    (restart,) = w.out()
    assert options(restart)["message-type"] == (1,) and w.stack.addr == 0
    bad = Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src=SERVER, dst="255.255.255.255") / \
        UDP(sport=67, dport=68) / BOOTP(op=2, xid=restart[BOOTP].xid, chaddr=w.stack.mac) / \
        b"\x63\x82\x53\x63\x35\x09\x02"                            # option overruns the packet
    w.stack.receive(bytes(bad))
    assert w.stack.counters["dhcp.malformed"] == 1


def dns_host() -> Host:
    h = Host()
    h.stack.dns.servers = [ip_to_int("10.0.0.53"), ip_to_int("10.0.0.54")]
    for last in (53, 54):
        h.inject(ARP(op=2, hwsrc=f"02:00:00:00:00:{last}", psrc=f"10.0.0.{last}",
                     hwdst=h.mac, pdst="10.0.0.1"))
    h.sent()
    return h


def answer(h: Host, query: Packet, *records: Packet, rcode: int = 0, ns: Packet | None = None,
           raw: bytes | None = None) -> None:
    dns = DNS(id=query[DNS].id, qr=1, rd=1, ra=1, rcode=rcode, qd=query[DNS].qd,
              an=list(records) or None, ns=ns)
    h.inject(IP(src=query[IP].dst, dst="10.0.0.1") / UDP(sport=53, dport=query[UDP].sport) /
             (raw if raw is not None else dns))


def test_dns_cname_chain_cache_and_ttl() -> None:
    h = dns_host()
    q = h.stack.dns.lookup("feed.market.test")
    (query,) = h.sent()
    assert query[DNS].qd.qname == b"feed.market.test." and query[DNS].qd.qtype == 1
    answer(h, query, DNSRR(rrname="feed.market.test", type="CNAME", ttl=300,
                           rdata="exch.market.test"),
           DNSRR(rrname="exch.market.test", type="A", ttl=30, rdata="10.0.0.9"),
           DNSRR(rrname="exch.market.test", type="A", ttl=60, rdata="10.0.0.10"))
    assert q.done and q.addresses == ["10.0.0.9", "10.0.0.10"]
    assert h.stack.dns.lookup("feed.market.test").addresses == ["10.0.0.9", "10.0.0.10"]
    assert h.sent() == []
    h.advance(31 * SECOND)                                       # the smallest TTL passed
    h.stack.dns.lookup("feed.market.test")
    assert len(h.sent()) == 1


def test_dns_nxdomain_is_cached_negatively_and_bad_replies_ignored() -> None:
    h = dns_host()
    q = h.stack.dns.lookup("nope.market.test")
    (query,) = h.sent()
    answer(h, query, raw=b"\x00\x01")                            # junk
    wrong = DNS(id=query[DNS].id ^ 1, qr=1, qd=query[DNS].qd)
    h.inject(IP(src="10.0.0.53", dst="10.0.0.1") / UDP(sport=53, dport=query[UDP].sport) /
             wrong)
    assert not q.done
    loop = bytes(DNS(id=query[DNS].id, qr=1, qd=query[DNS].qd))[:12] + b"\xc0\x0c" + b"\0" * 4
    answer(h, query, raw=loop)                                   # a name that points at itself
    assert not q.done and h.stack.counters["dns.malformed"] >= 2
    answer(h, query, rcode=3, ns=DNSRRSOA(rrname="market.test", ttl=900, minimum=20))
    assert q.done and q.error == "no such name"
    assert h.stack.dns.lookup("nope.market.test").error == "no such name"
    h.advance(21 * SECOND)
    assert not h.stack.dns.lookup("nope.market.test").done


def test_dns_retries_round_robin_then_gives_up() -> None:
    h = dns_host()
    done = []
    q = h.stack.dns.lookup("slow.market.test", done.append)
    h.advance(params.DNS_TIMEOUT * params.DNS_TRIES * 2 + SECOND)
    servers = [f[IP].dst for f in h.sent() if DNS in f]
    assert servers == ["10.0.0.53", "10.0.0.54"] * params.DNS_TRIES
    assert q.done and q.error == "timed out" and done == [q]
    assert not h.stack.udp.ports                                  # every query socket closed
    assert h.stack.dns.lookup("10.1.2.3").addresses == ["10.1.2.3"]
