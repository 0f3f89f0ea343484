"""TradeKernel's network stack: Ethernet, ARP, IPv4, ICMP, IGMPv2, UDP, TCP, a DHCP client and
a DNS stub resolver, for one Ethernet interface.

Contract. Below, the NIC driver gives a `Link` (``mac`` and ``send(frame)``) and calls
``NetStack.receive(frame)`` for each received frame; the kernel gives a `Clock` (``now_ns``) and
a `Timer` (``call_at(deadline_ns, fn)``, the shape of Kernel.call_at). Above, ``NetStack.open``
makes non-blocking sockets (see `sockets`, `tcp`, `udp`, `icmp`) whose readiness changes are
reported through a registered callback, so the process layer can put callers to sleep and wake
them without this package knowing processes exist; the shell's network commands read ``arp``,
``routes``, ``dhcp``, ``dns``, ``counters`` and the socket tables. ``receive`` never raises:
malformed or hostile packets are counted by name and dropped, and every queue is bounded by
`params`. No host threads, sockets or wall-clock reads: with a deterministic clock the same
inputs give byte-identical packets.

Imports: the standard library only, and nothing from tradekernel outside this package (later,
the kernel's drivers and memory accounting, through the protocols in `api`).
"""

from tradekernel.kernel.net.api import (
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    POLLRDHUP,
    Clock,
    Link,
    SocketError,
    Timer,
)
from tradekernel.kernel.net.stack import NetStack

__all__ = [
    "NetStack",
    "Link",
    "Clock",
    "Timer",
    "SocketError",
    "POLLIN",
    "POLLOUT",
    "POLLERR",
    "POLLHUP",
    "POLLRDHUP",
]
