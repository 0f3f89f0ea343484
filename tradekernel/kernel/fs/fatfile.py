"""FAT files and directories as open files: what a descriptor holds for a path on the volume.

`FsFile` wraps an open fs/fat.py FatFile (its offset is the open file description's, shared by
dup and fork); closing the last descriptor closes the FatFile and flushes the volume, so the
change is on the disk when close returns. `DirectoryFile` is a directory opened for
getdents64: the listing is taken at open, its position is an entry index.

Imports: fs.vfs, fs.fat and mm (user memory).
"""

from __future__ import annotations

import errno as E

from tradekernel.kernel.fs.fat import FatFile, FatFs
from tradekernel.kernel.fs.vfs import (
    S_IFDIR,
    S_IFREG,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
    Caller,
    FileStat,
    OpenFile,
)
from tradekernel.kernel.mm.paging import UserMemoryFault, copy_to_user

FAT_DEVICE = (3 << 8) | 1  # /dev/hda1


class FsFile(OpenFile):
    """A regular file on the FAT volume."""

    def __init__(self, handle: FatFile, path: str, fs: FatFs) -> None:
        self.handle = handle
        self.path = path
        self.fs = fs

    def read(self, process: Caller, buffer: int, count: int) -> int:
        position = self.handle.tell()
        data = self.handle.read(count)
        try:
            copy_to_user(process.aspace, buffer, data)
        except UserMemoryFault:
            self.handle.seek(position)
            raise
        return len(data)

    def write(self, process: Caller, data: bytes) -> int:
        return self.handle.write(data)

    def seek(self, offset: int, whence: int) -> int:
        if whence not in (SEEK_SET, SEEK_CUR, SEEK_END):
            raise OSError(E.EINVAL, f"bad whence {whence}")
        base = {SEEK_SET: 0, SEEK_CUR: self.handle.tell(), SEEK_END: self.handle.size()}[whence]
        if base + offset < 0:
            raise OSError(E.EINVAL, "negative file position")
        return self.handle.seek(base + offset)

    def stat(self) -> FileStat:
        return FileStat(S_IFREG | 0o755, size=self.handle.size(), device=FAT_DEVICE,
                        inode=hash(self.path) & 0x7FFF_FFFF)  # fmt: skip

    def close(self) -> None:
        """Close the FAT handle and write its changes to the disk."""
        try:
            self.handle.close()
        finally:
            self.fs.flush()


class DirectoryFile(OpenFile):
    """A directory opened for getdents64."""

    def __init__(self, entries: list[tuple[str, bool]], path: str) -> None:
        self.entries = entries
        self.path = path
        self.position = 0

    def directory_entries(self) -> list[tuple[str, bool]]:
        return self.entries

    def stat(self) -> FileStat:
        return FileStat(S_IFDIR | 0o755, device=FAT_DEVICE, inode=hash(self.path) & 0x7FFF_FFFF)

    def seek(self, offset: int, whence: int) -> int:
        if whence != SEEK_SET or offset < 0:
            raise OSError(E.EINVAL, "directories seek to an entry index from the start")
        self.position = offset
        return offset
