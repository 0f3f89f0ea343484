"""The on-disk directory entry formats of FAT: 8.3 short entries, VFAT long-name entries, names
and timestamps. Pure functions over bytes; the filesystem (kernel/fs/fat.py) decides where they go.

Contract: `parse_directory` never raises on garbage: an entry it cannot make sense of is skipped
or shown by its short name (a long name whose checksum or order does not match is dropped, as
Windows and Linux do), and every name it returns is one usable path component: never empty,
never "." or ".." unless it is the real dot entry, never holding a slash, backslash or control
character (a damaged short name has those replaced by "_"), so a path built from a listing
cannot lead back to a parent. `make_short_name` and `make_long_entries` produce what Windows would:
a lossless 8.3 name stays as it is, anything else gets a `~N` tail and long-name entries carrying
the short name's checksum.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

ENTRY_SIZE = 32
ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LONG_NAME = 0x0F
LFN_LAST = 0x40
LFN_CHARS = 13
MAX_NAME_UNITS = 255  # UTF-16 code units in a long name
DELETED = 0xE5
# A slot whose first byte is 0x00 is free; by the letter of the FAT spec so is every slot after
# it, but Linux (IS_FREE in fs/fat) and fsck.fat read on, so entries after one still exist.
FREE_LEADS = (0x00, DELETED)
NT_LOWER_BASE = 0x08  # byte 12: show the base name in lower case (Windows NT, Linux, mtools)
NT_LOWER_EXT = 0x10

# Characters a short name may hold besides A-Z and 0-9 (and bytes above 0x7F).
_SHORT_EXTRA = set("!#$%&'()-@^_`{}~")
_LONG_FORBIDDEN = set('"*/:<>?\\|')
_SHORT_ONLY_FORBIDDEN = set("+,.;=[] ")  # legal in long names, not in 8.3 names
DOT_NAME = b".          "
DOTDOT_NAME = b"..         "
_ZERO_RUNS = (bytes(4096), bytes(512), bytes(32))
_DOT_NAMES = {DOT_NAME: ".", DOTDOT_NAME: ".."}
_NOT_IN_PATH = set("/\\") | {chr(c) for c in range(0x20)} | {"\x7f"}
_ENTRY = struct.Struct("<11sBBBHHHHHHHI")
_ALLOCATION = struct.Struct("<11sB8xH4xHI")  # name, attributes, cluster high, cluster low, size
_LFN_OFFSETS = (1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30)
_FAT_EPOCH = datetime(1980, 1, 1)


class FsError(OSError):
    """Any filesystem failure; `errno` says which kind, so a syscall can return -errno."""

    code = errno.EIO

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(self.code if code is None else code, message)

    def __str__(self) -> str:
        return str(self.strerror)


class InvalidName(FsError):
    """A name no FAT directory can hold (bad characters, too long, reserved)."""

    code = errno.EINVAL


@dataclass
class RawEntry:
    """One file or directory as found in a directory: its 8.3 entry and its long name."""

    name: str  # the long name when there is a valid one, else the short name
    short_name: str  # "README.TXT"
    raw_name: bytes  # the 11 bytes as stored
    attr: int
    first_cluster: int
    size: int
    ctime: datetime | None
    mtime: datetime | None
    adate: datetime | None
    index: int  # slot of the 8.3 entry within the directory
    first_slot: int  # first of the long-name slots right before it (== index without any)

    @property
    def is_dir(self) -> bool:
        return bool(self.attr & ATTR_DIRECTORY)

    @property
    def is_dot(self) -> bool:
        return self.name in (".", "..")  # only slots 0 and 1 get these names


def lfn_checksum(raw_name: bytes) -> int:
    """The checksum of an 11-byte short name that each of its long-name entries carries."""
    total = 0
    for byte in raw_name:
        total = (((total & 1) << 7) | (total >> 1)) + byte & 0xFF
    return total


def pack_timestamp(moment: datetime) -> tuple[int, int, int]:
    """(date, time, hundredths) in FAT encoding; dates outside 1980-2107 are clamped."""
    if moment.year < 1980:
        moment = _FAT_EPOCH
    elif moment.year > 2107:
        moment = datetime(2107, 12, 31, 23, 59, 59)
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    hundredths = (moment.second % 2) * 100 + moment.microsecond // 10000
    return date, time, hundredths


def unpack_timestamp(date: int, time: int = 0, hundredths: int = 0) -> datetime | None:
    """None for a zero or impossible stamp (many tools leave creation times zero)."""
    if date == 0:
        return None
    try:
        return datetime(
            1980 + (date >> 9),
            (date >> 5) & 0x0F,
            date & 0x1F,
            time >> 11,
            (time >> 5) & 0x3F,
            min(59, (time & 0x1F) * 2 + min(hundredths, 199) // 100),
            (hundredths % 100) * 10000,
        )
    except ValueError:
        return None


def display_short_name(raw_name: bytes, nt_flags: int = 0) -> str:
    base = raw_name[:8].rstrip(b" ")
    ext = raw_name[8:11].rstrip(b" ")
    if base[:1] == b"\x05":  # a real 0xE5 first character, escaped so it does not read deleted
        base = b"\xe5" + base[1:]
    base_text = base.decode("cp437")
    ext_text = ext.decode("cp437")
    if nt_flags & NT_LOWER_BASE:
        base_text = base_text.lower()
    if nt_flags & NT_LOWER_EXT:
        ext_text = ext_text.lower()
    return f"{base_text}.{ext_text}" if ext_text else base_text


def _usable_long_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and _NOT_IN_PATH.isdisjoint(name)


def _safe_short_name(name: str) -> str:
    """A damaged short name made into one path component ("_" for each unusable character)."""
    if _NOT_IN_PATH.isdisjoint(name) and name.strip("."):
        return name
    name = "".join("_" if c in _NOT_IN_PATH else c for c in name)
    return name if name.strip(".") else "_" * max(1, len(name))


def used_slots(raw: bytes | bytearray) -> int:
    """How many slots to read: the slots after the last one holding a non-zero byte are all
    free (a 0x00 slot before it does not end the directory). Compared a few KiB, then a sector,
    then a slot at a time from the end, so a directory's zeroed tail costs almost nothing."""
    end = len(raw) - len(raw) % ENTRY_SIZE
    for zeros in _ZERO_RUNS:  # 4 KiB, then 512 bytes, then one slot at a time
        size = len(zeros)
        while end >= size and raw[end - size : end] == zeros:
            end -= size
    return end // ENTRY_SIZE


