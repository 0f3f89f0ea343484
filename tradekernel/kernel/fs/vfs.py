"""The VFS: one open-file interface behind every file descriptor, the mount table every path
goes through, and the sleep contract.

An `OpenFile` is an open file description in POSIX's sense: what a descriptor refers to. FAT
files and directories (fs/fatfile.py), pipe ends (fs/pipe.py) and device nodes (fs/devfs.py)
are all OpenFiles, and later sockets and /proc entries will be; the system calls and the shell
see only this interface: read, write, seek (lseek), stat, ioctl, poll (readiness: would a read
or write sleep, is the other end gone) with `watch` callbacks run when readiness may have
changed (`changed`: pipes and the tty call it, so a sleeping poll needs no timer),
directory_entries (getdents64, with the directory's offset an entry index) and close; the
kernel's own reads and writes (read_data, write_data: sendfile, the shell's cat and `> FILE`)
exist only where they never wait. Its status flags (F_GETFL/F_SETFL) are shared by every
descriptor: with O_NONBLOCK a read or write that would sleep fails with EAGAIN instead. A
kind of file implements what it supports; the rest fails the way Linux fails it for that kind
(EBADF, ESPIPE, ENOTDIR, ENOTTY).

Sharing: one OpenFile may sit in several descriptors (dup, dup2, fork, a pipeline's stages),
which then share its offset, as POSIX says. `acquire` counts each descriptor that takes it and
`release` each that lets go; the last `release` calls `close`.

Sleeping: a read or write that must wait returns None after putting the caller to sleep through
a `Sleeper` (the process layer implements it; this layer never imports it). The waker later
writes the call's result with `Sleeper.wake`. A signal ends the sleep through the `cancel`
callback given to `block`, which undoes the wait and returns the call's result, ERESTARTSYS
(negated) for a call that may be restarted.

Mounting: a `MountTable` maps path prefixes to `Filesystem`s (the FAT volume at "/", device
files at "/dev"; room for "/proc"). open, stat, mkdir, rmdir, unlink, rename and chdir resolve
their paths through it, so a system call never needs to know which filesystem serves a path.

Imports: mm (user memory) only; the process layer plugs in through `Sleeper` and the objects it
passes as `process` (anything with an `aspace`).
"""

from __future__ import annotations

import errno as E
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag
from typing import Protocol

from tradekernel.kernel.mm.paging import AddressSpace

ERESTARTSYS = 512  # internal: "restart the call if the handler allows", never seen by a program
S_IFIFO, S_IFCHR, S_IFDIR, S_IFREG = 0o010000, 0o020000, 0o040000, 0o100000
S_IFMT = 0o170000
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
# open(2)'s flags (Linux i386)
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 3, 0o100, 0o200, 0o1000, 0o2000
O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC = 0o4000, 0o200000, 0o400000, 0o2000000
STATUS_FLAGS = O_APPEND | O_NONBLOCK  # what fcntl F_SETFL may change
MAX_LINKS = 8  # symbolic links followed in one resolution (Linux: 40)
O_OPEN_FLAGS = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND  # what a FAT file open takes


class Caller(Protocol):
    """The process a file operation runs for, as files see it: its user memory."""

    aspace: AddressSpace


class Sleeper(Protocol):
    """What a file needs from the process layer to make its caller wait (proc implements it)."""

    def block(self, process: Caller, cancel: Callable[[], int] | None = None) -> int:
        """Put `process` to sleep; returns the token its wake-up must present. A signal ends
        the sleep by calling `cancel`, whose return value becomes the call's result."""
        ...

    def wake(self, process: Caller, token: int, result: int) -> None:
        """End the sleep `token` of `process` with `result` (ignored if it ended already)."""
        ...

    def asleep(self, process: Caller, token: int) -> bool:
        """Whether `process` still sleeps the sleep `token` (not woken, not dead)."""
        ...

    def broken_pipe(self, process: Caller) -> None:
        """`process` wrote to a pipe nobody reads: SIGPIPE for it."""
        ...


class Poll(IntFlag):
    """Readiness, in poll(2)'s bits: what a call would do now without sleeping."""

    IN = 0x001  # a read would not sleep (data, or end of file)
    OUT = 0x004  # a write would not sleep
    ERR = 0x008
    HUP = 0x010  # the other end is gone


@dataclass(frozen=True)
class FileStat:
    """What fstat/stat report (the system-call layer packs it into Linux's struct)."""

    mode: int  # S_IF* | permission bits
    size: int = 0
    inode: int = 0
    device: int = 0
    rdev: int = 0
    mtime: int = 0  # seconds since the epoch
    blksize: int = 4096

    @property
    def is_dir(self) -> bool:
        return self.mode & 0o170000 == S_IFDIR


