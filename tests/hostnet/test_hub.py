"""`--net socket`: machines on one host see each other's frames, over UDP multicast on loopback
(a hub) or a unicast pair (a cable); a machine never hears its own frames back."""

from __future__ import annotations

import random

from scapy.layers.l2 import Ether

from tradekernel.hostnet.hub import SocketBackend

from .conftest import Guest


def frame(source: int, text: bytes) -> bytes:
    return bytes(Ether(src=f"52:54:00:00:00:{source:02x}", dst="ff:ff:ff:ff:ff:ff") / text)


def test_multicast_hub_three_machines() -> None:
    port = random.randrange(20000, 40000)
    machines = [Guest(SocketBackend(f"mcast=239.255.77.1:{port}")) for _ in range(3)]
    try:
        machines[0].send(Ether(frame(1, b"from one")))
        for other in machines[1:]:
            assert bytes(other.take(lambda p: True).payload).startswith(b"from one")
        machines[0].pump(0.05)
        assert machines[0].frames == []  # its own frame is not looped back to it
        machines[2].send(Ether(frame(3, b"from three")))
        assert bytes(machines[0].take(lambda p: True).payload).startswith(b"from three")
    finally:
        for machine in machines:
            machine.backend.close()


def test_unicast_cable_between_two_machines() -> None:
    a_port, b_port = random.sample(range(40000, 50000), 2)
    a = Guest(SocketBackend(f"udp=127.0.0.1:{b_port},localaddr=127.0.0.1:{a_port}"))
    b = Guest(SocketBackend(f"udp=127.0.0.1:{a_port},localaddr=127.0.0.1:{b_port}"))
    try:
        a.send(Ether(frame(1, b"ping")))
        assert bytes(b.take(lambda p: True).payload).startswith(b"ping")
        b.send(Ether(frame(2, b"pong")))
        assert bytes(a.take(lambda p: True).payload).startswith(b"pong")
        b.backend._receiver.sendto(b"short", ("127.0.0.1", a_port))  # not a frame: dropped
        a.pump(0.05)
        assert a.frames == [] and a.backend.dropped == 1
    finally:
        a.backend.close()
        b.backend.close()
