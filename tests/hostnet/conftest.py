"""A test-side "guest" for the host backends: frames crafted with scapy are fed into a backend as
the NIC would, and the frames it delivers back are parsed with scapy, an independent stack."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from tradekernel.hostnet.link import Backend
from tradekernel.hostnet.user import UserNetwork

GUEST_MAC = "52:54:00:12:34:56"
GATEWAY_MAC = "52:55:0a:00:02:02"
DEADLINE_S = 5.0


class Guest:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.frames: list[bytes] = []
        backend.start(self.frames.append)

    def send(self, packet: Packet) -> None:
        self.backend.send(bytes(packet))

    def ip(self, payload: Packet, dst: str = "10.0.2.2") -> None:
        self.send(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src="10.0.2.15", dst=dst) / payload)

    def take(self, match: Callable[[Packet], bool], timeout: float = DEADLINE_S) -> Packet:
        """Poll the backend until a delivered frame matches (removed from the queue)."""
        end = time.monotonic() + timeout
        while True:
            for i, raw in enumerate(self.frames):
                packet = Ether(raw)
                if match(packet):
                    del self.frames[i]
                    return packet
            if time.monotonic() > end:
                raise AssertionError(f"no matching frame within {timeout}s; got {self.frames!r}")
            self.backend.poll()
            time.sleep(0.002)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.backend.poll()
            time.sleep(0.002)


def is_tcp(flags: str) -> Callable[[Packet], bool]:
    return lambda p: TCP in p and str(p[TCP].flags) == flags


def is_udp(port: int) -> Callable[[Packet], bool]:
    return lambda p: UDP in p and p[UDP].dport == port


def is_icmp(kind: int) -> Callable[[Packet], bool]:
    return lambda p: ICMP in p and p[ICMP].type == kind


@pytest.fixture
def user() -> Guest:
    backend = UserNetwork()
    yield Guest(backend)
    backend.close()
