"""Device files: the console terminal, and `DevFs`, the /dev filesystem that names devices.

/dev holds real nodes: `tty` and `console` (the console terminal, tty1), `null` (reads end at
once, writes are swallowed), `zero` (reads give zero bytes), and `random` and `urandom`
(bytes from the kernel's `RandomSource`, which getrandom(2) also reads; writes are taken and
mixed in, as Linux's are). Its names are fixed: mkdir,
rmdir, unlink, rename and creating a node fail with EROFS.

`TtyFile` is the console tty as an open file (descriptors 0, 1 and 2 of every program): a write
goes to the screen and its serial mirror (drivers/console.py), a read takes a line through the
process layer's terminal control, which alone knows the foreground job, how a background reader
is stopped and how a read sleeps; it plugs in as a `TerminalReader`. ioctl answers the tty's
basics: its settings (read and set: canonical or not, echo, signals), its size, the bytes a
read would get at once; poll asks the terminal, whose watchers every TtyFile shares.

Imports: fs.vfs, drivers (the console) and mm (user memory).
"""

from __future__ import annotations

import errno as E
import hashlib
import struct
from collections.abc import Callable
from typing import Protocol

from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console
from tradekernel.kernel.fs.vfs import (
    O_ACCMODE,
    O_CREAT,
    O_DIRECTORY,
    S_IFCHR,
    S_IFDIR,
    Caller,
    DirectoryFile,
    FileStat,
    OpenFile,
    Poll,
)
from tradekernel.kernel.mm.paging import copy_from_user, copy_to_user

TTY_DEVICE = (4 << 8) | 1  # /dev/tty1's major 4, minor 1
NULL_DEVICE, ZERO_DEVICE = (1 << 8) | 3, (1 << 8) | 5  # Linux's mem major 1
DEVFS_DEVICE = 6  # the anonymous device number /dev's own directory reports
ZERO_CHUNK = 64 * 1024  # /dev/zero copies at most this many zero bytes at a time
RANDOM_DEVICE, URANDOM_DEVICE = (1 << 8) | 8, (1 << 8) | 9
RANDOM_CHUNK = 64 * 1024  # /dev/urandom gives at most this many bytes per read (as a cap)
TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TIOCGWINSZ, FIONREAD = 0x5413, 0x541B
TIOCGPGRP, TIOCSPGRP = 0x540F, 0x5410
TERMIOS_SIZE = 36
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

    @property
    def random(self) -> RandomSource:
        """The kernel's random source (/dev/urandom reads it)."""
        ...

    termios: bytes  # the settings TCGETS reads (struct termios, TERMIOS_SIZE bytes)

    def foreground_group(self, process: Caller) -> int:
        """TIOCGPGRP: the terminal's foreground process group (0 when none holds it)."""
        ...

    def set_foreground_group(self, process: Caller, pgid: int) -> int:
        """TIOCSPGRP: 0, or -errno (a group outside the foreground job, a background caller)."""
        ...

    def set_termios(self, process: Caller, data: bytes) -> None:
        """TCSETS/TCSETSW/TCSETSF: new settings (canonical or not, echo, signals)."""
        ...

    def readiness(self) -> Poll:
        """Whether a read of the terminal would sleep now."""
        ...

    watchers: set[Callable[[], None]]  # told whenever readiness may have changed


class TtyFile(OpenFile):
    """The console terminal."""

    def __init__(self, console: Console, terminal: TerminalReader) -> None:
        self.console = console
        self.terminal = terminal

    def read(self, process: Caller, buffer: int, count: int) -> int | None:
        if self.nonblocking and not self.terminal.readiness() & Poll.IN:
            return -E.EAGAIN  # O_NONBLOCK: nothing to read now
        return self.terminal.tty_read(process, buffer, count)

    def write(self, process: Caller, data: bytes) -> int:
        return self.write_data(data)

    def write_data(self, data: bytes) -> int:  # the screen never makes a writer wait
        self.console.write(data.decode("utf-8", "replace"))
        return len(data)

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o620, rdev=TTY_DEVICE, blksize=1024)

    def poll(self) -> Poll:
        return self.terminal.readiness()

    def watch(self, callback: Callable[[], None]) -> None:  # one terminal, shared watchers
        self.terminal.watchers.add(callback)

    def unwatch(self, callback: Callable[[], None]) -> None:
        self.terminal.watchers.discard(callback)

    def ioctl(self, process: Caller, request: int, pointer: int) -> int:
        if request == TCGETS:
            copy_to_user(process.aspace, pointer, self.terminal.termios)
        elif request in (TCSETS, TCSETSW, TCSETSF):  # output is never queued: all alike
            self.terminal.set_termios(process, copy_from_user(process.aspace, pointer,
                                                              TERMIOS_SIZE))  # fmt: skip
        elif request == TIOCGWINSZ:
            copy_to_user(process.aspace, pointer, struct.pack("<HHHH", ROWS, COLUMNS, 0, 0))
        elif request == FIONREAD:
            pending = self.terminal.tty_pending(process)
            copy_to_user(process.aspace, pointer, struct.pack("<i", pending))
        elif request == TIOCGPGRP:
            group = self.terminal.foreground_group(process)
            copy_to_user(process.aspace, pointer, struct.pack("<i", group))
        elif request == TIOCSPGRP:
            (pgid,) = struct.unpack("<i", copy_from_user(process.aspace, pointer, 4))
            return self.terminal.set_foreground_group(process, pgid)
        else:
            return -E.EINVAL  # the rest (TIOCSCTTY, TIOCGSID...): not supported
        return 0


