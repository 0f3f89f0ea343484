"""The primary IDE channel: an ATA host adapter at 0x1F0-0x1F7 and 0x3F6, IRQ14, with a master
and an optional slave hard disk, each a raw image file.

Programming model as in the ATA/ATAPI-6 specification, PIO only:
  - task-file registers are written to both drives (each latches them), and keep the previous
    value of count/LBA registers for 48-bit commands (read back with HOB, 0x3F6 bit 7);
  - commands: IDENTIFY DEVICE, READ/WRITE SECTORS (+ EXT), READ/WRITE MULTIPLE (+ EXT),
    SET MULTIPLE MODE, READ VERIFY, SEEK, RECALIBRATE, INITIALIZE DEVICE PARAMETERS,
    SET FEATURES, CACHE FLUSH (+ EXT), EXECUTE DEVICE DIAGNOSTIC, READ NATIVE MAX ADDRESS,
    CHECK POWER MODE and the idle/standby commands; anything else ends with ERR and ABRT;
  - LBA28/LBA48 and CHS addressing (device register bit 6), count 0 meaning 256 (65536 EXT);
  - an address past the end ends the command with ERR and IDNF before any data moves (a real
    drive would first transfer the sectors that exist);
  - data moves through port 0x1F0 in 16- or 32-bit accesses (`in ax` / `in eax`, `insw`/`insd`);
  - INTRQ is raised at each DRQ data block of a read, after each block of a write, and at the
    end of every non-data command; reading the status register (0x1F7) clears it, reading the
    alternate status (0x3F6) does not; nIEN (0x3F6 bit 1) keeps the line low while set;
  - SRST (0x3F6 bit 2) holds both drives busy, and on release leaves the ATA signature
    (count 1, LBA low 1, LBA mid/high 0) with error 01h and status DRDY;
  - with the slave selected and no slave present, every register reads 0.

Commands complete at once by default; with `latency_ns` > 0 the drive shows BSY for that long
(on the board's clock) before each command's result, which exercises drivers that poll BSY.

Backing store (`DiskBacking`): writes go straight to the image file as each sector block
arrives (write-through, in order); CACHE FLUSH and `flush()` push Python's and the OS's buffers
with fsync. With `read_only=True` the file is opened read-only and never written: guest writes
succeed into an in-memory overlay that later reads see and that vanishes at power-off. The BIOS
int 13h shares the same `DiskBacking` objects (`IdeChannel.backing(0)`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, BinaryIO

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import IrqLine
from tradekernel.emu.clock import Clock, Timer

SECTOR = 512
COMMAND_BASE = 0x1F0
CONTROL_PORT = 0x3F6
IDE_IRQ = 14
MAX_MULTIPLE = 16  # sectors per DRQ block for READ/WRITE MULTIPLE (IDENTIFY word 47)
LBA28_LIMIT = 0x0FFFFFFF

# Status register bits
BSY, DRDY, DF, DSC, DRQ, CORR, IDX, ERR = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
# Error register bits
ICRC, UNC, MC, IDNF, MCR, ABRT, TK0NF, AMNF = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
# Device control register bits
NIEN, SRST, HOB = 0x02, 0x04, 0x80
DEV_LBA, DEV_SLAVE = 0x40, 0x10
READY = DRDY | DSC

# Commands
CMD_RECALIBRATE = 0x10
CMD_READ_SECTORS, CMD_READ_SECTORS_NORETRY, CMD_READ_SECTORS_EXT = 0x20, 0x21, 0x24
CMD_READ_MULTIPLE_EXT = 0x29
CMD_WRITE_SECTORS, CMD_WRITE_SECTORS_NORETRY, CMD_WRITE_SECTORS_EXT = 0x30, 0x31, 0x34
CMD_WRITE_MULTIPLE_EXT = 0x39
CMD_READ_VERIFY, CMD_READ_VERIFY_NORETRY, CMD_READ_VERIFY_EXT = 0x40, 0x41, 0x42
CMD_SEEK = 0x70
CMD_EXECUTE_DIAGNOSTIC = 0x90
CMD_INITIALIZE_PARAMETERS = 0x91
CMD_READ_MULTIPLE, CMD_WRITE_MULTIPLE, CMD_SET_MULTIPLE = 0xC4, 0xC5, 0xC6
CMD_STANDBY_IMMEDIATE, CMD_IDLE_IMMEDIATE, CMD_STANDBY, CMD_IDLE = 0xE0, 0xE1, 0xE2, 0xE3
CMD_CHECK_POWER_MODE = 0xE5
CMD_FLUSH_CACHE, CMD_FLUSH_CACHE_EXT = 0xE7, 0xEA
CMD_IDENTIFY = 0xEC
CMD_SET_FEATURES = 0xEF
CMD_READ_NATIVE_MAX = 0xF8

_SET_FEATURES_ACCEPTED = {0x02, 0x82, 0x03, 0x05, 0x85, 0x55, 0xAA, 0x66, 0xCC}
_READS = {
    CMD_READ_SECTORS: (False, False),  # (48-bit, multiple)
    CMD_READ_SECTORS_NORETRY: (False, False),
    CMD_READ_SECTORS_EXT: (True, False),
    CMD_READ_MULTIPLE: (False, True),
    CMD_READ_MULTIPLE_EXT: (True, True),
}
_WRITES = {
    CMD_WRITE_SECTORS: (False, False),
    CMD_WRITE_SECTORS_NORETRY: (False, False),
    CMD_WRITE_SECTORS_EXT: (True, False),
    CMD_WRITE_MULTIPLE: (False, True),
    CMD_WRITE_MULTIPLE_EXT: (True, True),
}


class DiskError(Exception):
    """A backing-store access outside the disk, or an unusable image."""


def default_geometry(sector_count: int) -> tuple[int, int, int]:
    """ATA default CHS translation: 16 heads, 63 sectors per track, at most 16383 cylinders."""
    heads, sectors = 16, 63
    return max(1, min(16383, sector_count // (heads * sectors))), heads, sectors


class DiskBacking:
    """A raw disk image as sectors: the store behind one IDE drive and the BIOS's int 13h."""

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, read_only: bool = False) -> None:
        self.read_only = read_only
        if isinstance(source, (str, os.PathLike)):
            try:
                self._file: BinaryIO = open(source, "rb" if read_only else "r+b")
            except OSError as exc:
                raise DiskError(f"cannot open disk image {source}: {exc.strerror}") from exc
            self._owns_file = True
            self.name = os.fspath(source)
        else:
            self._file = source
            self._owns_file = False
            self.name = getattr(source, "name", "<disk>")
        self._file.seek(0, os.SEEK_END)
        self.sector_count = self._file.tell() // SECTOR
        if self.sector_count == 0:
            raise DiskError(f"disk image {self.name} is smaller than one sector")
        self.geometry = default_geometry(self.sector_count)
        self._overlay: dict[int, bytes] = {}  # read-only mode: sectors the guest wrote

    def _check(self, lba: int, count: int) -> None:
        if lba < 0 or count < 0 or lba + count > self.sector_count:
            raise DiskError(f"sectors {lba}+{count} outside a disk of {self.sector_count}")

    def read_sectors(self, lba: int, count: int) -> bytes:
        self._check(lba, count)
        self._file.seek(lba * SECTOR)
        data = self._file.read(count * SECTOR)
        if len(data) != count * SECTOR:
            raise DiskError(f"{self.name}: short read at sector {lba}")
        if not self._overlay:
            return data
        patched = bytearray(data)
        for index in range(count):
            sector = self._overlay.get(lba + index)
            if sector is not None:
                patched[index * SECTOR : (index + 1) * SECTOR] = sector
        return bytes(patched)

    def write_sectors(self, lba: int, data: bytes) -> None:
        if len(data) % SECTOR:
            raise DiskError(f"write of {len(data)} bytes is not whole sectors")
        count = len(data) // SECTOR
        self._check(lba, count)
        if self.read_only:
            for index in range(count):
                self._overlay[lba + index] = bytes(data[index * SECTOR : (index + 1) * SECTOR])
            return
        self._file.seek(lba * SECTOR)
        self._file.write(data)

    def flush(self) -> None:
        if self.read_only:
            return
        self._file.flush()
        try:
            os.fsync(self._file.fileno())
        except (OSError, AttributeError, ValueError):
            pass  # not a real file (BytesIO): nothing further to push

    def close(self) -> None:
        self.flush()
        if self._owns_file:
            self._file.close()


