"""Device files: the console terminal, and (mounted at /dev) the nodes that name devices.

`TtyFile` is the console tty as an open file (descriptors 0, 1 and 2 of every program): a write
goes to the screen and its serial mirror (drivers/console.py), a read takes a line through the
process layer's terminal control, which alone knows the foreground job, how a background reader
is stopped and how a read sleeps; it plugs in as a `TerminalReader`. ioctl answers the tty's
basics: its settings (canonical, echo), its size, the bytes a read would get at once.

Imports: fs.vfs, drivers (the console) and mm (user memory).
"""

from __future__ import annotations

import errno as E
import struct
from typing import Protocol

from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console
from tradekernel.kernel.fs.vfs import S_IFCHR, Caller, FileStat, OpenFile
from tradekernel.kernel.mm.paging import copy_to_user

TTY_DEVICE = (4 << 8) | 1  # /dev/tty1's major 4, minor 1
TCGETS, TIOCGWINSZ, FIONREAD = 0x5401, 0x5413, 0x541B
# struct termios of the console tty: ICRNL|IXON, OPOST|ONLCR, B38400|CS8|CREAD,
# ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN; c_cc: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1.
TTY_TERMIOS = struct.pack("<IIIIB19s", 0o2400, 0o5, 0o277, 0o105073, 0,
                          bytes([3, 0x1C, 0x7F, 0x15, 4, 0, 1]).ljust(19, b"\0"))  # fmt: skip


class TerminalReader(Protocol):
    """The process layer's side of a terminal read."""

    def tty_read(self, process: Caller, buffer: int, count: int) -> int | None:
        """read(2) of the terminal: bytes read, -errno, or None (the reader sleeps)."""
        ...

    def tty_pending(self, process: Caller) -> int:
        """Bytes of an earlier line `process` has yet to read (FIONREAD)."""
        ...


class TtyFile(OpenFile):
    """The console terminal."""

    def __init__(self, console: Console, terminal: TerminalReader) -> None:
        self.console = console
        self.terminal = terminal

    def read(self, process: Caller, buffer: int, count: int) -> int | None:
        return self.terminal.tty_read(process, buffer, count)

    def write(self, process: Caller, data: bytes) -> int:
        self.console.write(data.decode("utf-8", "replace"))
        return len(data)

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o620, rdev=TTY_DEVICE, blksize=1024)

    def ioctl(self, process: Caller, request: int, pointer: int) -> int:
        if request == TCGETS:
            copy_to_user(process.aspace, pointer, TTY_TERMIOS)
        elif request == TIOCGWINSZ:
            copy_to_user(process.aspace, pointer, struct.pack("<HHHH", ROWS, COLUMNS, 0, 0))
        elif request == FIONREAD:
            pending = self.terminal.tty_pending(process)
            copy_to_user(process.aspace, pointer, struct.pack("<i", pending))
        else:
            return -E.EINVAL  # TCSETS and the rest: this tty's discipline is fixed
        return 0
