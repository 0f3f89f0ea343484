"""Block devices: the one interface the filesystem runs on, and the MBR partition table.

Contract: a block device reads and writes whole 512-byte blocks by LBA. `read_blocks(lba, n)`
returns exactly `n * 512` bytes; `write_blocks(lba, data)` takes a multiple of 512 bytes; an
access outside `0 <= lba` and `lba + n <= block_count` raises `BlockDeviceError` (errno EIO)
instead of reading short. `flush()` pushes anything buffered to stable storage. Writes are seen
by later reads at once.

Implementations here: `ImageFile` (a host file, optionally a window of it), `MemoryBlockDevice`
(a bytearray, for tests and RAM disks) and `Partition` (a window over another device). The
kernel's ATA driver (kernel/ata.py) implements the same interface over ports 0x1F0-0x1F7.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Protocol

BLOCK_SIZE = 512
MBR_SIGNATURE = b"\x55\xaa"
PARTITION_TABLE_OFFSET = 446
PARTITION_ENTRY_SIZE = 16
MBR_CODE_SIZE = 440  # bytes of boot code before the disk signature at 440

# Partition type bytes that hold a FAT filesystem.
PART_FAT12 = 0x01
PART_FAT16_SMALL = 0x04  # FAT16 under 32 MiB
PART_FAT16 = 0x06
PART_FAT32_CHS = 0x0B
PART_FAT32_LBA = 0x0C
PART_FAT16_LBA = 0x0E
FAT_PARTITION_TYPES = frozenset(
    {PART_FAT12, PART_FAT16_SMALL, PART_FAT16, PART_FAT32_CHS, PART_FAT32_LBA, PART_FAT16_LBA}
)


class BlockDeviceError(OSError):
    """An access the device cannot serve (out of range, short file, host I/O failure)."""

    def __init__(self, message: str, code: int = errno.EIO) -> None:
        super().__init__(code, message)


class PartitionTableError(BlockDeviceError):
    """The MBR is missing or its entries are impossible."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errno.EINVAL)


class BlockDevice(Protocol):
    block_size: int
    block_count: int

    def read_blocks(self, lba: int, count: int) -> bytes: ...

    def write_blocks(self, lba: int, data: bytes) -> None: ...

    def flush(self) -> None: ...


def check_range(device: BlockDevice, lba: int, count: int) -> None:
    """Shared bounds check, so every implementation refuses the same accesses the same way."""
    if lba < 0 or count < 0 or lba + count > device.block_count:
        raise BlockDeviceError(
            f"blocks {lba}..{lba + count - 1} outside the device (0..{device.block_count - 1})"
        )


def _check_write_size(data: bytes) -> int:
    if len(data) % BLOCK_SIZE:
        raise BlockDeviceError(f"write of {len(data)} bytes is not a whole number of blocks")
    return len(data) // BLOCK_SIZE


class MemoryBlockDevice:
    """Blocks held in a bytearray: fast, for tests, benchmarks and RAM disks."""

    block_size = BLOCK_SIZE

    def __init__(self, size_or_data: int | bytes | bytearray, read_only: bool = False) -> None:
        if isinstance(size_or_data, int):
            self.data = bytearray(size_or_data)
        else:
            self.data = bytearray(size_or_data)
        if len(self.data) % BLOCK_SIZE:
            raise BlockDeviceError("memory device size is not a whole number of blocks")
        self.block_count = len(self.data) // BLOCK_SIZE
        self.read_only = read_only

    def read_blocks(self, lba: int, count: int) -> bytes:
        check_range(self, lba, count)
        return bytes(self.data[lba * BLOCK_SIZE : (lba + count) * BLOCK_SIZE])

    def write_blocks(self, lba: int, data: bytes) -> None:
        if self.read_only:
            raise BlockDeviceError("device is read-only", errno.EROFS)
        count = _check_write_size(data)
        check_range(self, lba, count)
        self.data[lba * BLOCK_SIZE : (lba + count) * BLOCK_SIZE] = data

    def flush(self) -> None:
        """Nothing is buffered."""


class ImageFile:
    """A raw disk image on the host, or a window of it (`offset`, `length` in bytes) such as one
    partition. The window's block count is what the file really holds, so a truncated image
    shows up as a small device rather than as short reads later."""

    block_size = BLOCK_SIZE

    def __init__(
        self,
        path_or_file: str | os.PathLike[str] | BinaryIO,
        offset: int = 0,
        length: int | None = None,
        read_only: bool = False,
    ) -> None:
        if offset < 0 or offset % BLOCK_SIZE:
            raise BlockDeviceError(f"image offset {offset} is not a non-negative block multiple")
        self.read_only = read_only
        if isinstance(path_or_file, (str, os.PathLike)):
            try:
                self._file: BinaryIO = open(path_or_file, "rb" if read_only else "r+b")
            except OSError as exc:
                raise BlockDeviceError(f"cannot open image {path_or_file}: {exc.strerror}") from exc
            self._owns_file = True
            self.name = os.fspath(path_or_file)
        else:
            self._file = path_or_file
            self._owns_file = False
            self.name = getattr(path_or_file, "name", "<file>")
        self._file.seek(0, os.SEEK_END)
        available = max(0, self._file.tell() - offset)
        if length is not None:
            available = min(available, length)
        self.offset = offset
        self.block_count = available // BLOCK_SIZE

    def read_blocks(self, lba: int, count: int) -> bytes:
        check_range(self, lba, count)
        self._file.seek(self.offset + lba * BLOCK_SIZE)
        data = self._file.read(count * BLOCK_SIZE)
        if len(data) != count * BLOCK_SIZE:
            raise BlockDeviceError(f"{self.name}: short read at block {lba} (file truncated?)")
        return data

    def write_blocks(self, lba: int, data: bytes) -> None:
        if self.read_only:
            raise BlockDeviceError(f"{self.name} is opened read-only", errno.EROFS)
        count = _check_write_size(data)
        check_range(self, lba, count)
        self._file.seek(self.offset + lba * BLOCK_SIZE)
        self._file.write(data)

    def flush(self) -> None:
        if not self.read_only:
            self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> ImageFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Partition:
    """A window of `count` blocks starting at `start` on another block device."""

    block_size = BLOCK_SIZE

    def __init__(self, device: BlockDevice, start: int, count: int) -> None:
        if start < 0 or count <= 0 or start + count > device.block_count:
            raise BlockDeviceError(
                f"partition {start}+{count} does not fit a device of {device.block_count} blocks"
            )
        self.device = device
        self.start = start
        self.block_count = count

    def read_blocks(self, lba: int, count: int) -> bytes:
        check_range(self, lba, count)
        return self.device.read_blocks(self.start + lba, count)

    def write_blocks(self, lba: int, data: bytes) -> None:
        check_range(self, lba, _check_write_size(data))
        self.device.write_blocks(self.start + lba, data)

    def flush(self) -> None:
        self.device.flush()


