"""The FAT page cache (kernel/fs/pagecache.py): file data read again comes from memory, never
stale after write, truncate, unlink or a directory taking a freed cluster, bounded, and the
volume it leaves is one fsck.fat finds clean."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.disk.conftest import FIXED_NOW, fsck
from tradekernel.kernel.drivers.blockdev import BlockDeviceError, MemoryBlockDevice
from tradekernel.kernel.fs.fat import FatFs, mkfs
from tradekernel.kernel.fs.pagecache import PAGE_BLOCKS, PageCache


class CountingDevice(MemoryBlockDevice):
    """A memory disk that counts the blocks read from it, and can be made to fail reads."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.blocks_read = 0
        self.failing = False

    def read_blocks(self, lba: int, count: int) -> bytes:
        if self.failing:
            raise BlockDeviceError("medium error")
        self.blocks_read += count
        return super().read_blocks(lba, count)


def volume(size_mb: int = 8, fat_type: int = 16, cache_pages: int = 256, spc: int | None = None):
    device = CountingDevice(size_mb << 20)
    mkfs(device, fat_type=fat_type, sectors_per_cluster=spc)
    return device, FatFs(device, now=lambda: FIXED_NOW, cache_pages=cache_pages)


def pattern(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(size))


def test_a_file_read_again_comes_from_memory() -> None:
    device, fs = volume()
    fs.write_file("/prog", pattern(300_000, 1))
    fs.read_file("/prog")  # the first read fills the cache (written data is not inserted)
    before = device.blocks_read
    assert fs.read_file("/prog") == pattern(300_000, 1)
    assert device.blocks_read == before


def test_overwrite_through_another_handle_is_seen() -> None:
    _, fs = volume()
    fs.write_file("/f", pattern(20_000, 2))
    reader = fs.open("/f")
    assert reader.read() == pattern(20_000, 2)
    with fs.open("/f", "r+") as writer:
        writer.seek(5_000)
        writer.write(b"X" * 777)  # a write that starts and ends inside sectors
    reader.seek(0)
    expected = bytearray(pattern(20_000, 2))
    expected[5_000:5_777] = b"X" * 777
    assert reader.read() == bytes(expected)
    reader.close()


def test_truncate_and_grow_reads_zeros_not_old_data() -> None:
    _, fs = volume()
    fs.write_file("/f", b"\xaa" * 10_000)
    fs.read_file("/f")
    fs.truncate("/f", 100)
    with fs.open("/f", "r+") as handle:
        handle.seek(9_000)
        handle.write(b"end")  # the hole 100..9000 must read as zeros
    assert fs.read_file("/f") == b"\xaa" * 100 + bytes(8_900) + b"end"


def test_unlinked_clusters_reused_by_a_directory_and_a_file(tmp_path: Path) -> None:
    device, fs = volume(spc=1)
    fs.write_file("/old", pattern(64_000, 3))
    fs.read_file("/old")
    fs.remove("/old")
    fs.mkdir("/d")  # takes a freed cluster: its sectors are zeroed and written
    fs.write_file("/d/new", pattern(64_000, 9))
    assert fs.read_file("/d/new") == pattern(64_000, 9)
    assert fs.listdir("/d") == ["new"]
    fs.close()
    image = tmp_path / "v.img"
    image.write_bytes(bytes(device.data))
    fsck(image)
    again = FatFs(MemoryBlockDevice(bytes(device.data)), cache_pages=0)
    assert again.read_file("/d/new") == pattern(64_000, 9)


def test_the_cache_stays_within_its_bound() -> None:
    _, fs = volume(cache_pages=16)
    for index in range(6):
        fs.write_file(f"/f{index}", pattern(50_000, index))
    for index in range(6):
        assert fs.read_file(f"/f{index}") == pattern(50_000, index)
        assert len(fs._cache) <= 16


def test_a_read_error_caches_nothing() -> None:
    device = CountingDevice(1 << 20)
    cache = PageCache(device, 8)
    device.failing = True
    with pytest.raises(BlockDeviceError) as raised:
        cache.read_blocks(3, 2)
    assert raised.value.errno == errno.EIO
    assert len(cache) == 0
    device.failing = False
    device.data[3 * 512 : 5 * 512] = b"z" * 1024
    assert cache.read_blocks(3, 2) == b"z" * 1024


def test_reads_at_the_device_end_and_out_of_range() -> None:
    device = CountingDevice(13 * 512)  # the last page is short (5 blocks)
    device.data[:] = pattern(13 * 512, 4)
    cache = PageCache(device, 4)
    assert cache.read_blocks(10, 3) == device.data[10 * 512 :]
    assert cache.read_blocks(0, 13) == device.data
    with pytest.raises(BlockDeviceError):
        cache.read_blocks(12, 2)
    cache.write_blocks(12, b"q" * 512)
    assert cache.read_blocks(PAGE_BLOCKS, 5)[-512:] == b"q" * 512


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["write", "truncate", "remove", "read", "mkdir"]),
        st.integers(0, 3),  # which file
        st.integers(0, 40_000),  # offset or length
        st.integers(1, 9_000),  # write size
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(OPERATIONS)
def test_random_changes_read_back_as_a_model_says(operations) -> None:  # noqa: ANN001
    device, fs = volume(size_mb=2, fat_type=12, cache_pages=6, spc=1)
    model: dict[str, bytearray] = {}
    for step, (action, which, offset, size) in enumerate(operations):
        name = f"/f{which}"
        if action == "write":
            data = pattern(size, step)
            with fs.open(name, "r+" if name in model else "w") as handle:
                handle.seek(offset)
                handle.write(data)
            body = model.setdefault(name, bytearray())
            if offset > len(body):
                body.extend(bytes(offset - len(body)))
            body[offset : offset + size] = data
        elif action == "truncate" and name in model:
            fs.truncate(name, offset)
            body = model[name]
            del body[offset:]
            body.extend(bytes(offset - len(body)))
        elif action == "remove" and name in model:
            fs.remove(name)
            del model[name]
        elif action == "mkdir":
            fs.mkdir(f"/d{step}")
        for path, body in model.items():
            assert fs.read_file(path) == bytes(body)
    fs.close()
    cold = FatFs(MemoryBlockDevice(bytes(device.data)), cache_pages=0)
    for path, body in model.items():
        assert cold.read_file(path) == bytes(body)
