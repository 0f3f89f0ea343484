"""Damaged volumes: every cluster chain walk is bounded and loop-checked, the damaged file or
directory is named in a CorruptFs error, directory traversal terminates, and the rest of the
volume stays readable. Damage is made by patching real images byte by byte."""

from __future__ import annotations

import errno
import inspect
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.disk.conftest import FIXED_NOW, fsck, mount, our_volume
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.fat import CorruptFs, FatFs, FsError, mkfs
from tradekernel.kernel.fs.fat_dir import ATTR_DIRECTORY, lfn_checksum, used_slots


def volume(fat_type: int = 16, size_mb: int = 8) -> MemoryBlockDevice:
    device = MemoryBlockDevice(size_mb << 20)
    mkfs(device, fat_type=fat_type)
    return device


def remount(device: MemoryBlockDevice) -> FatFs:
    return FatFs(MemoryBlockDevice(bytes(device.data)), now=lambda: FIXED_NOW)


def entry_offset(fs: FatFs, path: str) -> int:
    """Byte offset on the device of the 8.3 entry of `path`."""
    parent, entry = fs._existing(path)
    byte = entry.index * 32
    return parent.sectors[byte // 512] * 512 + byte % 512


def set_first_cluster(device: MemoryBlockDevice, fs: FatFs, path: str, cluster: int) -> None:
    offset = entry_offset(fs, path)
    struct.pack_into("<H", device.data, offset + 20, cluster >> 16)
    struct.pack_into("<H", device.data, offset + 26, cluster & 0xFFFF)


def set_fat(device: MemoryBlockDevice, fs: FatFs, cluster: int, value: int) -> None:
    """Set one FAT16/FAT32 entry in every FAT copy."""
    layout = fs.layout
    width = 2 if layout.fat_type == 16 else 4
    for copy in range(layout.fat_count):
        base = (layout.reserved_sectors + copy * layout.fat_sectors) * 512
        fmt = "<H" if width == 2 else "<I"
        struct.pack_into(fmt, device.data, base + width * cluster, value)


def populated(fat_type: int = 16) -> tuple[MemoryBlockDevice, FatFs]:
    device = volume(fat_type, 8 if fat_type != 32 else 40)
    fs = FatFs(device, now=lambda: FIXED_NOW)
    fs.mkdir("/a")
    fs.mkdir("/a/b")
    fs.write_file("/a/b/c.txt", b"c" * 5000)
    fs.write_file("/keep.txt", b"keep me")
    fs.write_file("/victim.bin", b"v" * 5000)
    fs.flush()
    return device, fs


def walk_all(fs: FatFs) -> tuple[list[str], list[FsError]]:
    errors: list[FsError] = []
    tops = [top for top, _, _ in fs.walk("/", onerror=errors.append)]
    return tops, errors


def assert_corrupt(error: BaseException, path: str) -> None:
    assert isinstance(error, CorruptFs)
    assert error.errno == errno.EUCLEAN
    assert str(error).startswith(f"damaged {path}: "), str(error)
    assert error.filename == path


@pytest.mark.parametrize("fat_type", [16, 32])
def test_directory_pointing_back_at_its_parent_is_reported_not_followed(fat_type: int) -> None:
    device, fs = populated(fat_type)
    set_first_cluster(device, fs, "/a/b", fs.stat("/a").first_cluster)
    fs = remount(device)
    with pytest.raises(CorruptFs) as info:
        fs.scandir("/a/b")
    assert_corrupt(info.value, "/a/b")
    tops, errors = walk_all(fs)
    assert tops == ["/", "/a"]
    assert len(errors) == 1
    assert_corrupt(errors[0], "/a/b")
    with pytest.raises(CorruptFs):
        list(fs.walk("/"))
    assert fs.read_file("/keep.txt") == b"keep me"


@pytest.mark.parametrize("fat_type", [16, 32])
def test_subdirectory_with_cluster_zero_or_the_root_cluster_is_corrupt(fat_type: int) -> None:
    device, fs = populated(fat_type)
    set_first_cluster(device, fs, "/a", 0 if fat_type == 16 else fs.layout.root_cluster)
    fs = remount(device)
    with pytest.raises(CorruptFs) as info:
        fs.listdir("/a")
    assert_corrupt(info.value, "/a")
    tops, errors = walk_all(fs)
    assert tops == ["/"] and len(errors) == 1
    assert fs.read_file("/keep.txt") == b"keep me"


@pytest.mark.parametrize(
    "damage,words",
    [
        ("free first cluster", "marked free"),
        ("cluster 1", "outside"),
        ("past the end", "outside"),
        ("free link", "free cluster"),
        ("loop", "loops"),
        ("link past the end", "outside"),
    ],
)
def test_bad_file_chains_are_corrupt_with_the_path(damage: str, words: str) -> None:
    device, fs = populated(16)
    first = fs.stat("/victim.bin").first_cluster
    free = fs.statfs().total_clusters  # the last cluster: free on this volume
    if damage == "free first cluster":
        set_first_cluster(device, fs, "/victim.bin", free)
    elif damage == "cluster 1":
        set_first_cluster(device, fs, "/victim.bin", 1)
    elif damage == "past the end":
        set_first_cluster(device, fs, "/victim.bin", fs.layout.max_cluster + 1)
    elif damage == "free link":
        set_fat(device, fs, first, free)
    elif damage == "loop":
        set_fat(device, fs, first + 1, first)
    else:
        set_fat(device, fs, first, fs.layout.max_cluster + 5)
    fs = remount(device)
    with pytest.raises(CorruptFs) as info:
        fs.read_file("/victim.bin")
    assert_corrupt(info.value, "/victim.bin")
    assert words in str(info.value)
    assert fs.read_file("/keep.txt") == b"keep me"
    assert fs.read_file("/a/b/c.txt") == b"c" * 5000


def test_directory_chain_that_loops_is_corrupt_and_bounded() -> None:
    device, fs = populated(16)
    b = fs.stat("/a/b").first_cluster
    set_fat(device, fs, b, b)  # the directory's only cluster links to itself
    fs = remount(device)
    with pytest.raises(CorruptFs) as info:
        fs.listdir("/a/b")
    assert_corrupt(info.value, "/a/b")
    assert "loops" in str(info.value)
    tops, errors = walk_all(fs)
    assert tops == ["/", "/a"] and len(errors) == 1
    assert fs.listdir("/a") == ["b"]


def test_cross_linked_directories_are_walked_once() -> None:
    device, fs = populated(16)
    fs.mkdir("/other")
    fs.flush()
    set_first_cluster(device, fs, "/other", fs.stat("/a/b").first_cluster)
    fs = remount(device)
    tops, errors = walk_all(fs)
    assert len(errors) == 1 and isinstance(errors[0], CorruptFs)
    assert errors[0].filename in ("/a/b", "/other")
    assert sorted(tops) == sorted({"/", "/a", "/a/b", "/other"} - {errors[0].filename})


def _raw_entry(raw_name: bytes, attr: int, cluster: int) -> bytes:
    entry = bytearray(32)
    entry[0:11] = raw_name
    entry[11] = attr
    struct.pack_into("<HI", entry, 26, cluster, 0)
    return bytes(entry)


def test_names_that_are_not_path_components_are_made_safe() -> None:
    """A long name '..' or with a slash, or a blank short name, must not turn a path into its
    parent or itself: walking such a volume terminates and every name is one component."""
    device, fs = populated(16)
    a = fs.stat("/a").first_cluster
    directory = fs._load_dir(a)
    lba = directory.sectors[0]
    sector = bytearray(device.data[lba * 512 : lba * 512 + 512])
    slot = 4 * 32  # after '.', '..', and 'b' (a long-name entry and its 8.3 entry)
    raw_a = b"EVIL       "
    lfn = bytearray(32)
    lfn[0] = 0x41
    lfn[11] = 0x0F
    lfn[13] = lfn_checksum(raw_a)
    lfn[1:5] = "..".encode("utf-16-le")
    lfn[5:7] = b"\0\0"
    sector[slot : slot + 32] = bytes(lfn)
    sector[slot + 32 : slot + 64] = _raw_entry(raw_a, ATTR_DIRECTORY, a)
    sector[slot + 64 : slot + 96] = _raw_entry(b" " * 11, ATTR_DIRECTORY, a)
    sector[slot + 96 : slot + 128] = _raw_entry(b"A/B     C\\D", ATTR_DIRECTORY, a)
    device.data[lba * 512 : lba * 512 + 512] = sector
    fs = remount(device)
    names = fs.listdir("/a")
    assert len(names) == 4
    for name in names:
        assert name not in ("", ".", "..") and "/" not in name and "\\" not in name, names
    tops, errors = walk_all(fs)
    assert len(tops) == len(set(tops)) <= 3
    assert len(errors) == 3  # each of the three bad entries leads back to /a
    for name in names:
        assert fs.stat("/a/" + name).is_dir


def test_walk_of_a_deep_tree_does_not_recurse() -> None:
    fs = FatFs(volume(16, 8), now=lambda: FIXED_NOW)
    path = ""
    for _ in range(300):
        path += "/d"
        fs.mkdir(path)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 100)  # far less than the tree is deep
    try:
        assert sum(1 for _ in fs.walk("/")) == 301
    finally:
        sys.setrecursionlimit(limit)


