"""FAT12/16/32 over any block device (kernel/drivers/blockdev.py): mount, files, directories, mkfs.

Layers, bottom up: a write-through page cache of file data (kernel/fs/pagecache.py; every
block write passes through it, so it never holds a stale page), the boot sector (`Layout`), the
allocation table (`_FatTable`, all copies kept equal), directories (entry formats in
kernel/fs/fat_dir.py, contents cached per directory), open files (`_Node`, shared by every
handle on one file), then the path API of `FatFs` and the handle API of `FatFile` that the
kernel's syscalls call.

Crash safety comes from write order, not a journal, so a machine stopped between any two block
writes leaves a volume fsck.fat can repair without losing data it had acknowledged:
  - growing a file: new clusters are marked in every FAT copy first, then the data is written,
    then the directory entry's size and first cluster. A crash while a new file is written
    leaves lost clusters (allocated, reached by no chain), which the next writable mount of an
    undamaged volume frees as fsck.fat would (`reclaimed`); a crash while an existing file
    grows into a new cluster (a log's append) leaves its chain one cluster longer than its
    size. On an otherwise undamaged volume with exactly one such file (one writer: only one
    append can be cut) the next writable mount repairs it as fsck.fat -a does, keeping the size
    and freeing that cluster (`repaired`); a longer chain, or two such files, is damage (a
    size field that shrank looks the same) and mounts read-only for fsck.fat;
  - growing a directory: the new cluster is allocated, zeroed, and only then linked;
  - shrinking or deleting: the directory entry changes first, the clusters are freed after;
  - renaming: the new entry is written before the old one is removed.
The FAT is cached in memory; dirty FAT sectors are written (copy 1, then copy 2, ...) before
anything that refers to them. On FAT32 the FSInfo free count is set to "unknown" at the first
change and rewritten with the true count by `flush()`/`close()`.

Errors are `FsError` subclasses (an OSError with an errno): a corrupt image fails to mount with
a `MountError` that says what is wrong, never with an IndexError.

A damaged volume is never written. The mount validates the boot sector as fsck.fat does (else
MountError), compares the FAT copies as fsck.fat does, and follows every cluster chain reachable
from the root once (`_check_allocation`); damage that writing could spread (FAT copies that
differ, chains that loop, cross-link, run into free clusters or do not fit their file's size, a
data area that moved) mounts the volume read-only, with the reason in `read_only_reason`. Damage
found in use raises `CorruptFs` naming the damaged path; every chain walk is bounded by the
cluster count and every directory walk by the directories on its path, so nothing loops and the
rest of the volume stays usable.
"""

from __future__ import annotations

import errno
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from tradekernel.kernel.drivers.blockdev import BLOCK_SIZE, BlockDevice
from tradekernel.kernel.fs.fat_dir import (
    ATTR_ARCHIVE,
    ATTR_DIRECTORY,
    ATTR_READ_ONLY,
    ATTR_VOLUME_ID,
    DELETED,
    DOT_NAME,
    DOTDOT_NAME,
    ENTRY_SIZE,
    FREE_LEADS,
    FsError,
    InvalidName,
    RawEntry,
    check_long_name,
    display_short_name,
    make_long_entries,
    make_short_entry,
    make_short_name,
    parse_directory,
    patch_short_entry,
    scan_entries,
    used_slots,
)
from tradekernel.kernel.fs.pagecache import PAGE_CACHE_PAGES, PageCache

__all__ = [
    "FsError",
    "InvalidName",
    "MountError",
    "BadBootSector",
    "BadBpb",
    "FatMismatch",
    "TruncatedImage",
    "CorruptFs",
    "NoEntry",
    "Exists",
    "NotDirectory",
    "IsDirectory",
    "NotEmpty",
    "NoSpace",
    "InvalidArgument",
    "ReadOnlyFs",
    "Busy",
    "BadHandle",
    "AccessDenied",
    "Layout",
    "Stat",
    "FsStats",
    "FatFs",
    "FatFile",
    "mkfs",
    "O_RDONLY",
    "O_WRONLY",
    "O_RDWR",
    "O_CREAT",
    "O_EXCL",
    "O_TRUNC",
    "O_APPEND",
]


class MountError(FsError):
    """The volume cannot be mounted; the message says what is wrong with it."""

    code = errno.EINVAL


class BadBootSector(MountError):
    """No FAT boot sector (signature or jump instruction missing)."""


class BadBpb(MountError):
    """The BIOS parameter block holds impossible values."""


class FatMismatch(MountError):
    """The FAT copies disagree too much to trust either, or FAT 1 is garbage."""


class TruncatedImage(MountError):
    """The device is smaller than the filesystem the boot sector describes."""


class CorruptFs(FsError):
    """Damage found in use: a cluster chain that loops, leaves the volume, runs into a free
    cluster or ends early, or a directory that leads back to a parent. It names the damaged file
    or directory (`filename`) so the rest of the volume can go on being used; errno EUCLEAN
    ("structure needs cleaning") is what Linux filesystems give for on-disk corruption."""

    code = errno.EUCLEAN

    def __init__(self, message: str, path: str | None = None) -> None:
        # Not "path: message": the shell drops a leading path (the one the command was given),
        # and this path may be deeper than that (du /: damaged /a/b: ...).
        super().__init__(f"damaged {path}: {message}" if path else message)
        self.reason = message
        self.filename = path

    def at(self, path: str) -> CorruptFs:
        """This error, naming `path` unless it already names a file."""
        return self if self.filename or not path else CorruptFs(self.reason, path)


class NoEntry(FsError):
    code = errno.ENOENT


class Exists(FsError):
    code = errno.EEXIST


class NotDirectory(FsError):
    code = errno.ENOTDIR


class IsDirectory(FsError):
    code = errno.EISDIR


class NotEmpty(FsError):
    code = errno.ENOTEMPTY


class NoSpace(FsError):
    code = errno.ENOSPC


class InvalidArgument(FsError):
    code = errno.EINVAL


class ReadOnlyFs(FsError):
    code = errno.EROFS


class Busy(FsError):
    code = errno.EBUSY


class BadHandle(FsError):
    code = errno.EBADF


class AccessDenied(FsError):
    code = errno.EACCES


# open() flags, with Linux's values so the syscall layer can pass them straight through.
O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_TRUNC = 0o1000
O_APPEND = 0o2000

_MODES = {
    "r": O_RDONLY,
    "r+": O_RDWR,
    "w": O_WRONLY | O_CREAT | O_TRUNC,
    "w+": O_RDWR | O_CREAT | O_TRUNC,
    "a": O_WRONLY | O_CREAT | O_APPEND,
    "a+": O_RDWR | O_CREAT | O_APPEND,
    "x": O_WRONLY | O_CREAT | O_EXCL,
    "x+": O_RDWR | O_CREAT | O_EXCL,
}

FAT12_MAX_CLUSTERS = 4084  # a volume with fewer than 4085 clusters is FAT12 (Microsoft's rule)
FAT16_MAX_CLUSTERS = 65524
FAT32_MAX_CLUSTERS = 0x0FFFFFF5
MAX_DIR_ENTRIES = 65536  # a directory may not exceed 2 MiB of entries
MAX_MOUNT_PROBLEMS = 100  # the allocation check stops listing damage after this many
CUT_APPEND = "one cluster past its size"  # what the allocation check says of a cut append
FSINFO_LEAD = 0x41615252
FSINFO_STRUCT = 0x61417272
FSINFO_TRAIL = 0xAA550000
FSINFO_UNKNOWN = 0xFFFFFFFF
MEDIA_FIXED_DISK = 0xF8
FAT32_NO_MIRRORING = 0x80  # FAT32 extended flags: only the active FAT (bits 0-3) is current
_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))
_BPB = struct.Struct("<HBHBHHBHHHII")  # from byte 11: bps .. total sectors (32-bit)


