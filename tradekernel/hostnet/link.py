"""One cable between the NIC's host channels and a backend: whole Ethernet frames both ways.

Contract:
  - The NIC (devices/ne2000.py) transmits on f"{channel}-send"; the Link hands each frame to the
    backend at once (`Backend.send`). Frames for the guest reach the NIC by the Link sending them
    on f"{channel}-receive".
  - A backend never calls into the NIC from another thread. Frames from the host side are picked
    up only by `Link.poll()`, which the machine's run loop calls (when the guest idles, and in
    real-time runs as soon as a host descriptor is ready; hostnet.attach() arranges both), and
    right after each frame the guest sends (so a guest that polls the NIC without ever idling
    still sees what arrived by its next transmit; in real-time runs, where the waker already
    covers host input, only if the last poll is `poll_after_send_s` old). A backend may also
    answer synchronously from inside `send` (the user-mode NAT answers ARP, DHCP and ping that
    way): that happens in the machine loop too, while the guest's driver is writing the
    transmit command.
  - Every frame both ways passes the taps in order with the virtual time it crossed the cable:
    `tap(virtual_ns, direction, frame)` with direction "out" (guest to host) or "in". The pcap
    writer is one tap. Input listeners (`on_input`) are told of every frame a backend hands
    the Link, before anything is done with it: that is where the outside enters the machine,
    and everything after (waiting, dropping, delivery inside a port write) is deterministic, so
    a recorder (emu/record.py) logs frames there and a replay hands them to a Link again, from
    a backend put in with `replace_backend`, at the same points.
  - Back-pressure: the NIC says on f"{channel}-ready" when its receive ring is full and when it
    has room again (devices/ne2000.py). Frames for the guest wait here, in order, while it is
    full and go on as soon as the guest's driver frees ring space (inside that port write, so
    deterministic runs stay deterministic); they are never dropped for want of ring space. At
    QUEUE_HIGH waiting frames the Link stops asking the backend for more (`throttled`: poll()
    does not call the backend and the waker stops watching its descriptors), so the host side
    waits in its own buffers (the kernel's socket and TAP queues, the NAT's TCP windows) until
    the queue is down to QUEUE_LOW; a backend that answers from inside `send` can still add
    frames, up to QUEUE_MAX, past which they are dropped and counted (`dropped_in`).
  - Oversized frames from a backend are dropped and counted (`dropped_in`), never passed on.
  - Containment: an exception out of a backend (a bug, or a host error it did not expect) is
    counted in `backend_errors` and reported as one line on the "log" channel; the frame is
    lost, as on a wire, and the machine runs on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from tradekernel.emu.bus import Channels

MAX_FRAME = 1518  # the longest Ethernet frame without FCS, allowing an 802.1Q tag
MIN_FRAME = 14  # an Ethernet header
QUEUE_HIGH = 64  # frames waiting for the NIC before the backend is no longer polled
QUEUE_LOW = 16  # ... and polled again once the queue is down to this
QUEUE_MAX = 4096  # frames waiting at most (a backend answering inside send()); then dropped

Deliver = Callable[[bytes], None]
Tap = Callable[[int, str, bytes], None]


class Backend(Protocol):
    """What is at the far end of the cable (user NAT, TAP, socket hub, nothing)."""

    name: str

    def start(self, deliver: Deliver) -> None:
        """Remember where frames for the guest go; called once by the Link."""
        ...

    def send(self, frame: bytes) -> None:
        """A frame from the guest onto the wire."""
        ...

    def poll(self) -> None:
        """Non-blocking: read what the host side has and `deliver` it; run due timers."""
        ...

    def filenos(self) -> list[int]:
        """Host file descriptors whose readability means `poll()` has work."""
        ...

    def next_timeout(self) -> float | None:
        """Seconds (host time) until the backend's own timers need a `poll()`; None if none."""
        ...

    def close(self) -> None: ...


