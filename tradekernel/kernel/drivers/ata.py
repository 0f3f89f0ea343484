"""The kernel's ATA disk driver: PIO through ports 0x1F0-0x1F7 / 0x3F6, completion on IRQ14.

It is a block device (see kernel/drivers/blockdev.py), so the filesystem runs on it unchanged. The
kernel gives it port access (an object with inb/outb/inw/outw/insw/outsw, as a driver has
through `in`/`out`) and a `wait_irq` callable that returns once IRQ14 has arrived (or at once:
the driver still polls BSY before trusting the status, so a lost interrupt costs only time).

Protocol per command, as ATA-6 describes it: wait for BSY clear, select the drive, load the
task file (LBA28, or LBA48 for addresses or counts LBA28 cannot express), write the command;
for a read, each 512-byte sector is announced by IRQ14 and taken with `insw`; for a write, the
first sector goes out when DRQ is set and each later one after IRQ14. The status register is
read (which acknowledges the drive's interrupt) after every IRQ; ERR there becomes an AtaError
naming the command and the error register.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tradekernel.kernel.drivers.blockdev import BLOCK_SIZE, check_range

DATA, ERROR, COUNT, LBA_LOW, LBA_MID, LBA_HIGH, DEVICE, STATUS = range(8)
COMMAND = STATUS
BSY, DRDY, DF, DRQ, ERR = 0x80, 0x40, 0x20, 0x08, 0x01
CMD_READ, CMD_READ_EXT, CMD_WRITE, CMD_WRITE_EXT = 0x20, 0x24, 0x30, 0x34
CMD_FLUSH, CMD_FLUSH_EXT, CMD_IDENTIFY = 0xE7, 0xEA, 0xEC
LBA28_SECTORS = 1 << 28
POLL_LIMIT = 1_000_000  # status reads before a drive that never drops BSY is declared dead


class PortIo(Protocol):
    def inb(self, port: int) -> int: ...

    def outb(self, port: int, value: int) -> None: ...

    def inw(self, port: int) -> int: ...

    def outw(self, port: int, value: int) -> None: ...

    def insw(self, port: int, count: int) -> bytes: ...

    def outsw(self, port: int, data: bytes) -> None: ...


class AtaError(OSError):
    """The drive reported an error, is absent, or never became ready."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


@dataclass(frozen=True)
class AtaIdentity:
    model: str
    serial: str
    firmware: str
    sectors: int  # addressable sectors (LBA48 count when supported)
    lba48: bool
    cylinders: int
    heads: int
    sectors_per_track: int


def _ata_text(raw: bytes) -> str:
    """Undo ATA's byte order inside each word and strip the padding."""
    swapped = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return swapped.decode("ascii", errors="replace").strip()


def parse_identify(data: bytes) -> AtaIdentity:
    words = [int.from_bytes(data[i : i + 2], "little") for i in range(0, BLOCK_SIZE, 2)]
    lba48 = bool(words[83] & 0x0400)
    lba28 = words[60] | words[61] << 16
    lba48_count = sum(words[100 + i] << (16 * i) for i in range(4))
    return AtaIdentity(
        model=_ata_text(data[54:94]),
        serial=_ata_text(data[20:40]),
        firmware=_ata_text(data[46:54]),
        sectors=lba48_count if lba48 and lba48_count else lba28,
        lba48=lba48,
        cylinders=words[1],
        heads=words[3],
        sectors_per_track=words[6],
    )


