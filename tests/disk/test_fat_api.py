"""fat.py's own contract: errno-style errors, handles, names, timestamps, full disks and
damaged images."""

from __future__ import annotations

import errno
import struct
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.disk.conftest import FIXED_NOW, fsck, mount, mtools, our_volume
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.fat import (
    O_APPEND,
    O_CREAT,
    O_RDWR,
    O_WRONLY,
    BadBootSector,
    BadBpb,
    CorruptFs,
    FatFs,
    FatMismatch,
    FsError,
    MountError,
    NoSpace,
    TruncatedImage,
    mkfs,
)
from tradekernel.kernel.fs.fat_dir import lfn_checksum


def memory_fs(size_mb: int = 8, fat_type: int | None = 16) -> FatFs:
    device = MemoryBlockDevice(size_mb << 20)
    mkfs(device, fat_type=fat_type)
    return FatFs(device, now=lambda: FIXED_NOW)


def errno_of(call) -> int:
    with pytest.raises(FsError) as info:
        call()
    return info.value.errno


def test_errors_carry_errno_codes() -> None:
    fs = memory_fs()
    fs.mkdir("/d")
    fs.write_file("/d/f", b"data")
    assert errno_of(lambda: fs.open("/missing")) == errno.ENOENT
    assert errno_of(lambda: fs.open("/nodir/f", "w")) == errno.ENOENT
    assert errno_of(lambda: fs.mkdir("/d")) == errno.EEXIST
    assert errno_of(lambda: fs.open("/d/f", "x")) == errno.EEXIST
    assert errno_of(lambda: fs.open("/d/f/g", "w")) == errno.ENOTDIR
    assert errno_of(lambda: fs.listdir("/d/f")) == errno.ENOTDIR
    assert errno_of(lambda: fs.open("/d")) == errno.EISDIR
    assert errno_of(lambda: fs.remove("/d")) == errno.EISDIR
    assert errno_of(lambda: fs.rmdir("/d/f")) == errno.ENOTDIR
    assert errno_of(lambda: fs.rmdir("/d")) == errno.ENOTEMPTY
    assert errno_of(lambda: fs.open("/d/f", "q")) == errno.EINVAL
    for bad in ("a*b", "what?", "tab\there", "trailing.", "x" * 256, 'quo"te', "pipe|"):
        assert errno_of(lambda bad=bad: fs.write_file("/" + bad, b"")) == errno.EINVAL
    with fs.open("/d/f") as handle:
        assert errno_of(lambda: handle.write(b"x")) == errno.EBADF
        assert errno_of(lambda: fs.remove("/d/f")) == errno.EBUSY
    handle = fs.open("/d/f", "w")
    assert errno_of(handle.read) == errno.EBADF
    handle.close()
    assert errno_of(lambda: handle.write(b"")) == errno.EBADF
    fs.mkdir("/d/sub")
    assert errno_of(lambda: fs.rename("/d", "/d/sub/inside")) == errno.EINVAL


def test_read_only_mount_refuses_every_change(fat16_image: Path) -> None:
    device, fs = mount(fat16_image)
    fs.write_file("/f.txt", b"hello")
    fs.close()
    device.close()
    device, fs = mount(fat16_image, read_only=True)
    assert fs.read_file("/f.txt") == b"hello"
    for change in (
        lambda: fs.open("/f.txt", "r+"),
        lambda: fs.open("/new", "w"),
        lambda: fs.mkdir("/x"),
        lambda: fs.remove("/f.txt"),
        lambda: fs.rename("/f.txt", "/g.txt"),
    ):
        assert errno_of(change) == errno.EROFS
    device.close()


def test_handles_seek_tell_truncate_and_share_one_file() -> None:
    fs = memory_fs()
    with fs.open("/f", O_RDWR | O_CREAT) as a, fs.open("/f", "r") as b:
        assert a.write(b"0123456789") == 10
        assert a.tell() == 10
        assert b.read() == b"0123456789"  # a second handle sees the first one's data
        a.seek(-3, 2)
        assert a.read(10) == b"789"
        a.seek(20)
        a.write(b"!")
        assert fs.stat("/f").size == 21
        b.seek(0)
        assert b.read() == b"0123456789" + bytes(10) + b"!"
        a.truncate(4)
        assert b.seek(0, 2) == 4
        with pytest.raises(FsError):
            a.seek(-1)
    with fs.open("/f", O_WRONLY | O_APPEND) as handle:
        handle.seek(0)
        handle.write(b"++")  # O_APPEND writes at the end whatever the position
    assert fs.read_file("/f") == b"0123++"
    with fs.open("/f", "w") as handle:  # "w" truncates
        assert handle.size == 0
    assert fs.read_file("/f") == b""