@dataclass(frozen=True)
class Layout:
    """Where everything is on the volume, from the boot sector (all in sectors of 512 bytes)."""

    fat_type: int  # 12, 16 or 32
    sectors_per_cluster: int
    reserved_sectors: int
    fat_count: int
    fat_sectors: int
    root_entry_count: int  # 0 on FAT32 (the root is a cluster chain)
    total_sectors: int
    media: int
    root_cluster: int  # FAT32 only
    fsinfo_sector: int  # FAT32 only (0 = none)
    active_fat: int | None  # FAT32 with mirroring off: the one FAT kept current (0-based)
    hidden_sectors: int
    label: str
    unsafe_to_write: str = ""  # why the boot sector forbids writing, "" if nothing does

    @property
    def root_dir_start(self) -> int:
        return self.reserved_sectors + self.fat_count * self.fat_sectors

    @property
    def root_dir_sectors(self) -> int:
        return (self.root_entry_count * ENTRY_SIZE + BLOCK_SIZE - 1) // BLOCK_SIZE

    @property
    def data_start(self) -> int:
        return self.root_dir_start + self.root_dir_sectors

    @property
    def cluster_count(self) -> int:
        return (self.total_sectors - self.data_start) // self.sectors_per_cluster

    @property
    def max_cluster(self) -> int:
        return self.cluster_count + 1

    @property
    def cluster_bytes(self) -> int:
        return self.sectors_per_cluster * BLOCK_SIZE


def fat_type_for(cluster_count: int) -> int:
    if cluster_count <= FAT12_MAX_CLUSTERS:
        return 12
    if cluster_count <= FAT16_MAX_CLUSTERS:
        return 16
    return 32


