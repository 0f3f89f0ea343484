"""The stack's edges: what it needs from below (a link, a clock, a timer) and what it gives
above (poll flags, the socket error, the readiness callback), plus its own timer multiplexer.

Below: the NIC driver implements `Link.send(frame)` and calls `NetStack.receive(frame)` for
every frame it drains; the kernel gives `Clock.now_ns()` and `Timer.call_at(deadline, fn)` (the
shape of Kernel.call_at, which cannot cancel: `Timers` keeps its own heap of cancellable
deadlines and asks the kernel for one wake-up at the earliest). Above: socket calls never block;
they raise `SocketError(errno)` (EAGAIN, EINPROGRESS...) and each socket calls its registered
callback whenever its readiness may have changed, so the process layer can sleep and wake
callers without this package importing it. Standard library only.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any, Protocol

from tradekernel.kernel.net.counters import Counters

COMPACT_AT = 4096  # heap entries before cancelled timers are swept out

# poll(2) bits, Linux i386 values
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLRDHUP = 0x1, 0x2, 0x4, 0x8, 0x10, 0x2000


class Link(Protocol):
    """The NIC below: hands a whole Ethernet frame (no FCS) to the wire. It may also have
    `receive_burst_frames`: how many full frames its receive buffer holds (TCP caps its window
    to that many segments)."""

    mac: bytes

    def send(self, frame: bytes) -> None: ...


class Clock(Protocol):
    def now_ns(self) -> int: ...


class Timer(Protocol):
    def call_at(self, deadline_ns: int, work: Callable[[], None]) -> None: ...


class Stack(Protocol):
    """What the protocol modules use of the NetStack that owns them (declared here, so that no
    module imports the stack that imports it). The five protocol handles are typed Any for the
    same reason: each module reaches its siblings only through the stack."""

    mac: bytes
    addr: int
    mtu: int
    window_cap: int | None
    in_burst: bool  # between the driver's begin_burst and end_burst
    counters: Counters
    timers: Timers
    rng: random.Random
    icmp: Any
    igmp: Any
    udp: Any
    tcp: Any
    dns: Any

    def now(self) -> int: ...
    def log(self, line: str) -> None: ...
    def defer_notify(self, sock: Any) -> None: ...
    def open(self, kind: str) -> Any: ...
    def configure(self, addr: int, prefix_len: int, gateway: int | None = None) -> None: ...
    def unconfigure(self) -> None: ...
    def is_broadcast(self, dst: int) -> bool: ...
    def source_for(self, dst: int) -> int: ...
    def ip_output(
        self,
        dst: int,
        proto: int,
        payload: bytes,
        *,
        src: int | None = None,
        ttl: int = ...,
        tos: int = 0,
        options: bytes = b"",
        df: bool = False,
    ) -> None: ...


class SocketError(Exception):
    """A socket call failed with a Linux errno (the syscall layer returns -errno)."""

    def __init__(self, errno_value: int, why: str = "") -> None:
        super().__init__(errno_value, why)
        self.errno = errno_value
        self.why = why


class TimerHandle:
    """One pending deadline; `cancel` makes it a no-op when it comes due."""

    __slots__ = ("deadline", "fn", "cancelled")

    def __init__(self, deadline: int, fn: Callable[[], None]) -> None:
        self.deadline, self.fn, self.cancelled = deadline, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """Cancellable timers multiplexed onto the kernel's one-way `call_at`.

    The kernel is asked for a wake-up only when a new deadline is earlier than every wake-up
    already requested, so a busy connection re-arming its RTO costs a heap push, not a kernel
    timer. `run_due` may also be called by a host loop directly (tests, benchmarks)."""

    def __init__(
        self, clock: Clock, timer: Timer, on_error: Callable[[BaseException], None]
    ) -> None:
        self._clock, self._timer, self._on_error = clock, timer, on_error
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._order = itertools.count()
        self._requested: set[int] = set()

    def at(self, deadline: int, fn: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(deadline, fn)
        if len(self._heap) >= COMPACT_AT:  # re-armed timers leave cancelled entries behind
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
        heapq.heappush(self._heap, (deadline, next(self._order), handle))
        if not self._requested or deadline < min(self._requested):
            self._requested.add(deadline)
            self._timer.call_at(deadline, lambda: self._wake(deadline))
        return handle

    def after(self, delay: int, fn: Callable[[], None]) -> TimerHandle:
        return self.at(self._clock.now_ns() + delay, fn)

    def next_deadline(self) -> int | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def _wake(self, deadline: int) -> None:
        self._requested.discard(deadline)
        self.run_due()

    def run_due(self) -> None:
        now = self._clock.now_ns()
        while self._heap and self._heap[0][0] <= now:
            _, _, handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            handle.cancelled = True
            try:
                handle.fn()
            except Exception as exc:  # a broken timer is logged, the stack goes on
                self._on_error(exc)
        nxt = self.next_deadline()
        if nxt is not None and not any(r <= nxt for r in self._requested):
            self._requested.add(nxt)
            self._timer.call_at(nxt, lambda: self._wake(nxt))
