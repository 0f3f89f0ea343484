"""A new file's write cut by a power loss at every block write in turn: the next mount reclaims
the clusters the cut left allocated but reached by no chain, so fsck.fat then finds nothing at
all to say; and a mount never reclaims on a volume it will not write (read-only, or damaged)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.peers import peer
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.fat import FatFs

from .conftest import FIXED_NOW, fsck, our_volume

PAYLOAD = bytes(range(256)) * 64  # 16 KiB: several clusters, so the chain grows in steps


class PowerCut(BaseException):
    """The power went (nothing may catch it but the test)."""


class CutDevice(MemoryBlockDevice):
    """A volume whose power goes after `writes` block writes."""

    def __init__(self, data: bytes, writes: int) -> None:
        super().__init__(bytearray(data))
        self.left = writes

    def write_blocks(self, lba: int, data: bytes) -> None:
        if self.left == 0:
            raise PowerCut
        self.left -= 1
        super().write_blocks(lba, data)


def write_new_file(fs: FatFs) -> None:
    """PAYLOAD into a new file through one handle, in pieces, flushed once at the end."""
    with fs.open("/grow.bin", "w") as handle:
        for start in range(0, len(PAYLOAD), 1500):
            handle.write(PAYLOAD[start : start + 1500])
    fs.flush()


def cut_write(image: bytes, writes: int) -> bytes:
    """The image after `write_new_file` with the power cut after `writes` block writes."""
    device = CutDevice(image, writes)
    try:
        write_new_file(FatFs(device, now=lambda: FIXED_NOW))
    except PowerCut:
        pass
    return bytes(device.data)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = our_volume(tmp_path_factory.mktemp("lost") / "v.img", 4, 12)
    with FatFs(MemoryBlockDevice(bytearray(path.read_bytes())), now=lambda: FIXED_NOW) as fs:
        fs.write_file("/keep.txt", b"kept\n")
        return bytes(fs.device.data)


def total_writes(image: bytes) -> int:
    device = CutDevice(image, 10**9)
    write_new_file(FatFs(device, now=lambda: FIXED_NOW))
    return 10**9 - device.left


def test_every_cut_leaves_lost_clusters_the_next_mount_reclaims(
    clean: bytes, tmp_path: Path
) -> None:
    writes = total_writes(clean)
    assert writes > 10
    lost_seen = 0
    for cut in range(writes):
        image = cut_write(clean, cut)
        path = tmp_path / f"cut{cut}.img"
        path.write_bytes(image)
        lost_seen += "Reclaimed" in _fsck_text(path)
        device = MemoryBlockDevice(bytearray(image))
        fs = FatFs(device, now=lambda: FIXED_NOW)  # the mount that must clean up
        if fs.read_only:
            # Cut between the FAT copies: damage, left unwritten for fsck.fat (a cut after a
            # growing file's chain was linked and before its size was written is repaired by
            # the mount: test_fat_cut_append.py).
            reason = fs.read_only_reason or ""
            assert reason.startswith("FAT copies differ"), reason
            assert bytes(device.data) == image
            continue
        assert fs.read_file("/keep.txt") == b"kept\n"
        if fs.exists("/grow.bin"):
            assert PAYLOAD.startswith(fs.read_file("/grow.bin"))  # nothing but what was written
        fs.close()
        path.write_bytes(bytes(device.data))
        assert "Reclaimed" not in fsck(path), cut  # fsck() also fails on any complaint
    assert lost_seen, "no cut left lost clusters: the test no longer tests anything"


def _fsck_text(path: Path) -> str:
    result = subprocess.run([peer("fsck.fat"), "-n", str(path)], capture_output=True, text=True)
    return result.stdout + result.stderr


def test_a_read_only_mount_reclaims_nothing(clean: bytes) -> None:
    image = next(
        cut_write(clean, cut) for cut in range(total_writes(clean)) if _loses(cut_write(clean, cut))
    )
    device = MemoryBlockDevice(bytearray(image))
    FatFs(device, read_only=True, now=lambda: FIXED_NOW).close()
    assert bytes(device.data) == image


def test_a_damaged_volume_reclaims_nothing(clean: bytes) -> None:
    """FAT copies that differ mount read-only: the lost clusters stay for fsck.fat."""
    image = bytearray(
        next(cut_write(clean, cut) for cut in range(total_writes(clean))
             if _loses(cut_write(clean, cut)))
    )  # fmt: skip
    fs = FatFs(MemoryBlockDevice(bytearray(image)), read_only=True, now=lambda: FIXED_NOW)
    second_fat = (fs.layout.reserved_sectors + fs.layout.fat_sectors) * 512
    image[second_fat + 3] ^= 0xFF  # cluster 2's entry in FAT 2 only
    device = MemoryBlockDevice(bytearray(image))
    damaged = FatFs(device, now=lambda: FIXED_NOW)
    assert damaged.read_only and damaged.lost_clusters() > 0
    damaged.close()
    assert bytes(device.data) == bytes(image)


def _loses(image: bytes) -> bool:
    fs = FatFs(MemoryBlockDevice(bytearray(image)), read_only=True, now=lambda: FIXED_NOW)
    return fs.lost_clusters() > 0