def test_entries_after_a_zeroed_slot_are_listed_and_kept(tmp_path: Path) -> None:
    """A slot starting with 0x00 amid live entries (a tool that zeroed a deleted entry) is
    free, but not the end of the directory: Linux and fsck.fat read on past it, so the entries
    after it exist and a new entry must not be written over them."""
    image = our_volume(tmp_path / "v.img", 16, 16)
    device, fs = mount(image)
    for name in ("gone.txt", "b.txt", "c.txt"):
        fs.write_file("/" + name, name.encode() * 100)
    offset = entry_offset(fs, "/gone.txt")
    fs.remove("/gone.txt")
    fs.close()
    device.close()
    data = bytearray(image.read_bytes())
    data[offset - 32 : offset + 32] = bytes(64)  # its long-name slot and its 8.3 slot
    image.write_bytes(bytes(data))
    fsck(image)
    device, fs = mount(image)
    assert sorted(fs.listdir("/")) == ["b.txt", "c.txt"]
    for index in range(4):
        fs.write_file(f"/new {index}.txt", b"new" * 100)
    fs.close()
    device.close()
    fsck(image)
    device, fs = mount(image)
    assert fs.read_file("/b.txt") == b"b.txt" * 100 and fs.read_file("/c.txt") == b"c.txt" * 100
    assert len(fs.listdir("/")) == 6
    device.close()