class AtaDisk:
    """One ATA hard disk on a channel, as a block device."""

    block_size = BLOCK_SIZE

    def __init__(
        self,
        io: PortIo,
        wait_irq: Callable[[], None],
        slave: bool = False,
        base: int = 0x1F0,
        control: int = 0x3F6,
    ) -> None:
        self.io = io
        self.wait_irq = wait_irq
        self.select = 0xE0 | (0x10 if slave else 0)  # LBA mode, obsolete bits 7 and 5 set
        self.base = base
        self.control = control
        self.identity = self.identify()
        self.block_count = self.identity.sectors

    def _wait_not_busy(self) -> int:
        for _ in range(POLL_LIMIT):
            status = self.io.inb(self.control)  # alternate status: leaves the IRQ pending
            if not status & BSY:
                return status
        raise AtaError("drive stays busy")

    def _issue(self, command: int, lba: int = 0, count: int = 0, ext: bool = False) -> None:
        io, base = self.io, self.base
        io.outb(base + DEVICE, self.select | (0 if ext else (lba >> 24) & 0x0F))
        status = self._wait_not_busy()
        if status in (0x00, 0xFF):
            raise AtaError(f"no drive answers (status {status:#04x})")
        if ext:
            io.outb(base + COUNT, (count >> 8) & 0xFF)
            io.outb(base + LBA_LOW, (lba >> 24) & 0xFF)
            io.outb(base + LBA_MID, (lba >> 32) & 0xFF)
            io.outb(base + LBA_HIGH, (lba >> 40) & 0xFF)
        io.outb(base + COUNT, count & 0xFF)
        io.outb(base + LBA_LOW, lba & 0xFF)
        io.outb(base + LBA_MID, (lba >> 8) & 0xFF)
        io.outb(base + LBA_HIGH, (lba >> 16) & 0xFF)
        io.outb(base + COMMAND, command)

    def _after_irq(self, command: int, want_drq: bool) -> None:
        """Wait for the interrupt, then check the status it announces."""
        self.wait_irq()
        self._wait_not_busy()
        status = self.io.inb(self.base + STATUS)  # acknowledges the interrupt
        if status & (ERR | DF):
            error = self.io.inb(self.base + ERROR)
            raise AtaError(
                f"command {command:#04x} failed: status {status:#04x} error {error:#04x}"
            )
        if want_drq and not status & DRQ:
            raise AtaError(f"command {command:#04x}: drive offers no data (status {status:#04x})")

    def identify(self) -> AtaIdentity:
        self._issue(CMD_IDENTIFY)
        self._after_irq(CMD_IDENTIFY, want_drq=True)
        return parse_identify(self.io.insw(self.base + DATA, BLOCK_SIZE // 2))

    def _chunks(self, lba: int, count: int) -> list[tuple[int, int, bool]]:
        """(lba, count, ext) commands covering the range: LBA28 where it reaches."""
        chunks = []
        while count:
            ext = self.identity.lba48 and lba + min(count, 256) > LBA28_SECTORS
            step = min(count, 65536 if ext else 256)
            chunks.append((lba, step, ext))
            lba, count = lba + step, count - step
        return chunks

    def read_blocks(self, lba: int, count: int) -> bytes:
        check_range(self, lba, count)
        parts = []
        for first, step, ext in self._chunks(lba, count):
            command = CMD_READ_EXT if ext else CMD_READ
            self._issue(command, first, step & (0xFFFF if ext else 0xFF), ext)
            for _ in range(step):
                self._after_irq(command, want_drq=True)
                parts.append(self.io.insw(self.base + DATA, BLOCK_SIZE // 2))
        return b"".join(parts)

    def write_blocks(self, lba: int, data: bytes) -> None:
        if len(data) % BLOCK_SIZE:
            raise AtaError(f"write of {len(data)} bytes is not whole sectors")
        count = len(data) // BLOCK_SIZE
        check_range(self, lba, count)
        offset = 0
        for first, step, ext in self._chunks(lba, count):
            command = CMD_WRITE_EXT if ext else CMD_WRITE
            self._issue(command, first, step & (0xFFFF if ext else 0xFF), ext)
            for index in range(step):
                status = self._wait_not_busy()
                if status & (ERR | DF) or not status & DRQ:
                    error = self.io.inb(self.base + ERROR)
                    raise AtaError(
                        f"command {command:#04x} refused: status {status:#04x} error {error:#04x}"
                    )
                self.io.outsw(self.base + DATA, data[offset : offset + BLOCK_SIZE])
                offset += BLOCK_SIZE
                self._after_irq(command, want_drq=index + 1 < step)

    def flush(self) -> None:
        command = CMD_FLUSH_EXT if self.identity.lba48 else CMD_FLUSH
        self._issue(command)
        self._after_irq(command, want_drq=False)
