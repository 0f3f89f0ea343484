"""A simulated world for the stack's protocol tests: a virtual clock with `call_at`, a link
that records frames, and a wire joining two stacks with a fixed latency (optionally losing or
reordering chosen frames). Time only moves when the test runs the world."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from tradekernel.kernel.net import NetStack
from tradekernel.kernel.net.wire import ip_to_int

US = 1_000


class SimClock:
    def __init__(self) -> None:
        self.now = 1_000_000_000
        self.events: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def now_ns(self) -> int:
        return self.now

    def call_at(self, deadline_ns: int, work: Callable[[], None]) -> None:
        heapq.heappush(self.events, (deadline_ns, next(self._order), work))

    def step(self) -> bool:
        if not self.events:
            return False
        deadline, _, work = heapq.heappop(self.events)
        self.now = max(self.now, deadline)
        work()
        return True

    def run(self, until: Callable[[], bool] | None = None, limit_ns: int = 10 ** 12) -> None:
        """Run events until `until()` holds (checked after each) or time passes `limit_ns`."""
        end = self.now + limit_ns
        while self.events and self.events[0][0] <= end:
            self.step()
            if until is not None and until():
                return
        if until is not None:
            raise AssertionError("condition not reached in simulated time")
        self.now = max(self.now, end)


class RecordingLink:
    """The stack's NIC: frames it sends go to `sent` and, if attached, over the wire."""

    def __init__(self, mac: bytes, clock: SimClock) -> None:
        self.mac, self.clock = mac, clock
        self.sent: list[bytes] = []
        self.times: list[int] = []
        self.deliver: Callable[[bytes], None] | None = None

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))
        self.times.append(self.clock.now)
        if self.deliver is not None:
            self.deliver(frame)


class Wire:
    """Two stacks on one segment, `latency` apart; `drop(frame) -> bool` may lose frames."""

    def __init__(self, clock: SimClock, a: NetStack, b: NetStack, latency: int = 50 * US,
                 drop: Callable[[bytes], bool] | None = None) -> None:
        self.clock, self.latency, self.drop = clock, latency, drop
        a.link.deliver = lambda f: self._carry(f, b)           # type: ignore[attr-defined]
        b.link.deliver = lambda f: self._carry(f, a)           # type: ignore[attr-defined]

    def _carry(self, frame: bytes, to: NetStack) -> None:
        if self.drop is not None and self.drop(frame):
            return
        self.clock.call_at(self.clock.now + self.latency, lambda: to.receive(frame))


def make_stack(clock: SimClock, n: int, addr: str | None = None, seed: int | None = None
               ) -> NetStack:
    link = RecordingLink(bytes([0x52, 0x54, 0, 0x12, 0x34, n]), clock)
    stack = NetStack(link, clock, clock, seed=n if seed is None else seed)
    if addr:
        stack.configure(ip_to_int(addr), 24, ip_to_int("10.0.0.254"))
    return stack


def pair(latency: int = 50 * US, drop: Callable[[bytes], bool] | None = None
         ) -> tuple[SimClock, NetStack, NetStack]:
    clock = SimClock()
    a = make_stack(clock, 1, "10.0.0.1")
    b = make_stack(clock, 2, "10.0.0.2")
    Wire(clock, a, b, latency, drop)
    return clock, a, b
