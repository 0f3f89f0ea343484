"""A NIC that holds only a few frames (the NE2000's receive ring) bounds the TCP window: a
peer's burst beyond it would be lost at the card. The SYN-ACK's window and every later one stay
within `receive_burst_frames` full segments."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from tests.net.crafted import PEER_IP, STACK_IP, Host
from tests.net.sim import SimClock
from tradekernel.kernel.net import NetStack


class SmallRingLink:
    mac = bytes.fromhex("525400000001")
    receive_burst_frames = 7

    def send(self, frame: bytes) -> None:
        pass


def test_the_links_burst_sets_the_cap() -> None:
    clock = SimClock()
    assert NetStack(SmallRingLink(), clock, clock).window_cap == 7 * 1460


def test_advertised_windows_stay_within_the_cap() -> None:
    h = Host()
    cap = h.stack.window_cap = 7 * 1460
    listener = h.stack.open("tcp")
    listener.bind(("", 80))
    listener.listen(4)
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40000, dport=80, flags="S", seq=1000,
                                                 options=[("MSS", 1460), ("WScale", 7)]))
    synack = [f for f in h.sent() if TCP in f][0][TCP]
    assert synack.window <= cap
    scale = dict(synack.options)["WScale"]
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40000, dport=80, flags="A", seq=1001,
                                                 ack=synack.seq + 1))
    listener.accept()
    h.inject(IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=40000, dport=80, flags="PA", seq=1001,
                                                 ack=synack.seq + 1) / (b"d" * 1400))
    h.clock.run(limit_ns=10 ** 9)
    acks = [f[TCP] for f in h.sent() if TCP in f]
    assert acks and all(0 < a.window << scale <= cap for a in acks)
    assert max(a.window << scale for a in acks) > cap - 1460 - (1 << scale)  # not shrunk to 0
