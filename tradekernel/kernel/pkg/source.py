"""Where packages come from: a `PackageSource` gives the Packages index and the .deb files it
names. `DirectorySource` reads a repository directory on the mounted FAT volume (built on the
host by `tk repo add` and copied in with `tk disk put`). An HTTP source (the host's
`tk repo serve` at 10.0.2.2) implements the same two methods once the guest has a network.

Contract: both methods bound what they read (MAX_INDEX_BYTES, the caller's limit) before
reading it, and raise `SourceError` with one line naming the source and the file."""

from __future__ import annotations

import posixpath
from typing import Protocol

from tradekernel.kernel.fs.fat import FatFs, FsError
from tradekernel.kernel.pkg.params import MAX_INDEX_BYTES


class SourceError(OSError):
    """A source that cannot give what was asked."""


class PackageSource(Protocol):
    location: str  # for messages: a directory or a URL

    def index(self) -> bytes:
        """The Packages index (uncompressed)."""
        ...

    def fetch(self, filename: str, limit: int) -> bytes:
        """The file at `filename` (the index's Filename field), at most `limit` bytes."""
        ...


class DirectorySource:
    """A repository directory on the FAT volume: Packages plus the .deb files it names."""

    def __init__(self, fs: FatFs, directory: str) -> None:
        self.fs = fs
        self.location = directory.rstrip("/") or "/"

    def _read(self, name: str, limit: int) -> bytes:
        path = posixpath.normpath(posixpath.join(self.location, name))
        if not path.startswith(self.location.rstrip("/") + "/"):
            raise SourceError(f"{name}: outside the repository {self.location}")
        try:
            size = self.fs.stat(path).size
            if size > limit:
                raise SourceError(f"{path}: {size} bytes, more than the limit of {limit}")
            return self.fs.read_file(path)
        except FsError as error:
            raise SourceError(f"cannot read {path} ({error})") from None

    def index(self) -> bytes:
        return self._read("Packages", MAX_INDEX_BYTES)

    def fetch(self, filename: str, limit: int) -> bytes:
        return self._read(filename, limit)