def parse_directory(raw: bytes | bytearray) -> list[RawEntry]:
    """Every live file and directory entry in `raw` (volume labels and free slots skipped).
    An entry's slots start at the run of long-name slots right before it, even when they do
    not make a valid name (wrong checksum or order): only that entry could own them, so
    removing it removes them rather than leaving orphans."""
    entries: list[RawEntry] = []
    parts: list[str] = []
    expected = 0
    checksum = -1
    run_start: int | None = None  # first slot of the long-name slots just before this one
    for index in range(used_slots(raw)):
        base = index * ENTRY_SIZE
        lead = raw[base]
        attr = raw[base + 11]
        if lead in FREE_LEADS:
            expected, parts, run_start = 0, [], None
            continue
        if attr == ATTR_LONG_NAME:  # exactly, as Linux and fsck.fat test it
            if run_start is None:
                run_start = index
            order = lead & 0x1F
            if lead & LFN_LAST:
                parts, expected, checksum = [], order, raw[base + 13]
            if order == 0 or order != expected or raw[base + 13] != checksum:
                expected, parts = 0, []
                continue
            units = b"".join(raw[base + o : base + o + 2] for o in _LFN_OFFSETS)
            parts.append(units.decode("utf-16-le", errors="replace"))
            expected -= 1
            continue
        if attr & ATTR_VOLUME_ID:
            expected, parts, run_start = 0, [], None
            continue
        (raw_name, attr, nt_flags, c_hund, c_time, c_date, a_date, hi, m_time, m_date, lo, size) = (
            _ENTRY.unpack_from(raw, base)
        )
        dots = _DOT_NAMES.get(raw_name) if index < 2 else None  # elsewhere a damaged name
        short = dots or _safe_short_name(display_short_name(raw_name, nt_flags))
        name, slot = short, index if run_start is None else run_start
        if dots is None and parts and expected == 0 and lfn_checksum(raw_name) == checksum:
            long_name = "".join(reversed(parts)).split("\x00", 1)[0]
            if _usable_long_name(long_name):
                name = long_name
        entries.append(
            RawEntry(
                name=name,
                short_name=short,
                raw_name=raw_name,
                attr=attr,
                first_cluster=(hi << 16) | lo,
                size=size,
                ctime=unpack_timestamp(c_date, c_time, c_hund),
                mtime=unpack_timestamp(m_date, m_time),
                adate=unpack_timestamp(a_date),
                index=index,
                first_slot=slot,
            )
        )
        parts, expected, run_start = [], 0, None
    return entries


def scan_entries(raw: bytes | bytearray) -> Iterator[tuple[int, bytes, int, int, int]]:
    """(slot, 11-byte name, attributes, first cluster, size) of every live 8.3 entry, dot
    entries and volume labels included, long-name slots skipped, names left unparsed: for the
    mount's allocation check, which reads every directory (parse_directory gives names)."""
    used = used_slots(raw) * ENTRY_SIZE
    for index, (raw_name, attr, hi, lo, size) in enumerate(_ALLOCATION.iter_unpack(raw[:used])):
        if raw_name[0] not in FREE_LEADS and attr != ATTR_LONG_NAME:
            yield index, raw_name, attr, (hi << 16) | lo, size


