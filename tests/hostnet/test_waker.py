"""The real-time waker (hostnet.Waker) against a scripted backend: a timer a guest frame arms
while the thread sleeps its longest wait is still served on time when the guest then goes
quiet (idling or not), a burst of frames costs the thread at most a wake-up or two, and a
backend whose table changes under the thread's scan does not stop it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tradekernel.hostnet import WAKER_IDLE_S, WAKER_STALE_S, Waker

TIMER_S = 0.03
# A poll this long after the timer's due time would have been missed: the thread only
# looked again at the end of its longest wait.
LATE_S = WAKER_IDLE_S / 2


class _Backend:
    def __init__(self) -> None:
        self.due: float | None = None
        self.fail_next = False

    def filenos(self) -> list[int]:
        return []

    def next_timeout(self) -> float | None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("dictionary changed size during iteration")
        return None if self.due is None else max(0.0, self.due - time.monotonic())


class _Link:
    def __init__(self) -> None:
        self.backend = _Backend()
        self.throttled = False
        self.last_poll = 0.0
        self.polls: list[float] = []

    def poll(self) -> bool:
        now = time.monotonic()
        self.last_poll = now
        self.polls.append(now)
        backend = self.backend
        if backend.due is not None and now >= backend.due:
            backend.due = None  # the timer ran
        return False


def _waker() -> tuple[Waker, _Link, list[int]]:
    link = _Link()
    done = threading.Event()

    def post(action: Callable[[], None]) -> None:  # the machine loop, at once
        action()
        done.set()

    waker = Waker(link, post)  # type: ignore[arg-type]
    wakes: list[int] = []
    wake = waker.wake
    waker.wake = lambda: (wakes.append(1), wake())[-1]  # type: ignore[method-assign]
    waker.start()
    deadline = time.monotonic() + 2
    while waker._watching is None and time.monotonic() < deadline:  # in its long wait
        time.sleep(0.005)
    return waker, link, wakes


def _frames_arm_a_timer(waker: Waker, link: _Link, count: int = 50) -> float:
    due = time.monotonic() + TIMER_S
    for _ in range(count):
        link.backend.due = due
        waker.refresh()
    return due


def _first_poll_after(link: _Link, due: float) -> float:
    end = due + 2 * WAKER_IDLE_S
    while time.monotonic() < end:
        polls = [t for t in link.polls if t >= due]
        if polls:
            return polls[0] - due
        time.sleep(0.002)
    raise AssertionError("no poll at all")


def test_a_timer_armed_by_guest_frames_is_served_when_the_guest_then_idles() -> None:
    waker, link, _ = _waker()
    try:
        due = _frames_arm_a_timer(waker, link)
        waker.settle()  # the guest idles: the machine loop is about to sleep
        assert _first_poll_after(link, due) < LATE_S
    finally:
        waker.close()


def test_a_timer_armed_by_guest_frames_is_served_when_the_guest_runs_on_without_idling() -> None:
    waker, link, _ = _waker()
    try:
        due = _frames_arm_a_timer(waker, link)
        assert _first_poll_after(link, due) < LATE_S
    finally:
        waker.close()


def test_a_timer_armed_after_the_thread_looked_is_still_seen() -> None:
    """The first frame wakes the thread (which finds no timer); a later frame of the same run
    arms one: the thread's short wait while frames come picks it up."""
    waker, link, _ = _waker()
    try:
        waker.refresh()
        time.sleep(WAKER_STALE_S / 2)
        due = _frames_arm_a_timer(waker, link)
        assert _first_poll_after(link, due) < LATE_S
    finally:
        waker.close()


def test_a_burst_of_frames_wakes_the_thread_at_most_once() -> None:
    waker, link, wakes = _waker()
    try:
        for _ in range(2000):
            waker.refresh()
        assert len(wakes) <= 1
        waker.settle()  # nothing to do: no timer, the thread's view covers the descriptors
        assert len(wakes) <= 2
    finally:
        waker.close()


def test_a_backend_table_changing_under_the_scan_does_not_stop_the_thread() -> None:
    waker, link, _ = _waker()
    try:
        link.backend.fail_next = True
        waker.wake()
        time.sleep(0.05)
        due = _frames_arm_a_timer(waker, link)
        waker.settle()
        assert _first_poll_after(link, due) < LATE_S
    finally:
        waker.close()


def test_frames_that_keep_coming_do_not_wake_the_thread_each_time_it_has_looked() -> None:
    """While frames come the thread re-reads the backend every WAKER_STALE_S by itself, so
    a frame after each of its looks need not wake it with a pipe write."""
    waker, _, wakes = _waker()
    try:
        end = time.monotonic() + 20 * WAKER_STALE_S
        while time.monotonic() < end:
            waker.refresh()
            time.sleep(WAKER_STALE_S / 20)
        assert len(wakes) <= 3
    finally:
        waker.close()
