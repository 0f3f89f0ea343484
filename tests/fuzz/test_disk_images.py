"""Mutated disk images: a corrupt volume is never written, and no damage escapes FatFs as
anything but an FsError.

Real images (made by mkfs.fat and mtools, and by our own disktool and FatFs) get seeded
byte-level mutations aimed at their metadata (boot sector, FSInfo, MBR, FAT copies, directory
sectors). Each mutated image is mounted and used: every file read, then a few changes made.
Asserted for every case:
  - nothing but an FsError (BlockDeviceError for the partition table) leaves the code;
  - a volume that was refused, or mounted read-only, saw no write at all;
  - a volume we wrote to had no damage fsck.fat calls allocation damage (chains, cross-links,
    the directory tree, the FAT copies) before our writes, and is judged by fsck.fat afterwards:
    clean if it was clean before, otherwise with no complaint it did not already have.
The count and seed are fixed so CI runs the same cases (TK_FUZZ_CASES and TK_FUZZ_SEED change
them); a failure names the case, its base image and its mutations so it can be replayed.
"""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.disk.conftest import FIXED_NOW, mkfs_fat, mtools, need
from tradekernel.disktool import create_disk, open_volume
from tradekernel.kernel.drivers.blockdev import (
    BLOCK_SIZE,
    BlockDevice,
    BlockDeviceError,
    MemoryBlockDevice,
    open_partition,
)
from tradekernel.kernel.fs.fat import FatFs, FsError, mkfs

CASES = int(os.environ.get("TK_FUZZ_CASES", "200"))
SEED = int(os.environ.get("TK_FUZZ_SEED", "15"))
MAX_MUTATIONS = 6
SPARSE_CHUNK = 64 << 10
FILE_TREE = {
    "/readme.txt": b"read me\n" * 40,
    "/data/prices.csv": b"ACME,101.25,300\n" * 400,
    "/data/empty.txt": b"",
    "/data/deep/nested/leaf.bin": bytes(range(256)) * 30,
    "/bin/a long program name.elf": b"\x7fELF" + bytes(5000),
    "/etc/instruments.toml": b'[ACME]\ntick = "0.01"\n' * 50,
}


