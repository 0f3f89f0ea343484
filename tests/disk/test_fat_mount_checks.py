"""The checks a mount makes before it lets anything be written: the boot sector validated and
the FAT copies compared the way fsck.fat does both, and the allocation state (every chain
reachable from the root) checked for damage that writing would spread. A volume that fails is
refused, or mounted read-only with a one-line reason, still readable and never written. Images
are made by mkfs.fat and mtools and judged by fsck.fat."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.disk.conftest import mkfs_fat, mount, mtools, need
from tests.disk.test_fat_damage import entry_offset
from tradekernel.kernel.fs.fat import BadBpb, FatMismatch, FsError, MountError, ReadOnlyFs

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


# --------------------------------------------------------------------------- boot sector (BPB)
def patched(image: Path, offset: int, value: bytes) -> Path:
    data = bytearray(image.read_bytes())
    data[offset : offset + len(value)] = value
    image.write_bytes(bytes(data))
    return image


@pytest.mark.parametrize(
    "offset,value,words,peer_words",
    [
        (17, struct.pack("<H", 17), "multiple of 16", "integral number of sectors"),
        (17, struct.pack("<H", 0xFFFF), "multiple of 16", "integral number of sectors"),
        (16, b"\x03", "FAT copies", "only 1 or 2 FATs"),
        (11, struct.pack("<H", 768), "power of two", "768"),
        (11, struct.pack("<H", 256), "power of two", ""),
        (22, struct.pack("<H", 20), "cannot map", "only space for"),
        (19, struct.pack("<H", 32800), "truncated", "Failed to read sector"),
    ],
)
def test_boot_sector_values_fsck_rejects_are_refused(
    tmp_path: Path, offset: int, value: bytes, words: str, peer_words: str
) -> None:
    image = patched(peer_image(tmp_path / "v.img", 16), offset, value)
    verdict = subprocess.run([need("fsck.fat"), "-n", str(image)], capture_output=True, text=True)
    assert verdict.returncode != 0 and peer_words in verdict.stdout + verdict.stderr
    with pytest.raises(MountError) as info:
        mount(image)
    assert words in str(info.value)


def test_media_byte_linux_would_refuse_is_refused(tmp_path: Path) -> None:
    """fsck.fat ignores the media byte; Linux refuses to mount unless it is 0xF0 or 0xF8-0xFF."""
    image = patched(peer_image(tmp_path / "v.img", 16), 21, b"\x12")
    with pytest.raises(BadBpb, match="media"):
        mount(image)
    image = patched(image, 21, b"\xf0")
    device, fs = mount(image, read_only=True)
    assert fs.read_file("/SERVICES") == FILES["/SERVICES"]
    device.close()


@pytest.mark.parametrize("target", [60000, 40])  # a free data cluster; inside FAT 1
def test_fat32_fsinfo_outside_the_reserved_area_is_never_written(
    tmp_path: Path, target: int
) -> None:
    """The FSInfo sector number points past the reserved area: fsck.fat then reads FAT or data
    as FSInfo (and may report FATs that differ); nothing there may be written as FSInfo."""
    image = peer_image(tmp_path / "v.img", 32)
    data = bytearray(image.read_bytes())
    fsinfo = bytes(data[512:1024])  # sector 1 holds FSInfo
    if target > 100:
        data[target * 512 : target * 512 + 512] = fsinfo
    struct.pack_into("<H", data, 48, target)
    image.write_bytes(bytes(data))
    assert_read_only_and_untouched(image, "FSInfo sector")


def test_fat32_with_mirroring_disabled_is_read_only(tmp_path: Path) -> None:
    """Bit 7 of the FAT32 extended flags: only the active FAT is kept up to date, so the copies
    may rightly differ and writing them all alike would be wrong."""
    image = patched(peer_image(tmp_path / "v.img", 32), 40, b"\x80\x00")
    assert_read_only_and_untouched(image, "mirroring")


# --------------------------------------------------------------------------- allocation state
def entry_at(image: Path, path: str) -> int:
    device, fs = mount(image, read_only=True)
    offset = entry_offset(fs, path)
    device.close()
    return offset


def first_cluster(data: bytes, offset: int) -> int:
    return struct.unpack_from("<H", data, offset + 26)[0] | (
        struct.unpack_from("<H", data, offset + 20)[0] << 16
    )


def set_fat16(data: bytearray, cluster: int, value: int) -> None:
    fat1, fat_bytes, count = fat_regions(data)
    for copy in range(count):
        struct.pack_into("<H", data, fat1 + copy * fat_bytes + 2 * cluster, value)


def _free_in_both_fats(image: Path) -> None:
    data = bytearray(image.read_bytes())
    first = first_cluster(data, entry_at(image, "/SERVICES"))
    fat1, _, _ = fat_regions(data)
    second = struct.unpack_from("<H", data, fat1 + 2 * first)[0]
    set_fat16(data, first, 0xFFFF)  # the chain ends early: its second cluster looks free
    set_fat16(data, second, 0)
    image.write_bytes(bytes(data))


def _cross_link(image: Path) -> None:
    data = bytearray(image.read_bytes())
    services = first_cluster(data, entry_at(image, "/SERVICES"))
    offset = entry_at(image, "/DIR/SUB/DEEP.BIN")
    struct.pack_into("<H", data, offset + 26, services)
    struct.pack_into("<I", data, offset + 28, 4096)  # one cluster of SERVICES' first
    image.write_bytes(bytes(data))


def _size(path: str, size: int):  # noqa: ANN202 - a patch function
    def patch(image: Path) -> None:
        offset = entry_at(image, path)
        data = bytearray(image.read_bytes())
        struct.pack_into("<I", data, offset + 28, size)
        image.write_bytes(bytes(data))

    return patch


def _dotdot_renamed(image: Path) -> None:
    """The '..' entry of /DIR turned into an ordinary file: fsck.fat wants '..' second."""
    device, fs = mount(image, read_only=True)
    directory = fs._walk_to(["DIR"], "/DIR")
    offset = directory.sectors[0] * 512 + 32
    device.close()
    patched(image, offset, b"..X        \x20")


def _dot_cluster(slot: int, cluster: int):  # noqa: ANN202 - a patch function
    def patch(image: Path) -> None:
        """The '.' (slot 0) or '..' (slot 1) entry of /DIR/SUB points at the wrong cluster."""
        device, fs = mount(image, read_only=True)
        directory = fs._walk_to(["DIR", "SUB"], "/DIR/SUB")
        offset = directory.sectors[0] * 512 + 32 * slot
        device.close()
        patched(image, offset + 26, struct.pack("<H", cluster))

    return patch


def _dotdot_attr(image: Path) -> None:
    """/DIR/SUB's '..' entry loses its directory attribute."""
    device, fs = mount(image, read_only=True)
    offset = fs._walk_to(["DIR", "SUB"], "/DIR/SUB").sectors[0] * 512 + 32
    device.close()
    patched(image, offset + 11, b"\x20")


