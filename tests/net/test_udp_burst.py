"""A UDP socket tells its reader once per driver burst (NetStack.begin_burst/end_burst) of the
datagrams it brought, and at once outside a burst; a reader's callback that raises is contained
as in receive."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP

from tests.net.crafted import PEER_IP, STACK_IP, Host
from tradekernel.kernel.net import POLLIN


def _datagram(n: int) -> IP:
    return IP(src=PEER_IP, dst=STACK_IP) / UDP(sport=7, dport=5000) / bytes([n])


def test_one_wake_up_per_burst() -> None:
    host = Host()
    sock = host.stack.open("udp")
    sock.bind(("", 5000))
    woken: list[int] = []
    sock.set_callback(lambda s: woken.append(len(s.queue)))
    host.stack.begin_burst()
    for n in range(3):
        host.inject(_datagram(n))
    assert woken == [] and len(sock.queue) == 3  # queued, not yet told
    host.stack.end_burst()
    assert woken == [3] and sock.readiness() & POLLIN
    host.inject(_datagram(3))  # outside a burst: at once
    assert woken == [3, 4]


def test_a_failing_reader_is_contained() -> None:
    host = Host()
    sock = host.stack.open("udp")
    sock.bind(("", 5000))

    def broken(_sock: object) -> None:
        raise RuntimeError("reader bug")

    sock.set_callback(broken)
    host.stack.begin_burst()
    host.inject(_datagram(0))
    host.stack.end_burst()
    assert host.stack.counters["stack.internal_errors"] == 1 and len(sock.queue) == 1
