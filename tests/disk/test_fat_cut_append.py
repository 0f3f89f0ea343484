"""A log append cut by a power loss at every block write in turn: the one state FAT's write
order leaves (the file's chain one cluster longer than its size: the FAT was written, the
directory entry's size not yet) is repaired by the next writable mount exactly as fsck.fat -a
repairs it (byte for byte), so the volume comes back writable with every acknowledged append
and fsck.fat then finds nothing; any other inconsistency still mounts read-only, unwritten."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.peers import peer
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.fat import FatFs

from .conftest import FIXED_NOW, fsck, our_volume
from .test_fat_lost_clusters import CutDevice, PowerCut

LOG = "/var/log/audit.log"
RECORD = b"order accepted, 100 shares of AAPL at 100.00, acknowledged to the client\n"
RECORDS = 80  # about 6 KiB: the log crosses several cluster boundaries


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A FAT12 volume (2 KiB clusters) holding a log that already has a record."""
    path = our_volume(tmp_path_factory.mktemp("append") / "v.img", 4, 12)
    with FatFs(MemoryBlockDevice(bytearray(path.read_bytes())), now=lambda: FIXED_NOW) as fs:
        fs.mkdir("/var")
        fs.mkdir("/var/log")
        fs.write_file(LOG, RECORD)
        fs.write_file("/keep.txt", b"kept\n")
        return bytes(fs.device.data)


def append_records(fs: FatFs, acknowledged: list[int]) -> None:
    """Append RECORDS records as the audit log does: one write and a flush each, then the
    record counts as acknowledged."""
    with fs.open(LOG, "a") as handle:
        for number in range(RECORDS):
            handle.write(RECORD)
            fs.flush()
            acknowledged.append(number)


def cut_append(image: bytes, writes: int) -> tuple[bytes, int]:
    """(the image, records acknowledged) with the power cut after `writes` block writes."""
    device = CutDevice(image, writes)
    acknowledged: list[int] = []
    try:
        append_records(FatFs(device, now=lambda: FIXED_NOW), acknowledged)
    except PowerCut:
        pass
    return bytes(device.data), len(acknowledged)


def total_writes(image: bytes) -> int:
    device = CutDevice(image, 10**9)
    append_records(FatFs(device, now=lambda: FIXED_NOW), [])
    return 10**9 - device.left


def fsck_findings(path: Path) -> str:
    result = subprocess.run([peer("fsck.fat"), "-n", str(path)], capture_output=True, text=True)
    return result.stdout + result.stderr


def one_cut_append(clean: bytes) -> bytes:
    """The first cut image whose only finding is the cut append (both FAT copies written, the
    log's size not yet): fsck.fat would truncate the log."""
    for writes in range(total_writes(clean)):
        image, _ = cut_append(clean, writes)
        fs = FatFs(MemoryBlockDevice(bytearray(image)), read_only=True, now=lambda: FIXED_NOW)
        chain = fs._fat.chain(fs.stat(LOG).first_cluster)
        longer = len(chain) > -(-fs.stat(LOG).size // fs.layout.cluster_bytes)
        if longer and fs.read_only_reason is None:
            return image
    raise AssertionError("no cut left the log's chain longer than its size")


def test_every_cut_append_comes_back_writable_with_what_was_acknowledged(
    clean: bytes, tmp_path: Path
) -> None:
    writes = total_writes(clean)
    repaired = 0
    for cut in range(writes):
        image, acknowledged = cut_append(clean, cut)
        path = tmp_path / f"cut{cut}.img"
        path.write_bytes(image)
        truncates = "Truncating file" in fsck_findings(path)
        device = MemoryBlockDevice(bytearray(image))
        fs = FatFs(device, now=lambda: FIXED_NOW)  # the next boot's mount
        if fs.read_only:  # cut between the FAT copies: the one other state, left for fsck.fat
            assert (fs.read_only_reason or "").startswith("FAT copies differ"), (cut, fs)
            assert bytes(device.data) == image
            continue
        assert (fs.repaired is not None) == truncates, cut
        repaired += truncates
        log = fs.read_file(LOG)
        assert log.startswith(RECORD * (1 + acknowledged)), cut  # nothing acknowledged is lost
        assert (RECORD * (1 + RECORDS)).startswith(log), cut
        assert fs.read_file("/keep.txt") == b"kept\n"
        fs.write_file("/after.txt", b"the volume is writable\n")
        fs.close()
        path.write_bytes(bytes(device.data))
        fsck(path)  # fails on any complaint
    assert repaired, "no cut left a cut append: the test no longer tests anything"


def test_the_repair_is_fsck_fat_s_byte_for_byte(clean: bytes, tmp_path: Path) -> None:
    image = one_cut_append(clean)
    theirs = tmp_path / "theirs.img"
    theirs.write_bytes(image)
    result = subprocess.run([peer("fsck.fat"), "-a", str(theirs)], capture_output=True, text=True)
    assert result.returncode == 1 and "Truncating file to" in result.stdout, result.stdout
    device = MemoryBlockDevice(bytearray(image))
    fs = FatFs(device, now=lambda: FIXED_NOW)
    size = fs.stat(LOG).size
    assert not fs.read_only
    assert fs.repaired == f"{LOG}: freed the cluster past its {size} bytes (a cut append)"
    fs.close()
    assert bytes(device.data) == theirs.read_bytes()


def test_a_read_only_mount_repairs_nothing(clean: bytes) -> None:
    image = one_cut_append(clean)
    device = MemoryBlockDevice(bytearray(image))
    fs = FatFs(device, read_only=True, now=lambda: FIXED_NOW)
    assert fs.repaired is None
    assert fs.read_file(LOG).startswith(RECORD)
    fs.close()
    assert bytes(device.data) == image


def _extend(fs: FatFs, path: str, clusters: int) -> None:
    """Link `clusters` more clusters to the end of `path`'s chain, the FAT only."""
    chain = fs._fat.chain(fs.stat(path).first_cluster)
    new = fs._fat.allocate(clusters, near=chain[-1] + 1)
    fs._fat.set(chain[-1], new[0])
    fs._commit_fat()


def _damaged(clean: bytes, change) -> bytes:  # noqa: ANN001 - (FatFs) -> None
    fs = FatFs(MemoryBlockDevice(bytearray(clean)), now=lambda: FIXED_NOW)
    change(fs)
    fs.flush()
    return bytes(fs.device.data)


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("two clusters too many", lambda fs: _extend(fs, LOG, 2)),
        ("two files one cluster too long", lambda fs: (_extend(fs, LOG, 1),
                                                       _extend(fs, "/keep.txt", 1))),
        ("one too long beside FAT copies that differ", lambda fs: (
            _extend(fs, LOG, 1),
            fs.device.write_blocks(fs.layout.reserved_sectors + fs.layout.fat_sectors,
                                   bytes(512)),
        )),
    ],
)  # fmt: skip
def test_any_other_inconsistency_mounts_read_only_unwritten(
    clean: bytes, tmp_path: Path, what: str, change
) -> None:  # noqa: ANN001
    image = _damaged(clean, change)
    device = MemoryBlockDevice(bytearray(image))
    fs = FatFs(device, now=lambda: FIXED_NOW)
    assert fs.read_only and fs.repaired is None, what
    fs.close()
    assert bytes(device.data) == image, what
    path = tmp_path / "damaged.img"
    path.write_bytes(image)
    assert "Truncating file" in fsck_findings(path) or "differ" in fsck_findings(path)
