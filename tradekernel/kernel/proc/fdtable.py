"""A process's file-descriptor table: small integers -> open file descriptions (fs/vfs.py).

Descriptors are the per-process half of POSIX's two-level scheme: several descriptors (dup,
dup2, a fork's copy of the table) may refer to one OpenFile and share its offset; the table
tells the file when a descriptor takes it and lets go (OpenFile.acquire/release), and the last
to let go closes it. At most MAX_FILES descriptors, 0..MAX_FILES-1; a call that needs one more
fails with EMFILE, one that names a closed descriptor with EBADF. Each descriptor also has its
own close-on-exec flag (FD_CLOEXEC: fcntl F_SETFD, O_CLOEXEC, dup3, pipe2), which execve acts
on (`exec_close`); dup, dup2 and fork's copy carry it as Linux does (cleared by dup, kept by
fork).

Imports: fs.vfs only.
"""

from __future__ import annotations

import errno as E

from tradekernel.kernel.fs.vfs import OpenFile

MAX_FILES = 32


class FileTable:
    def __init__(self) -> None:
        self._files: dict[int, OpenFile] = {}
        self._cloexec: set[int] = set()

    def get(self, fd: int) -> OpenFile:
        """The file `fd` refers to (OSError EBADF if it is not open)."""
        file = self._files.get(fd)
        if file is None:
            raise OSError(E.EBADF, f"fd {fd} is not open")
        return file

    def install(self, fd: int, file: OpenFile, cloexec: bool = False) -> None:
        """Make `fd` refer to `file`; whatever `fd` held before is let go first."""
        if not 0 <= fd < MAX_FILES:
            raise OSError(E.EBADF, f"fd {fd} is out of range")
        if self._files.get(fd) is not file:
            self.close(fd)
            self._files[fd] = file.acquire()
        self.set_cloexec(fd, cloexec)

    def set_cloexec(self, fd: int, on: bool) -> None:
        self.get(fd)
        if on:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)

    def cloexec(self, fd: int) -> bool:
        self.get(fd)
        return fd in self._cloexec

    def exec_close(self) -> None:
        """execve: the close-on-exec descriptors go."""
        for fd in sorted(self._cloexec):
            self.close(fd)

    def items(self) -> list[tuple[int, OpenFile]]:
        """(fd, file) of every open descriptor, in order (/proc/PID/fd)."""
        return sorted(self._files.items())

    def close(self, fd: int) -> OpenFile | None:
        """Let go of `fd` (the file closes when no descriptor anywhere refers to it); the file
        it held, or None if it was not open."""
        file = self._files.pop(fd, None)
        self._cloexec.discard(fd)
        if file is not None:
            file.release()
        return file

    def close_all(self) -> None:
        for fd in list(self._files):
            self.close(fd)

    def free(self, count: int = 1, lowest: int = 0) -> list[int]:
        """The `count` lowest free descriptors from `lowest` (OSError EMFILE if there are
        fewer; EINVAL for a `lowest` beyond the table, as F_DUPFD)."""
        if not 0 <= lowest < MAX_FILES:
            raise OSError(E.EINVAL, f"fd {lowest} is out of range")
        free = [fd for fd in range(lowest, MAX_FILES) if fd not in self._files][:count]
        if len(free) < count:
            raise OSError(E.EMFILE, "too many open files")
        return free

    def forked(self) -> FileTable:
        """A fork child's table: the same descriptors, sharing the same open files."""
        child = FileTable()
        for fd, file in self._files.items():
            child.install(fd, file, fd in self._cloexec)
        return child
