"""NetStack.ip_output's unicast fast path against its general path (`_ip_output`): the same
bytes and counts for every datagram it takes, the general path for everything it must not take,
and a remembered next hop forgotten when the routing table or the address changes."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Ether

from tests.net.crafted import PEER_IP, STACK_IP, Host
from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import SocketError
from tradekernel.kernel.net.ipv4 import PROTO_TCP, PROTO_UDP, Route
from tradekernel.kernel.net.wire import ip_to_int

PEER = ip_to_int(PEER_IP)
GATEWAY_MAC = "02:00:00:00:00:fe"
FAR = ip_to_int("192.0.2.7")


def _primed(fast: bool) -> Host:
    """A host that has sent once to PEER and FAR (next hops remembered, the gateway's MAC
    known), and whose ip_output is the fast path or only the general one."""
    host = Host()
    host.raw(bytes(Ether(dst=host.mac, src=GATEWAY_MAC) / ARP(
        op=2, hwsrc=GATEWAY_MAC, psrc="10.0.0.254", hwdst=host.mac, pdst=STACK_IP)))
    host.stack.ip_output(PEER, PROTO_UDP, b"prime")
    host.stack.ip_output(FAR, PROTO_UDP, b"prime")
    if not fast:
        stack = host.stack
        host.stack.ip_output = (  # type: ignore[method-assign]
            lambda dst, proto, payload, *, src=None, ttl=params.IP_DEFAULT_TTL, tos=0,
            options=b"", df=False: stack._ip_output(dst, proto, payload, src, ttl, tos,
                                                    options, df))
    host.sent()
    return host


def _outcome(fast: bool, sends: list[tuple[int, int, bytes, dict]]) -> tuple[object, ...]:
    host = _primed(fast)
    taken: list[bool] = []
    general = host.stack._ip_output
    host.stack._ip_output = (  # type: ignore[method-assign]
        lambda *args: taken.append(True) or general(*args))
    for dst, proto, payload, kw in sends:
        host.stack.ip_output(dst, proto, payload, **kw)
    frames = [bytes(f) for f in host.sent()]
    return frames, host.stack.counters.snapshot(), host.stack._ip_ident, len(taken)


SEND = st.tuples(
    st.sampled_from([PEER, FAR]),
    st.sampled_from([PROTO_TCP, PROTO_UDP]),
    st.binary(max_size=1480),
    st.fixed_dictionaries({}, optional={"ttl": st.integers(1, 255), "tos": st.integers(0, 255),
                                        "df": st.booleans()}),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(SEND, min_size=1, max_size=6))
def test_fast_path_sends_the_general_paths_bytes(sends: list) -> None:
    frames, counts, ident, general_calls = _outcome(True, sends)
    assert (frames, counts, ident) == _outcome(False, sends)[:3]
    assert general_calls == 0  # every one of these took the fast path
    for frame in frames:  # and scapy reads a valid header (its checksum recomputed matches)
        ip = IP(frame[14:])
        del ip.chksum
        assert IP(bytes(ip)).chksum == IP(frame[14:]).chksum


def test_what_the_fast_path_leaves_to_the_general_one() -> None:
    sends = [
        (PEER, PROTO_UDP, bytes(1481), {}),  # fragments
        (PEER, 2, b"x", {"options": b"\x94\x04\x00\x00"}),  # options
        (ip_to_int("10.0.0.255"), PROTO_UDP, b"b", {}),  # directed broadcast
        (ip_to_int(STACK_IP), PROTO_UDP, b"l", {}),  # ourselves
        (ip_to_int("10.0.0.77"), PROTO_UDP, b"a", {}),  # not routed before, no ARP entry
    ]
    frames, counts, ident, general_calls = _outcome(True, sends)
    assert (frames, counts, ident) == _outcome(False, sends)[:3]
    assert general_calls == len(sends)


def test_a_remembered_next_hop_follows_route_and_address_changes() -> None:
    host = _primed(True)
    stack = host.stack
    stack.ip_output(FAR, PROTO_UDP, b"1")
    assert host.sent()[0].dst == GATEWAY_MAC
    stack.routes.delete(0, 0)
    with pytest.raises(SocketError) as err:
        stack.ip_output(FAR, PROTO_UDP, b"2")
    assert err.value.errno == errno.ENETUNREACH
    stack.routes.add(Route(0, 0, PEER))  # the peer is the gateway now
    stack.ip_output(FAR, PROTO_UDP, b"3")
    assert [f.dst for f in host.sent()] == ["02:00:00:00:00:99"]
    stack.ip_output(PEER, PROTO_UDP, b"4")
    stack.configure(ip_to_int("10.0.0.1"), 25)  # 10.0.0.99 is beyond the /25 now: via PEER
    stack.configure(ip_to_int("10.0.0.2"), 24)  # a new address: the source follows it
    host.sent()
    stack.ip_output(PEER, PROTO_UDP, b"5")
    (frame,) = host.sent()
    assert frame[IP].src == "10.0.0.2"
    stack.unconfigure()
    with pytest.raises(SocketError):
        stack.ip_output(PEER, PROTO_UDP, b"6")


def test_an_expired_arp_entry_is_resolved_again() -> None:
    host = _primed(True)
    host.advance(params.ARP_CACHE_TTL + 1)
    host.sent()
    host.stack.ip_output(PEER, PROTO_UDP, b"late")
    (request,) = host.sent()
    assert request.type == 0x0806  # an ARP request, the datagram queued behind it
