"""`--net tap:NAME`: the guest's cable plugged into a Linux TAP device, a real Ethernet segment.

Opens /dev/net/tun and attaches to (or creates) the TAP interface NAME with IFF_TAP|IFF_NO_PI,
so every read is one whole Ethernet frame and every write sends one. The descriptor is
non-blocking; `poll()` reads until the kernel has nothing more (at most MAX_FRAMES_PER_POLL per
call, so a flood cannot starve the guest's CPU). Configuring the interface (addresses, up,
bridges, namespaces) is the host's business.

Without the rights (root or CAP_NET_ADMIN, or a persistent TAP made for this user) `TapError`
carries one line saying what is needed; callers print it instead of a traceback.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from tradekernel.hostnet.link import MAX_FRAME, Deliver

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
MAX_FRAMES_PER_POLL = 256
READ_SIZE = 65536  # a TAP with offloads may hand over more than a frame: read it whole


class TapError(ValueError):
    """The TAP device could not be used; the message is the one line to show the user (a
    ValueError, like every other bad --net setting, so the command line reports it the same)."""


class TapBackend:
    name = "tap"

    def __init__(self, ifname: str) -> None:
        if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname or " " in ifname:
            raise TapError(f"tap:{ifname}: not a usable interface name (1-15 characters)")
        self.ifname = ifname
        try:
            self._fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise TapError(
                "tap: /dev/net/tun is missing (load the tun module: modprobe tun)"
            ) from None
        except PermissionError:
            raise TapError(
                f"tap:{ifname}: no permission to open /dev/net/tun (run as root, or give "
                "this user access to it and a persistent TAP: ip tuntap add "
                f"{ifname} mode tap user $USER)"
            ) from None
        request = struct.pack(f"{IFNAMSIZ}sH", ifname.encode(), IFF_TAP | IFF_NO_PI)
        try:
            fcntl.ioctl(self._fd, TUNSETIFF, request)
        except OSError as error:
            os.close(self._fd)
            if error.errno in (errno.EPERM, errno.EACCES):
                raise TapError(
                    f"tap:{ifname}: creating or attaching the TAP needs root or CAP_NET_ADMIN "
                    f"(or make it for this user first: sudo ip tuntap add {ifname} mode tap "
                    "user $USER)"
                ) from None
            if error.errno == errno.EBUSY:
                raise TapError(f"tap:{ifname}: the interface is already in use") from None
            raise TapError(f"tap:{ifname}: TUNSETIFF failed: {error.strerror}") from None
        self._deliver: Deliver | None = None
        self.sent = self.received = self.send_errors = 0

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def send(self, frame: bytes) -> None:
        try:
            os.write(self._fd, frame)
            self.sent += 1
        except OSError:
            self.send_errors += 1  # interface down or queue full: the frame is lost, as on a wire

    def poll(self) -> None:
        for _ in range(MAX_FRAMES_PER_POLL):
            try:
                frame = os.read(self._fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # interface gone (e.g. deleted): nothing more will come
            if not frame:
                return
            self.received += 1
            if len(frame) <= MAX_FRAME and self._deliver is not None:
                self._deliver(frame)

    def filenos(self) -> list[int]:
        return [self._fd]

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
