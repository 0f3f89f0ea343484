"""Linux's own TCP/IP as the stack's peer: a TAP device whose kernel side is moved into a fresh
network namespace, while the test keeps the TAP's file descriptor and runs our stack on it with
the real monotonic clock and a small event loop. Every frame both ways is written to a pcap
for tshark. Tools missing -> the test fails with "run setup.sh", never skips."""

from __future__ import annotations

import fcntl
import heapq
import itertools
import os
import select
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.peers import peer
from tradekernel.kernel.net import NetStack

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
LINUX_IP, STACK_IP, PREFIX = "10.77.0.1", "10.77.0.2", 24
STACK_MAC = bytes([0x52, 0x54, 0x00, 0x77, 0x00, 0x02])


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=30)


class RealClock:
    """Monotonic time and a timer heap the loop below drives (the kernel's call_at shape)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, deadline_ns: int, work: Callable[[], None]) -> None:
        heapq.heappush(self.events, (deadline_ns, next(self._order), work))

    def run_due(self) -> None:
        now = self.now_ns()
        while self.events and self.events[0][0] <= now:
            heapq.heappop(self.events)[2]()


class Pcap:
    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def write(self, frame: bytes) -> None:
        t = time.time_ns()            # the capture file's timestamps only, never the stack's
        self.file.write(struct.pack("<IIII", t // 10**9, t // 1000 % 10**6, len(frame),
                                    len(frame)) + frame)

    def close(self) -> None:
        self.file.close()


class Loss:
    """Loses every `every`-th full-size frame in one direction (0: none), like a bad cable."""

    def __init__(self, every: int) -> None:
        self.every, self.seen, self.lost = every, 0, 0

    def drops(self, frame: bytes) -> bool:
        if not self.every or len(frame) < 1000:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.lost += 1
        return True


class TapLink:
    """Our end of the TAP: the stack's NIC."""

    def __init__(self, fd: int, pcap: Pcap, loss: Loss) -> None:
        self.fd, self.pcap, self.mac, self.loss = fd, pcap, STACK_MAC, loss

    def send(self, frame: bytes) -> None:
        if self.loss.drops(frame):
            return
        self.pcap.write(frame)
        os.write(self.fd, frame)


class LinuxPeer:
    """A namespace `ns` holding the TAP `dev` at LINUX_IP/24, and our stack on the fd."""

    def __init__(self, tmp: Path, tag: str, lose_every: int = 0) -> None:
        for tool in ("ip", "tshark", "ping"):
            peer(tool)
        suffix = f"{os.getpid() % 100000}{tag}"
        self.ns, self.dev = f"tkn{suffix}", f"tkt{suffix}"[:15]
        self.pcap_path = tmp / "session.pcap"
        self.pcap = Pcap(self.pcap_path)
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", self.dev.encode(),
                                                    IFF_TAP | IFF_NO_PI))
        sh("ip", "netns", "add", self.ns)
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            sh("ip", "link", "set", self.dev, "netns", self.ns)
            self.ip("link", "set", "lo", "up")
            self.ip("addr", "add", f"{LINUX_IP}/{PREFIX}", "dev", self.dev)
            self.ip("link", "set", self.dev, "up")
        except BaseException:
            self.close()
            raise
        self.clock = RealClock()
        self.loss_out, self.loss_in = Loss(lose_every), Loss(lose_every)
        self.stack = NetStack(TapLink(self.fd, self.pcap, self.loss_out), self.clock,
                              self.clock, seed=7)

    def ip(self, *args: str) -> str:
        return sh("ip", "-n", self.ns, *args).stdout

    def spawn(self, *argv: str, **kw: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        self.procs.append(proc)
        return proc

    def run(self, until: Callable[[], bool], timeout: float, what: str) -> None:
        """Drive the stack (frames in, timers) until `until()` or fail after `timeout` s."""
        end = time.monotonic() + timeout
        while not until():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            wait = 0.05
            if self.clock.events:
                wait = max(0.0, min(wait, (self.clock.events[0][0] - time.monotonic_ns()) / 1e9))
            ready, _, _ = select.select([self.fd], [], [], wait)
            if ready:
                for _ in range(256):
                    try:
                        frame = os.read(self.fd, 65536)
                    except BlockingIOError:
                        break
                    if self.loss_in.drops(frame):
                        continue
                    self.pcap.write(frame)
                    self.stack.receive(frame)
            self.clock.run_due()

    def wait_proc(self, proc: subprocess.Popen[bytes], timeout: float, what: str
                  ) -> tuple[bytes, bytes]:
        self.run(lambda: proc.poll() is not None, timeout, what)
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, f"{what}: exit {proc.returncode}: {err.decode()[-500:]}"
        return out, err

    def tshark(self, display_filter: str) -> int:
        """How many frames of the session's pcap match a Wireshark display filter."""
        self.pcap.file.flush()
        out = subprocess.run(["tshark", "-n", "-r", str(self.pcap_path), "-Y", display_filter],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return len([line for line in out.stdout.splitlines() if line.strip()])

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        os.close(self.fd)
        self.pcap.close()
        sh("ip", "netns", "del", self.ns, check=False)
