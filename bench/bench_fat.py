"""FAT throughput through kernel/fs/fat.py: sequential write and read of a 4 MiB file, and file
create+delete rate, over an in-memory block device and over a host image file.

Run: /tmp/venv/bin/python bench/bench_fat.py
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

    write_s, read_s, churn_s = _timed(write), _timed(read), _timed(create_delete)
    mib = FILE_SIZE / (1 << 20)
    print(
        f"{label:<22} write {mib / write_s:7.1f} MiB/s   read {mib / read_s:7.1f} MiB/s   "
        f"create+delete {CREATE_DELETE_COUNT / churn_s:7.0f} files/s"
    )
    fs.close()


def main() -> None:
    print(f"4 MiB file in {CHUNK // 1024} KiB chunks, FAT16, 32 MiB volume, 2 KiB clusters")
    bench("memory block device", MemoryBlockDevice(32 << 20))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.img"
        with open(path, "wb") as handle:
            handle.truncate(32 << 20)
        with ImageFile(path) as image:
            bench("host image file", image)


if __name__ == "__main__":
    main()