class NullFile(OpenFile):
    """/dev/null: end of file at once; every write is taken whole and dropped."""

    def read(self, process: Caller, buffer: int, count: int) -> int:
        return 0

    def read_data(self, count: int) -> bytes:  # never waits: the shell and sendfile read it
        return b""

    def write(self, process: Caller, data: bytes) -> int:
        return len(data)

    def write_data(self, data: bytes) -> int:  # the shell's `> /dev/null`
        return len(data)

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o666, rdev=NULL_DEVICE, device=DEVFS_DEVICE)


class ZeroFile(NullFile):
    """/dev/zero: as many zero bytes as asked for; writes dropped as by /dev/null."""

    def read(self, process: Caller, buffer: int, count: int) -> int:
        for offset in range(0, count, ZERO_CHUNK):
            copy_to_user(process.aspace, buffer + offset, bytes(min(ZERO_CHUNK, count - offset)))
        return count

    def read_data(self, count: int) -> bytes:
        return bytes(min(count, ZERO_CHUNK))

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o666, rdev=ZERO_DEVICE, device=DEVFS_DEVICE)


class RandomSource:
    """The kernel's random bytes: BLAKE2b in counter mode over a 32-byte key, the key
    re-derived after every request (so earlier output cannot be recomputed from a later
    state). Seeded at boot from the clock (wall time and virtual ns: the same inputs give the
    same bytes under the deterministic clock, as the run's other outputs), and from what is
    written to /dev/random or /dev/urandom."""

    def __init__(self, seed: bytes) -> None:
        self._key = hashlib.blake2b(seed, digest_size=32, person=b"tk-random").digest()
        self._counter = 0

    def mix(self, data: bytes) -> None:
        self._key = hashlib.blake2b(self._key + data, digest_size=32).digest()

    def read(self, count: int) -> bytes:
        out = bytearray()
        while len(out) < count:
            self._counter += 1
            out += hashlib.blake2b(self._counter.to_bytes(8, "little"), key=self._key).digest()
        self.mix(b"rekey")
        return bytes(out[:count])


class RandomFile(OpenFile):
    """/dev/random and /dev/urandom (one pool: Linux's have given the same bytes since 5.6)."""

    def __init__(self, source: RandomSource, rdev: int) -> None:
        self.source = source
        self.rdev = rdev

    def read(self, process: Caller, buffer: int, count: int) -> int:
        count = min(count, RANDOM_CHUNK)
        copy_to_user(process.aspace, buffer, self.source.read(count))
        return count

    def read_data(self, count: int) -> bytes:
        return self.source.read(min(count, RANDOM_CHUNK))

    def write(self, process: Caller, data: bytes) -> int:
        return self.write_data(data)

    def write_data(self, data: bytes) -> int:
        self.source.mix(data)
        return len(data)

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o666, rdev=self.rdev, device=DEVFS_DEVICE)


class DevFs:
    """/dev as a vfs.Filesystem: a fixed directory of device nodes."""

    def __init__(self, console: Console, terminal: TerminalReader,
                 random: RandomSource | None = None) -> None:  # fmt: skip
        source = random or terminal.random  # the process layer's, unless given
        self.nodes: dict[str, Callable[[], OpenFile]] = {
            "console": lambda: TtyFile(console, terminal),
            "null": NullFile,
            "random": lambda: RandomFile(source, RANDOM_DEVICE),
            "tty": lambda: TtyFile(console, terminal),
            "urandom": lambda: RandomFile(source, URANDOM_DEVICE),
            "zero": ZeroFile,
        }

    def _node(self, path: str) -> Callable[[], OpenFile]:
        node = self.nodes.get(path.removeprefix("/"))
        if node is None:
            raise OSError(E.ENOENT, f"/dev{path}: no such device")
        return node

    def open(self, path: str, flags: int) -> OpenFile:
        if path == "/":
            if flags & O_ACCMODE:
                raise OSError(E.EISDIR, "/dev: is a directory")
            return DirectoryFile([(name, False) for name in self.nodes], "/dev", DEVFS_DEVICE)
        if path.removeprefix("/") not in self.nodes and flags & O_CREAT:
            raise OSError(E.EROFS, f"/dev{path}: /dev holds device nodes only")
        node = self._node(path)
        if flags & O_DIRECTORY:
            raise OSError(E.ENOTDIR, f"/dev{path}: not a directory")
        return node()

    def stat(self, path: str) -> FileStat:
        if path == "/":
            return FileStat(S_IFDIR | 0o755, device=DEVFS_DEVICE)
        return self._node(path)().stat()

    def _read_only(self, path: str) -> None:
        raise OSError(E.EROFS, f"/dev{path}: /dev holds device nodes only")

    def mkdir(self, path: str) -> None:
        self._read_only(path)

    def rmdir(self, path: str) -> None:
        self._read_only(path)

    def unlink(self, path: str) -> None:
        self._read_only(path)

    def rename(self, source: str, target: str) -> None:
        self._read_only(source)
