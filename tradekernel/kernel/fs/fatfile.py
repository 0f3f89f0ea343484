"""The FAT volume behind the VFS: `FatVolume` serves the mount table's calls (open, stat,
mkdir, rmdir, unlink, rename) from an fs/fat.py FatFs, and its regular files are `FsFile`s.

`FsFile` wraps an open FatFile (its offset is the open file description's, shared by dup and
fork); closing the last descriptor closes the FatFile and flushes the volume, so the change is
on the disk when close returns. A directory opens as a vfs.DirectoryFile for getdents64.

Imports: fs.vfs, fs.fat and mm (user memory).
"""

from __future__ import annotations

import errno as E

from tradekernel.kernel.fs.fat import FatFile, FatFs
from tradekernel.kernel.fs.vfs import (
    O_ACCMODE,
    O_DIRECTORY,
    O_OPEN_FLAGS,
    S_IFDIR,
    S_IFREG,
    Caller,
    DirectoryFile,
    FileStat,
    OpenFile,
    seek_position,
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
        return self.write_data(data)

    def read_data(self, count: int) -> bytes:
        return self.handle.read(count)

    def write_data(self, data: bytes) -> int:
        return self.handle.write(data)

    def seek(self, offset: int, whence: int) -> int:
        handle = self.handle
        return handle.seek(seek_position(offset, whence, handle.tell(), handle.size))

    def stat(self) -> FileStat:
        return FileStat(S_IFREG | 0o755, size=self.handle.size, device=FAT_DEVICE,
                        inode=hash(self.path) & 0x7FFF_FFFF)  # fmt: skip

    def close(self) -> None:
        """Close the FAT handle and, if it could write, its changes to the disk (a read-only
        handle changed nothing: no drive cache flush and host fsync on every close of a file
        only read, such as each library a program loads)."""
        writable = self.handle.writable
        try:
            self.handle.close()
        finally:
            if writable:
                self.fs.flush()


class FatVolume:
    """The FAT filesystem as the mount table sees it (a vfs.Filesystem)."""

    def __init__(self, fs: FatFs) -> None:
        self.fs = fs

    def open(self, path: str, flags: int) -> OpenFile:
        fs = self.fs
        if fs.exists(path) and fs.stat(path).is_dir:
            if flags & O_ACCMODE:
                raise OSError(E.EISDIR, f"{path}: is a directory")
            entries = [(stat.name, stat.is_dir) for stat in fs.scandir(path)]
            return DirectoryFile(entries, path, FAT_DEVICE)
        if flags & O_DIRECTORY:
            raise OSError(E.ENOTDIR if fs.exists(path) else E.ENOENT, f"{path}: not a directory")
        return FsFile(fs.open(path, flags & O_OPEN_FLAGS), path, fs)

    def stat(self, path: str) -> FileStat:
        stat = self.fs.stat(path)
        mode = (S_IFDIR if stat.is_dir else S_IFREG) | 0o755
        mtime = int(stat.mtime.timestamp()) if stat.mtime else 0
        return FileStat(mode, size=stat.size, inode=stat.first_cluster or hash(path) & 0xFFFF,
                        device=FAT_DEVICE, mtime=mtime)  # fmt: skip

    def mkdir(self, path: str) -> None:
        self.fs.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.fs.rmdir(path)

    def unlink(self, path: str) -> None:
        if self.fs.stat(path).is_dir:
            raise OSError(E.EISDIR, f"{path}: is a directory")
        self.fs.remove(path)

    def rename(self, source: str, target: str) -> None:
        self.fs.rename(source, target)
