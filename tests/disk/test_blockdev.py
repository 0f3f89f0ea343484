"""Block devices and MBR partition tables."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tradekernel.kernel.drivers.blockdev import (
    PART_FAT16_LBA,
    PART_FAT32_LBA,
    BlockDeviceError,
    ImageFile,
    MemoryBlockDevice,
    Partition,
    PartitionEntry,
    PartitionTableError,
    build_mbr,
    open_partition,
    parse_mbr,
)


def test_mbr_round_trip_keeps_code_and_entries() -> None:
    entries = [
        PartitionEntry(1, PART_FAT16_LBA, 2048, 10_000, bootable=True),
        PartitionEntry(2, PART_FAT32_LBA, 12_048, 5_000),
    ]
    sector = build_mbr(entries, b"\xfa\xeb\xfe", disk_signature=0x12345678)
    assert sector[:3] == b"\xfa\xeb\xfe" and sector[510:] == b"\x55\xaa"
    assert sector[440:444] == bytes.fromhex("78563412")
    assert parse_mbr(sector, 20_000) == entries
    assert sector[446] == 0x80 and sector[446 + 4] == 0x0E


@pytest.mark.parametrize(
    "mutate,words",
    [
        (lambda s: s.__setitem__(slice(510, 512), b"\0\0"), "no MBR signature"),
        (lambda s: s.__setitem__(446, 0x12), "bad status"),
        (
            lambda s: s.__setitem__(slice(446 + 12, 446 + 16), (10**6).to_bytes(4, "little")),
            "past the end",
        ),
        (
            lambda s: s.__setitem__(slice(462 + 8, 462 + 12), (3000).to_bytes(4, "little")),
            "overlap",
        ),
    ],
)
def test_bad_partition_tables_are_refused_with_a_reason(mutate, words: str) -> None:
    entries = [PartitionEntry(1, 0x06, 2048, 8000), PartitionEntry(2, 0x0B, 10_048, 2000)]
    sector = bytearray(build_mbr(entries))
    mutate(sector)
    with pytest.raises(PartitionTableError, match=words):
        parse_mbr(bytes(sector), 20_000)


def test_build_refuses_overlong_code_and_overlaps() -> None:
    with pytest.raises(PartitionTableError):
        build_mbr([], bytes(441))
    with pytest.raises(PartitionTableError, match="overlap"):
        build_mbr([PartitionEntry(1, 6, 100, 100), PartitionEntry(2, 6, 150, 100)])


def test_partition_window_and_bounds() -> None:
    disk = MemoryBlockDevice(64 * 512)
    disk.write_blocks(0, build_mbr([PartitionEntry(1, 6, 8, 16)]))
    part = open_partition(disk, 1)
    part.write_blocks(0, b"\x42" * 512)
    assert disk.read_blocks(8, 1) == b"\x42" * 512
    with pytest.raises(BlockDeviceError):
        part.read_blocks(16, 1)
    with pytest.raises(BlockDeviceError):
        part.write_blocks(15, bytes(1024))
    with pytest.raises(PartitionTableError, match="partition 2"):
        open_partition(disk, 2)
    with pytest.raises(BlockDeviceError):
        Partition(disk, 60, 10)


def test_image_file_offset_truncation_and_read_only(tmp_path: Path) -> None:
    path = tmp_path / "img"
    path.write_bytes(bytes(range(256)) * 2 * 10 + b"tail")  # 10 blocks and a partial one
    with ImageFile(path, offset=1024) as image:
        assert image.block_count == 8
        assert image.read_blocks(0, 1) == bytes(range(256)) * 2
        image.write_blocks(7, b"\x01" * 512)
        with pytest.raises(BlockDeviceError):
            image.read_blocks(8, 1)
        with pytest.raises(BlockDeviceError):
            image.write_blocks(0, b"odd")
    assert path.read_bytes()[9 * 512 : 10 * 512] == b"\x01" * 512
    with ImageFile(path, read_only=True) as image:
        with pytest.raises(BlockDeviceError) as info:
            image.write_blocks(0, bytes(512))
        assert info.value.errno == errno.EROFS
    with pytest.raises(BlockDeviceError, match="cannot open"):
        ImageFile(tmp_path / "missing")
