"""An append-only file on the FAT volume, rotated by size, that survives a power cut.

`RotatingFile(fs, "/var/log/kern.log", max_bytes, keep)` appends to the file; an append that
would take it past `max_bytes` first renames it to `NAME.1` (and `NAME.1` to `NAME.2`, ... up to
`NAME.KEEP`, the oldest dropped), so the set never holds more than (keep + 1) * max_bytes plus
one record. Nothing is written (not even the directory) before the first `append`. Each
`append` writes the bytes through the FAT layer at once (data, then the
directory entry's size: fat.py's write order), and `sync` sends the drive a CACHE FLUSH, which
pushes the image to the host disk; a caller batches its syncs. After a cut a file may end in a
torn record: `tail` and `truncate` let the owner of the record format find and drop it.

A volume that is read-only or fails a write makes the file `broken` (the reason kept) and
every later call a no-op: logging must never take the kernel down with it.

Uses the FAT filesystem (kernel/fs/fat.py) and pkg's mkdir -p.
"""

from __future__ import annotations

import posixpath

from tradekernel.kernel.fs.fat import FatFs
from tradekernel.kernel.pkg.database import makedirs


class RotatingFile:
    def __init__(self, fs: FatFs, path: str, max_bytes: int, keep: int) -> None:
        self.fs = fs
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.broken: str | None = None  # why writing stopped, once it has
        self.size = 0
        self.rotations = 0
        try:
            if fs.read_only:
                raise OSError(f"the volume is read-only ({fs.read_only_reason or 'mounted so'})")
            self.size = fs.stat(path).size if fs.exists(path) else 0
        except OSError as error:
            self.broken = f"{path}: {error}"

    def generations(self) -> list[str]:
        """The paths that exist, oldest first: NAME.KEEP ... NAME.1, NAME."""
        names = [f"{self.path}.{n}" for n in range(self.keep, 0, -1)] + [self.path]
        return [name for name in names if self.fs.exists(name)]

    def append(self, data: bytes) -> bool:
        """Write `data` at the end (rotating first if it would not fit); False if broken."""
        if self.broken is not None or not data:
            return self.broken is None
        try:
            if not self.size:  # the first write: the directory is made only now
                makedirs(self.fs, posixpath.dirname(self.path))
            if self.size and self.size + len(data) > self.max_bytes:
                self._rotate()
            with self.fs.open(self.path, "a") as handle:
                handle.write(data)
                self.size = handle.size
        except OSError as error:
            self.broken = f"{self.path}: {error}"
            return False
        return True

    def _rotate(self) -> None:
        fs = self.fs
        oldest = f"{self.path}.{self.keep}"
        if fs.exists(oldest):
            fs.remove(oldest)
        for n in range(self.keep - 1, 0, -1):
            if fs.exists(f"{self.path}.{n}"):
                fs.rename(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        if self.keep:
            fs.rename(self.path, f"{self.path}.1")
        else:
            fs.remove(self.path)
        self.size = 0
        self.rotations += 1

    def sync(self) -> None:
        """FAT sectors and the drive's cache to stable storage (ATA CACHE FLUSH)."""
        if self.broken is None:
            try:
                self.fs.flush()
            except OSError as error:
                self.broken = f"{self.path}: {error}"

    def tail(self, count: int) -> tuple[int, bytes]:
        """(offset, bytes): the last `count` bytes of the current file at most."""
        if self.broken is not None or not self.size:
            return 0, b""
        start = max(0, self.size - count)
        try:
            with self.fs.open(self.path, "r") as handle:
                handle.seek(start)
                return start, handle.read(self.size - start)
        except OSError as error:  # a damaged volume: read at boot, so it must not raise
            self.broken = f"{self.path}: {error}"
            return 0, b""

    def truncate(self, size: int) -> None:
        """Cut the current file back to `size` bytes (a torn record after a power cut)."""
        if self.broken is None and size < self.size:
            try:
                self.fs.truncate(self.path, size)
                self.size = size
            except OSError as error:
                self.broken = f"{self.path}: {error}"

    def read(self, path: str, limit: int) -> tuple[bool, bytes]:
        """(cut, bytes): one generation, its last `limit` bytes at most (sizes come from the
        disk); `cut` says the start was left out."""
        size = self.fs.stat(path).size
        with self.fs.open(path, "r") as handle:
            handle.seek(max(0, size - limit))
            return size > limit, handle.read(min(size, limit))
