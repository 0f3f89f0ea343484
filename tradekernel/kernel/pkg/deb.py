"""Reading a .deb: the ar archive (debian-binary, control.tar.*, data.tar.*), each tarball
decompressed (none, gzip, xz or zstd) with its size bounded, and the data tarball's entries.

Contract: `read_deb(data, unpack_limit)` returns a `Deb` or raises `DebError` with one line
saying what was wrong and where (which member, which entry). Nothing here touches a disk.
Every size read from the archive is checked before memory is allocated for it: ar member
sizes against the bytes actually present, decompressed sizes against MAX_CONTROL_BYTES and
the caller's `unpack_limit` (the free disk space), tar entry sizes against the tarball.
Paths are normalised to absolute paths without '.' or '..'; one that climbs out of '/' is
refused.
"""

from __future__ import annotations

import io
import lzma
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

import zstandard

from tradekernel.kernel.pkg.control import ControlError, parse_paragraphs
from tradekernel.kernel.pkg.params import MAX_CONTROL_BYTES, MAX_MEMBERS, MAX_PATH_BYTES

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"


class DebError(ValueError):
    """A .deb that cannot be used, with the reason."""


@dataclass(frozen=True)
class Entry:
    """One entry of data.tar: `target` is the link target for symlinks and hard links."""

    path: str
    kind: str
    mode: int
    data: bytes = b""
    target: str = ""


@dataclass(frozen=True)
class Deb:
    control: dict[str, str]
    entries: list[Entry]
    unpacked_bytes: int  # bytes of regular file content

    @property
    def name(self) -> str:
        return self.control["Package"]

    @property
    def version(self) -> str:
        return self.control["Version"]

    @property
    def architecture(self) -> str:
        return self.control.get("Architecture", "")


def ar_members(data: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of each member of a common-format ar archive."""
    if not data.startswith(AR_MAGIC):
        raise DebError("not a Debian package (no ar archive signature)")
    members = []
    offset = len(AR_MAGIC)
    while offset < len(data):
        header = data[offset : offset + AR_HEADER]
        if len(header) < AR_HEADER or header[58:60] != b"`\n":
            raise DebError(f"ar header at byte {offset} is truncated or damaged")
        name = header[0:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"ar member {name!r}: bad size field") from None
        start = offset + AR_HEADER
        if size < 0 or start + size > len(data):
            raise DebError(f"ar member {name!r}: {size} bytes claimed, archive truncated")
        members.append((name, data[start : start + size]))
        offset = start + size + (size & 1)
    return members


def decompress(name: str, data: bytes, limit: int) -> bytes:
    """The tarball `name` (.tar, .tar.gz, .tar.xz, .tar.zst) inflated to at most `limit` bytes."""
    try:
        if name.endswith(".tar"):
            out, complete = data, True
        elif name.endswith(".gz"):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(data, limit + 1)
            complete = inflater.eof
        elif name.endswith(".xz"):
            inflater = lzma.LZMADecompressor()
            out = inflater.decompress(data, max_length=limit + 1)
            complete = inflater.eof
        elif name.endswith(".zst"):
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
                out = reader.read(limit + 1)
                complete = len(out) <= limit and reader.read(1) == b""
        else:
            raise DebError(f"{name}: unknown compression")
    except (zlib.error, lzma.LZMAError, zstandard.ZstdError) as error:
        raise DebError(f"{name}: corrupt compressed data ({error})") from None
    if len(out) > limit:
        raise DebError(f"{name}: unpacks to more than {limit} bytes")
    if not complete:
        raise DebError(f"{name}: compressed data is truncated")
    return out


def _clean_path(raw: str, where: str) -> str:
    try:
        encoded = raw.encode()
    except UnicodeEncodeError:  # tarfile keeps a non-UTF-8 name's bytes as surrogates
        raise DebError(f"{where}: path {raw!r} is not UTF-8") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise DebError(f"{where}: path longer than {MAX_PATH_BYTES} bytes")
    if ".." in raw.split("/"):
        raise DebError(f"{where}: path {raw!r} climbs out of the root")
    return posixpath.normpath("/" + raw.removeprefix("./").lstrip("/"))


def tar_entries(data: bytes, where: str, max_members: int = MAX_MEMBERS) -> list[Entry]:
    """The entries of an uncompressed tarball held in `data`."""
    entries: list[Entry] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if len(entries) >= max_members:
                    raise DebError(f"{where}: more than {max_members} entries")
                path = _clean_path(member.name, where)
                mode = member.mode & 0o7777
                if member.isdir():
                    entries.append(Entry(path, DIRECTORY, mode))
                elif member.issym():
                    entries.append(Entry(path, SYMLINK, mode, target=member.linkname))
                elif member.islnk():
                    target = _clean_path(member.linkname, where)
                    entries.append(Entry(path, HARDLINK, mode, target=target))
                elif member.isreg():
                    if member.offset_data + member.size > len(data):
                        raise DebError(f"{where}: {path}: {member.size} bytes, tarball truncated")
                    content = data[member.offset_data : member.offset_data + member.size]
                    entries.append(Entry(path, FILE, mode, content))
                else:
                    raise DebError(f"{where}: {path}: devices and fifos are not supported")
    except tarfile.TarError as error:
        raise DebError(f"{where}: damaged tarball ({error})") from None
    return entries


def _member(members: list[tuple[str, bytes]], prefix: str) -> tuple[str, bytes]:
    found = [(name, data) for name, data in members if name.startswith(prefix)]
    if len(found) != 1:
        raise DebError(f"expected one {prefix}* member, found {len(found)}")
    return found[0]


def read_control(data: bytes) -> dict[str, str]:
    """Only the control paragraph of a .deb (for `tk repo add` and index checks)."""
    members = ar_members(data)
    if not members or members[0][0] != "debian-binary":
        raise DebError("first ar member is not debian-binary")
    if not members[0][1].startswith(b"2."):
        raise DebError(f"unsupported .deb format {members[0][1][:8]!r}")
    name, packed = _member(members, "control.tar")
    control_tar = decompress(name, packed, MAX_CONTROL_BYTES)
    files = {e.path: e for e in tar_entries(control_tar, name) if e.kind == FILE}
    if "/control" not in files:
        raise DebError(f"{name}: no control file")
    try:
        paragraphs = parse_paragraphs(files["/control"].data.decode("utf-8"))
    except (UnicodeDecodeError, ControlError) as error:
        raise DebError(f"{name}: control file: {error}") from None
    if len(paragraphs) != 1 or not {"Package", "Version"} <= paragraphs[0].keys():
        raise DebError(f"{name}: control file lacks Package or Version")
    return paragraphs[0]


def read_deb(data: bytes, unpack_limit: int) -> Deb:
    """The whole package; data.tar may inflate to at most `unpack_limit` bytes."""
    control = read_control(data)
    name, packed = _member(ar_members(data), "data.tar")
    entries = tar_entries(decompress(name, packed, unpack_limit), name)
    size = sum(len(e.data) for e in entries)
    return Deb(control, entries, size)
