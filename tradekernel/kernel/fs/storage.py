"""Mounting the system disk: the ATA driver, partition 1 of the MBR, the FAT filesystem.

A disk that is missing, unpartitioned or corrupt must not stop the boot: `mount_system_disk`
returns the filesystem or the reason it could not mount, and the kernel shows that reason and
carries on to the shell without ever writing to the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tradekernel.emu.bus import PortBus
from tradekernel.kernel.drivers.ata import AtaDisk, AtaError
from tradekernel.kernel.drivers.blockdev import (
    BlockDeviceError,
    PartitionTableError,
    open_partition,
)
from tradekernel.kernel.drivers.portio import PortIo
from tradekernel.kernel.fs.fat import FatFs, FsError

ATA_STATUS = 0x1F7


def mount_system_disk(
    ports: PortBus, now: Callable[[], datetime]
) -> tuple[FatFs | None, AtaDisk | None, str]:
    """(filesystem, disk, message): the filesystem is None when the message says why."""
    if ports.read(ATA_STATUS, 1) in (0x00, 0xFF):
        return None, None, "no ATA disk on the primary channel"
    try:
        disk = AtaDisk(PortIo(ports), wait_irq=lambda: None)
    except AtaError as error:
        return None, None, f"ATA disk did not identify: {error}"
    try:
        partition = open_partition(disk, 1)
        fs = FatFs(partition, now=now)
    except (PartitionTableError, BlockDeviceError, FsError) as error:
        return None, disk, f"cannot mount partition 1: {error}"
    stats = fs.statfs()
    message = (
        f"FAT{fs.fat_type} on partition 1: {stats.free_bytes // 1024} KiB free"
        f" of {stats.total_bytes // 1024} KiB"
    )
    if fs.read_only_reason:
        message += f"; mounted read-only: {fs.read_only_reason}"
    return fs, disk, message
