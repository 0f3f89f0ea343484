"""scapy as the independent packet builder and parser for the protocol tests: frames from a
fictitious peer host into one stack, and the stack's frames parsed back."""

from __future__ import annotations

from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from tests.net.sim import SimClock, make_stack
from tradekernel.kernel.net import NetStack

PEER_MAC = "02:00:00:00:00:99"
PEER_IP = "10.0.0.99"
STACK_IP = "10.0.0.1"


class Host:
    """One stack at STACK_IP with PEER_IP's MAC already known, fed crafted frames."""

    def __init__(self, seed: int = 1) -> None:
        self.clock = SimClock()
        self.stack: NetStack = make_stack(self.clock, 1, STACK_IP, seed=seed)
        self.mac = ":".join(f"{b:02x}" for b in self.stack.mac)
        self.link = self.stack.link
        self.inject(ARP(
            op=2, hwsrc=PEER_MAC, psrc=PEER_IP, hwdst=self.mac, pdst=STACK_IP))
        self.sent()

    def inject(self, pkt: Packet, dst: str | None = None) -> None:
        frame = Ether(dst=dst or self.mac, src=PEER_MAC) / pkt
        self.stack.receive(bytes(frame))

    def raw(self, frame: bytes) -> None:
        self.stack.receive(frame)

    def sent(self) -> list[Packet]:
        """Frames the stack sent since the last call, parsed by scapy (each with `.at`, the
        virtual time it left)."""
        frames = []
        for raw, at in zip(self.link.sent, self.link.times, strict=True):  # type: ignore
            frame = Ether(raw)
            frame.at = at
            frames.append(frame)
        self.link.sent.clear()                                     # type: ignore[attr-defined]
        self.link.times.clear()                                    # type: ignore[attr-defined]
        return frames

    def advance(self, ns: int) -> None:
        self.clock.run(limit_ns=ns)
