"""The kernel's floppy driver: drive A: on the 82077AA controller at 0x3F0, data by ISA DMA
channel 2 (the 8237A at 0x00-0x0F and page register 0x81), as a block device.

It is a block device (kernel/drivers/blockdev.py), so the FAT code runs on it unchanged. The kernel
gives it port access, guest physical memory and a bounce buffer: `buffer` physical bytes of
`TRACK_BUFFER` that lie below 16 MiB and do not cross a 64 KiB line (the DMA controller's
address counts inside one 64 KiB page). `find_dma_window` picks such a window inside a larger
allocation.

Protocol, as a PC floppy driver does it, polling the main status register (the kernel runs
to completion, so it does not sleep for IRQ6; the controller's interrupts are acknowledged with
SENSE INTERRUPT STATUS where the protocol needs one):
  - open: reset through the DOR (motor A on, DMA gate), collect the four reset interrupts,
    SPECIFY (DMA mode), then probe the medium: the data rate at which READ ID finds marks on
    track 0, the sectors per track (the highest sector that reads) and the cylinders (40 or 80:
    whether READ ID finds marks on cylinder 79); SENSE DRIVE STATUS says if it is write-protected;
  - each transfer is one track at most: SEEK (and its SENSE INTERRUPT) when the head is on
    another cylinder, the DMA channel masked, programmed (mode, address, page, count - 1) and
    unmasked, then READ DATA or WRITE DATA and its seven result bytes; a failed command is
    retried once after a RECALIBRATE, then raised as FloppyError naming the command and
    the status bytes; a write-protected diskette is EROFS before anything is written.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Protocol

from tradekernel.kernel.drivers.blockdev import BLOCK_SIZE, check_range

BASE = 0x3F0
DOR, MSR, FIFO, CCR = BASE + 2, BASE + 4, BASE + 5, BASE + 7
DOR_MOTOR_A, DOR_DMA_GATE, DOR_NRESET = 0x10, 0x08, 0x04
RQM, DIO = 0x80, 0x40
CMD_SPECIFY, CMD_SENSE_DRIVE, CMD_RECALIBRATE, CMD_SENSE_INTERRUPT = 0x03, 0x04, 0x07, 0x08
CMD_SEEK, CMD_READ_ID, CMD_READ, CMD_WRITE = 0x0F, 0x4A, 0x46, 0x45  # MFM set where it applies
SPECIFY_STEP_UNLOAD, SPECIFY_LOAD_DMA = 0xDF, 0x02  # 3 ms steps, 240 ms unload, 4 ms load, DMA
GAP3, DTL = 0x1B, 0xFF
SECTOR_CODE = 2  # 512-byte sectors
ST0_STATUS = 0xC0  # interrupt code: 00 normal termination
ST3_WRITE_PROTECTED = 0x40
ST1_NOT_WRITABLE = 0x02
# Data rates to try (CCR value) and the sectors per track a medium at that rate may have.
RATES = ((0, (18, 15)), (2, (9,)), (3, (36,)), (1, (9,)))
FAR_CYLINDER = 79  # READ ID there tells an 80-track diskette from a 40-track one
# 8237A channel 2 (page register 0x81)
DMA_MASK, DMA_MODE, DMA_FLIP_FLOP = 0x0A, 0x0B, 0x0C
DMA_ADDRESS, DMA_COUNT, DMA_PAGE = 0x04, 0x05, 0x81
DMA_CHANNEL = 2
DMA_TO_MEMORY, DMA_FROM_MEMORY = 0x44 | DMA_CHANNEL, 0x48 | DMA_CHANNEL  # single mode
DMA_LIMIT = 1 << 24  # ISA DMA reaches the first 16 MiB
TRACK_BUFFER = 36 * BLOCK_SIZE  # the longest track: a 2.88 MB diskette's
POLL_LIMIT = 100_000  # MSR reads before a controller that never asks for a byte is dead


class PortIo(Protocol):
    def inb(self, port: int) -> int: ...

    def outb(self, port: int, value: int) -> None: ...


class PhysicalMemory(Protocol):
    def read(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes) -> None: ...


class FloppyError(OSError):
    """The controller refused a command, is absent, or there is no readable diskette."""

    def __init__(self, message: str, code: int = errno.EIO) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class Medium:
    rate: int  # CCR value
    cylinders: int
    heads: int
    sectors: int  # per track

    @property
    def blocks(self) -> int:
        return self.cylinders * self.heads * self.sectors


def find_dma_window(start: int, length: int, size: int = TRACK_BUFFER) -> int | None:
    """A `size`-byte window inside [start, start + length) that stays under 16 MiB and in one
    64 KiB page, or None (allocate 2 * size and one always exists below 16 MiB)."""
    for candidate in (start, (start + 0xFFFF) & ~0xFFFF):
        fits = candidate + size <= start + length and candidate + size <= DMA_LIMIT
        if fits and candidate >> 16 == (candidate + size - 1) >> 16:
            return candidate
    return None


class FloppyDisk:
    """Drive A: as a block device; raises FloppyError when there is no usable diskette."""

    block_size = BLOCK_SIZE

    def __init__(self, io: PortIo, memory: PhysicalMemory, buffer: int) -> None:
        if find_dma_window(buffer, TRACK_BUFFER) != buffer:
            raise FloppyError(f"DMA buffer {buffer:#x} is above 16 MiB or crosses 64 KiB")
        self.io = io
        self.memory = memory
        self.buffer = buffer
        self.cylinder = -1  # where the head is, as far as the driver knows (-1: unknown)
        self._reset()
        self.medium = self._probe()
        self.block_count = self.medium.blocks
        self.write_protected = bool(self._sense_drive() & ST3_WRITE_PROTECTED)

    # ---- the controller's byte protocol -------------------------------------------------
    def _wait(self, direction: int) -> None:
        for _ in range(POLL_LIMIT):
            status = self.io.inb(MSR)
            if status & (RQM | DIO) == RQM | direction:
                return
        raise FloppyError(f"controller does not answer (status {self.io.inb(MSR):#04x})")

    def _command(self, *data: int) -> None:
        for byte in data:
            self._wait(0)
            self.io.outb(FIFO, byte)

    def _results(self, count: int) -> list[int]:
        out = []
        for _ in range(count):
            self._wait(DIO)
            out.append(self.io.inb(FIFO))
        return out

    def _sense_interrupt(self) -> tuple[int, int]:
        self._command(CMD_SENSE_INTERRUPT)
        st0, cylinder = self._results(2)
        return st0, cylinder

    def _sense_drive(self) -> int:
        self._command(CMD_SENSE_DRIVE, 0)
        return self._results(1)[0]

    def _reset(self) -> None:
        self.io.outb(DOR, 0)
        self.io.outb(DOR, DOR_MOTOR_A | DOR_DMA_GATE | DOR_NRESET)
        for _ in range(4):  # one per drive the controller polled
            self._sense_interrupt()
        self._command(CMD_SPECIFY, SPECIFY_STEP_UNLOAD, SPECIFY_LOAD_DMA)
        self._recalibrate()

    def _recalibrate(self) -> None:
        self._command(CMD_RECALIBRATE, 0)
        st0, cylinder = self._sense_interrupt()
        if st0 & ST0_STATUS or cylinder != 0:
            raise FloppyError(f"drive A: does not find track 0 (ST0 {st0:#04x})")
        self.cylinder = 0

    def _seek(self, cylinder: int) -> None:
        if cylinder == self.cylinder:
            return
        self._command(CMD_SEEK, 0, cylinder)
        st0, reached = self._sense_interrupt()
        if st0 & ST0_STATUS or reached != cylinder:
            self.cylinder = -1
            raise FloppyError(f"seek to cylinder {cylinder} failed (ST0 {st0:#04x})")
        self.cylinder = cylinder

    def _read_id(self, head: int = 0) -> bool:
        self._command(CMD_READ_ID, head << 2)
        return not self._results(7)[0] & ST0_STATUS

    # ---- probing ------------------------------------------------------------------------
    def _probe(self) -> Medium:
        for rate, sector_counts in RATES:
            self.io.outb(CCR, rate)
            if not self._read_id():
                continue
            for sectors in sector_counts:
                probe = Medium(rate, 1, 1, sectors)
                if self._transfer(probe, 0, 0, sectors, 1, write=False, quiet=True):
                    break
            else:
                continue
            self._seek(FAR_CYLINDER)
            cylinders = 80 if self._read_id() else 40
            heads = 2 if self._read_id(1) else 1
            return Medium(rate, cylinders, heads, sectors)
        raise FloppyError("no diskette in drive A: (or none it can read)")

    # ---- transfers ----------------------------------------------------------------------
    def _program_dma(self, mode: int, length: int) -> None:
        io, address = self.io, self.buffer
        io.outb(DMA_MASK, 0x04 | DMA_CHANNEL)
        io.outb(DMA_FLIP_FLOP, 0)
        io.outb(DMA_MODE, mode)
        io.outb(DMA_ADDRESS, address & 0xFF)
        io.outb(DMA_ADDRESS, (address >> 8) & 0xFF)
        io.outb(DMA_PAGE, address >> 16)
        io.outb(DMA_FLIP_FLOP, 0)
        io.outb(DMA_COUNT, (length - 1) & 0xFF)
        io.outb(DMA_COUNT, (length - 1) >> 8)
        io.outb(DMA_MASK, DMA_CHANNEL)

    def _transfer(self, medium: Medium, cylinder: int, head: int, sector: int, count: int,
                  write: bool, quiet: bool = False) -> bool:  # fmt: skip
        """One READ/WRITE DATA of `count` sectors on one track through the bounce buffer;
        True when it succeeded (`quiet`: False instead of raising)."""
        self._seek(cylinder)
        self._program_dma(DMA_FROM_MEMORY if write else DMA_TO_MEMORY, count * BLOCK_SIZE)
        self._command(CMD_WRITE if write else CMD_READ, head << 2, cylinder, head, sector,
                      SECTOR_CODE, medium.sectors, GAP3, DTL)  # fmt: skip
        st0, st1, st2, *_ = self._results(7)
        if not st0 & ST0_STATUS:
            return True
        if quiet:
            return False
        what = "write" if write else "read"
        if st1 & ST1_NOT_WRITABLE:
            raise FloppyError("diskette is write-protected", errno.EROFS)
        raise FloppyError(
            f"{what} of C{cylinder} H{head} S{sector}+{count} failed: "
            f"ST0 {st0:#04x} ST1 {st1:#04x} ST2 {st2:#04x}"
        )

    def _tracks(self, lba: int, count: int) -> list[tuple[int, int, int, int, int]]:
        """(cylinder, head, sector, count, offset in blocks) pieces, one track each."""
        medium, pieces, done = self.medium, [], 0
        while done < count:
            track, index = divmod(lba + done, medium.sectors)
            step = min(count - done, medium.sectors - index)
            cylinder, head = divmod(track, medium.heads)
            pieces.append((cylinder, head, index + 1, step, done))
            done += step
        return pieces

    def _transfer_with_retry(self, piece: tuple[int, int, int, int], write: bool) -> None:
        """A failed transfer is tried once more after a RECALIBRATE (the head may be lost);
        a write-protected diskette is not retried."""
        try:
            self._transfer(self.medium, *piece, write=write)
        except FloppyError as error:
            if error.errno == errno.EROFS:
                raise
            self._recalibrate()
            self._transfer(self.medium, *piece, write=write)

    def read_blocks(self, lba: int, count: int) -> bytes:
        check_range(self, lba, count)
        parts = []
        for cylinder, head, sector, step, _ in self._tracks(lba, count):
            self._transfer_with_retry((cylinder, head, sector, step), write=False)
            parts.append(self.memory.read(self.buffer, step * BLOCK_SIZE))
        return b"".join(parts)

    def write_blocks(self, lba: int, data: bytes) -> None:
        if len(data) % BLOCK_SIZE:
            raise FloppyError(f"write of {len(data)} bytes is not whole sectors", errno.EINVAL)
        count = len(data) // BLOCK_SIZE
        check_range(self, lba, count)
        if self.write_protected:
            raise FloppyError("diskette is write-protected", errno.EROFS)
        for cylinder, head, sector, step, offset in self._tracks(lba, count):
            self.memory.write(self.buffer, data[offset * BLOCK_SIZE : (offset + step) * BLOCK_SIZE])
            self._transfer_with_retry((cylinder, head, sector, step), write=True)

    def flush(self) -> None:
        """Writes reach the diskette when WRITE DATA ends: nothing is held back."""

    def close(self) -> None:
        """Stop the motor (the controller stays out of reset, DMA gate open)."""
        self.io.outb(DOR, DOR_DMA_GATE | DOR_NRESET)
