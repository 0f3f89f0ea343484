"""FAT throughput through kernel/fs/fat.py: sequential write and read of a 4 MiB file (read
twice: the second time from the page cache, kernel/fs/pagecache.py), and file
create+delete rate, over an in-memory block device and over a host image file; and the time to
mount a populated 64 MiB volume (boot sector, FAT copies, and the allocation check the mount runs).

Run: .venv/bin/python bench/bench_fat.py
(The end-to-end path through the ATA model inside the OS is measured by the integrator.)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tradekernel.kernel.drivers.blockdev import BlockDevice, ImageFile, MemoryBlockDevice
from tradekernel.kernel.fs.fat import FatFs, mkfs

FILE_SIZE = 4 << 20
CHUNK = 64 << 10
CREATE_DELETE_COUNT = 500
MOUNT_VOLUME = 64 << 20
MOUNT_DIRS = 40  # the populated volume: 40 directories of 25 files of 20 KiB (~20 MiB used)
MOUNT_FILES_PER_DIR = 25
MOUNT_FILE_SIZE = 20 << 10
MOUNT_REPEATS = 15


def _timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench(label: str, device: BlockDevice) -> None:
    mkfs(device, fat_type=16)
    fs = FatFs(device)
    payload = bytes(range(256)) * (CHUNK // 256)

    def write() -> None:
        with fs.open("/big.bin", "w") as handle:
            for _ in range(FILE_SIZE // CHUNK):
                handle.write(payload)
        fs.flush()

    def read() -> None:
        with fs.open("/big.bin") as handle:
            while handle.read(CHUNK):
                pass

    def create_delete() -> None:
        for index in range(CREATE_DELETE_COUNT):
            fs.write_file(f"/file number {index}.txt", b"x" * 100)
            fs.remove(f"/file number {index}.txt")

    write_s, read_s, again_s = _timed(write), _timed(read), _timed(read)
    churn_s = _timed(create_delete)
    mib = FILE_SIZE / (1 << 20)
    print(
        f"{label:<22} write {mib / write_s:7.1f} MiB/s   read {mib / read_s:7.1f} MiB/s   "
        f"again {mib / again_s:7.1f} MiB/s   "
        f"create+delete {CREATE_DELETE_COUNT / churn_s:7.0f} files/s"
    )
    fs.close()


def bench_mount(label: str, fat_type: int) -> None:
    """Median time of FatFs(device) on a populated 64 MiB image file."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "mount.img"
        with open(path, "wb") as handle:
            handle.truncate(MOUNT_VOLUME)
        with ImageFile(path) as image:
            mkfs(image, fat_type=fat_type)
            fs = FatFs(image)
            payload = bytes(MOUNT_FILE_SIZE)
            for d in range(MOUNT_DIRS):
                fs.mkdir(f"/dir{d}")
                for f in range(MOUNT_FILES_PER_DIR):
                    fs.write_file(f"/dir{d}/file {f}.dat", payload)
            fs.close()
            walls, cpus = [], []
            for _ in range(MOUNT_REPEATS):
                cpu = time.process_time()
                walls.append(_timed(lambda: FatFs(image, read_only=True)))
                cpus.append(time.process_time() - cpu)
        walls.sort()
        cpus.sort()
        files = MOUNT_DIRS * MOUNT_FILES_PER_DIR
        print(
            f"mount {label:<14} wall {walls[len(walls) // 2] * 1000:6.1f} ms median "
            f"(min {walls[0] * 1000:.1f}), CPU {cpus[len(cpus) // 2] * 1000:6.1f} ms median, "
            f"{MOUNT_DIRS} dirs, {files} files"
        )


def main() -> None:
    print(f"4 MiB file in {CHUNK // 1024} KiB chunks, FAT16, 32 MiB volume, 2 KiB clusters")
    bench("memory block device", MemoryBlockDevice(32 << 20))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.img"
        with open(path, "wb") as handle:
            handle.truncate(32 << 20)
        with ImageFile(path) as image:
            bench("host image file", image)
    print(
        f"mount of a populated 64 MiB image file ({MOUNT_REPEATS} mounts;"
        " CPU time is the steadier figure on a busy host)"
    )
    bench_mount("FAT16 64 MiB", 16)
    bench_mount("FAT32 64 MiB", 32)


if __name__ == "__main__":
    main()
