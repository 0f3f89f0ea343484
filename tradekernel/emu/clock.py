"""Virtual time and the timers devices and the kernel schedule on it.

Contract: `now_ns()` is virtual nanoseconds since power-on; it never goes backwards. Timers fire
from the machine's run loop (never from another thread), in deadline order, once `now_ns()` has
reached their deadline. The machine runs the CPU no further than `next_deadline()`, and an idle
CPU jumps straight to it: that is what makes the machine tickless.

A timer set earlier than every other (a device programmed in the middle of a CPU slice) is
reported to the `on_earlier` listener, so the machine can end its slice in time.

Where the time comes from is the machine's business (wall clock, or instructions retired in
deterministic mode); it sets it through `advance_to`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from heapq import heappop, heappush

NS_PER_S = 1_000_000_000


class Timer:
    """A scheduled callback; `cancel()` is O(1) (the heap entry is skipped when reached)."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self) -> None:
        self._now = 0
        self._heap: list[tuple[int, int, Timer]] = []
        self._order = itertools.count()
        self._sampler: Callable[[], int] | None = None
        self._on_earlier: Callable[[int], None] = lambda _deadline: None

    def on_earlier(self, listener: Callable[[int], None]) -> None:
        """`listener(deadline)` whenever a new timer becomes the earliest."""
        self._on_earlier = listener

    def set_sampler(self, sampler: Callable[[], int] | None) -> None:
        """A function giving the exact time between run-loop updates (e.g. mid CPU slice). It
        must never go backwards nor fall behind what was given to `advance_to`: `now_ns` is
        then the sampler itself, one call on every device access that reads the time (a PIT
        one-shot re-armed per interrupt reads it twice). Set before devices take `now_ns`."""
        self._sampler = sampler
        if sampler is not None:
            self.now_ns = sampler  # type: ignore[method-assign]
        else:
            self.__dict__.pop("now_ns", None)

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ns: int) -> None:
        if ns > self._now:
            self._now = ns

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> Timer:
        timer = Timer.__new__(Timer)  # Timer(deadline_ns, callback) without its __init__ call
        timer.deadline, timer.callback, timer.cancelled = deadline_ns, callback, False
        heap = self._heap
        earliest = not heap or deadline_ns < heap[0][0]
        heappush(heap, (deadline_ns, next(self._order), timer))
        if earliest:
            self._on_earlier(deadline_ns)
        return timer

    def call_after(self, delay_ns: int, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.now_ns() + max(0, delay_ns), callback)

    def next_deadline(self) -> int | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heappop(heap)
        return heap[0][0] if heap else None

    def run_due(self) -> int:
        """Fire every timer whose deadline has passed (time brought up to the sampler's first,
        as `now_ns` does: the run loop's turn makes one call); returns how many fired."""
        fired = 0
        heap = self._heap
        now = self._now
        sampler = self._sampler
        if sampler is not None:
            sampled = sampler()
            if sampled > now:
                self._now = now = sampled
        while heap and heap[0][0] <= now:
            _, _, timer = heappop(heap)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()
                fired += 1
        return fired