@dataclass(frozen=True)
class PartitionEntry:
    number: int  # 1-4
    type: int
    start_lba: int
    sector_count: int
    bootable: bool = False

    @property
    def end_lba(self) -> int:
        return self.start_lba + self.sector_count


def _chs(lba: int, heads: int = 255, sectors: int = 63) -> bytes:
    """The packed CHS triple of an MBR entry; addresses past 1023 cylinders saturate, as usual."""
    cylinder, rest = divmod(lba, heads * sectors)
    head, sector = divmod(rest, sectors)
    if cylinder > 1023:
        cylinder, head, sector = 1023, heads - 1, sectors - 1
    return bytes([head, ((cylinder >> 2) & 0xC0) | (sector + 1), cylinder & 0xFF])


def parse_mbr(sector: bytes, disk_blocks: int | None = None) -> list[PartitionEntry]:
    """The used primary entries of an MBR sector; raises PartitionTableError for a bad table."""
    if len(sector) < BLOCK_SIZE:
        raise PartitionTableError(f"MBR is {len(sector)} bytes, expected {BLOCK_SIZE}")
    if sector[510:512] != MBR_SIGNATURE:
        raise PartitionTableError(
            f"no MBR signature (bytes 510-511 are {sector[510:512].hex()}, expected 55aa)"
        )
    entries: list[PartitionEntry] = []
    for index in range(4):
        raw = sector[PARTITION_TABLE_OFFSET + 16 * index : PARTITION_TABLE_OFFSET + 16 * index + 16]
        status, ptype = raw[0], raw[4]
        start, count = struct.unpack_from("<II", raw, 8)
        if ptype == 0:
            continue
        if status not in (0x00, 0x80):
            raise PartitionTableError(f"partition {index + 1}: bad status byte {status:#04x}")
        if count == 0 or start == 0:
            raise PartitionTableError(f"partition {index + 1}: starts at {start}, {count} sectors")
        if disk_blocks is not None and start + count > disk_blocks:
            raise PartitionTableError(
                f"partition {index + 1} ends at sector {start + count}, past the end of the "
                f"disk ({disk_blocks} sectors)"
            )
        entries.append(PartitionEntry(index + 1, ptype, start, count, status == 0x80))
    ordered = sorted(entries, key=lambda e: e.start_lba)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start_lba < before.end_lba:
            raise PartitionTableError(f"partitions {before.number} and {after.number} overlap")
    return entries


def read_partitions(device: BlockDevice) -> list[PartitionEntry]:
    if device.block_count < 1:
        raise PartitionTableError("device is empty: no MBR")
    return parse_mbr(device.read_blocks(0, 1), device.block_count)


def build_mbr(
    partitions: list[PartitionEntry], boot_code: bytes = b"", disk_signature: int = 0
) -> bytes:
    """An MBR sector: boot code (at most 440 bytes), disk signature, up to four entries."""
    if len(boot_code) > MBR_CODE_SIZE:
        raise PartitionTableError(f"MBR boot code is {len(boot_code)} bytes, at most 440 fit")
    if len(partitions) > 4:
        raise PartitionTableError("an MBR holds at most four primary partitions")
    sector = bytearray(BLOCK_SIZE)
    sector[: len(boot_code)] = boot_code
    struct.pack_into("<I", sector, 440, disk_signature)
    for entry in partitions:
        if not 1 <= entry.number <= 4 or not 0 < entry.type <= 0xFF:
            raise PartitionTableError(f"bad partition entry {entry}")
        if entry.start_lba <= 0 or entry.sector_count <= 0 or entry.end_lba > 0xFFFFFFFF:
            raise PartitionTableError(f"partition {entry.number}: range does not fit an MBR")
        base = PARTITION_TABLE_OFFSET + 16 * (entry.number - 1)
        sector[base] = 0x80 if entry.bootable else 0x00
        sector[base + 1 : base + 4] = _chs(entry.start_lba)
        sector[base + 4] = entry.type
        sector[base + 5 : base + 8] = _chs(entry.end_lba - 1)
        struct.pack_into("<II", sector, base + 8, entry.start_lba, entry.sector_count)
    sector[510:512] = MBR_SIGNATURE
    parse_mbr(bytes(sector))  # the same checks a reader makes (overlap, status)
    return bytes(sector)


def open_partition(device: BlockDevice, number: int = 1) -> Partition:
    """Partition `number` (1-4) of an MBR disk as a block device."""
    for entry in read_partitions(device):
        if entry.number == number:
            return Partition(device, entry.start_lba, entry.sector_count)
    raise PartitionTableError(f"partition {number} is not in the partition table")