class CountingDevice(MemoryBlockDevice):
    """A memory disk that counts the writes reaching it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.writes = 0

    def write_blocks(self, lba: int, data: bytes) -> None:
        self.writes += 1
        super().write_blocks(lba, data)


@dataclass
class Base:
    """A clean image and where its metadata lives (byte ranges), to aim mutations at."""

    name: str
    image: bytes
    partition: bool  # an MBR disk (disktool): mount partition 1
    regions: dict[str, list[tuple[int, int]]]


def _populate(fs: FatFs) -> None:
    for path, data in FILE_TREE.items():
        parts = path.split("/")[1:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/" + "/".join(parts[:depth])
            if not fs.exists(directory):
                fs.mkdir(directory)
        fs.write_file(path, data)


def _regions(device: BlockDevice, offset: int) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges of the metadata of the volume at byte `offset` of the image."""
    fs = FatFs(device, read_only=True)
    layout = fs.layout
    used_fat_bytes = (layout.max_cluster + 1) * layout.fat_type // 8
    fat_span = min(layout.fat_sectors * BLOCK_SIZE, max(BLOCK_SIZE, used_fat_bytes // 8))
    fats = [
        (offset + (layout.reserved_sectors + n * layout.fat_sectors) * BLOCK_SIZE, fat_span)
        for n in range(layout.fat_count)
    ]
    directories = []
    for top, _, _ in fs.walk("/"):
        directory = fs._walk_to([p for p in top.split("/") if p], top)
        live = max(1, len(directory.entries()) * 32 // BLOCK_SIZE + 1)
        for lba in directory.sectors[:live]:
            directories.append((offset + lba * BLOCK_SIZE, BLOCK_SIZE))
    regions = {"boot": [(offset, 90)], "fat": fats, "directory": directories}
    if layout.fsinfo_sector:
        regions["fsinfo"] = [(offset + layout.fsinfo_sector * BLOCK_SIZE, BLOCK_SIZE)]
    if offset:
        regions["mbr"] = [(446, 64)]
    return regions


def _peer_base(tmp: Path, fat_type: int) -> Base:
    size_mb = {12: 2, 16: 16, 32: 34}[fat_type]
    image = mkfs_fat(tmp / f"peer{fat_type}.img", size_mb, "-F", str(fat_type), "-s", "1")
    made: set[str] = set()
    for path, data in FILE_TREE.items():
        parts = path.split("/")[1:-1]
        for depth in range(1, len(parts) + 1):
            directory = "::/" + "/".join(parts[:depth])
            if directory not in made:
                mtools("mmd", image, directory)
                made.add(directory)
        source = tmp / "payload"
        source.write_bytes(data)
        mtools("mcopy", image, "-D", "o", str(source), "::" + path)
    raw = image.read_bytes()
    return Base(f"mkfs.fat FAT{fat_type}", raw, False, _regions(MemoryBlockDevice(raw), 0))


def _disktool_base(tmp: Path) -> Base:
    image = tmp / "os.img"
    entry = create_disk(image, 8, now=lambda: FIXED_NOW)
    with open_volume(image) as fs:
        _populate(fs)
    raw = image.read_bytes()
    device = open_partition(MemoryBlockDevice(raw), 1)
    return Base("disktool FAT16 disk", raw, True, _regions(device, entry.start_lba * BLOCK_SIZE))


def _own_base(fat_type: int) -> Base:
    device = MemoryBlockDevice((2 if fat_type == 12 else 34) << 20)
    mkfs(device, fat_type=fat_type, now=lambda: FIXED_NOW)
    with FatFs(device, now=lambda: FIXED_NOW) as fs:
        _populate(fs)
    raw = bytes(device.data)
    return Base(f"our mkfs FAT{fat_type}", raw, False, _regions(MemoryBlockDevice(raw), 0))


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> list[Base]:
    tmp = tmp_path_factory.mktemp("fuzz-bases")
    made = [_peer_base(tmp, 12), _peer_base(tmp, 16), _peer_base(tmp, 32), _disktool_base(tmp)]
    made += [_own_base(12), _own_base(32)]
    for base in made:  # the unmutated images must be clean, or the verdicts mean nothing
        assert fsck_problems(_volume_bytes(base.image, base.partition), tmp) == [], base.name
    return made


# ------------------------------------------------------------------------------ mutations
REGION_WEIGHTS = {"boot": 2, "fsinfo": 1, "mbr": 1, "fat": 4, "directory": 5}


def mutate(rng: random.Random, base: Base) -> tuple[bytearray, list[str]]:
    data = bytearray(base.image)
    done = []
    names = list(base.regions)
    weights = [REGION_WEIGHTS[n] for n in names]
    for _ in range(rng.randint(1, MAX_MUTATIONS)):
        region = rng.choices(names, weights)[0]
        start, length = rng.choice(base.regions[region])
        at = start + rng.randrange(length)
        kind = rng.choice(("byte", "bit", "word", "word", "zero", "entry"))
        if kind == "byte":
            data[at] = rng.randrange(256)
        elif kind == "bit":
            data[at] ^= 1 << rng.randrange(8)
        elif kind == "word":
            at -= at % 2
            value = rng.choice((0, 1, 2, 3, 0xFFFF, 0xFFF7, 0x0FF7, 0x0FFF, rng.randrange(65536)))
            struct.pack_into("<H", data, at, value)
        elif kind == "zero":
            at -= at % 32
            data[at : at + 32] = bytes(32)
        else:  # copy another 32-byte slot of the same region over this one
            at -= at % 32
            source_start, source_length = rng.choice(base.regions[region])
            source = source_start + rng.randrange(max(1, source_length // 32)) * 32
            data[at : at + 32] = data[source : source + 32]
        done.append(f"{kind}@{at:#x}({region})")
    return data, done


# ------------------------------------------------------------------------------ the peer
def _volume_bytes(image: bytes | bytearray, partition: bool) -> bytes:
    if not partition:
        return bytes(image)
    try:
        device = open_partition(MemoryBlockDevice(image), 1)
    except BlockDeviceError:
        return b""
    return bytes(image[device.start * BLOCK_SIZE : (device.start + device.block_count) * 512])


# fsck.fat's words for damage that writing could spread (chains, links, the directory tree, the
# FAT copies); its other complaints (names, labels, lost clusters, the boot sector backup) are
# harmless to write beside, and are only required not to grow.
ALLOCATION_DAMAGE = (
    "Start does point to",
    "Bad start cluster",
    "Start cluster beyond limit",
    "Contains a free cluster",
    "Contains a bad cluster",
    "cluster chain length is",
    "Circular cluster chain",
    "share clusters",
    "entry in the first slot",
    "entry in the second slot",
    "entry in this slot",
    "FATs differ",
    "Both FATs",
    "Bad FAT# root directory",
    "Root directory has no cluster",
)
_NOISE = re.compile(r"^(fsck\.fat \d|Leaving filesystem unchanged|.*: \d+ files, \d+/\d+ clusters)")


def fsck_problems(volume: bytes, tmp: Path) -> list[str]:
    """fsck.fat -n's complaints about `volume`, numbers masked (and "clusters" made singular)
    so verdicts compare across writes; [] when it is clean."""
    path = tmp / "verdict.img"
    with open(path, "wb") as handle:  # sparse: the images are mostly zeros
        view = memoryview(volume)
        for start in range(0, len(volume), SPARSE_CHUNK):
            chunk = view[start : start + SPARSE_CHUNK]
            if chunk.nbytes and volume.count(0, start, start + chunk.nbytes) == chunk.nbytes:
                handle.seek(chunk.nbytes, os.SEEK_CUR)
            else:
                handle.write(chunk)
        handle.truncate(len(volume))
    result = subprocess.run(
        [need("fsck.fat"), "-n", str(path)], capture_output=True, text=True, timeout=60
    )
    if result.returncode == 0:
        return []
    lines = (result.stdout + result.stderr).splitlines()
    masked = (re.sub(r"\d+", "#", line.strip()) for line in lines if not _NOISE.match(line))
    return [line.replace("clusters", "cluster") for line in masked if line]


# ------------------------------------------------------------------------------ one case
def exercise(fs: FatFs) -> None:
    """Read everything, then change a little; FsErrors are the volume's verdicts, not bugs."""
    files: list[str] = []
    for top, _, stats in fs.walk("/", onerror=lambda error: None):
        for stat in stats:
            path = top.rstrip("/") + "/" + stat.name
            files.append(path)
            attempt(lambda path=path: fs.read_file(path))
    changes: list[Callable[[], object]] = [
        lambda: fs.mkdir("/fuzz"),
        lambda: fs.write_file("/fuzz/new.bin", b"N" * 9000),
        lambda: fs.write_file("/fuzz new top.txt", b"T" * 700),
    ]
    if files:
        changes.append(lambda: _append(fs, files[0]))
    if len(files) > 1:
        changes.append(lambda: fs.remove(files[1]))
    if len(files) > 2:
        changes.append(lambda: fs.rename(files[2], "/fuzz/moved"))
    if len(files) > 3:
        changes.append(lambda: fs.truncate(files[3], 10))
    for change in changes:
        attempt(change)


def _append(fs: FatFs, path: str) -> None:
    with fs.open(path, "a") as handle:
        handle.write(b"appended " * 300)


def attempt(action: Callable[[], object]) -> None:
    try:
        action()
    except FsError:
        pass


def mount(device: CountingDevice, partition: bool) -> FatFs:
    volume: BlockDevice = open_partition(device, 1) if partition else device
    return FatFs(volume, now=lambda: FIXED_NOW)


def run_case(base: Base, data: bytearray, tmp: Path) -> str:
    """'refused', 'read-only' or 'written'; raises AssertionError when a rule is broken."""
    before = bytes(data)
    device = CountingDevice(before)
    try:
        fs = mount(device, base.partition)
    except (FsError, BlockDeviceError):
        assert device.writes == 0, "a refused volume was written"
        return "refused"
    exercise(fs)
    attempt(fs.close)
    if fs.read_only:
        assert device.writes == 0, f"read-only volume written ({fs.read_only_reason})"
        assert bytes(device.data) == before
        return "read-only"
    if device.writes == 0:
        return "untouched"
    was = fsck_problems(_volume_bytes(before, base.partition), tmp)
    damage = [line for line in was if any(words in line for words in ALLOCATION_DAMAGE)]
    assert not damage, "a damaged volume was mounted writable and written:\n" + "\n".join(damage)
    now = fsck_problems(_volume_bytes(device.data, base.partition), tmp)
    if not was:
        assert now == [], "fsck.fat finds damage on a clean volume we wrote:\n" + "\n".join(now)
    else:
        new = set(now) - set(was)
        assert not new, "our writes added fsck.fat complaints:\n" + "\n".join(sorted(new))
    return "written"


def test_mutated_images_are_never_written_when_corrupt(bases: list[Base], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    for case in range(CASES):
        base = bases[case % len(bases)]
        data, mutations = mutate(rng, base)
        label = f"case {case} (seed {SEED}) on {base.name}: {', '.join(mutations)}"
        try:
            outcomes[run_case(base, data, tmp_path)] += 1
        except AssertionError as error:
            pytest.fail(f"{label}\n{error}")
        except Exception as error:  # noqa: BLE001 - anything else escaping FatFs is the bug
            pytest.fail(f"{label}\n{type(error).__name__} escaped FatFs: {error}")
    elapsed = time.perf_counter() - started
    print(f"\ndisk image fuzz: {CASES} cases in {elapsed:.1f} s: {dict(outcomes)}")
    assert outcomes["written"] > 0 and outcomes["refused"] + outcomes["read-only"] > 0
