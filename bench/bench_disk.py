"""Disk throughput inside the booted OS: FatFs -> kernel ATA driver (kernel/drivers/ata.py, PIO
through ports 0x1F0-0x1F7) -> port bus -> IDE model (devices/ide.py) -> the disk image file.

The PC boots (deterministic clock) to the shell; each workload then runs as kernel work from
the idle loop (`kernel.defer`), exactly where shell commands run, on `kernel.fs` as mounted at
boot. Times are host wall-clock seconds around the work. Figures: sequential write (then
`fs.flush()`, which ends in the drive's FLUSH CACHE and an fsync of the image) and read of a
4 MiB file in 64 KiB chunks, and file create+delete pairs per second.

Run: .venv/bin/python bench/bench_disk.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.session import make_pc

FILE_SIZE = 4 << 20
CHUNK = 64 << 10
CREATE_DELETE_COUNT = 200
TARGET_MB_S = 8.0


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        disk = Path(folder) / "bench.img"
        create_os_disk(disk)
        pc = make_pc(PcConfig(disk=disk, ram_mib=32, deterministic=True))
        machine = pc.machine
        stop = machine.run(
            wall_timeout_s=60, until=lambda: pc.kernel is not None and pc.kernel.tty.reading
        )
        if pc.kernel is None or pc.kernel.fs is None:
            raise SystemExit(f"the OS did not boot to a mounted disk ({stop.reason})")
        kernel = pc.kernel
        fs = kernel.fs

        def in_kernel(work: Callable[[], None]) -> float:
            """Run `work` from the kernel's idle loop; its host wall time in seconds."""
            timing: list[float] = []

            def timed() -> None:
                start = time.perf_counter()
                work()
                timing.append(time.perf_counter() - start)

            kernel.defer(timed)
            # The idle guest is halted with nothing scheduled (tickless): a Shift press and
            # release (no character) raises IRQ1, and the idle loop runs deferred work after it.
            for event in (("lshift", True), ("lshift", False)):
                machine.channels.send("keyboard-key", event)
            machine.run(wall_timeout_s=600, until=lambda: bool(timing))
            if not timing:
                raise SystemExit("the kernel never ran the work")
            return timing[0]

        payload = bytes(range(256)) * (CHUNK // 256)

        def write() -> None:
            with fs.open("/tmp/bench.bin", "w") as handle:
                for _ in range(FILE_SIZE // CHUNK):
                    handle.write(payload)
            fs.flush()

        def read() -> None:
            total = 0
            with fs.open("/tmp/bench.bin") as handle:
                while chunk := handle.read(CHUNK):
                    total += len(chunk)
            if total != FILE_SIZE:
                raise SystemExit(f"read back {total} bytes of {FILE_SIZE}")

        def create_delete() -> None:
            for index in range(CREATE_DELETE_COUNT):
                fs.write_file(f"/tmp/file {index}.txt", b"x" * 100)
                fs.remove(f"/tmp/file {index}.txt")
            fs.flush()

        write_s, read_s, churn_s = in_kernel(write), in_kernel(read), in_kernel(create_delete)
        megabytes = FILE_SIZE / 1e6
        print("path: FatFs -> AtaDisk (PIO, ports 0x1F0-0x1F7) -> IDE model -> image file")
        print(f"sequential write 4 MiB: {megabytes / write_s:7.2f} MB/s ({write_s:.3f} s)")
        print(f"sequential read  4 MiB: {megabytes / read_s:7.2f} MB/s ({read_s:.3f} s)")
        print(
            f"create+delete: {CREATE_DELETE_COUNT / churn_s:7.0f} pairs/s"
            f" ({CREATE_DELETE_COUNT} pairs in {churn_s:.3f} s)"
        )
        slowest = min(megabytes / write_s, megabytes / read_s)
        verdict = "meets" if slowest >= TARGET_MB_S else "misses"
        print(f"target >= {TARGET_MB_S:.0f} MB/s sequential: {verdict} ({slowest:.2f} MB/s)")


if __name__ == "__main__":
    main()