def _stray_dotdot(image: Path) -> None:
    """A copy of /DIR/SUB's '..' entry in a later slot: fsck.fat sees a directory pointing at
    /DIR (its container), we must not skip it as a dot entry."""
    device, fs = mount(image, read_only=True)
    directory = fs._walk_to(["DIR", "SUB"], "/DIR/SUB")
    offset = directory.sectors[0] * 512
    device.close()
    data = image.read_bytes()
    patched(image, offset + 32 * 6, data[offset + 32 : offset + 64])


def _bpb(offset: int, value: bytes):  # noqa: ANN202 - a patch function
    def patch(image: Path) -> None:
        patched(image, offset, value)

    return patch


@pytest.mark.parametrize(
    "patch,words",
    [
        (_free_in_both_fats, "/SERVICES"),
        (_cross_link, "cross-linked"),
        (_size("/DIR/NOTES.TXT", 100), "/DIR/NOTES.TXT"),
        (_size("/DIR/NOTES.TXT", 90000), "/DIR/NOTES.TXT"),
        (_dotdot_renamed, "/DIR: no '.' and '..' entries first"),
        (_dot_cluster(1, 0), "/DIR/SUB: '..' points to cluster 0"),
        (_dot_cluster(0, 1000), "/DIR/SUB: '.' points to cluster 1000"),
        (_dotdot_attr, "/DIR/SUB: its '.' or '..' entry is not marked as a directory"),
        (_stray_dotdot, "/DIR/SUB: stray '..' entry in slot 6"),
        (_bpb(17, struct.pack("<H", 16)), ""),  # root of 16 entries: the data area moves
        (_bpb(16, b"\x01"), ""),  # one FAT: the root is read from FAT 2
    ],
)
def test_inconsistent_allocation_is_never_written(tmp_path: Path, patch, words: str) -> None:
    image = peer_image(tmp_path / "v.img", 16)
    patch(image)
    verdict = subprocess.run([need("fsck.fat"), "-n", str(image)], capture_output=True, text=True)
    assert verdict.returncode != 0  # the peer agrees the volume is damaged
    before = image.read_bytes()
    try:
        device, fs = mount(image)
    except MountError:
        assert image.read_bytes() == before
        return
    assert fs.read_only, "a damaged volume was mounted writable"
    assert words in (fs.read_only_reason or "") and "\n" not in (fs.read_only_reason or "")
    for change in (
        lambda: fs.mkdir("/newdir"),
        lambda: fs.write_file("/new.txt", b"x" * 5000),
    ):
        with pytest.raises(ReadOnlyFs):
            change()
    fs.close()
    device.close()
    assert image.read_bytes() == before