def check_long_name(name: str) -> None:
    """Raise InvalidName for a name no FAT directory can hold."""
    if not isinstance(name, str) or not name:
        raise InvalidName("empty file name")
    if name in (".", ".."):
        raise InvalidName(f"{name!r} is reserved")
    bad = [c for c in name if c in _LONG_FORBIDDEN or ord(c) < 0x20]
    if bad:
        raise InvalidName(f"{name!r}: character {bad[0]!r} is not allowed in a FAT name")
    if name[-1] in " .":
        raise InvalidName(f"{name!r}: a FAT name may not end with a space or a dot")
    if len(name.encode("utf-16-le")) // 2 > MAX_NAME_UNITS:
        raise InvalidName(f"name is longer than {MAX_NAME_UNITS} characters")


def _short_char(char: str) -> str | None:
    """The 8.3 form of one character, or None if it must be replaced (the conversion is lossy)."""
    upper = char.upper()
    if len(upper) == 1 and (upper.isascii() and (upper.isalnum() or upper in _SHORT_EXTRA)):
        return upper
    return None


def _pad(base: str, ext: str) -> bytes:
    raw = base.ljust(8).encode("ascii") + ext.ljust(3).encode("ascii")
    return b"\x05" + raw[1:] if raw[0] == DELETED else raw


def exact_short_name(name: str) -> bytes | None:
    """The 8.3 bytes if `name` converts to 8.3 without loss except letter case, else None."""
    base, dot, ext = name.rpartition(".")
    if not dot:
        base, ext = name, ""
    if not base or len(base) > 8 or len(ext) > 3 or "." in base:
        return None
    converted = [_short_char(c) for c in base + ext]
    if any(c is None for c in converted):
        return None
    return _pad("".join(converted[: len(base)]), "".join(converted[len(base) :]))


def make_short_name(name: str, taken: set[bytes]) -> bytes:
    """A unique 8.3 name for `name` in a directory whose short names are `taken`."""
    exact = exact_short_name(name)
    if exact is not None and exact not in taken:
        return exact
    stripped = name.lstrip(".").replace(" ", "")
    base, dot, ext = stripped.rpartition(".")
    if not dot:
        base, ext = stripped, ""
    base = base.replace(".", "")

    def convert(text: str) -> str:
        return "".join(_short_char(c) or "_" for c in text)

    basis, extension = convert(base)[:8] or "_", convert(ext)[:3]
    for number in range(1, 1_000_000):
        tail = f"~{number}"
        candidate = _pad(basis[: 8 - len(tail)] + tail, extension)
        if candidate not in taken:
            return candidate
    raise InvalidName(f"no free 8.3 name left for {name!r}")


def make_long_entries(name: str, raw_name: bytes) -> list[bytes]:
    """The long-name entries for `name`, in on-disk order (highest order number first)."""
    units = name.encode("utf-16-le")
    count = -(-len(units) // (2 * LFN_CHARS))
    if len(units) < count * 2 * LFN_CHARS:
        units += b"\x00\x00"
    units = units.ljust(count * 2 * LFN_CHARS, b"\xff")
    checksum = lfn_checksum(raw_name)
    entries = []
    for order in range(count, 0, -1):
        entry = bytearray(ENTRY_SIZE)
        entry[0] = order | (LFN_LAST if order == count else 0)
        entry[11] = ATTR_LONG_NAME
        entry[13] = checksum
        chunk = units[(order - 1) * 2 * LFN_CHARS : order * 2 * LFN_CHARS]
        for position, offset in enumerate(_LFN_OFFSETS):
            entry[offset : offset + 2] = chunk[2 * position : 2 * position + 2]
        entries.append(bytes(entry))
    return entries


def make_short_entry(
    raw_name: bytes, attr: int, first_cluster: int, size: int, created: datetime
) -> bytes:
    date, time, hundredths = pack_timestamp(created)
    return _ENTRY.pack(
        raw_name,
        attr,
        0,
        hundredths,
        time,
        date,
        date,
        first_cluster >> 16,
        time,
        date,
        first_cluster & 0xFFFF,
        size,
    )


def patch_short_entry(
    entry: bytearray, first_cluster: int, size: int, modified: datetime | None
) -> None:
    """Set cluster, size and (if given) the modification stamp of a 32-byte 8.3 entry in place."""
    struct.pack_into("<H", entry, 20, first_cluster >> 16)
    struct.pack_into("<HI", entry, 26, first_cluster & 0xFFFF, size)
    if modified is not None:
        date, time, _ = pack_timestamp(modified)
        struct.pack_into("<H", entry, 18, date)
        struct.pack_into("<HH", entry, 22, time, date)
