"""What sits at the other end of the NE2000's cable: the host-side network backends.

One call wires a machine's NIC channels to a backend chosen by a `--net` spec:

    link = hostnet.attach(machine, NetOptions(spec="user", hostfwd=[...], pcap="out.pcap"))

  user                    built-in NAT (hostnet/user.py), the default; no root needed
  tap:NAME                a Linux TAP device (hostnet/tap.py)
  socket:mcast=G:P[,...]  a hub between machines on this host (hostnet/hub.py)
  socket:udp=H:P,localaddr=H:P   a cable between two machines
  none                    a cable to nowhere

How the backend is driven (no thread ever touches the guest or the NIC):
  - `Link.poll()` runs in the machine loop: whenever the guest idles (`feed_when_idle`), and,
    in real-time runs, as soon as a host descriptor is readable or a backend timer is due: a
    small waker thread sleeps in select() on the backend's descriptors until the next timer
    and only asks the loop to poll (`machine.post`); it never reads a socket itself. What a
    guest frame changes (a timer armed sooner) reaches the thread when the guest idles, or
    within WAKER_STALE_S while it keeps running (see Waker).
  - In deterministic runs there is no waker: host frames enter only at idle points, each at the
    virtual time of the poll, and every frame passes the Link's taps with that time, so a
    recorder tap can log them for a later replay.
Bad specs raise ValueError (or TapError) with one line for the user.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tradekernel.emu.bus import Channels
from tradekernel.emu.clock import Clock
from tradekernel.hostnet.hub import SocketBackend
from tradekernel.hostnet.link import Backend, Link, NoBackend
from tradekernel.hostnet.pcap import PcapWriter
from tradekernel.hostnet.tap import TapBackend, TapError
from tradekernel.hostnet.user import UserNetwork

# Deterministic pcap timestamps start here (2026-01-02 09:30:00 UTC, the deterministic epoch
# of emu/pc.py), so a deterministic run writes the same capture byte for byte.
DETERMINISTIC_PCAP_EPOCH_NS = 1_767_346_200 * 1_000_000_000
WAKER_IDLE_S = 0.5  # the waker re-reads the descriptor set at least this often
# ... and at least this often while guest frames come (a timer they armed sooner than the
# waker's wait is then late by at most this much if the guest never idles; at an idle point
# the waker is told at once)
WAKER_STALE_S = 0.005
WAKER_WAIT_FOR_POLL_S = 1.0
# In real-time runs the waker covers host input, so the Link polls the backend after a guest
# frame only if it has not polled for this long (in deterministic runs: after every frame)
POLL_AFTER_SEND_S = 0.0005

__all__ = ["NetOptions", "attach", "make_backend", "Link", "TapError"]


@dataclass
class NetOptions:
    spec: str = "user"
    hostfwd: list[str] = field(default_factory=list)
    pcap: str | None = None
    channel: str = "net0"


class MachineLike(Protocol):
    """What attach() needs of emu.machine.Machine."""

    channels: Channels
    clock: Clock

    def feed_when_idle(self, feeder: Callable[[], bool]) -> None: ...

    def post(self, action: Callable[[], None]) -> None: ...


def make_backend(
    spec: str, hostfwd: list[str] | None = None, deterministic: bool = False
) -> Backend:
    kind, _, rest = spec.partition(":")
    if hostfwd and kind != "user":
        raise ValueError("--hostfwd works only with --net user")
    if kind == "user" and not rest:
        return UserNetwork(hostfwd or [], seed=0 if deterministic else None)
    if kind == "tap":
        return TapBackend(rest)
    if kind == "socket":
        return SocketBackend(rest)
    if kind == "none" and not rest:
        return NoBackend()
    raise ValueError(f"--net {spec!r}: expected user, tap:NAME, socket:OPTIONS or none")


def attach(machine: MachineLike, options: NetOptions, deterministic: bool = False) -> Link:
    """Build the backend, connect it to the NIC's channels and arrange for it to be polled."""
    backend = make_backend(options.spec, options.hostfwd, deterministic)
    link = Link(machine.channels, backend, machine.clock.now_ns, options.channel)
    if options.pcap:
        epoch = (
            DETERMINISTIC_PCAP_EPOCH_NS
            if deterministic
            else time.time_ns() - machine.clock.now_ns()
        )
        try:
            writer = PcapWriter(options.pcap, epoch)
        except ValueError:
            backend.close()
            raise
        link.add_tap(writer)
        link.closers.append(writer.close)
    machine.feed_when_idle(link.poll)
    if not deterministic and not isinstance(backend, NoBackend):
        waker = Waker(link, machine.post)
        link.on_guest_frame(waker.refresh)
        machine.feed_when_idle(waker.settle)
        link.on_unthrottle(waker.wake)
        link.poll_after_send_s = POLL_AFTER_SEND_S
        link.closers.append(waker.close)
        waker.start()
    return link


