"""A read-only file over bytes made once: a /proc file's text, a built-in's output piped into a
program. Read from its offset into user memory, seekable, a regular file to fstat.

Imports: fs.vfs and mm (copies to user memory).
"""

from __future__ import annotations

from tradekernel.kernel.fs.vfs import S_IFREG, Caller, FileStat, OpenFile, seek_position
from tradekernel.kernel.mm.paging import copy_to_user


class BytesFile(OpenFile):
    """`data` as an open file. `size` is what fstat reports (Linux says 0 for /proc files)."""

    def __init__(self, data: bytes, *, device: int = 0, size: int | None = None) -> None:
        self._data = data
        self._position = 0
        self._stat = FileStat(S_IFREG | 0o444, size=len(data) if size is None else size,
                              device=device)  # fmt: skip

    def read(self, process: Caller, buffer: int, count: int) -> int:
        piece = self._data[self._position : self._position + max(0, count)]
        copy_to_user(process.aspace, buffer, piece)  # a fault leaves the position as it was
        self._position += len(piece)
        return len(piece)

    def read_data(self, count: int) -> bytes:
        piece = self._data[self._position : self._position + max(0, count)]
        self._position += len(piece)
        return piece

    def seek(self, offset: int, whence: int) -> int:
        self._position = seek_position(offset, whence, self._position, len(self._data))
        return self._position

    def stat(self) -> FileStat:
        return self._stat
