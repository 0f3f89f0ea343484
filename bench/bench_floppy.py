"""Floppy throughput through the whole hardware path, without booting: the kernel's floppy driver
(kernel/drivers/floppy.py) -> port bus -> 82077AA model (devices/fdc.py) -> 8237A model
(devices/dma8237.py) -> guest RAM and the diskette image file.

A bare board (buses, clock, RAM) holds the two chips and a blank 1.44 MB image; the driver
probes the medium, then reads and writes the whole diskette, one track per command. Times are
host wall-clock seconds. A write command ends with the image flushed to the host's disk (a
drive has no write cache), so the write figure is mostly 160 fsyncs.

Run: .venv/bin/python bench/bench_floppy.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tradekernel.devices.base import Board
from tradekernel.devices.dma8237 import Dma8237
from tradekernel.devices.fdc import Fdc
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock
from tradekernel.emu.memory import GuestMemory
from tradekernel.emu.pc import floppy_disk
from tradekernel.kernel.drivers.floppy import FloppyDisk
from tradekernel.kernel.drivers.portio import PortIo

DISKETTE = 1440 * 1024
BUFFER = 0x10000  # the DMA bounce buffer (one 64 KiB page)
RAM = 1 << 20


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        image = Path(work) / "a.img"
        image.write_bytes(bytes(DISKETTE))
        board = Board(
            PortBus(), MmioBus(), Clock(), Channels(), GuestMemory(memoryview(bytearray(RAM)))
        )
        dma = Dma8237()
        fdc = Fdc(floppy_disk(image, read_only=False), dma.channel(2))
        dma.attach(board)
        fdc.attach(board)
        start = time.perf_counter()
        disk = FloppyDisk(PortIo(board.ports), board.memory, BUFFER)
        probed = time.perf_counter() - start
        blocks = disk.block_count
        start = time.perf_counter()
        disk.write_blocks(0, bytes(range(256)) * (DISKETTE // 256))
        written = time.perf_counter() - start
        start = time.perf_counter()
        data = disk.read_blocks(0, blocks)
        read = time.perf_counter() - start
        assert data == bytes(range(256)) * (DISKETTE // 256)
    mb = DISKETTE / 1e6
    print(f"probe (rate, sectors, cylinders, heads): {probed * 1e3:.1f} ms")
    print(f"read  {DISKETTE // 1024} KiB: {read * 1e3:.1f} ms, {mb / read:.1f} MB/s")
    print(f"write {DISKETTE // 1024} KiB: {written * 1e3:.1f} ms, {mb / written:.1f} MB/s")


if __name__ == "__main__":
    main()