class Waker:
    """Sleeps in select() on the backend's descriptors and asks the machine loop to poll.
    It reads nothing itself; after each request it waits until the poll has run. While the
    Link is throttled it watches none of them (the Link refreshes it when that ends).

    Guest frames can arm backend timers sooner than the thread's wait ends. Looking after each
    frame (a backend scan, and a pipe write and thread switch whenever a timer moved earlier)
    cost more than the frame's own NAT work, so a frame only marks the thread's view stale:
    `settle()`, at the guest's next idle point (before the loop sleeps), makes the exact check
    and wakes the thread if it must; while frames keep coming the thread re-reads the backend
    at least every WAKER_STALE_S by itself. A wait that ends after the Link polled the backend
    at or past its end (the guest's own sends poll it) asks for no extra poll."""

    def __init__(self, link: Link, post: Callable[[Callable[[], None]], None]) -> None:
        self._link = link
        self._post = post
        self._polled = threading.Event()
        self._closed = False
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_w, False)
        # What the thread waits on now: refresh() only wakes it when that has to change
        self._watching: list[int] | None = None
        self._until = 0.0  # time.monotonic() the current wait ends at
        self._stale = False  # guest frames since the thread last read the backend
        self._thread = threading.Thread(target=self._run, name="hostnet-waker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def refresh(self) -> None:
        """After a guest frame: the backend's timers or descriptors may have changed. The
        first frame since the thread last looked cuts a long wait short to WAKER_STALE_S;
        the rest cost one attribute test."""
        if self._stale:
            return
        self._stale = True
        if self._watching is None or self._until - time.monotonic() > WAKER_STALE_S:
            self.wake()

    def settle(self) -> bool:
        """At an idle point of the guest (the machine loop is about to sleep): if frames came
        since the thread looked, check now that its wait covers the backend's descriptors and
        next timer, and wake it if not. Gives the guest nothing (False)."""
        if self._stale:
            self._check()
        return False

    def _check(self) -> None:
        link = self._link
        if self._watching is not None and not link.throttled:
            timeout = link.backend.next_timeout()
            if link.backend.filenos() == self._watching and (
                timeout is None or time.monotonic() + timeout >= self._until
            ):
                return
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self._pipe_w, b"!")
        except OSError:
            pass

    def _poll_now(self) -> None:
        try:
            self._link.poll()
        finally:
            self._polled.set()

    def _run(self) -> None:
        while not self._closed:
            try:
                stale, self._stale = self._stale, False  # before reading: later frames count
                if self._link.throttled:  # frames wait for the guest: more can wait on the host
                    fds, timeout = [], None
                else:
                    fds = self._link.backend.filenos()
                    timeout = self._link.backend.next_timeout()
                wait = WAKER_IDLE_S if timeout is None else min(WAKER_IDLE_S, timeout)
                if stale:
                    wait = min(wait, WAKER_STALE_S)
                self._watching = None if self._link.throttled else fds
                self._until = time.monotonic() + wait
                ready, _, _ = select.select([self._pipe_r, *fds], [], [], wait)
            except (OSError, ValueError, RuntimeError):  # RuntimeError: a backend's table
                if self._closed:  # changed under the scan (it runs in the machine thread)
                    return
                time.sleep(0.01)  # a descriptor closed under us: read the set again
                continue
            if self._pipe_r in ready:
                try:
                    os.read(self._pipe_r, 4096)
                except OSError:
                    return
                ready = [fd for fd in ready if fd != self._pipe_r]
            expired = (timeout is not None and timeout <= wait and not ready
                       and self._link.last_poll < self._until)
            if (ready or expired) and not self._closed:
                self._polled.clear()
                self._post(self._poll_now)
                self._polled.wait(WAKER_WAIT_FOR_POLL_S)

    def close(self) -> None:
        self._closed = True
        self.wake()
        self._thread.join(timeout=2)
        for fd in (self._pipe_r, self._pipe_w):
            try:
                os.close(fd)
            except OSError:
                pass