@pytest.mark.parametrize("byte,value", [(1, 0x0F), (13, 0x00)])
def test_an_unusable_long_name_still_belongs_to_its_entry(
    tmp_path: Path, byte: int, value: int
) -> None:
    """A long name with a control character or the wrong checksum is shown by its short name,
    but its long-name slots are the entry's: removing or renaming the file removes them too,
    leaving no orphans (fsck.fat only warns about the checksum, but fails orphans)."""
    image = our_volume(tmp_path / "v.img", 16, 16)
    device, fs = mount(image)
    fs.write_file("/instruments.toml", b"x" * 100)
    fs.write_file("/other name.txt", b"y" * 100)
    offset = entry_offset(fs, "/instruments.toml")
    fs.close()
    device.close()
    data = bytearray(image.read_bytes())
    data[offset - 64 + byte] = value  # the first long-name slot: a character, or the checksum
    image.write_bytes(bytes(data))
    device, fs = mount(image)
    shown = [name for name in fs.listdir("/") if name != "other name.txt"]
    assert shown == ["INSTRU~1.TOM"]
    fs.rename("/INSTRU~1.TOM", "/renamed.toml")
    fs.remove("/other name.txt")
    fs.close()
    device.close()
    fsck(image)


def test_exists_is_false_behind_damage_like_os_path_exists() -> None:
    device, fs = populated(16)
    set_first_cluster(device, fs, "/a/b", fs.stat("/a").first_cluster)
    fs = remount(device)
    assert not fs.exists("/a/b/c.txt")
    assert fs.exists("/a") and fs.exists("/keep.txt")


def test_a_long_name_slot_is_attribute_0x0f_exactly_as_linux_and_fsck_read_it() -> None:
    """With a reserved attribute bit set (0x4F) a long-name slot is an 8.3 volume label entry
    to Linux and fsck.fat, whatever its bytes hold. Here it names a cluster beyond the volume,
    which fsck.fat calls damage, so the volume is not written."""
    device, fs = populated(16)
    fs.write_file("/a long name.txt", b"x")
    offset = entry_offset(fs, "/a long name.txt") - 32  # its (only) long-name slot
    device.data[offset + 11] = 0x4F
    struct.pack_into("<H", device.data, offset + 20, 0x7F)  # cluster 0x7Fxxxx: beyond the end
    fs = remount(device)
    assert len(fs.listdir("/")) == 4  # a, keep.txt, victim.bin, the short alias: no label
    assert fs.read_only and "volume label" in (fs.read_only_reason or "")


@settings(max_examples=200, deadline=None)
@given(
    slots=st.sampled_from([0, 3, 16, 64, 512]),
    marks=st.lists(st.tuples(st.integers(0, 1 << 14), st.integers(1, 255)), max_size=3),
)
def test_used_slots_ends_after_the_last_slot_holding_anything(
    slots: int, marks: list[tuple[int, int]]
) -> None:
    raw = bytearray(slots * 32)
    for position, value in marks:
        if raw:
            raw[position % len(raw)] = value
    assert used_slots(raw) == -(-len(bytes(raw).rstrip(b"\0")) // 32)