def seek_position(offset: int, whence: int, current: int, size: int) -> int:
    """lseek's arithmetic: the new position, or OSError(EINVAL) for a bad whence or a
    position before the start."""
    if whence not in (SEEK_SET, SEEK_CUR, SEEK_END):
        raise OSError(E.EINVAL, f"bad whence {whence}")
    position = {SEEK_SET: 0, SEEK_CUR: current, SEEK_END: size}[whence] + offset
    if position < 0:
        raise OSError(E.EINVAL, "negative file position")
    return position


class OpenFile:
    """An open file description (see the module docstring). Subclasses override what their
    kind of file supports."""

    references = 0
    status_flags = 0  # open(2) flags fcntl F_GETFL reports; O_NONBLOCK makes a wait EAGAIN
    path = ""  # the name it was opened by, where it has one (/proc/PID/fd, openat's dirfd)

    @property
    def nonblocking(self) -> bool:
        return bool(self.status_flags & O_NONBLOCK)

    @nonblocking.setter
    def nonblocking(self, on: bool) -> None:  # FIONBIO, SOCK_NONBLOCK: the same flag
        flags = self.status_flags & ~O_NONBLOCK
        self.status_flags = flags | O_NONBLOCK if on else flags

    _watchers: set[Callable[[], None]] | None = None

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever this file's readiness may have changed (a sleeping poll
        or select looks again then, instead of polling on a timer)."""
        if self._watchers is None:
            self._watchers = set()
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[], None]) -> None:
        if self._watchers is not None:
            self._watchers.discard(callback)

    def changed(self) -> None:
        """Readiness may have changed: tell every watcher (each may unwatch meanwhile)."""
        for callback in list(self._watchers or ()):
            callback()

    def acquire(self) -> OpenFile:
        """A descriptor now refers to this file."""
        self.references += 1
        return self

    def release(self) -> None:
        """A descriptor let go; the last one closes the file."""
        self.references -= 1
        if self.references == 0:
            self.close()

    def read(self, process: Caller, buffer: int, count: int) -> int | None:
        """Copy up to `count` bytes to user `buffer`: bytes read, or None (the caller sleeps;
        the wake-up carries the result)."""
        raise OSError(E.EBADF, "not open for reading")

    def write(self, process: Caller, data: bytes) -> int | None:
        """Bytes written, or None (the writer sleeps until they are all taken)."""
        raise OSError(E.EBADF, "not open for writing")

    def read_data(self, count: int) -> bytes:
        """Up to `count` bytes from the position, into the kernel (sendfile's source): only
        files whose reads never wait have it, as Linux's sendfile wants a page-cache file."""
        raise OSError(E.EINVAL, "sendfile cannot read this kind of file")

    def write_data(self, data: bytes) -> int:
        """Write `data` from the kernel at the position (the shell's `> FILE`): bytes taken.
        Only files whose writes never wait have it (no pipe, no socket): the shell never
        sleeps."""
        raise OSError(E.EINVAL, "the kernel cannot write this kind of file")

    def seek(self, offset: int, whence: int) -> int:
        raise OSError(E.ESPIPE, "not seekable")

    def stat(self) -> FileStat:
        raise OSError(E.EBADF, "no status")

    def ioctl(self, process: Caller, request: int, pointer: int) -> int:
        raise OSError(E.ENOTTY, "not a terminal")

    def poll(self) -> Poll:
        """What read and write would do now; a plain file never makes anyone wait."""
        return Poll.IN | Poll.OUT

    def directory_entries(self) -> list[tuple[str, bool]]:
        """(name, is_dir) of a directory, for getdents64."""
        raise OSError(E.ENOTDIR, "not a directory")

    def close(self) -> None:
        """Release what the file holds (runs once, when the last descriptor goes)."""


class DirectoryFile(OpenFile):
    """A directory opened for getdents64: its listing taken at open, its offset an entry
    index (what getdents64's d_off cookies count)."""

    def __init__(self, entries: list[tuple[str, bool]], path: str, device: int) -> None:
        self.entries = entries
        self.path = path
        self.device = device
        self.position = 0

    def directory_entries(self) -> list[tuple[str, bool]]:
        return self.entries

    def stat(self) -> FileStat:
        return FileStat(S_IFDIR | 0o755, device=self.device, inode=hash(self.path) & 0x7FFF_FFFF)

    def seek(self, offset: int, whence: int) -> int:
        """To an entry index from the start, or (SEEK_CUR, 0) to ask where it is."""
        if whence == SEEK_CUR and offset == 0:
            return self.position
        if whence != SEEK_SET or offset < 0:
            raise OSError(E.EINVAL, "directories seek to an entry index from the start")
        self.position = offset
        return offset


class Filesystem(Protocol):
    """What a mounted filesystem serves; every path is absolute within it ("/" its root)."""

    def open(self, path: str, flags: int) -> OpenFile:
        """Open `path` with Linux open(2) flags (O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC, O_APPEND,
        O_DIRECTORY); a directory opens for getdents64 (read-only)."""
        ...

    def stat(self, path: str) -> FileStat: ...

    def mkdir(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None: ...

    def unlink(self, path: str) -> None: ...

    def rename(self, source: str, target: str) -> None: ...


class MountTable:
    """Path prefixes -> filesystems. A path belongs to the longest mount point that is a whole
    leading component run of it ("/dev" takes "/dev/tty", not "/device"). Every path-taking
    system call resolves through here."""

    def __init__(self) -> None:
        self._mounts: dict[str, Filesystem] = {}

    def mount(self, point: str, filesystem: Filesystem) -> None:
        point = posixpath.normpath("/" + point.lstrip("/"))
        if point in self._mounts:
            raise OSError(E.EBUSY, f"{point}: already a mount point")
        self._mounts[point] = filesystem

    def unmount(self, point: str) -> Filesystem:
        """Detach the filesystem at `point` (EINVAL if none is mounted exactly there); the
        caller flushes it first."""
        point = posixpath.normpath("/" + point.lstrip("/"))
        if point not in self._mounts:
            raise OSError(E.EINVAL, f"{point}: not a mount point")
        return self._mounts.pop(point)

    def mount_point(self, path: str) -> str:
        """The mount point whose filesystem serves the absolute, normalised `path`: ENODEV if
        no mount covers it, ENOENT for a relative one (a /proc fd link's "anon_inode:[...]"
        target)."""
        if not path.startswith("/"):
            raise OSError(E.ENOENT, f"{path}: not an absolute path")
        point = path
        while point not in self._mounts:
            if point == "/":
                raise OSError(E.ENODEV, "no filesystem is mounted")
            point = posixpath.dirname(point)
        return point

    def points_in(self, directory: str) -> list[str]:
        """The names of the mount points directly inside `directory` (/dev and /proc in /)."""
        return sorted(
            posixpath.basename(point) for point in self._mounts
            if point != "/" and posixpath.dirname(point) == directory
        )  # fmt: skip

    def resolve(self, path: str) -> tuple[Filesystem, str]:
        """(filesystem, path within it) for an absolute, normalised `path` (the errors are
        mount_point's)."""
        point = self.mount_point(path)
        inner = path[len(point) :] if point != "/" else path
        return self._mounts[point], inner or "/"

    def open(self, path: str, flags: int) -> OpenFile:
        """The filesystem's open, with the status flags and the path recorded on the file."""
        filesystem, inner = self.resolve(path)
        file = filesystem.open(inner, flags)
        file.status_flags = flags & (O_ACCMODE | STATUS_FLAGS)
        file.path = path
        return file

    def stat(self, path: str) -> FileStat:
        filesystem, inner = self.resolve(path)
        return filesystem.stat(inner)

    def readlink(self, path: str) -> str:
        """A symbolic link's target: only filesystems that have links (/proc) answer;
        anywhere else an existing file is EINVAL (not a link)."""
        filesystem, inner = self.resolve(path)
        readlink = getattr(filesystem, "readlink", None)
        if readlink is not None:
            return readlink(inner)
        filesystem.stat(inner)
        raise OSError(E.EINVAL, f"{path}: not a symbolic link")

    def follow(self, path: str) -> str:
        """`path` with a final symbolic link followed (/proc/PID/exe: what execve of
        /proc/self/exe runs); any other path as it is."""
        for _ in range(MAX_LINKS):
            filesystem, inner = self.resolve(path)
            readlink = getattr(filesystem, "readlink", None)
            if readlink is None:
                return path
            try:
                path = readlink(inner)
            except OSError as error:
                if error.errno == E.EINVAL:
                    return path  # not a link
                raise
        raise OSError(E.ELOOP, f"{path}: too many levels of symbolic links")

    def mkdir(self, path: str) -> None:
        filesystem, inner = self.resolve(path)
        filesystem.mkdir(inner)

    def rmdir(self, path: str) -> None:
        filesystem, inner = self.resolve(path)
        filesystem.rmdir(inner)

    def unlink(self, path: str) -> None:
        filesystem, inner = self.resolve(path)
        filesystem.unlink(inner)

    def rename(self, source: str, target: str) -> None:
        """Within one filesystem only (EXDEV across mounts, as Linux)."""
        filesystem, inner_source = self.resolve(source)
        other, inner_target = self.resolve(target)
        if other is not filesystem:
            raise OSError(E.EXDEV, "rename across filesystems")
        filesystem.rename(inner_source, inner_target)