def test_big_file_across_many_clusters_round_trips() -> None:
    fs = memory_fs(16)
    blob = bytes((i * 7 + i // 511) & 0xFF for i in range(300_000))
    with fs.open("/big.bin", "w") as handle:
        for start in range(0, len(blob), 4093):  # odd-sized writes cross sector edges
            handle.write(blob[start : start + 4093])
    assert fs.read_file("/big.bin") == blob
    with fs.open("/big.bin") as handle:
        handle.seek(123_457)
        assert handle.read(5000) == blob[123_457:128_457]


def test_short_names_long_names_and_case() -> None:
    fs = memory_fs()
    fs.write_file("/Long File Name.txt", b"1")
    fs.write_file("/Long File Name2.txt", b"2")
    fs.write_file("/README.TXT", b"3")
    fs.write_file("/readme.md", b"4")
    shorts = {s.name: s.short_name for s in fs.scandir("/")}
    assert shorts == {
        "Long File Name.txt": "LONGFI~1.TXT",
        "Long File Name2.txt": "LONGFI~2.TXT",
        "README.TXT": "README.TXT",
        "readme.md": "README.MD",
    }
    assert fs.read_file("/long file name2.TXT") == b"2"  # lookups ignore case
    assert fs.read_file("/LONGFI~1.TXT") == b"1"  # and accept the short alias
    assert lfn_checksum(b"LONGFI~1TXT") != lfn_checksum(b"LONGFI~2TXT")


def test_timestamps_come_from_the_supplied_clock(fat16_image: Path) -> None:
    moments = iter([datetime(2030, 1, 2, 3, 4, 6, 500_000), datetime(2031, 6, 7, 8, 9, 10)])
    device, _ = mount(fat16_image)
    current = [next(moments)]
    fs = FatFs(device, now=lambda: current[0])
    fs.write_file("/stamp.txt", b"a")
    created = fs.stat("/stamp.txt")
    assert created.ctime == datetime(2030, 1, 2, 3, 4, 6, 500_000)
    assert created.mtime == datetime(2030, 1, 2, 3, 4, 6)
    current[0] = next(moments)
    with fs.open("/stamp.txt", "a") as handle:
        handle.write(b"b")
    changed = fs.stat("/stamp.txt")
    assert changed.mtime == datetime(2031, 6, 7, 8, 9, 10)
    assert changed.ctime == created.ctime
    fs.close()
    device.close()
    assert "2031-06-07" in mtools("mdir", fat16_image, "::/").decode()


def test_rename_moves_files_and_directories(fat16_image: Path) -> None:
    device, fs = mount(fat16_image)
    fs.mkdir("/a")
    fs.mkdir("/a/inner dir")
    fs.write_file("/a/inner dir/file.txt", b"payload")
    fs.mkdir("/c")
    fs.rename("/a/inner dir", "/c/moved dir")
    fs.write_file("/target", b"old")
    fs.write_file("/source", b"new")
    fs.rename("/source", "/target")  # replaces, as POSIX rename does
    fs.rename("/target", "/Target")  # a change of case alone
    assert fs.listdir("/a") == []
    assert fs.read_file("/c/moved dir/file.txt") == b"payload"
    assert fs.listdir("/") == ["a", "c", "Target"]
    assert fs.read_file("/Target") == b"new"
    fs.close()
    device.close()
    fsck(fat16_image)  # a moved directory's '..' must point at its new parent
    assert mtools("mtype", fat16_image, "::/c/moved dir/file.txt") == b"payload"


def test_disk_full_raises_enospc_and_leaves_a_clean_volume(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "small.img", 1, 12)
    device, fs = mount(image)
    written = 0
    with fs.open("/fill.bin", "w") as handle:
        with pytest.raises(NoSpace) as info:
            while True:
                handle.write(b"\xa5" * 65536)
                written += 65536
        assert info.value.errno == errno.ENOSPC
    assert fs.stat("/fill.bin").size == written
    free = fs.statfs().free_clusters
    assert free * fs.statfs().cluster_size < 65536
    with pytest.raises(NoSpace):
        for index in range(1000):  # directories need clusters too
            fs.mkdir(f"/dir{index}")
    fs.close()
    device.close()
    fsck(image)
    assert mtools("mtype", image, "::/fill.bin") == b"\xa5" * written


def test_full_fixed_root_directory_is_enospc(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "root.img", 8, 16)
    device, fs = mount(image)
    for index in range(512):
        fs.write_file(f"/F{index}", b"")
    with pytest.raises(NoSpace):
        fs.write_file("/one-too-many", b"")
    fs.close()
    device.close()
    fsck(image)


def test_fat32_fsinfo_tracks_free_space(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "f32.img", 34, 32)
    device, fs = mount(image)
    fs.write_file("/blob", bytes(100_000))
    free = fs.statfs().free_clusters
    fs.close()
    device.close()
    raw = image.read_bytes()
    assert struct.unpack_from("<I", raw, 512 + 488)[0] == free
    fsck(image)


def _garble_both_fats(data: bytearray) -> None:
    """One FAT damaged is mounted read-only (test_fat_mount_checks.py); both is refused."""
    fat_sectors = struct.unpack_from("<H", data, 22)[0]
    for start, junk in ((512, b"\x17"), ((1 + fat_sectors) * 512, b"\x18")):
        data[start : start + 8192] = junk * 8192


def _damaged(tmp_path: Path, patch) -> Path:
    image = our_volume(tmp_path / "d.img", 8, 16)
    data = bytearray(image.read_bytes())
    patch(data)
    image.write_bytes(bytes(data))
    return image


@pytest.mark.parametrize(
    "patch,error,words",
    [
        (lambda d: d.__setitem__(slice(510, 512), b"\0\0"), BadBootSector, "signature"),
        (lambda d: d.__setitem__(0, 0), BadBootSector, "jump"),
        (lambda d: d.__setitem__(13, 3), BadBpb, "sectors per cluster"),
        (lambda d: d.__setitem__(slice(11, 13), b"\x00\x04"), BadBpb, "bytes per sector"),
        (lambda d: d.__setitem__(16, 0), BadBpb, "FAT copies"),
        (lambda d: d.__setitem__(slice(22, 24), b"\0\0"), BadBpb, "FAT32 version"),
        (_garble_both_fats, FatMismatch, "both FATs are damaged"),
        (lambda d: d.__delitem__(slice(4 << 20, None)), TruncatedImage, "truncated"),
        (lambda d: d.__delitem__(slice(100, None)), TruncatedImage, "one sector"),
    ],
)
def test_damaged_images_fail_to_mount_with_a_reason(
    tmp_path: Path,
    patch,
    error: type,
    words: str,
) -> None:
    image = _damaged(tmp_path, patch)
    with pytest.raises(error) as info:
        mount(image)
    assert words in str(info.value)
    assert isinstance(info.value, MountError)


def test_looping_cluster_chain_is_reported_not_followed(fat16_image: Path) -> None:
    device, fs = mount(fat16_image)
    fs.write_file("/loop", bytes(3000))
    first = fs.stat("/loop").first_cluster
    fat_bytes = fs.layout.fat_sectors * 512
    fs.close()
    device.close()
    data = bytearray(fat16_image.read_bytes())
    for copy in range(2):  # make the file's second cluster point back at its first
        struct.pack_into("<H", data, 512 + copy * fat_bytes + 2 * (first + 1), first)
    fat16_image.write_bytes(bytes(data))
    device, fs = mount(fat16_image)
    with pytest.raises(CorruptFs):
        fs.read_file("/loop")
    device.close()


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(11, 89), value=st.binary(min_size=1, max_size=4))
def test_any_boot_sector_damage_gives_a_mount_error_or_a_working_volume(
    offset: int, value: bytes
) -> None:
    device = MemoryBlockDevice(2 << 20)
    mkfs(device, fat_type=12)
    device.data[offset : offset + len(value)] = value
    try:
        fs = FatFs(device)
    except MountError:
        return
    try:
        fs.listdir("/")
        fs.write_file("/probe", b"x" * 1000)
        assert fs.read_file("/probe") == b"x" * 1000
    except FsError:
        pass  # a volume whose damage only shows in use must still fail with an FsError


def test_mkfs_refuses_a_size_the_fat_type_cannot_hold() -> None:
    with pytest.raises(FsError) as info:
        mkfs(MemoryBlockDevice(1 << 20), fat_type=32)
    assert info.value.errno == errno.EINVAL


def test_walk_reports_every_directory_and_file() -> None:
    fs = memory_fs()
    fs.mkdir("/a")
    fs.mkdir("/a/b")
    fs.write_file("/a/b/c.txt", b"123")
    fs.write_file("/top", b"45")
    walked = {top: (dirs, sorted(f.name for f in files)) for top, dirs, files in fs.walk()}
    assert walked == {
        "/": (["a"], ["top"]),
        "/a": (["b"], []),
        "/a/b": ([], ["c.txt"]),
    }
    total = sum(f.size for _, _, files in fs.walk() for f in files)
    assert total == 5


def test_write_far_past_the_end_is_enospc_before_the_hole_is_made_on_the_host() -> None:
    """A write 64 MiB past the end of a file on an 8 MiB volume: NoSpace, and the hole's
    zeros are never built in host memory (the cluster count is checked first)."""
    import tracemalloc

    fs = memory_fs()
    with fs.open("/sparse.bin", "w") as handle:
        handle.seek(64 << 20)
        tracemalloc.start()
        try:
            with pytest.raises(NoSpace):
                handle.write(b"x")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20
    assert fs.stat("/sparse.bin").size == 0
