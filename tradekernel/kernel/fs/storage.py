"""Mounting FAT volumes: the system disk (the ATA driver, partition 1 of the MBR) at boot, a data
floppy (the floppy driver, a whole-disk FAT volume) when the shell's `mount` asks, and
`Volumes`, the one tree of FAT volumes the shell's file commands see.

A disk that is missing, unpartitioned or corrupt must not stop the boot: `mount_system_disk`
returns the filesystem or the reason it could not mount, and the kernel shows that reason and
carries on to the shell without ever writing to the disk. `mount_floppy` raises OSError with
one line saying why a diskette cannot be mounted (none in the drive, not FAT); a diskette with
damage is mounted read-only with the reason, a write-protected one read-only, and neither is
ever written.

`Volumes` answers only for FAT: a path that /dev or /proc serves raises `NotOnDisk`, one line
saying so; `open_file` opens any path through the mount table (a redirection's target: a FAT
file or a device node).
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from tradekernel.emu.bus import PortBus
from tradekernel.kernel.drivers.ata import AtaDisk, AtaError
from tradekernel.kernel.drivers.blockdev import (
    BlockDeviceError,
    PartitionTableError,
    open_partition,
)
from tradekernel.kernel.drivers.floppy import (
    TRACK_BUFFER,
    FloppyDisk,
    FloppyError,
    PhysicalMemory,
    find_dma_window,
)
from tradekernel.kernel.drivers.portio import PortIo
from tradekernel.kernel.fs.fat import FatFile, FatFs, FsError, FsStats, Stat
from tradekernel.kernel.fs.fatfile import FatVolume
from tradekernel.kernel.fs.vfs import MountTable, OpenFile

ATA_STATUS = 0x1F7


def mount_system_disk(
    ports: PortBus, now: Callable[[], datetime]
) -> tuple[FatFs | None, AtaDisk | None, str]:
    """(filesystem, disk, message): the filesystem is None when the message says why."""
    if ports.read(ATA_STATUS, 1) in (0x00, 0xFF):
        return None, None, "no ATA disk on the primary channel"
    try:
        disk = AtaDisk(PortIo(ports), wait_irq=lambda: None)
    except AtaError as error:
        return None, None, f"ATA disk did not identify: {error}"
    try:
        partition = open_partition(disk, 1)
        fs = FatFs(partition, now=now)
    except (PartitionTableError, BlockDeviceError, FsError) as error:
        return None, disk, f"cannot mount partition 1: {error}"
    stats = fs.statfs()
    message = (
        f"FAT{fs.fat_type} on partition 1: {stats.free_bytes // 1024} KiB free"
        f" of {stats.total_bytes // 1024} KiB"
    )
    if fs.reclaimed:
        message += f"; reclaimed {fs.reclaimed} clusters a cut write had left"
    if fs.repaired:
        message += f"; repaired {fs.repaired}"
    if fs.read_only_reason:
        message += f"; mounted read-only: {fs.read_only_reason}"
    return fs, disk, message


# ---- the data floppy ------------------------------------------------------------------------
FLOPPY_DEVICE = "fd0"  # drive A:, as the shell's mount names it
FLOPPY_BUFFER_TAG = "floppy"  # the kernel heap's tag for the DMA bounce buffer


class Heap(Protocol):
    """What the floppy mount needs of the kernel heap (kernel/mm/heap.py KernelHeap)."""

    def kmalloc(self, size: int, tag: str) -> int: ...

    def kfree(self, ptr: int) -> None: ...


@dataclass
class FloppyMount:
    """A mounted data floppy: its volume, its driver and the heap block its DMA buffer is in."""

    fs: FatFs
    disk: FloppyDisk
    allocation: int
    point: str

    def describe(self) -> str:
        stats = self.fs.statfs()
        text = (
            f"{FLOPPY_DEVICE} on {self.point}: FAT{stats.fat_type},"
            f" {stats.free_bytes // 1024} of {stats.total_bytes // 1024} KiB free"
        )
        if self.fs.reclaimed:
            text += f"; reclaimed {self.fs.reclaimed} lost clusters"
        if self.fs.repaired:
            text += f"; repaired {self.fs.repaired}"
        return text + (f"; read-only: {self.fs.read_only_reason}" if self.fs.read_only else "")


def mount_floppy(
    ports: PortBus,
    memory: PhysicalMemory,
    heap: Heap,
    now: Callable[[], datetime],
    point: str,
) -> FloppyMount:
    """Probe drive A: and mount its FAT volume; OSError (one line) when it cannot be."""
    allocation = heap.kmalloc(2 * TRACK_BUFFER, FLOPPY_BUFFER_TAG)
    try:
        buffer = find_dma_window(allocation, 2 * TRACK_BUFFER)
        if buffer is None:
            raise FloppyError("no DMA buffer below 16 MiB for the floppy", errno.ENOMEM)
        disk = FloppyDisk(PortIo(ports), memory, buffer)
        try:
            fs = FatFs(disk, read_only=disk.write_protected, now=now)
        except (FsError, FloppyError) as error:
            disk.close()
            raise OSError(error.errno, f"not a FAT diskette: {error.strerror}") from None
        if disk.write_protected and not fs.read_only_reason:
            fs.read_only_reason = "write-protected"
        return FloppyMount(fs, disk, allocation, point)
    except BaseException:
        heap.kfree(allocation)
        raise


def unmount_floppy(mount: FloppyMount, heap: Heap) -> None:
    """Write everything out, stop the motor and give the DMA buffer back."""
    try:
        mount.fs.close()
    finally:
        mount.disk.close()
        heap.kfree(mount.allocation)


# ---- one tree of FAT volumes ----------------------------------------------------------------
class NotOnDisk(OSError):
    """A disk command named a path that a filesystem other than FAT serves (/dev, /proc)."""

    def __init__(self, path: str, point: str) -> None:
        self.path = path
        self.reason = f"not on a disk: {point} is served by the kernel"
        super().__init__(errno.EPERM, f"{path}: {self.reason}")


class Volumes:
    """The FAT volumes the kernel mounted, seen as one tree by path: a path under a mount point
    of the mount table (`/a/x` with a floppy on `/a`) goes to that volume, any other path to
    the root volume. It offers the FatFs path API the shell uses; a rename across volumes is
    EXDEV and a mount point cannot be removed or renamed (EBUSY), as on Linux."""

    def __init__(self, mounts: MountTable, root: Callable[[], FatFs | None]) -> None:
        self._mounts = mounts
        self._root = root
        self._touched: dict[int, FatFs] = {}  # volumes used since the last flush
        self._mounted: set[str] = set()  # mount points of volumes other than the root

    def locate(self, path: str) -> tuple[FatFs, str]:
        """(volume, path inside it) for an absolute path; NotOnDisk for a path another
        filesystem serves (/dev, /proc)."""
        try:
            filesystem, inner = self._mounts.resolve(path)
        except OSError:
            filesystem, inner = None, path
        if isinstance(filesystem, FatVolume):
            fs = filesystem.fs
        elif filesystem is not None:
            raise NotOnDisk(path, self._mounts.mount_point(path))
        else:  # no mount covers it: the root volume, if there is one
            fs = self._root()
            if fs is None:
                raise OSError(errno.ENODEV, "no filesystem is mounted")
        self._touched[id(fs)] = fs
        return fs, inner

    def open_file(self, path: str, flags: int) -> OpenFile:
        """`path` opened through the mount table as an open file (vfs.OpenFile): a FAT file,
        or the node /dev or /proc serves; what a redirection's target is."""
        return self._mounts.open(path, flags)

    def any_mounted(self) -> bool:
        """A root volume, or one the shell mounted."""
        return self._root() is not None or bool(self._mounted)

    def mounted(self, point: str) -> None:
        """A FAT volume was put in the mount table at `point`."""
        self._mounted.add(point)

    def unmounted(self, point: str, fs: FatFs) -> None:
        """`fs` left `point` (flushed first): the next flush leaves it alone."""
        self._mounted.discard(point)
        self._touched.pop(id(fs), None)

    def stat(self, path: str) -> Stat:
        fs, inner = self.locate(path)
        stat = fs.stat(inner)
        if inner == "/" and path != "/":  # a mount point shows its own name
            stat = replace(stat, name=posixpath.basename(path), short_name=posixpath.basename(path))
        return stat

    def exists(self, path: str) -> bool:
        fs, inner = self.locate(path)
        return fs.exists(inner)

    def scandir(self, path: str = "/") -> list[Stat]:
        fs, inner = self.locate(path)
        return fs.scandir(inner)

    def listdir(self, path: str = "/") -> list[str]:
        return [stat.name for stat in self.scandir(path)]

    def walk(
        self, path: str = "/", onerror: Callable[[FsError], None] | None = None
    ) -> Iterator[tuple[str, list[str], list[Stat]]]:
        """FatFs.walk within the volume that holds `path` (mounts below it are not entered,
        as `find -xdev`), with tree paths."""
        fs, inner = self.locate(path)
        point = path[: len(path) - len(inner)] if inner != "/" else path
        prefix = "" if point == "/" else point.rstrip("/")
        for directory, names, files in fs.walk(inner, onerror):
            yield (prefix + directory if directory != "/" else prefix or "/"), names, files

    def open(self, path: str, mode: str | int = "r") -> FatFile:
        fs, inner = self.locate(path)
        return fs.open(inner, mode)

    def read_file(self, path: str) -> bytes:
        fs, inner = self.locate(path)
        return fs.read_file(inner)

    def write_file(self, path: str, data: bytes) -> None:
        fs, inner = self.locate(path)
        fs.write_file(inner, data)

    def mkdir(self, path: str) -> None:
        fs, inner = self.locate(path)
        if inner == "/":
            raise OSError(errno.EEXIST, f"{path}: exists (a mount point)")
        fs.mkdir(inner)

    def _not_a_mount_point(self, path: str) -> tuple[FatFs, str]:
        fs, inner = self.locate(path)
        if inner == "/":
            raise OSError(errno.EBUSY, f"{path}: a mount point")
        return fs, inner

    def rmdir(self, path: str) -> None:
        fs, inner = self._not_a_mount_point(path)
        fs.rmdir(inner)

    def remove(self, path: str) -> None:
        fs, inner = self._not_a_mount_point(path)
        fs.remove(inner)

    def rename(self, source: str, target: str) -> None:
        fs, inner_source = self._not_a_mount_point(source)
        other, inner_target = self._not_a_mount_point(target)
        if other is not fs:
            raise OSError(errno.EXDEV, "rename across filesystems")
        fs.rename(inner_source, inner_target)

    def statfs(self, path: str = "/") -> FsStats:
        fs, _ = self.locate(path)
        return fs.statfs()

    def flush(self) -> None:
        """Flush every volume used since the last flush (each writes to its own disk)."""
        touched, self._touched = self._touched, {}
        for fs in touched.values():
            fs.flush()