def _ata_string(text: str, length: int) -> bytes:
    """ATA strings: space padded, two characters per word with the first in the high byte."""
    raw = text.encode("ascii", errors="replace")[:length].ljust(length)
    return b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, length, 2))


class _Drive:
    """One ATA hard disk: its status/error registers, settings and the transfer in progress."""

    def __init__(self, backing: DiskBacking, serial: str, model: str, firmware: str) -> None:
        self.backing = backing
        self.serial = serial
        self.model = model
        self.firmware = firmware
        self.reset_settings()
        self.status = READY
        self.error = 0x01

    def reset_settings(self) -> None:
        _, self.heads, self.spt = self.backing.geometry
        self.multiple = 0
        self.end_transfer()

    def end_transfer(self) -> None:
        self.writing = False
        self.buffer = bytearray()
        self.position = 0
        self.block_bytes = 0
        self.boundary = 0
        self.lba = 0  # next sector a write block goes to

    @property
    def cylinders(self) -> int:
        return max(1, min(65535, self.backing.sector_count // (self.heads * self.spt)))

    def identify(self) -> bytes:
        words = [0] * 256
        total = self.backing.sector_count
        cylinders, heads, spt = self.backing.geometry
        words[0] = 0x0040  # ATA device, fixed (not removable)
        words[1], words[3], words[6] = cylinders, heads, spt
        words[47] = 0x8000 | MAX_MULTIPLE
        words[49] = 0x0200  # LBA supported (no DMA)
        words[50] = 0x4000
        words[51] = 0x0200  # PIO timing mode 2 (obsolete field, still read by old drivers)
        words[53] = 0x0003  # words 54-58 and 64-70 are valid
        current = self.cylinders * self.heads * self.spt
        words[54], words[55], words[56] = self.cylinders, self.heads, self.spt
        words[57], words[58] = current & 0xFFFF, current >> 16
        words[59] = (0x0100 | self.multiple) if self.multiple else 0
        lba28 = min(total, LBA28_LIMIT)
        words[60], words[61] = lba28 & 0xFFFF, lba28 >> 16
        words[64] = 0x0003  # PIO modes 3 and 4
        words[65] = words[66] = words[67] = words[68] = 120  # cycle times, ns
        words[80] = 0x007E  # ATA-1 to ATA-6
        words[82], words[83], words[84] = 0x4000, 0x7400, 0x4000  # 48-bit, FLUSH CACHE (EXT)
        words[85], words[86], words[87] = 0x4000, 0x3400, 0x4000
        for index in range(4):
            words[100 + index] = (total >> (16 * index)) & 0xFFFF
        raw = bytearray(b"".join(w.to_bytes(2, "little") for w in words))
        raw[20:40] = _ata_string(self.serial, 20)
        raw[46:54] = _ata_string(self.firmware, 8)
        raw[54:94] = _ata_string(self.model, 40)
        raw[510] = 0xA5  # integrity word: signature, then a checksum making the sum 0 mod 256
        raw[511] = -sum(raw[:511]) & 0xFF
        return bytes(raw)


def _as_backing(
    source: DiskBacking | str | os.PathLike[str] | BinaryIO, read_only: bool
) -> DiskBacking:
    return source if isinstance(source, DiskBacking) else DiskBacking(source, read_only)


class IdeChannel(Device):
    """The primary ATA channel (ports 0x1F0-0x1F7, 0x3F6, IRQ14) with one or two disks."""

    name = "ide0"
    STATE_VERSION = 1

    def __init__(
        self,
        master: DiskBacking | str | os.PathLike[str] | BinaryIO,
        slave: DiskBacking | str | os.PathLike[str] | BinaryIO | None = None,
        read_only: bool = False,
        latency_ns: int = 0,
        model: str = "TradeKernel ATA disk",
        firmware: str = "1.0",
    ) -> None:
        self.drives: list[_Drive | None] = [
            _Drive(_as_backing(master, read_only), "TK0001", model, firmware),
            _Drive(_as_backing(slave, read_only), "TK0002", model, firmware)
            if slave is not None
            else None,
        ]
        self.latency_ns = latency_ns
        self._irq: IrqLine | None = None
        self._clock: Clock | None = None
        self._pending: Timer | None = None
        self._pending_command: int | None = None
        self._last_command = 0
        self._reset_registers()
        self._handlers: dict[int, Callable[[_Drive], None]] = {
            CMD_IDENTIFY: self._identify,
            CMD_SET_MULTIPLE: self._set_multiple,
            CMD_INITIALIZE_PARAMETERS: self._initialize_parameters,
            CMD_SET_FEATURES: self._set_features,
            CMD_FLUSH_CACHE: self._flush_cache,
            CMD_FLUSH_CACHE_EXT: self._flush_cache,
            CMD_EXECUTE_DIAGNOSTIC: self._diagnostic,
            CMD_READ_NATIVE_MAX: self._read_native_max,
            CMD_CHECK_POWER_MODE: self._check_power_mode,
            CMD_READ_VERIFY: self._verify,
            CMD_READ_VERIFY_NORETRY: self._verify,
            CMD_READ_VERIFY_EXT: self._verify,
            CMD_SEEK: self._verify,
        }
        for command in (CMD_STANDBY_IMMEDIATE, CMD_IDLE_IMMEDIATE, CMD_STANDBY, CMD_IDLE):
            self._handlers[command] = self._complete
        for command in range(CMD_RECALIBRATE, CMD_RECALIBRATE + 0x10):
            self._handlers[command] = self._complete
        for command in _READS:
            self._handlers[command] = self._start_read
        for command in _WRITES:
            self._handlers[command] = self._start_write

    # ------------------------------------------------------------------ wiring
    def attach(self, board: Board) -> None:
        self._irq = board.irq(IDE_IRQ)
        self._clock = board.clock
        board.ports.claim(COMMAND_BASE, 1, self.name, self._read, self._write,
                          self._read_string, self._write_string)  # fmt: skip
        board.ports.claim(COMMAND_BASE + 1, 7, self.name, self._read, self._write)
        board.ports.claim(CONTROL_PORT, 1, self.name, self._read_control, self._write_control)
        self.reset()

    def backing(self, index: int) -> DiskBacking:
        """The store behind drive 0 (master) or 1 (slave), for the BIOS int 13h."""
        drive = self.drives[index] if 0 <= index < 2 else None
        if drive is None:
            raise DiskError(f"no IDE drive {index}")
        return drive.backing

    def flush(self) -> None:
        """Power-off: push every drive's writes to its image file."""
        for drive in self.drives:
            if drive is not None:
                drive.backing.flush()

    def reset(self) -> None:
        self._cancel_pending()
        self._reset_registers()
        for drive in self.drives:
            if drive is not None:
                drive.reset_settings()
                drive.status, drive.error = READY, 0x01
        self._set_irq(False)

    def _reset_registers(self) -> None:
        # Each of features/count/LBA low/mid/high keeps [current, previous] for 48-bit commands.
        self.regs = {name: [0, 0] for name in ("features", "count", "low", "mid", "high")}
        self.regs["count"][0] = self.regs["low"][0] = 1  # the signature after reset
        self.device_reg = 0
        self.control = 0
        self.irq_pending = False

    def _selected(self) -> _Drive | None:
        return self.drives[1 if self.device_reg & DEV_SLAVE else 0]

    # ------------------------------------------------------------------ interrupts
    def _set_irq(self, pending: bool) -> None:
        self.irq_pending = pending
        if self._irq is not None:
            self._irq.set(pending and not self.control & NIEN)

    # ------------------------------------------------------------------ port handlers
    def _read(self, port: int, size: int) -> int:
        offset = port - COMMAND_BASE
        drive = self._selected()
        if drive is None:
            return 0
        if offset == 0:
            return self._read_data(drive, size)
        if offset == 1:
            return drive.error
        if offset == 7:
            self._set_irq(False)
            return drive.status
        if offset == 6:
            return self.device_reg | 0xA0
        name = ("features", "count", "low", "mid", "high")[offset - 1]
        return self.regs[name][1 if self.control & HOB else 0]

    def _write(self, port: int, size: int, value: int) -> None:
        offset = port - COMMAND_BASE
        if offset == 0:
            drive = self._selected()
            if drive is not None:
                self._write_data(drive, size, value)
            return
        self.control &= ~HOB  # any command-block write clears HOB
        if offset == 7:
            self._command(value & 0xFF)
        elif offset == 6:
            self.device_reg = value & 0xFF
        else:
            register = self.regs[("features", "count", "low", "mid", "high")[offset - 1]]
            register[1], register[0] = register[0], value & 0xFF

    def _read_control(self, port: int, size: int) -> int:
        drive = self._selected()
        return 0 if drive is None else drive.status

    def _write_control(self, port: int, size: int, value: int) -> None:
        was_resetting = self.control & SRST
        self.control = value & (NIEN | SRST | HOB)
        if self.control & SRST and not was_resetting:
            self._cancel_pending()
            for drive in self.drives:
                if drive is not None:
                    drive.end_transfer()
                    drive.status = BSY
        elif was_resetting and not self.control & SRST:
            self._finish_reset()
        self._set_irq(self.irq_pending)

    def _finish_reset(self) -> None:
        self._reset_registers()
        for drive in self.drives:
            if drive is not None:
                drive.reset_settings()
                drive.status, drive.error = READY, 0x01

    # ------------------------------------------------------------------ data port
    def _read_data(self, drive: _Drive, size: int) -> int:
        if not drive.status & DRQ or drive.writing:
            return 0
        position = drive.position
        value = int.from_bytes(drive.buffer[position : position + size], "little")
        drive.position = position + size
        if drive.position >= drive.boundary:
            self._read_block_done(drive)
        return value

    def _read_string(self, port: int, size: int, count: int) -> bytes:
        """`rep insw` on the data port: up to the end of the current DRQ block per call, as
        the drive's buffer would give; past the data a real bus floats, here zeros."""
        wanted = size * count
        drive = self._selected()
        if drive is None or not drive.status & DRQ or drive.writing:
            return bytes(wanted)
        take = min(wanted, drive.boundary - drive.position)
        data = bytes(drive.buffer[drive.position : drive.position + take])
        drive.position += take
        if drive.position >= drive.boundary:
            self._read_block_done(drive)
        return data + bytes(wanted - take)

    def _write_string(self, port: int, size: int, data: bytes) -> None:
        """`rep outsw` on the data port: whole blocks go to the disk in one step."""
        drive = self._selected()
        offset = 0
        while offset < len(data) and drive is not None and drive.status & DRQ and drive.writing:
            need = drive.block_bytes - len(drive.buffer)
            chunk = data[offset : offset + need]
            offset += len(chunk)
            drive.buffer += chunk
            if len(drive.buffer) >= drive.block_bytes:
                self._write_block(drive)

    def _read_block_done(self, drive: _Drive) -> None:
        if drive.position >= len(drive.buffer):
            drive.end_transfer()
            drive.status = READY
        else:
            drive.boundary = min(len(drive.buffer), drive.boundary + drive.block_bytes)
            drive.status = READY | DRQ
            self._set_irq(True)

    def _write_data(self, drive: _Drive, size: int, value: int) -> None:
        if not drive.status & DRQ or not drive.writing:
            return
        drive.buffer += value.to_bytes(size, "little")
        if len(drive.buffer) >= drive.block_bytes:
            self._write_block(drive)

    def _write_block(self, drive: _Drive) -> None:
        block, drive.buffer = drive.buffer[: drive.block_bytes], drive.buffer[drive.block_bytes :]
        drive.backing.write_sectors(drive.lba, bytes(block))
        drive.lba += len(block) // SECTOR
        drive.position += len(block)
        if drive.position >= drive.boundary:
            drive.end_transfer()
            drive.status = READY
        else:
            drive.block_bytes = min(drive.block_bytes, drive.boundary - drive.position)
            drive.status = READY | DRQ
        self._set_irq(True)

    # ------------------------------------------------------------------ commands
    def _command(self, command: int) -> None:
        drive = self._selected()
        if drive is None or drive.status & BSY:
            return  # no drive answers; a busy drive ignores commands
        self._set_irq(False)
        drive.end_transfer()
        drive.error = 0
        self._last_command = command
        handler = self._handlers.get(command, self._abort)
        if self.latency_ns > 0 and self._clock is not None:
            drive.status = BSY
            self._pending_command = command
            self._pending = self._clock.call_after(self.latency_ns, self._run_pending)
        else:
            drive.status = READY
            handler(drive)

    def _run_pending(self) -> None:
        command, self._pending_command, self._pending = self._pending_command, None, None
        drive = self._selected()
        if command is None or drive is None:
            return
        drive.status = READY
        self._handlers.get(command, self._abort)(drive)

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pending, self._pending_command = None, None

    def _complete(self, drive: _Drive) -> None:
        drive.status = READY
        self._set_irq(True)

    def _fail(self, drive: _Drive, error: int) -> None:
        drive.end_transfer()
        drive.error = error
        drive.status = READY | ERR
        self._set_irq(True)

    def _abort(self, drive: _Drive) -> None:
        self._fail(drive, ABRT)

    def _address(self, drive: _Drive, lba48: bool) -> tuple[int, int] | None:
        """(first LBA, sector count) from the task file, or None for an impossible CHS."""
        regs = self.regs
        if lba48:
            lba = 0
            for shift, name in ((0, "low"), (8, "mid"), (16, "high")):
                lba |= regs[name][0] << shift | regs[name][1] << (shift + 24)
            count = regs["count"][0] | regs["count"][1] << 8
            return lba, count or 65536
        count = regs["count"][0] or 256
        if self.device_reg & DEV_LBA:
            lba = (self.device_reg & 0x0F) << 24
            return lba | regs["high"][0] << 16 | regs["mid"][0] << 8 | regs["low"][0], count
        cylinder = regs["mid"][0] | regs["high"][0] << 8
        head, sector = self.device_reg & 0x0F, regs["low"][0]
        if not 1 <= sector <= drive.spt or head >= drive.heads:
            return None
        return (cylinder * drive.heads + head) * drive.spt + sector - 1, count

    def _checked_range(self, drive: _Drive, lba48: bool) -> tuple[int, int] | None:
        address = self._address(drive, lba48)
        if address is None or address[0] + address[1] > drive.backing.sector_count:
            self._fail(drive, IDNF)
            return None
        return address

    def _block_sectors(self, drive: _Drive, multiple: bool) -> int | None:
        if not multiple:
            return 1
        if drive.multiple == 0:
            self._abort(drive)
            return None
        return drive.multiple

    def _start_read(self, drive: _Drive) -> None:
        lba48, multiple = _READS[self._last_command]
        per_block = self._block_sectors(drive, multiple)
        address = self._checked_range(drive, lba48) if per_block else None
        if per_block is None or address is None:
            return
        lba, count = address
        drive.buffer = bytearray(drive.backing.read_sectors(lba, count))
        drive.block_bytes = per_block * SECTOR
        drive.boundary = min(len(drive.buffer), drive.block_bytes)
        drive.status = READY | DRQ
        self._set_irq(True)

    def _start_write(self, drive: _Drive) -> None:
        lba48, multiple = _WRITES[self._last_command]
        per_block = self._block_sectors(drive, multiple)
        address = self._checked_range(drive, lba48) if per_block else None
        if per_block is None or address is None:
            return
        lba, count = address
        drive.writing = True
        drive.lba = lba
        drive.boundary = count * SECTOR
        drive.block_bytes = min(per_block, count) * SECTOR
        drive.status = READY | DRQ  # the first block is asked for without an interrupt

    def _identify(self, drive: _Drive) -> None:
        drive.buffer = bytearray(drive.identify())
        drive.block_bytes = drive.boundary = SECTOR
        drive.status = READY | DRQ
        self._set_irq(True)

    def _set_multiple(self, drive: _Drive) -> None:
        count = self.regs["count"][0]
        if count and (count & (count - 1) or count > MAX_MULTIPLE):
            self._abort(drive)
            return
        drive.multiple = count
        self._complete(drive)

    def _initialize_parameters(self, drive: _Drive) -> None:
        sectors = self.regs["count"][0]
        if sectors == 0:
            self._abort(drive)
            return
        drive.spt, drive.heads = sectors, (self.device_reg & 0x0F) + 1
        self._complete(drive)

    def _set_features(self, drive: _Drive) -> None:
        feature = self.regs["features"][0]
        mode = self.regs["count"][0]
        pio_mode = feature == 0x03 and (mode in (0, 1) or (mode & 0xF8 == 0x08 and mode & 7 <= 4))
        if feature not in _SET_FEATURES_ACCEPTED or (feature == 0x03 and not pio_mode):
            self._abort(drive)
            return
        self._complete(drive)

    def _flush_cache(self, drive: _Drive) -> None:
        drive.backing.flush()
        self._complete(drive)

    def _diagnostic(self, drive: _Drive) -> None:
        self._reset_registers()
        for each in self.drives:
            if each is not None:
                each.status, each.error = READY, 0x01
        self._set_irq(True)

    def _read_native_max(self, drive: _Drive) -> None:
        last = min(drive.backing.sector_count - 1, LBA28_LIMIT)
        self.regs["low"][0], self.regs["mid"][0] = last & 0xFF, (last >> 8) & 0xFF
        self.regs["high"][0] = (last >> 16) & 0xFF
        self.device_reg = (self.device_reg & 0xF0) | ((last >> 24) & 0x0F)
        self._complete(drive)

    def _check_power_mode(self, drive: _Drive) -> None:
        self.regs["count"][0] = 0xFF  # active or idle
        self._complete(drive)

    def _verify(self, drive: _Drive) -> None:
        lba48 = self._last_command == CMD_READ_VERIFY_EXT
        if self._checked_range(drive, lba48) is not None:
            self._complete(drive)

    # ------------------------------------------------------------------ snapshots
    def state(self) -> dict[str, Any]:
        drives = []
        for drive in self.drives:
            if drive is None:
                drives.append(None)
                continue
            drives.append(
                {
                    "status": drive.status,
                    "error": drive.error,
                    "heads": drive.heads,
                    "spt": drive.spt,
                    "multiple": drive.multiple,
                    "writing": drive.writing,
                    "buffer": bytes(drive.buffer),
                    "position": drive.position,
                    "block_bytes": drive.block_bytes,
                    "boundary": drive.boundary,
                    "lba": drive.lba,
                }
            )
        return {
            "version": self.STATE_VERSION,
            "regs": {name: list(pair) for name, pair in self.regs.items()},
            "device": self.device_reg,
            "control": self.control,
            "irq_pending": self.irq_pending,
            "last_command": self._last_command,
            "pending_command": self._pending_command,
            "pending_deadline": self._pending.deadline if self._pending else None,
            "drives": drives,
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            if len(state["drives"]) != 2 or [d is None for d in state["drives"]] != [
                d is None for d in self.drives
            ]:
                raise ValueError("ide0: snapshot has a different set of drives")
            self._cancel_pending()
            self.regs = {name: [int(v) for v in state["regs"][name]] for name in self.regs}
            self.device_reg = int(state["device"])
            self.control = int(state["control"])
            self._last_command = int(state["last_command"])
            for drive, saved in zip(self.drives, state["drives"], strict=True):
                if drive is None:
                    continue
                drive.status, drive.error = int(saved["status"]), int(saved["error"])
                drive.heads, drive.spt = int(saved["heads"]), int(saved["spt"])
                drive.multiple, drive.writing = int(saved["multiple"]), bool(saved["writing"])
                drive.buffer = bytearray(saved["buffer"])
                drive.position, drive.block_bytes = (
                    int(saved["position"]),
                    int(saved["block_bytes"]),
                )
                drive.boundary, drive.lba = int(saved["boundary"]), int(saved["lba"])
            pending = state["pending_command"]
            if pending is not None and self._clock is not None:
                self._pending_command = int(pending)
                self._pending = self._clock.call_at(
                    int(state["pending_deadline"]), self._run_pending
                )
            self._set_irq(bool(state["irq_pending"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"ide0: malformed snapshot ({exc})") from exc