class Link:
    def __init__(
        self,
        channels: Channels,
        backend: Backend,
        now_ns: Callable[[], int],
        channel: str = "net0",
    ) -> None:
        self.backend = backend
        self.channel = channel
        self._channels = channels
        self._receive_channel = f"{channel}-receive"
        self._now_ns = now_ns
        self._waiting: deque[bytes] = deque()  # frames for the guest while the NIC is full
        self._nic_ready = True
        self.throttled = False
        self._on_unthrottle: list[Callable[[], None]] = []
        self._taps: list[Tap] = []
        self._inputs: list[Deliver] = []
        self._on_guest_frame: list[Callable[[], None]] = []
        self.closers: list[Callable[[], None]] = []  # run by close() (pcap file, waker thread)
        self.frames_out = self.frames_in = self.dropped_in = self.backend_errors = 0
        self.delivered_since_poll = 0
        # After a guest frame the backend is polled (answers reach a guest that never idles)
        # unless it was polled less than this many seconds ago (host time); 0: always
        self.poll_after_send_s = 0.0
        self.last_poll = 0.0  # time.monotonic() the last backend poll began (the waker reads it)
        channels.listen(f"{channel}-send", self._from_guest)
        channels.listen(f"{channel}-ready", self._nic_ready_changed)
        backend.start(self._to_guest)

    def add_tap(self, tap: Tap) -> None:
        self._taps.append(tap)

    def on_input(self, listener: Deliver) -> None:
        """Told of each frame the backend hands the Link for the guest, as it is handed."""
        self._inputs.append(listener)

    def replace_backend(self, backend: Backend) -> Backend:
        """Put `backend` at the far end of the cable (a replay's) and start it; returns the one
        it replaces, for the caller to close (until then it can still hand frames in)."""
        old, self.backend = self.backend, backend
        backend.start(self._to_guest)
        return old

    def on_guest_frame(self, listener: Callable[[], None]) -> None:
        """Told after each guest frame (the realtime waker refreshes its descriptors)."""
        self._on_guest_frame.append(listener)

    def on_unthrottle(self, listener: Callable[[], None]) -> None:
        """Told when the waiting queue has drained to QUEUE_LOW (the waker watches the
        backend's descriptors again)."""
        self._on_unthrottle.append(listener)

    @property
    def waiting(self) -> int:
        """Frames for the guest waiting for room in the NIC's ring."""
        return len(self._waiting)

    def held(self) -> tuple[list[bytes], bool]:
        """What a snapshot keeps: the frames held for the guest and the NIC's last word on
        room."""
        return list(self._waiting), self._nic_ready

    def restore_held(self, frames: list[bytes], nic_ready: bool) -> None:
        """Put back what `held` gave (frames already checked against QUEUE_MAX and the frame
        bounds by the caller)."""
        self._waiting.clear()
        self._waiting.extend(frames)
        self._nic_ready = nic_ready
        self.throttled = len(frames) >= QUEUE_HIGH

    def _from_guest(self, payload: object) -> None:
        frame = bytes(payload)  # type: ignore[call-overload]
        self.frames_out += 1
        if self._taps:
            now = self._now_ns()
            for tap in self._taps:
                tap(now, "out", frame)
        try:
            self.backend.send(frame)
            if not self.throttled and (
                not self.poll_after_send_s
                or time.monotonic() - self.last_poll >= self.poll_after_send_s
            ):
                self.last_poll = time.monotonic()
                self.backend.poll()  # answers already waiting reach a guest that never idles
        except Exception as error:  # noqa: BLE001 - contained: the frame is lost, not the machine
            self._contain("send", error)
        for listener in self._on_guest_frame:
            listener()

    def _to_guest(self, frame: bytes) -> None:
        for listener in self._inputs:
            listener(frame)
        if not MIN_FRAME <= len(frame) <= MAX_FRAME:
            self.dropped_in += 1
            return
        if self._nic_ready and not self._waiting:
            self._deliver(frame)
            return
        if len(self._waiting) >= QUEUE_MAX:
            self.dropped_in += 1
            return
        self._waiting.append(frame)
        if len(self._waiting) >= QUEUE_HIGH:
            self.throttled = True

    def _deliver(self, frame: bytes) -> None:
        self.frames_in += 1
        self.delivered_since_poll += 1
        if self._taps:
            now = self._now_ns()
            for tap in self._taps:
                tap(now, "in", frame)
        self._channels.send(self._receive_channel, frame)

    def _nic_ready_changed(self, ready: object) -> None:
        self._nic_ready = bool(ready)
        self._flush()

    def _flush(self) -> None:
        """Frames that waited go on while the NIC has room (it says when it has none)."""
        waiting = self._waiting
        while waiting and self._nic_ready:
            self._deliver(waiting.popleft())
        if self.throttled and len(waiting) <= QUEUE_LOW:
            self.throttled = False
            for listener in self._on_unthrottle:
                listener()

    def poll(self) -> bool:
        """Pick up host-side frames (unless throttled); True if any reached the NIC since the
        last poll."""
        self._flush()
        if not self.throttled:
            self.last_poll = time.monotonic()
            try:
                self.backend.poll()
            except Exception as error:  # noqa: BLE001 - contained as in _from_guest
                self._contain("poll", error)
        delivered, self.delivered_since_poll = self.delivered_since_poll, 0
        return delivered > 0

    def _contain(self, where: str, error: Exception) -> None:
        self.backend_errors += 1
        self._channels.send(
            "log",
            f"hostnet: {self.backend.name} backend failed in {where}: "
            f"{type(error).__name__}: {error}",
        )

    def close(self) -> None:
        for closer in self.closers:
            closer()
        self.closers.clear()
        self.backend.close()


class NoBackend:
    """`--net none`: a cable to nowhere. Frames the guest sends are counted and dropped."""

    name = "none"

    def __init__(self) -> None:
        self.sent = 0

    def start(self, deliver: Deliver) -> None:
        pass

    def send(self, frame: bytes) -> None:
        self.sent += 1

    def poll(self) -> None:
        pass

    def filenos(self) -> list[int]:
        return []

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass
