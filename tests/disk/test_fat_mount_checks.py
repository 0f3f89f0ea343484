"""The checks a mount makes before it lets anything be written: FAT copies compared the way
fsck.fat compares them. A volume that fails is mounted read-only with a one-line reason, is
still readable, and is never written. Images are made by mkfs.fat and mtools and judged by
fsck.fat."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.disk.conftest import mkfs_fat, mount, mtools, need
from tradekernel.kernel.fat import FatMismatch, FsError, ReadOnlyFs

FILES = {
    "/SERVICES": bytes(range(256)) * 50,
    "/DIR/NOTES.TXT": b"notes\n" * 700,
    "/DIR/SUB/DEEP.BIN": b"\xa5" * 9000,
}


def peer_image(path: Path, fat_type: int) -> Path:
    """A volume made by mkfs.fat with FILES copied in by mtools."""
    size_mb = {12: 2, 16: 16, 32: 40}[fat_type]
    mkfs_fat(path, size_mb, "-F", str(fat_type))
    mtools("mmd", path, "::/DIR")
    mtools("mmd", path, "::/DIR/SUB")
    for name, data in FILES.items():
        source = path.with_name("payload")
        source.write_bytes(data)
        mtools("mcopy", path, str(source), "::" + name)
    return path


def fat_regions(data: bytes) -> tuple[int, int, int]:
    """(byte offset of FAT 1, bytes per FAT, FAT count) from the boot sector."""
    reserved = struct.unpack_from("<H", data, 14)[0]
    fat16 = struct.unpack_from("<H", data, 22)[0]
    sectors = fat16 or struct.unpack_from("<I", data, 36)[0]
    return reserved * 512, sectors * 512, data[16]


def fsck_says(image: Path) -> str:
    result = subprocess.run([need("fsck.fat"), "-n", str(image)], capture_output=True, text=True)
    return result.stdout + result.stderr


def assert_read_only_and_untouched(image: Path, words: str) -> None:
    before = image.read_bytes()
    device, fs = mount(image)
    assert fs.read_only
    assert fs.read_only_reason is not None and words in fs.read_only_reason
    assert "\n" not in fs.read_only_reason
    for name, data in FILES.items():
        assert fs.read_file(name) == data
    for change in (
        lambda: fs.write_file("/new.txt", b"x"),
        lambda: fs.mkdir("/newdir"),
        lambda: fs.remove("/SERVICES"),
        lambda: fs.open("/SERVICES", "r+"),
    ):
        with pytest.raises(ReadOnlyFs) as info:
            change()
        assert words in str(info.value)
    fs.close()
    device.close()
    assert image.read_bytes() == before


@pytest.mark.parametrize("fat_type", [12, 16, 32])
def test_zeroed_first_sector_of_fat1_is_read_from_fat2_read_only(
    tmp_path: Path, fat_type: int
) -> None:
    image = peer_image(tmp_path / "v.img", fat_type)
    data = bytearray(image.read_bytes())
    fat1, _, _ = fat_regions(data)
    data[fat1 : fat1 + 512] = bytes(512)
    image.write_bytes(bytes(data))
    assert "using second FAT" in fsck_says(image)  # the peer's verdict: FAT 2 is the good one
    assert_read_only_and_untouched(image, "using FAT 2")


def test_damaged_fat2_is_read_from_fat1_read_only(tmp_path: Path) -> None:
    image = peer_image(tmp_path / "v.img", 16)
    data = bytearray(image.read_bytes())
    fat1, fat_bytes, _ = fat_regions(data)
    data[fat1 + fat_bytes : fat1 + fat_bytes + 512] = b"\x17" * 512
    image.write_bytes(bytes(data))
    assert "using first FAT" in fsck_says(image)
    assert_read_only_and_untouched(image, "using FAT 1")


def test_fats_that_differ_but_both_look_intact_are_not_written(tmp_path: Path) -> None:
    """A crash between the two FAT writes leaves this; fsck.fat picks FAT 1 and asks."""
    image = peer_image(tmp_path / "v.img", 16)
    data = bytearray(image.read_bytes())
    fat1, fat_bytes, _ = fat_regions(data)
    struct.pack_into("<H", data, fat1 + fat_bytes + 2 * 200, 0xFFFF)  # FAT 2 only: cluster 200
    image.write_bytes(bytes(data))
    assert "FATs differ but appear to be intact" in fsck_says(image)
    assert_read_only_and_untouched(image, "FAT copies differ")


def test_both_fats_damaged_refuses_the_mount(tmp_path: Path) -> None:
    image = peer_image(tmp_path / "v.img", 16)
    data = bytearray(image.read_bytes())
    fat1, fat_bytes, _ = fat_regions(data)
    data[fat1 : fat1 + 512] = bytes(512)
    data[fat1 + fat_bytes : fat1 + fat_bytes + 512] = b"\x17" * 512
    image.write_bytes(bytes(data))
    assert "Both FATs appear to be corrupt" in fsck_says(image)
    with pytest.raises(FatMismatch) as info:
        mount(image)
    assert "both" in str(info.value).lower()


def test_single_fat_without_its_media_entry_is_read_only(tmp_path: Path) -> None:
    image = tmp_path / "v.img"
    mkfs_fat(image, 16, "-F", "16", "-f", "1")
    data = bytearray(image.read_bytes())
    fat1, _, count = fat_regions(data)
    assert count == 1
    data[fat1 : fat1 + 2] = b"\0\0"
    image.write_bytes(bytes(data))
    before = image.read_bytes()
    device, fs = mount(image)
    assert fs.read_only and "media" in (fs.read_only_reason or "")
    with pytest.raises(FsError):
        fs.write_file("/x", b"x")
    fs.close()
    device.close()
    assert image.read_bytes() == before


def test_clean_peer_images_stay_writable(tmp_path: Path) -> None:
    for fat_type in (12, 16, 32):
        image = peer_image(tmp_path / f"v{fat_type}.img", fat_type)
        device, fs = mount(image)
        assert not fs.read_only and fs.read_only_reason is None
        fs.close()
        device.close()