def parse_boot_sector(boot: bytes, device_blocks: int) -> Layout:
    """Check a boot sector and derive the volume layout; raises a MountError saying why not."""
    if len(boot) < BLOCK_SIZE:
        raise TruncatedImage("truncated image: shorter than one sector, no boot sector")
    if boot[510:512] != b"\x55\xaa":
        raise BadBootSector(
            f"bad boot sector signature: bytes 510-511 are {boot[510:512].hex()}, expected 55aa"
        )
    if boot[0] not in (0xEB, 0xE9):
        raise BadBootSector(f"boot sector starts with {boot[0]:#04x}, not a jump: not FAT")
    (
        bps,
        spc,
        reserved,
        fats,
        root_entries,
        total16,
        media,
        fat16,
        _spt,
        _heads,
        hidden,
        total32,
    ) = _BPB.unpack_from(boot, 11)
    # The checks fsck.fat makes of a boot sector (dosfstools boot.c), plus Linux's media rule.
    if bps & (bps - 1) or not 512 <= bps <= 4096:
        raise BadBpb(f"bytes per sector is {bps}: must be a power of two from 512 to 4096")
    if bps != BLOCK_SIZE:
        raise BadBpb(f"{bps} bytes per sector: only 512 is supported")
    if spc == 0 or spc & (spc - 1) or spc > 128:
        raise BadBpb(f"sectors per cluster is {spc}, must be a power of two up to 128")
    if reserved == 0:
        raise BadBpb("reserved sector count is 0 (the boot sector itself is reserved)")
    if not 1 <= fats <= 2:
        raise BadBpb(f"{fats} FAT copies: a FAT volume has 1 or 2")
    if media != 0xF0 and media < 0xF8:
        raise BadBpb(f"media descriptor {media:#04x} is not a FAT media byte (0xf0, 0xf8-0xff)")
    if root_entries % (BLOCK_SIZE // ENTRY_SIZE):
        raise BadBpb(
            f"root directory of {root_entries} entries is not a multiple of "
            f"{BLOCK_SIZE // ENTRY_SIZE} (whole sectors)"
        )
    total = total16 or total32
    if total == 0:
        raise BadBpb("total sector count is 0")
    fat32_bpb = fat16 == 0
    root_cluster = fsinfo = flags = 0
    if fat32_bpb:
        fat_size, flags, version, root_cluster, fsinfo = struct.unpack_from("<IHHIH", boot, 36)
        if version != 0:
            raise BadBpb(f"FAT32 version {version:#06x} is not supported")
        if root_entries != 0:
            raise BadBpb("FAT32 boot sector with a fixed root directory")
        label_offset = 71
    else:
        fat_size = fat16
        if root_entries == 0:
            raise BadBpb("FAT12/16 boot sector with no root directory entries")
        label_offset = 43
    if fat_size == 0:
        raise BadBpb("FAT size is 0 sectors")
    has_label = boot[label_offset - 5] == 0x29  # extended boot signature: id, label, type
    label = display_short_name(boot[label_offset : label_offset + 11]) if has_label else ""
    layout = Layout(
        fat_type=0,
        sectors_per_cluster=spc,
        reserved_sectors=reserved,
        fat_count=fats,
        fat_sectors=fat_size,
        root_entry_count=root_entries,
        total_sectors=total,
        media=media,
        root_cluster=root_cluster,
        fsinfo_sector=fsinfo if 1 <= fsinfo < reserved else 0,  # never outside the reserved area
        unsafe_to_write=(
            f"FSInfo sector {fsinfo} is outside the {reserved} reserved sectors"
            if fat32_bpb and reserved <= fsinfo < 0xFFFF
            else ""
        ),
        active_fat=flags & 0x0F if flags & FAT32_NO_MIRRORING else None,
        hidden_sectors=hidden,
        label=label,
    )
    if layout.data_start + spc > total:
        raise BadBpb(
            f"no room for data: FATs and root end at sector {layout.data_start} of {total}"
        )
    clusters = layout.cluster_count
    fat_type = fat_type_for(clusters)
    if fat32_bpb != (fat_type == 32):
        kind = "FAT32" if fat32_bpb else "FAT12/16"
        raise BadBpb(f"{kind} boot sector but {clusters} clusters make it FAT{fat_type}")
    entries_fit = fat_size * BLOCK_SIZE * 8 // fat_type
    if entries_fit < clusters + 2:
        raise BadBpb(f"FAT of {fat_size} sectors cannot map {clusters} clusters")
    if fat_type == 32 and not 2 <= root_cluster <= clusters + 1:
        raise BadBpb(f"FAT32 root cluster {root_cluster} is outside the volume")
    if total > device_blocks:
        raise TruncatedImage(
            f"truncated image: the boot sector describes {total} sectors, "
            f"the device holds {device_blocks}"
        )
    return replace(layout, fat_type=fat_type)


class _FatTable:
    """The allocation table: decoded entries for fast searching, the raw bytes of FAT 1 for
    writing back, and the set of sectors changed since the last flush."""

    def __init__(self, device: BlockDevice, layout: Layout, raw: bytearray) -> None:
        self.device = device
        self.layout = layout
        self.raw = raw
        self.bits = layout.fat_type
        self.max_cluster = layout.max_cluster
        self.eoc = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[self.bits]
        self.eoc_min = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.bits]
        self.bad = self.eoc_min - 1
        count = self.max_cluster + 1
        if self.bits == 16:
            self.entries = array("I", array("H", bytes(raw[: 2 * count])))
        elif self.bits == 32:
            words = bytearray(raw[: 4 * count])
            words[3::4] = words[3::4].translate(_LOW_NIBBLE)  # drop the 4 reserved top bits
            self.entries = array("I", bytes(words))
        else:
            self.entries = array("I", (self._decode12(n) for n in range(count)))
        self.free = self.entries[2:].count(0)
        self.next_free = 2
        self.dirty: set[int] = set()

    def _decode12(self, cluster: int) -> int:
        offset = cluster * 3 // 2
        pair = self.raw[offset] | (self.raw[offset + 1] << 8)
        return pair >> 4 if cluster & 1 else pair & 0xFFF

    def get(self, cluster: int) -> int:
        return self.entries[cluster]

    def set(self, cluster: int, value: int) -> None:
        old = self.entries[cluster]
        if (old == 0) != (value == 0):
            self.free += 1 if value == 0 else -1
        self.entries[cluster] = value
        raw = self.raw
        if self.bits == 16:
            offset = 2 * cluster
            struct.pack_into("<H", raw, offset, value)
            self.dirty.add(offset // BLOCK_SIZE)
        elif self.bits == 32:
            offset = 4 * cluster
            keep = raw[offset + 3] & 0xF0  # the top four bits are reserved: preserve them
            struct.pack_into("<I", raw, offset, value | (keep << 24))
            self.dirty.add(offset // BLOCK_SIZE)
        else:
            offset = cluster * 3 // 2
            if cluster & 1:
                raw[offset] = (raw[offset] & 0x0F) | ((value << 4) & 0xF0)
                raw[offset + 1] = value >> 4
            else:
                raw[offset] = value & 0xFF
                raw[offset + 1] = (raw[offset + 1] & 0xF0) | (value >> 8)
            self.dirty.add(offset // BLOCK_SIZE)
            self.dirty.add((offset + 1) // BLOCK_SIZE)

    def is_end(self, value: int) -> bool:
        return value >= self.eoc_min

    def chain(self, first: int) -> list[int]:
        """The clusters of a chain, at most the volume's cluster count of them; raises
        CorruptFs (without a path: the caller knows it) for a loop, a link to a free or bad
        cluster, or one outside the data area."""
        entries, max_cluster, eoc_min = self.entries, self.max_cluster, self.eoc_min
        if not 2 <= first <= max_cluster:
            raise CorruptFs(f"first cluster {first:#x} is outside the data area (2..{max_cluster})")
        clusters = [first]
        cluster = first
        while True:
            following = entries[cluster]
            if following >= eoc_min:
                return clusters
            if not 2 <= following <= max_cluster:
                if following == 0 and cluster == first:
                    raise CorruptFs(f"first cluster {first} is marked free in the FAT")
                if following == 0:
                    raise CorruptFs(f"cluster {cluster} links to a free cluster")
                if following == self.bad:
                    raise CorruptFs(f"cluster {cluster} links to a cluster marked bad")
                raise CorruptFs(f"cluster {cluster} links to {following:#x}, outside the volume")
            if len(clusters) >= max_cluster - 1:
                raise CorruptFs(f"cluster chain from {first} loops")
            clusters.append(following)
            cluster = following

    def allocate(self, count: int, near: int = 2) -> list[int]:
        """Mark `count` free clusters as one new chain ending in EOC; NoSpace if there are
        fewer free clusters (then nothing changes)."""
        if count <= 0:
            return []
        if count > self.free:
            raise NoSpace(f"no space left: {count} clusters wanted, {self.free} free")
        found: list[int] = []
        entries, limit = self.entries, self.max_cluster + 1
        position = min(max(near, 2), limit - 1)
        wrapped = False
        while len(found) < count:
            try:
                cluster = entries.index(0, position, limit)
            except ValueError:
                if wrapped:
                    raise CorruptFs("free cluster count disagrees with the FAT") from None
                wrapped, position = True, 2
                continue
            found.append(cluster)
            position = cluster + 1
        for this, following in zip(found, found[1:], strict=False):
            self.set(this, following)
        self.set(found[-1], self.eoc)
        self.next_free = found[-1] + 1 if found[-1] < self.max_cluster else 2
        return found

    def release(self, clusters: list[int]) -> None:
        for cluster in clusters:
            self.set(cluster, 0)

    def flush(self) -> None:
        """Write changed sectors to every FAT copy, copy 1 first."""
        if not self.dirty:
            return
        sectors = sorted(self.dirty)
        self.dirty.clear()
        runs: list[tuple[int, int]] = []
        for sector in sectors:
            if runs and runs[-1][0] + runs[-1][1] == sector:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((sector, 1))
        layout = self.layout
        for copy in range(layout.fat_count):
            base = layout.reserved_sectors + copy * layout.fat_sectors
            for start, length in runs:
                data = bytes(self.raw[start * BLOCK_SIZE : (start + length) * BLOCK_SIZE])
                self.device.write_blocks(base + start, data)


def _fat_intact(raw: bytes | bytearray, bits: int) -> bool:
    """fsck.fat's test of a FAT copy: entry 0 holds the media byte with every bit above it set
    (0xFxx, 0xFFxx, 0x0FFFFFxx); a zeroed or overwritten first sector fails it."""
    if bits == 12:
        return raw[1] & 0x0F == 0x0F
    if bits == 16:
        return raw[1] == 0xFF
    return raw[1] == raw[2] == 0xFF and raw[3] & 0x0F == 0x0F


def _load_fats(device: BlockDevice, layout: Layout) -> tuple[bytearray, str | None]:
    """(the FAT to use, why the volume must not be written or None). As fsck.fat does: copies
    that agree are used; when they differ, the first copy whose media entry is intact is used
    and the volume is read-only (only a repair may pick one copy over the other: a crash
    between the writes of copy 1 and copy 2 also leaves them differing); with no intact copy
    the mount is refused."""
    bits = layout.fat_type
    used = (layout.max_cluster + 1) * bits // 8 + 1  # bytes holding cluster entries
    if layout.active_fat is not None:
        active = min(layout.active_fat, layout.fat_count - 1)
        start = layout.reserved_sectors + active * layout.fat_sectors
        return bytearray(device.read_blocks(start, layout.fat_sectors)), (
            f"FAT32 mirroring is off (FAT {active + 1} is the active one): not written"
        )
    copies = [
        bytearray(
            device.read_blocks(layout.reserved_sectors + n * layout.fat_sectors, layout.fat_sectors)
        )
        for n in range(layout.fat_count)
    ]
    intact = [_fat_intact(copy, bits) for copy in copies]
    first = copies[0]
    differing = [n + 1 for n, copy in enumerate(copies[1:], 1) if copy[:used] != first[:used]]
    if not differing:
        if intact[0]:
            return first, None
        return first, f"FAT 1 does not start with a media entry ({first[:4].hex()}): damaged FAT"
    if not any(intact):
        raise FatMismatch(
            "FAT copies differ and none starts with a media entry: both FATs are damaged"
        )
    chosen = intact.index(True)
    sectors = sum(
        1
        for s in range(0, used, BLOCK_SIZE)
        if copies[differing[0] - 1][s : s + BLOCK_SIZE] != first[s : s + BLOCK_SIZE]
    )
    damaged = [str(n + 1) for n, ok in enumerate(intact) if not ok]
    return copies[chosen], (
        f"FAT copies differ (FAT 1 and FAT {differing[0]} in {sectors} sectors), "
        + (f"FAT {', '.join(damaged)} damaged, " if damaged else "")
        + f"using FAT {chosen + 1}"
    )


@dataclass(frozen=True)
class Stat:
    name: str
    short_name: str
    size: int
    is_dir: bool
    attributes: int
    mtime: datetime | None
    ctime: datetime | None
    atime: datetime | None
    first_cluster: int


@dataclass(frozen=True)
class FsStats:
    fat_type: int
    cluster_size: int
    total_clusters: int
    free_clusters: int
    label: str

    @property
    def free_bytes(self) -> int:
        return self.free_clusters * self.cluster_size

    @property
    def total_bytes(self) -> int:
        return self.total_clusters * self.cluster_size


def _stat_of(entry: RawEntry) -> Stat:
    return Stat(
        name=entry.name,
        short_name=entry.short_name,
        size=0 if entry.is_dir else entry.size,
        is_dir=entry.is_dir,
        attributes=entry.attr,
        mtime=entry.mtime,
        ctime=entry.ctime,
        atime=entry.adate,
        first_cluster=entry.first_cluster,
    )


class _Directory:
    """One directory's entries in memory, and the sectors they live in."""

    def __init__(self, cluster: int, raw: bytearray, sectors: list[int], fixed: bool) -> None:
        self.cluster = cluster  # 0 for the fixed FAT12/16 root
        self.raw = raw
        self.sectors = sectors
        self.fixed = fixed
        self._entries: list[RawEntry] | None = None

    def entries(self) -> list[RawEntry]:
        if self._entries is None:
            self._entries = parse_directory(self.raw)
        return self._entries

    def find(self, name: str) -> RawEntry | None:
        wanted = name.casefold()
        for entry in self.entries():
            if entry.name.casefold() == wanted or entry.short_name.casefold() == wanted:
                return entry
        return None

    def changed(self) -> None:
        self._entries = None


_DOT_SLOTS = [(0, DOT_NAME), (1, DOTDOT_NAME)]  # how every subdirectory starts


def _child_path(directory: _Directory, index: int, path: str) -> str:
    """The path of the entry in slot `index` of `directory` (at `path`)."""
    name = next((e.name for e in directory.entries() if e.index == index), f"slot {index}")
    return path.rstrip("/") + "/" + name


class _Node:
    """The in-memory state of one open file, shared by all its handles."""

    def __init__(self, dir_cluster: int, index: int, entry: RawEntry, path: str) -> None:
        self.path = path  # as first opened: names the file in a CorruptFs error
        self.dir_cluster = dir_cluster
        self.index = index
        self.first_cluster = entry.first_cluster
        self.size = entry.size
        self.attr = entry.attr
        self.chain: list[int] | None = None
        self.handles = 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.dir_cluster, self.index)


def _split(path: str) -> list[str]:
    """Path components with '.' and '..' resolved lexically (FAT has no links)."""
    if not isinstance(path, str):
        raise InvalidArgument(f"path must be a string, not {type(path).__name__}")
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


def _parse_mode(mode: str | int) -> int:
    if isinstance(mode, int):
        if mode & O_ACCMODE == O_ACCMODE:
            raise InvalidArgument("open flags ask for both O_WRONLY and O_RDWR")
        return mode
    flags = _MODES.get(mode.replace("b", ""))
    if flags is None:
        raise InvalidArgument(f"unknown open mode {mode!r}")
    return flags


@dataclass(frozen=True)
class _CutAppend:
    """A file whose chain has one cluster more than its size needs: the state a power cut
    leaves while an existing file grows into a new cluster (the FAT was written, the
    directory entry's size not yet)."""

    path: str
    size: int
    length: int  # clusters in its chain
    last: int  # the last cluster its size needs
    extra: int  # the cluster linked after it


class FatFs:
    """A mounted FAT volume. `now` supplies timestamps (the kernel passes the RTC's time)."""

    def __init__(
        self,
        device: BlockDevice,
        read_only: bool = False,
        now: Callable[[], datetime] = datetime.now,
        cache_pages: int = PAGE_CACHE_PAGES,
    ) -> None:
        if device.block_count < 1:
            raise TruncatedImage("truncated image: shorter than one sector, no boot sector")
        self.device = device
        self.read_only = read_only
        self.now = now
        self.layout = parse_boot_sector(device.read_blocks(0, 1), device.block_count)
        raw_fat, damage = _load_fats(device, self.layout)
        damage = self.layout.unsafe_to_write or damage
        # Every write goes through the page cache (write-through, so it stays exact); file
        # data is read through it, metadata (cached above it as FAT and directories) is not.
        self._cache = PageCache(device, cache_pages)
        self._fat = _FatTable(self._cache, self.layout, raw_fat)
        self._fixed_root = self.layout.fat_type != 32
        self.root_cluster = 0 if self._fixed_root else self.layout.root_cluster
        self._dirs: dict[int, _Directory] = {}
        self._nodes: dict[tuple[int, int], _Node] = {}
        self._fsinfo_stale = False
        self._closed = False
        # Subdirectory entries the allocation check found damaged, by (directory cluster,
        # entry index): refused when a path goes through them.
        self._damaged: dict[tuple[int, int], str] = {}
        self._lost: list[int] = []  # in use, reached by no chain: set by an undamaged check
        self._cut_append: _CutAppend | None = None  # set by a check that found only that
        self._load_dir(self.root_cluster, "/")  # a damaged root shows up now, not on first use
        problems = self._check_allocation()
        if problems and damage is None:
            more = len(problems) - 1
            damage = problems[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        # Why a volume that looked writable was mounted read-only: one line, for the kernel
        # to show at mount and in every refused change. None when nothing is wrong.
        self.read_only_reason = damage and f"{damage}; repair it with fsck.fat"
        self.read_only = read_only or damage is not None
        self.reclaimed = 0  # lost clusters this mount gave back
        self.repaired: str | None = None  # the cut append this mount repaired, in one line
        if self._cut_append is not None and not self.read_only:
            self._repair_cut_append(self._cut_append)
        if self._lost and not self.read_only:
            self._reclaim_lost()

    def lost_clusters(self) -> int:
        """Clusters the mount found in use but reached by no chain (0 on a damaged volume,
        where that is not known)."""
        return len(self._lost)

    def _reclaim_lost(self) -> None:
        """Free the lost clusters a cut write left (see the module docstring), as fsck.fat
        does: only on an undamaged volume mounted writable, with the FAT written copy 1 first
        like every change, so a cut here leaves at worst FAT copies fsck.fat reconciles."""
        self._modifying()
        self._fat.release(self._lost)
        self.flush()
        self.reclaimed, self._lost = len(self._lost), []

    def _repair_cut_append(self, cut: _CutAppend) -> None:
        """Repair a cut append as fsck.fat -a does ("Truncating file to SIZE bytes"): the size
        stays, the cluster past it is freed; the FAT is written copy 1 first, as every change,
        so a cut here leaves at worst FAT copies that differ, which mount read-only."""
        self._modifying()
        self._fat.set(cut.last, self._fat.eoc_min)  # fsck.fat's end mark (FF8), not our FFF
        self._fat.release([cut.extra])
        self.flush()
        self.repaired = f"{cut.path}: freed the cluster past its {cut.size} bytes (a cut append)"

    def _check_allocation(self) -> list[str]:
        """The allocation check of a mount: follow every chain reachable from the root once,
        as fsck.fat does, and return the damage that writing would spread ("path: what"): a
        chain that runs into a free cluster, leaves the data area, loops or is cross-linked
        with another, a file whose chain does not fit its size, a subdirectory that does not
        start with '.' and '..' (the data area has moved). Clean volumes then keep an invariant
        allocation relies on: every cluster any entry uses is marked used in the FAT. Lost
        clusters (used, owned by nothing: what a crash leaves) are not damage: when the whole
        tree was followed they are listed in `_lost`, for the mount to reclaim.
        Cost: one read of every directory and one step per used cluster."""
        fat = self._fat
        entries, max_cluster, eoc_min = fat.entries, fat.max_cluster, fat.eoc_min
        cluster_bytes = self.layout.cluster_bytes
        owned = bytearray(max_cluster + 1)
        problems: list[str] = []
        cut: list[_CutAppend] = []  # files whose chain has one cluster past their size
        tail: list[int] = []  # the last claim's CUT_APPEND: chain length, last needed, extra

        def claim(first: int, size: int | None) -> str:
            """Mark one chain as owned; what is wrong with it, or "" if nothing. A file's chain
            one cluster longer than its size needs is CUT_APPEND, its clusters in `tail`."""
            damage = ""
            if not 2 <= first <= max_cluster:
                damage = f"first cluster {first:#x} is outside the data area"
            length, cluster, previous = 1, first, 0
            while not damage:
                if owned[cluster]:
                    damage = f"chain is cross-linked or loops at cluster {cluster}"
                    break
                owned[cluster] = 1
                following = entries[cluster]
                if following >= eoc_min:
                    needed = -(-size // cluster_bytes) if size is not None else length
                    if size and length == needed + 1:
                        tail[:] = [length, previous, cluster]
                        damage = CUT_APPEND
                    elif length != needed:
                        damage = f"{size} bytes in a chain of {length} clusters"
                    break
                if not 2 <= following <= max_cluster:
                    damage = (
                        f"cluster {cluster} of its chain is marked free"
                        if following == 0
                        else f"cluster {cluster} links to {following:#x}, outside the data area"
                    )
                previous, cluster = cluster, following
                length += 1
            return damage

        if not self._fixed_root:
            damage = claim(self.root_cluster, None)
            if damage:
                return [f"/: {damage}"]
        pending = [(self.root_cluster, "/", self.root_cluster)]
        while pending and len(problems) < MAX_MOUNT_PROBLEMS:
            cluster, path, parent = pending.pop()
            try:
                directory = self._load_dir(cluster, path)
            except CorruptFs as error:
                problems.append(str(error))
                continue
            listed = list(scan_entries(directory.raw))
            if cluster != self.root_cluster:
                damage = self._dot_damage(listed, cluster, parent)
                if damage:
                    problems.append(f"{path}: {damage}")
                    continue
            for index, raw_name, attr, first, size in listed:
                if raw_name in (DOT_NAME, DOTDOT_NAME):
                    if index >= 2 or cluster == self.root_cluster:  # fsck: a bad name
                        name = raw_name.decode().strip()
                        problems.append(f"{path}: stray '{name}' entry in slot {index}")
                    continue
                is_dir = bool(attr & ATTR_DIRECTORY)
                if attr & ATTR_VOLUME_ID:
                    if first or size:
                        problems.append(f"{path}: volume label entry in slot {index} has data")
                    continue
                if first:
                    damage = claim(first, None if is_dir else size)
                else:
                    damage = "directory entry has no cluster" if is_dir else ""
                    damage = damage or (f"{size} bytes but no clusters" if size else "")
                if damage == CUT_APPEND:
                    path_of = _child_path(directory, index, path)
                    cut.append(_CutAppend(path_of, size, *tail))
                elif damage:  # the name is looked up only now: most directories are clean
                    problems.append(f"{_child_path(directory, index, path)}: {damage}")
                    if is_dir:
                        self._damaged[(cluster, index)] = damage
                elif is_dir:
                    pending.append((first, _child_path(directory, index, path), cluster))
        if len(cut) == 1 and not problems:  # the one state a cut append leaves: repairable
            self._cut_append = cut[0]
        else:  # more than one file mid-append cannot come from one writer: damage
            problems += [f"{c.path}: {c.size} bytes in a chain of {c.length} clusters" for c in cut]
        if not problems:  # every chain was followed: what is in use and unowned is lost
            bad = fat.bad
            self._lost = [
                cluster
                for cluster in range(2, max_cluster + 1)
                if entries[cluster] and not owned[cluster] and entries[cluster] != bad
            ]
        return problems

    def _dot_damage(
        self, listed: list[tuple[int, bytes, int, int, int]], cluster: int, parent: int
    ) -> str:
        """What is wrong with a subdirectory's '.' and '..' entries, or "": as fsck.fat, they
        must be in slots 0 and 1, pointing at the directory and its parent (0 for the root)."""
        if [entry[:2] for entry in listed[:2]] != _DOT_SLOTS:
            return "no '.' and '..' entries first (data area moved?)"
        if any(
            entry[2] & (ATTR_DIRECTORY | ATTR_VOLUME_ID) != ATTR_DIRECTORY for entry in listed[:2]
        ):
            return "its '.' or '..' entry is not marked as a directory"
        dot, dotdot = listed[0][3], listed[1][3]
        if dot != cluster:
            return f"'.' points to cluster {dot}, not {cluster}"
        parents = (0, self.root_cluster) if parent == self.root_cluster else (parent,)
        if dotdot not in parents:
            return f"'..' points to cluster {dotdot}, not {parents[-1]}"
        return ""

    # ----------------------------------------------------------------- volume
    @property
    def fat_type(self) -> int:
        return self.layout.fat_type

    def statfs(self) -> FsStats:
        return FsStats(
            fat_type=self.layout.fat_type,
            cluster_size=self.layout.cluster_bytes,
            total_clusters=self.layout.cluster_count,
            free_clusters=self._fat.free,
            label=self.layout.label,
        )

    def flush(self) -> None:
        """Everything written so far reaches the device, and FSInfo tells the true free count."""
        if self.read_only:
            return
        self._fat.flush()
        if self._fsinfo_stale:
            self._write_fsinfo(self._fat.free, self._fat.next_free)
            self._fsinfo_stale = False
        self.device.flush()

    def busy(self) -> bool:
        """Some file on the volume is open (an unmount must wait)."""
        return bool(self._nodes)

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self) -> FatFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_fsinfo(self, free: int, next_free: int) -> None:
        sector = self.layout.fsinfo_sector
        if self.layout.fat_type != 32 or sector == 0:
            return
        data = bytearray(self.device.read_blocks(sector, 1))
        if struct.unpack_from("<I", data, 0)[0] != FSINFO_LEAD:
            return  # no FSInfo there: leave the sector alone
        struct.pack_into("<II", data, 488, free, next_free)
        self._cache.write_blocks(sector, bytes(data))

    def _read_only_error(self) -> ReadOnlyFs:
        reason = self.read_only_reason
        return ReadOnlyFs("filesystem is mounted read-only" + (f": {reason}" if reason else ""))

    def _modifying(self) -> None:
        """Guard at the start of every change."""
        if self._closed:
            raise BadHandle("filesystem is unmounted")
        if self.read_only:
            raise self._read_only_error()
        if not self._fsinfo_stale and self.layout.fat_type == 32:
            self._write_fsinfo(FSINFO_UNKNOWN, FSINFO_UNKNOWN)
            self._fsinfo_stale = True

    def _commit_fat(self) -> None:
        self._fat.flush()

    # ----------------------------------------------------------------- clusters
    def _cluster_lba(self, cluster: int) -> int:
        return self.layout.data_start + (cluster - 2) * self.layout.sectors_per_cluster

    def _sector_runs(self, chain: list[int], first: int, last: int) -> list[tuple[int, int]]:
        """Device (lba, count) runs for file sectors first..last, merging contiguous clusters."""
        spc = self.layout.sectors_per_cluster
        runs: list[tuple[int, int]] = []
        sector = first
        while sector <= last:
            index, within = divmod(sector, spc)
            lba = self._cluster_lba(chain[index]) + within
            count = min(spc - within, last - sector + 1)
            if runs and runs[-1][0] + runs[-1][1] == lba:
                runs[-1] = (runs[-1][0], runs[-1][1] + count)
            else:
                runs.append((lba, count))
            sector += count
        return runs

    def _forget(self, clusters: list[int]) -> None:
        """Drop freed clusters' pages from the cache: their data is garbage now."""
        spc = self.layout.sectors_per_cluster
        for lba, count in self._sector_runs(clusters, 0, len(clusters) * spc - 1):
            self._cache.discard(lba, count)

    def _zero_clusters(self, clusters: list[int]) -> None:
        zeros = bytes(self.layout.cluster_bytes)
        for cluster in clusters:
            self._cache.write_blocks(self._cluster_lba(cluster), zeros)

    # ----------------------------------------------------------------- directories
    def _load_dir(self, cluster: int, path: str = "") -> _Directory:
        """The directory at `cluster`; `path` names it in a CorruptFs error."""
        cached = self._dirs.get(cluster)
        if cached is not None:
            return cached
        layout = self.layout
        if cluster == 0:
            if not self._fixed_root:
                raise CorruptFs("directory entry points to cluster 0 on FAT32", path or None)
            start = layout.root_dir_start
            sectors = list(range(start, start + layout.root_dir_sectors))
            raw = bytearray(self.device.read_blocks(start, layout.root_dir_sectors))
            directory = _Directory(0, raw, sectors, fixed=True)
        else:
            chain = self._chain(cluster, path)
            if len(chain) * layout.cluster_bytes > MAX_DIR_ENTRIES * ENTRY_SIZE:
                raise CorruptFs(f"directory at cluster {cluster} is over 2 MiB", path or None)
            spc = layout.sectors_per_cluster
            runs = self._sector_runs(chain, 0, len(chain) * spc - 1)
            raw = bytearray(b"".join(self.device.read_blocks(lba, n) for lba, n in runs))
            sectors = [lba + i for lba, n in runs for i in range(n)]
            directory = _Directory(cluster, raw, sectors, fixed=False)
        self._dirs[cluster] = directory
        return directory

    def _write_slots(self, directory: _Directory, first_slot: int, data: bytes) -> None:
        """Put entries into the directory's buffer and write the sectors they touch."""
        start = first_slot * ENTRY_SIZE
        directory.raw[start : start + len(data)] = data
        directory.changed()
        for index in range(start // BLOCK_SIZE, (start + len(data) - 1) // BLOCK_SIZE + 1):
            block = bytes(directory.raw[index * BLOCK_SIZE : (index + 1) * BLOCK_SIZE])
            self._cache.write_blocks(directory.sectors[index], block)

    def _free_slot_run(self, directory: _Directory, count: int) -> int | None:
        """The first slot of `count` consecutive free slots (0x00 or deleted), or None."""
        raw = directory.raw
        total, used = len(raw) // ENTRY_SIZE, used_slots(raw)
        run = 0
        for index in range(used):
            if raw[index * ENTRY_SIZE] in FREE_LEADS:
                run += 1
                if run == count:
                    return index - count + 1
            else:
                run = 0
        start = used - run  # the free run reaching into the zeroed tail
        return start if total - start >= count else None

    def _grow_dir(self, directory: _Directory, slots: int) -> None:
        """Append zeroed clusters so `slots` more entries fit: allocate, zero, then link."""
        if directory.fixed:
            raise NoSpace("the root directory is full")
        cluster_slots = self.layout.cluster_bytes // ENTRY_SIZE
        count = -(-slots // cluster_slots)
        if (len(directory.raw) // ENTRY_SIZE) + count * cluster_slots > MAX_DIR_ENTRIES:
            raise NoSpace("directory has reached 65536 entries")
        chain = self._fat.chain(directory.cluster)
        new = self._fat.allocate(count, near=chain[-1] + 1)
        self._commit_fat()
        self._zero_clusters(new)
        self._fat.set(chain[-1], new[0])
        self._commit_fat()
        spc = self.layout.sectors_per_cluster
        directory.raw += bytes(count * self.layout.cluster_bytes)
        directory.sectors += [self._cluster_lba(c) + i for c in new for i in range(spc)]
        directory.changed()

    def _add_entry(self, directory: _Directory, name: str, template: bytes) -> RawEntry:
        """Write `template` (a 32-byte 8.3 entry: attributes, dates, cluster, size) under a new
        unique short name, preceded by long-name entries when `name` needs them."""
        check_long_name(name)
        taken = {entry.raw_name for entry in directory.entries()}
        raw_name = make_short_name(name, taken)
        short_entry = raw_name + template[11:]
        long_entries = (
            make_long_entries(name, raw_name) if display_short_name(raw_name) != name else []
        )
        slots = len(long_entries) + 1
        position = self._free_slot_run(directory, slots)
        if position is None:
            self._grow_dir(directory, slots)
            position = self._free_slot_run(directory, slots)
            assert position is not None
        self._write_slots(directory, position, b"".join(long_entries) + short_entry)
        for found in directory.entries():
            if found.index == position + slots - 1:
                return found
        raise CorruptFs("new directory entry did not read back")

    def _entry_bytes(self, directory: _Directory, index: int) -> bytearray:
        return directory.raw[index * ENTRY_SIZE : (index + 1) * ENTRY_SIZE]

    def _remove_entry(self, directory: _Directory, entry: RawEntry) -> None:
        data = directory.raw[entry.first_slot * ENTRY_SIZE : (entry.index + 1) * ENTRY_SIZE]
        for slot in range(entry.index - entry.first_slot + 1):
            data[slot * ENTRY_SIZE] = DELETED
        self._write_slots(directory, entry.first_slot, bytes(data))

    def _subdir(self, entry: RawEntry, path: str) -> _Directory:
        """The directory a subdirectory entry points to. Paths are resolved lexically, so '..'
        never gets here: a subdirectory at cluster 0 (the FAT12/16 root) is damage."""
        if entry.first_cluster == 0:
            raise CorruptFs("directory entry has no cluster (it would be the root)", path)
        return self._load_dir(entry.first_cluster, path)

    def _walk_to(self, parts: list[str], path: str) -> _Directory:
        """The directory `parts` leads to; one that leads back to a directory on its own path
        (a loop no real FAT has) is reported as corrupt, so no walk of the tree goes round."""
        directory = self._load_dir(self.root_cluster, "/")
        on_path = {directory.cluster}
        for depth, part in enumerate(parts):
            here = "/" + "/".join(parts[: depth + 1])
            entry = directory.find(part)
            if entry is None:
                raise NoEntry(f"{here}: no such file or directory")
            if not entry.is_dir:
                raise NotDirectory(f"{here}: not a directory")
            if entry.first_cluster in on_path:
                raise CorruptFs("directory leads back to a directory above it", here)
            damage = self._damaged.get((directory.cluster, entry.index))
            if damage is not None:
                raise CorruptFs(damage, here)
            directory = self._subdir(entry, here)
            on_path.add(directory.cluster)
        return directory

    def _lookup(self, path: str) -> tuple[_Directory, RawEntry | None, str]:
        """(parent directory, entry or None if absent, final name). Root has no entry."""
        parts = _split(path)
        if not parts:
            raise InvalidArgument(f"{path!r} names the root directory")
        parent = self._walk_to(parts[:-1], path)
        return parent, parent.find(parts[-1]), parts[-1]

    def _existing(self, path: str) -> tuple[_Directory, RawEntry]:
        parent, entry, _ = self._lookup(path)
        if entry is None:
            raise NoEntry(f"{path}: no such file or directory")
        return parent, entry

    # ----------------------------------------------------------------- path API
    def exists(self, path: str) -> bool:
        """Like os.path.exists: False also when damage on the way makes `path` unreachable."""
        try:
            self.stat(path)
        except (NoEntry, NotDirectory, CorruptFs):
            return False
        return True

    def stat(self, path: str) -> Stat:
        if not _split(path):
            return Stat("/", "/", 0, True, ATTR_DIRECTORY, None, None, None, self.root_cluster)
        _, entry = self._existing(path)
        return _stat_of(entry)

    def scandir(self, path: str = "/") -> list[Stat]:
        directory = self._walk_to(_split(path), path)
        return [_stat_of(entry) for entry in directory.entries() if not entry.is_dot]

    def listdir(self, path: str = "/") -> list[str]:
        return [stat.name for stat in self.scandir(path)]

    def walk(
        self, path: str = "/", onerror: Callable[[FsError], None] | None = None
    ) -> Iterator[tuple[str, list[str], list[Stat]]]:
        """Like os.walk, top-down: (directory path, subdirectory names, file stats); removing
        names from the yielded list prunes them. A directory that cannot be read (damaged, or a
        second path to a directory already walked) raises, or is passed to `onerror` and
        skipped. Iterative, each directory visited once: no recursion depth, no loop."""
        pending = ["/" + "/".join(_split(path))]
        seen: set[int] = set()
        while pending:
            top = pending.pop()
            try:
                directory = self._walk_to(_split(top), top)
                if directory.cluster in seen:
                    raise CorruptFs("directory is cross-linked with one already walked", top)
                seen.add(directory.cluster)
            except FsError as error:
                if onerror is None:
                    raise
                onerror(error)
                continue
            stats = [_stat_of(entry) for entry in directory.entries() if not entry.is_dot]
            subdirs = [s.name for s in stats if s.is_dir]
            yield top, subdirs, [s for s in stats if not s.is_dir]
            pending.extend(top.rstrip("/") + "/" + name for name in reversed(subdirs))

    def mkdir(self, path: str) -> None:
        if not _split(path):
            raise Exists("/: already exists")
        self._modifying()
        parent, entry, name = self._lookup(path)
        if entry is not None:
            raise Exists(f"{path}: already exists")
        check_long_name(name)
        now = self.now()
        cluster = self._fat.allocate(1, near=self._fat.next_free)[0]
        self._commit_fat()
        block = bytearray(self.layout.cluster_bytes)
        block[0:32] = make_short_entry(b".          ", ATTR_DIRECTORY, cluster, 0, now)
        up = 0 if parent.cluster == self.root_cluster else parent.cluster
        block[32:64] = make_short_entry(b"..         ", ATTR_DIRECTORY, up, 0, now)
        self._cache.write_blocks(self._cluster_lba(cluster), bytes(block))
        try:
            self._add_entry(
                parent, name, make_short_entry(bytes(11), ATTR_DIRECTORY, cluster, 0, now)
            )
        except FsError:
            self._fat.release([cluster])
            self._commit_fat()
            raise

    def rmdir(self, path: str) -> None:
        self._modifying()
        parent, entry = self._existing(path)
        if not entry.is_dir:
            raise NotDirectory(f"{path}: not a directory")
        directory = self._subdir(entry, path)
        if any(not e.is_dot for e in directory.entries()):
            raise NotEmpty(f"{path}: directory not empty")
        chain = self._chain(entry.first_cluster, path)
        self._remove_entry(parent, entry)
        self._dirs.pop(entry.first_cluster, None)
        self._fat.release(chain)
        self._commit_fat()

    def remove(self, path: str) -> None:
        """Delete a file (unlink)."""
        self._modifying()
        parent, entry = self._existing(path)
        if entry.is_dir:
            raise IsDirectory(f"{path}: is a directory")
        if (parent.cluster, entry.index) in self._nodes:
            raise Busy(f"{path}: file is open")
        chain = self._chain(entry.first_cluster, path) if entry.first_cluster else []
        self._remove_entry(parent, entry)
        self._fat.release(chain)
        self._commit_fat()
        self._forget(chain)

    unlink = remove

    def rename(self, source: str, target: str) -> None:
        """Rename or move; an existing target file (or empty directory) is replaced."""
        self._modifying()
        src_parent, src = self._existing(source)
        dst_parent, dst, dst_name = self._lookup(target)
        check_long_name(dst_name)
        src_parts = [p.casefold() for p in _split(source)]
        dst_parts = [p.casefold() for p in _split(target)]
        if src.is_dir and dst_parts[: len(src_parts)] == src_parts and dst_parts != src_parts:
            raise InvalidArgument(f"cannot move {source} inside itself")
        if (src_parent.cluster, src.index) in self._nodes:
            raise Busy(f"{source}: file is open")
        if src.is_dir:
            self._subdir(src, source)  # a damaged directory is found before anything moves
        if dst is not None:
            if dst_parent is src_parent and dst.index == src.index:
                if dst.name == dst_name:
                    return  # same name: nothing to do
                dst = None  # only the letter case changes
            elif dst.is_dir and not src.is_dir:
                raise IsDirectory(f"{target}: is a directory")
            elif src.is_dir and not dst.is_dir:
                raise NotDirectory(f"{target}: not a directory")
            elif dst.is_dir:
                self.rmdir(target)
            else:
                self.remove(target)
            src_parent, src = self._existing(source)
            dst_parent, _, _ = self._lookup(target)
        # The moved entry keeps attributes, dates, cluster and size: only its name changes.
        template = bytes(self._entry_bytes(src_parent, src.index))
        self._add_entry(dst_parent, dst_name, template)
        self._remove_entry(src_parent, src)
        if src.is_dir and src_parent.cluster != dst_parent.cluster:
            self._set_dotdot(src.first_cluster, dst_parent.cluster)

    def _set_dotdot(self, dir_cluster: int, parent_cluster: int) -> None:
        directory = self._load_dir(dir_cluster)
        dotdot = next((e for e in directory.entries() if e.raw_name == b"..         "), None)
        if dotdot is None:
            return
        entry = self._entry_bytes(directory, dotdot.index)
        link = 0 if parent_cluster == self.root_cluster else parent_cluster
        patch_short_entry(entry, link, 0, None)
        self._write_slots(directory, dotdot.index, bytes(entry))

    def truncate(self, path: str, length: int) -> None:
        with self.open(path, "r+") as handle:
            handle.truncate(length)

    def read_file(self, path: str) -> bytes:
        with self.open(path, "r") as handle:
            return handle.read()

    def write_file(self, path: str, data: bytes) -> None:
        with self.open(path, "w") as handle:
            handle.write(data)

    # ----------------------------------------------------------------- handles
    def open(self, path: str, mode: str | int = "r") -> FatFile:
        """Open a file; `mode` is a Python mode string ("r", "w+", "a", "x", ...) or O_* flags."""
        if self._closed:
            raise BadHandle("filesystem is unmounted")
        flags = _parse_mode(mode)
        if not _split(path):
            raise IsDirectory("/: is a directory")
        writing = flags & O_ACCMODE != O_RDONLY or flags & (O_CREAT | O_TRUNC)
        if writing and self.read_only:
            raise self._read_only_error()
        parent, entry, name = self._lookup(path)
        if entry is None:
            if not flags & O_CREAT:
                raise NoEntry(f"{path}: no such file or directory")
            self._modifying()
            template = make_short_entry(bytes(11), ATTR_ARCHIVE, 0, 0, self.now())
            entry = self._add_entry(parent, name, template)
        elif flags & O_CREAT and flags & O_EXCL:
            raise Exists(f"{path}: already exists")
        if entry.is_dir:
            raise IsDirectory(f"{path}: is a directory")
        if flags & O_ACCMODE != O_RDONLY and entry.attr & ATTR_READ_ONLY:
            raise AccessDenied(f"{path}: file is read-only")
        node = self._nodes.get((parent.cluster, entry.index))
        if node is None:
            node = _Node(parent.cluster, entry.index, entry, path)
            self._nodes[node.key] = node
        node.handles += 1
        handle = FatFile(self, node, flags, path)
        if flags & O_TRUNC and flags & O_ACCMODE != O_RDONLY and node.size:
            handle.truncate(0)
        return handle

    def _release(self, node: _Node) -> None:
        node.handles -= 1
        if node.handles == 0:
            self._nodes.pop(node.key, None)

    def _chain_of(self, node: _Node) -> list[int]:
        if node.chain is None:
            chain = self._chain(node.first_cluster, node.path) if node.first_cluster else []
            if len(chain) * self.layout.cluster_bytes < node.size:
                raise CorruptFs(
                    f"file of {node.size} bytes has only {len(chain)} clusters", node.path
                )
            node.chain = chain
        return node.chain

    def _chain(self, first: int, path: str) -> list[int]:
        """The cluster chain of the file or directory at `path` (named if it is damaged)."""
        try:
            return self._fat.chain(first)
        except CorruptFs as error:
            raise error.at(path) from None

    def _read(self, node: _Node, position: int, count: int) -> bytes:
        count = min(count, node.size - position)
        if count <= 0:
            return b""
        chain = self._chain_of(node)
        first, last = position // BLOCK_SIZE, (position + count - 1) // BLOCK_SIZE
        data = b"".join(
            self._cache.read_blocks(lba, n) for lba, n in self._sector_runs(chain, first, last)
        )
        start = position % BLOCK_SIZE
        return data[start : start + count]

    def _write(self, node: _Node, position: int, data: bytes) -> None:
        end = position + len(data)
        if end > 0xFFFFFFFF:
            raise NoSpace("a FAT file cannot exceed 4 GiB - 1")
        chain = self._chain_of(node)
        needed = -(-end // self.layout.cluster_bytes)
        if needed > len(chain):  # NoSpace here, before a hole's zeros are made on the host
            near = chain[-1] + 1 if chain else self._fat.next_free
            new = self._fat.allocate(needed - len(chain), near=near)
            if chain:
                self._fat.set(chain[-1], new[0])
            self._commit_fat()
            chain.extend(new)
            node.first_cluster = chain[0]
        if position > node.size:  # a hole reads as zeros: write them
            data = bytes(position - node.size) + data
            position = node.size
        first, last = position // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        head = position % BLOCK_SIZE
        buffer = bytearray((last - first + 1) * BLOCK_SIZE)
        if head and first * BLOCK_SIZE < node.size:
            buffer[:BLOCK_SIZE] = self._read_file_sector(chain, first)
        if end % BLOCK_SIZE and last * BLOCK_SIZE < node.size and (last != first or not head):
            buffer[-BLOCK_SIZE:] = self._read_file_sector(chain, last)
        buffer[head : head + len(data)] = data
        offset = 0
        for lba, n in self._sector_runs(chain, first, last):
            self._cache.write_blocks(lba, bytes(buffer[offset : offset + n * BLOCK_SIZE]))
            offset += n * BLOCK_SIZE
        node.size = max(node.size, end)
        self._update_entry(node)

    def _read_file_sector(self, chain: list[int], sector: int) -> bytes:
        ((lba, _),) = self._sector_runs(chain, sector, sector)
        return self._cache.read_blocks(lba, 1)

    def _update_entry(self, node: _Node) -> None:
        directory = self._load_dir(node.dir_cluster)
        entry = self._entry_bytes(directory, node.index)
        patch_short_entry(entry, node.first_cluster, node.size, self.now())
        entry[11] |= ATTR_ARCHIVE
        self._write_slots(directory, node.index, bytes(entry))

    def _truncate(self, node: _Node, length: int) -> None:
        if length < 0:
            raise InvalidArgument(f"negative length {length}")
        if length >= node.size:
            if length > node.size:
                self._write(node, length, b"")
            return
        chain = self._chain_of(node)
        keep = -(-length // self.layout.cluster_bytes)
        node.size = length
        if keep == 0:
            node.first_cluster = 0
        self._update_entry(node)  # the entry stops referring to clusters before they are freed
        if keep:
            self._fat.set(chain[keep - 1], self._fat.eoc)
        self._fat.release(chain[keep:])
        self._commit_fat()
        self._forget(chain[keep:])
        del chain[keep:]


class FatFile:
    """An open file: position, access mode, and the shared node of the file it reads."""

    def __init__(self, fs: FatFs, node: _Node, flags: int, path: str) -> None:
        self._fs = fs
        self._node = node
        self.flags = flags
        self.path = path
        self.position = 0
        self.closed = False

    @property
    def readable(self) -> bool:
        return self.flags & O_ACCMODE in (O_RDONLY, O_RDWR)

    @property
    def writable(self) -> bool:
        return self.flags & O_ACCMODE in (O_WRONLY, O_RDWR)

    @property
    def size(self) -> int:
        return self._node.size

    def _check(self, want_write: bool) -> None:
        if self.closed:
            raise BadHandle(f"{self.path}: file is closed")
        if want_write and not self.writable:
            raise BadHandle(f"{self.path}: not open for writing")
        if not want_write and not self.readable:
            raise BadHandle(f"{self.path}: not open for reading")

    def read(self, count: int = -1) -> bytes:
        self._check(want_write=False)
        if count < 0:
            count = max(0, self._node.size - self.position)
        data = self._fs._read(self._node, self.position, count)
        self.position += len(data)
        return data

    def write(self, data: bytes) -> int:
        self._check(want_write=True)
        self._fs._modifying()
        if self.flags & O_APPEND:
            self.position = self._node.size
        if data:
            self._fs._write(self._node, self.position, bytes(data))
            self.position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.closed:
            raise BadHandle(f"{self.path}: file is closed")
        base = {0: 0, 1: self.position, 2: self._node.size}.get(whence)
        if base is None:
            raise InvalidArgument(f"bad whence {whence}")
        if base + offset < 0:
            raise InvalidArgument("seek before the start of the file")
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def truncate(self, length: int | None = None) -> int:
        self._check(want_write=True)
        self._fs._modifying()
        self._fs._truncate(self._node, self.position if length is None else length)
        return self._node.size

    def flush(self) -> None:
        self._fs.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fs._release(self._node)

    def __enter__(self) -> FatFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- mkfs
def _default_cluster_sectors(fat_type: int, total_sectors: int) -> int:
    """Cluster sizes from Microsoft's defaults for the volume size."""
    mib = total_sectors * BLOCK_SIZE / (1 << 20)
    if fat_type == 12:
        return 1 if mib <= 2 else 4
    if fat_type == 16:
        for limit, spc in ((16, 1), (128, 4), (256, 8), (512, 16), (1024, 32), (2048, 64)):
            if mib <= limit:
                return spc
        return 128
    for limit, spc in ((260, 1), (8192, 8), (16384, 16), (32768, 32)):
        if mib <= limit:
            return spc
    return 64


def _plan(fat_type: int, total: int, spc: int, reserved: int, root_entries: int) -> tuple[int, int]:
    """(FAT sectors, cluster count) for a candidate layout, iterated to a fixed point."""
    root_sectors = root_entries * ENTRY_SIZE // BLOCK_SIZE
    fat_sectors = 1
    for _ in range(16):
        clusters = (total - reserved - 2 * fat_sectors - root_sectors) // spc
        needed = -(-((clusters + 2) * fat_type) // (8 * BLOCK_SIZE))
        if needed <= fat_sectors:
            break
        fat_sectors = needed
    return fat_sectors, max(0, (total - reserved - 2 * fat_sectors - root_sectors) // spc)


def mkfs(
    device: BlockDevice,
    fat_type: int | None = None,
    label: str = "NO NAME",
    sectors_per_cluster: int | None = None,
    hidden_sectors: int = 0,
    volume_id: int = 0x54524B31,
    now: Callable[[], datetime] = datetime.now,
) -> Layout:
    """Format `device` (a whole partition) as FAT12, FAT16 or FAT32 (chosen by size if None);
    two FATs, media 0xF8. Raises InvalidArgument if the size cannot hold that FAT type."""
    total = device.block_count
    if fat_type is None:
        mib = total * BLOCK_SIZE / (1 << 20)
        fat_type = 12 if mib < 4 else 16 if mib < 512 else 32
    if fat_type not in (12, 16, 32):
        raise InvalidArgument(f"FAT{fat_type} does not exist")
    label_raw = label.upper().encode("ascii", errors="replace")[:11].ljust(11)
    reserved = 32 if fat_type == 32 else 1
    root_entries = 0 if fat_type == 32 else 512 if fat_type == 16 else 224
    limits = {12: (1, FAT12_MAX_CLUSTERS), 16: (FAT12_MAX_CLUSTERS + 1, FAT16_MAX_CLUSTERS)}
    low, high = limits.get(fat_type, (FAT16_MAX_CLUSTERS + 1, FAT32_MAX_CLUSTERS))
    preferred = sectors_per_cluster or _default_cluster_sectors(fat_type, total)
    candidates = (
        [preferred]
        if sectors_per_cluster
        else sorted(
            (1, 2, 4, 8, 16, 32, 64, 128),
            key=lambda s: abs(s.bit_length() - preferred.bit_length()),
        )
    )
    for spc in candidates:
        fat_sectors, clusters = _plan(fat_type, total, spc, reserved, root_entries)
        if low <= clusters <= high:
            break
    else:
        raise InvalidArgument(
            f"{total} sectors cannot hold a FAT{fat_type} volume"
            + (f" with {sectors_per_cluster} sectors per cluster" if sectors_per_cluster else "")
        )
    boot = bytearray(BLOCK_SIZE)
    boot[0:3] = b"\xeb\x58\x90" if fat_type == 32 else b"\xeb\x3c\x90"
    boot[3:11] = b"TRADEKNL"
    _BPB.pack_into(
        boot,
        11,
        BLOCK_SIZE,
        spc,
        reserved,
        2,
        root_entries,
        total if total < 0x10000 and fat_type != 32 else 0,
        MEDIA_FIXED_DISK,
        0 if fat_type == 32 else fat_sectors,
        63,
        255,
        hidden_sectors,
        0 if total < 0x10000 and fat_type != 32 else total,
    )
    if fat_type == 32:
        struct.pack_into("<IHHIHH", boot, 36, fat_sectors, 0, 0, 2, 1, 6)
        ebpb = 64
    else:
        ebpb = 36
    boot[ebpb] = 0x80  # BIOS drive number
    boot[ebpb + 2] = 0x29  # extended boot signature: id, label and type follow
    struct.pack_into("<I", boot, ebpb + 3, volume_id)
    boot[ebpb + 7 : ebpb + 18] = label_raw
    boot[ebpb + 18 : ebpb + 26] = f"FAT{fat_type}".ljust(8).encode("ascii")
    code = ebpb + 26
    boot[code : code + 4] = b"\xcd\x18\xeb\xfe"  # not bootable: int 18h (next boot device)
    boot[510:512] = b"\x55\xaa"
    data_start = reserved + 2 * fat_sectors + root_entries * ENTRY_SIZE // BLOCK_SIZE
    if data_start + spc > total:
        raise InvalidArgument(f"{total} sectors are too few for FAT{fat_type}")
    # Clear the metadata area in big writes, then lay down the structures.
    zero_chunk = bytes(64 * BLOCK_SIZE)
    clear_to = data_start + (spc if fat_type == 32 else 0)
    for lba in range(0, clear_to, 64):
        device.write_blocks(lba, zero_chunk[: min(64, clear_to - lba) * BLOCK_SIZE])
    fat = bytearray(BLOCK_SIZE)
    if fat_type == 12:
        fat[0:3] = bytes([MEDIA_FIXED_DISK, 0xFF, 0xFF])
    elif fat_type == 16:
        struct.pack_into("<HH", fat, 0, 0xFF00 | MEDIA_FIXED_DISK, 0xFFFF)
    else:
        struct.pack_into("<III", fat, 0, 0x0FFFFF00 | MEDIA_FIXED_DISK, 0x0FFFFFFF, 0x0FFFFFFF)
    for copy in range(2):
        device.write_blocks(reserved + copy * fat_sectors, bytes(fat))
    if fat_type == 32:
        info = bytearray(BLOCK_SIZE)
        struct.pack_into("<I", info, 0, FSINFO_LEAD)
        struct.pack_into("<IIII", info, 484, FSINFO_STRUCT, clusters - 1, 3, 0)
        struct.pack_into("<I", info, 508, FSINFO_TRAIL)
        for base in (0, 6):
            device.write_blocks(base, bytes(boot))
            device.write_blocks(base + 1, bytes(info))
            device.write_blocks(base + 2, bytes(BLOCK_SIZE - 2) + b"\x55\xaa")
    else:
        device.write_blocks(0, bytes(boot))
    if label_raw.strip() and label_raw != b"NO NAME    ":
        root_lba = reserved + 2 * fat_sectors
        entry = make_short_entry(label_raw, ATTR_VOLUME_ID, 0, 0, now())
        device.write_blocks(root_lba, entry + bytes(BLOCK_SIZE - ENTRY_SIZE))
    device.flush()
    return parse_boot_sector(bytes(boot), total)
