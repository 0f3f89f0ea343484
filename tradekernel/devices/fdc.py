"""The floppy disk controller: an 82077AA (8272/765-compatible) in PC/AT mode at 0x3F0-0x3F5 and
0x3F7, IRQ6, DMA channel 2, with drive 0 (A:) holding an optional diskette image.

Registers (0x3F6 belongs to the IDE channel, as on the AT):
  - 0x3F2 DOR: bits 0-1 drive select, bit 2 nRESET (0 holds the controller in reset; the
    0 -> 1 edge ends it), bit 3 DMA gate (IRQ6 and DREQ reach the bus only while it is set),
    bits 4-7 motor enables (kept, not needed to read: the drive is always up to speed);
  - 0x3F3 TDR (two bits of storage), 0x3F4 MSR on read (RQM, DIO, NDMA, CB) and DSR on write
    (bit 7 software reset, bits 0-1 data rate), 0x3F5 the FIFO, 0x3F7 DIR on read (bit 7 disk
    changed) and CCR on write (data rate);
  - a reset (DOR or DSR) raises IRQ6 and leaves four interrupts for SENSE INTERRUPT STATUS to
    collect (ST0 = C0h | drive), as after a polling cycle.

Commands (8272 set plus the 82077AA's): SPECIFY, SENSE DRIVE STATUS, RECALIBRATE, SEEK, SENSE
INTERRUPT STATUS, READ DATA and WRITE DATA (MT and SK bits honoured, MFM required), READ ID,
FORMAT TRACK, VERSION (90h), CONFIGURE (implied seek with EIS), DUMPREG, LOCK and PERPENDICULAR
MODE; anything else answers the one-byte ST0 = 80h. Seeks and transfers take no time: an IRQ
follows at once. Without an implied seek, the head must be on the command's cylinder (else
ST1 ND and ST2 WC, as a real controller reading the wrong track's IDs); a data rate other than
the medium's, a missing diskette or an FM command read no address mark (ST1 MA); a write to a
write-protected diskette ends with ST1 NW before anything is written. A transfer ends at TC
(the DMA count running out) after the current sector, or at the end of the track (ST0 abnormal,
ST1 EN), and the result's C/H/R name the next sector as the 82077AA data sheet's table does.
Data moves through the DMA channel wire (devices/dma8237.py), or through the FIFO a byte at a
time in non-DMA mode (SPECIFY's ND bit). A write-protected diskette is a `DiskBacking` opened
read-only: its writes are refused, never sent to the overlay. A drive has no write cache: each
WRITE DATA and FORMAT TRACK ends with the image file flushed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.devices.ide import SECTOR, DiskBacking, DiskError
from tradekernel.emu.bus import IrqLine

BASE = 0x3F0
FDC_IRQ = 6
DOR, TDR, MSR, FIFO, DIR = 2, 3, 4, 5, 7
DOR_SELECT, DOR_NRESET, DOR_DMA_GATE = 0x03, 0x04, 0x08
RQM, DIO, NDMA, CB = 0x80, 0x40, 0x20, 0x10
DSR_RESET = 0x80
DIR_CHANGED = 0x80
VERSION_82077AA = 0x90
CONFIG_EIS = 0x40  # CONFIGURE: implied seek enable
MT, MFM, SK = 0x80, 0x40, 0x20
SECTOR_CODE = 2  # N: 128 << 2 = 512-byte sectors, the only size a PC diskette uses
# Status bits
ST0_ABNORMAL, ST0_INVALID, ST0_READY_CHANGED, ST0_SEEK_END, ST0_EQUIPMENT = (
    0x40,
    0x80,
    0xC0,
    0x20,
    0x10,
)
ST1_EN, ST1_DE, ST1_OR, ST1_ND, ST1_NW, ST1_MA = 0x80, 0x20, 0x10, 0x04, 0x02, 0x01
ST2_WC, ST2_BC = 0x10, 0x02
ST3_WP, ST3_READY, ST3_TRACK0, ST3_TWO_SIDED = 0x40, 0x20, 0x10, 0x08
# Data rate (DSR/CCR bits 0-1) each medium is recorded at, by sectors per track.
RATE_500K, RATE_300K, RATE_250K, RATE_1M = 0, 1, 2, 3
MEDIUM_RATES = {9: RATE_250K, 15: RATE_500K, 18: RATE_500K, 36: RATE_1M}
MAX_CYLINDER = 83  # the last track a 3.5" drive's head can step to

# command byte & mask == value -> (name, parameter bytes)
_COMMANDS = (
    (0xFF, 0x03, "specify", 2),
    (0xFF, 0x04, "sense_drive", 1),
    (0x3F, 0x05, "write", 8),
    (0x1F, 0x06, "read", 8),
    (0xFF, 0x07, "recalibrate", 1),
    (0xFF, 0x08, "sense_interrupt", 0),
    (0xBF, 0x0A, "read_id", 1),
    (0xBF, 0x0D, "format", 5),
    (0xFF, 0x0E, "dumpreg", 0),
    (0xFF, 0x0F, "seek", 2),
    (0xFF, 0x10, "version", 0),
    (0xFF, 0x12, "perpendicular", 1),
    (0xFF, 0x13, "configure", 3),
    (0x7F, 0x14, "lock", 0),
)


class DmaLine(Protocol):
    """The DREQ/DACK/TC wire to a DMA channel (devices/dma8237.py's DmaChannel)."""

    terminal_count: bool

    def hold(self, service: Callable[[], None]) -> None: ...

    def release(self) -> None: ...

    def to_memory(self, data: bytes) -> int: ...

    def from_memory(self, size: int) -> bytes: ...


class FloppyDrive:
    """One drive: its head position, the diskette in it (or none) and the change line."""

    def __init__(self, backing: DiskBacking | None = None) -> None:
        self.backing = backing
        self.cylinder = 0
        self.sector = 1  # the next sector to pass under the head (READ ID)
        self.changed = True  # the disk-change line, cleared by a step with a diskette in

    @property
    def geometry(self) -> tuple[int, int, int] | None:
        return None if self.backing is None else self.backing.geometry

    @property
    def write_protected(self) -> bool:
        return self.backing is not None and self.backing.read_only


class Fdc(Device):
    name = "fdc"
    STATE_VERSION = 1

    def __init__(self, drive_a: DiskBacking | None = None, dma: DmaLine | None = None) -> None:
        """`drive_a`: the diskette in A: (geometry set, see emu/pc.py's floppy_disk); `dma`: the
        wire to DMA channel 2, None for a board without one (DMA commands then overrun)."""
        self.drives = [FloppyDrive(drive_a), FloppyDrive(), FloppyDrive(), FloppyDrive()]
        self.present = [True, False, False, False]  # A: is fitted; B:-D: are not
        self.dma = dma
        self._irq: IrqLine | None = None
        self.power_on()

    def insert(self, backing: DiskBacking | None) -> None:
        """Change the diskette in A: (None: take it out); the disk-change line goes up."""
        drive = self.drives[0]
        drive.backing, drive.changed = backing, True

    def attach(self, board: Board) -> None:
        self._irq = board.irq(FDC_IRQ)
        board.ports.claim(BASE, 6, self.name, self._read, self._write)
        board.ports.claim(BASE + DIR, 1, self.name, self._read, self._write)

    def power_on(self) -> None:
        """The state POST leaves: out of reset with DMA and IRQ enabled, no interrupt pending."""
        self.dor = DOR_NRESET | DOR_DMA_GATE
        self.tdr = 0
        self.rate = RATE_250K
        self.step_rate = self.head_load = 0
        self.non_dma = False
        self.config = 0  # CONFIGURE's second byte (EIS, FIFO, POLL, threshold)
        self.precomp = 0
        self.locked = False
        self.perpendicular = 0
        self._idle()
        self.pending: deque[tuple[int, int]] = deque()  # (ST0, PCN) for SENSE INTERRUPT
        self.interrupt = False

    def reset(self) -> None:
        self.power_on()
        for drive in self.drives:
            drive.cylinder, drive.sector = 0, 1
        self._set_irq(False)

    # ---- phases -------------------------------------------------------------------------
    def _idle(self) -> None:
        self.command: list[int] = []  # the command byte and parameters collected so far
        self.wanted = 0  # parameter bytes still to come
        self.handler = ""
        self.result: deque[int] = deque()
        self.data = bytearray()  # non-DMA mode: bytes the FIFO is passing
        self.data_in = False  # non-DMA: the host is writing the data (WRITE DATA)
        self.transfer: dict[str, int] = {}  # the READ/WRITE in progress (waiting for the DMA)
        self.clear_irq_on_result = False

    def _abort(self) -> None:
        """Drop the command in progress (a reset), letting go of the DMA request."""
        if self.transfer and self.dma is not None:
            self.dma.release()
        self._idle()

    def _msr(self) -> int:
        if not self.dor & DOR_NRESET:
            return 0
        if self.result:
            return RQM | DIO | CB
        if self.transfer and not self.non_dma:
            return CB  # waiting for the DMA channel
        if self.transfer:
            return RQM | NDMA | CB | (0 if self.data_in else DIO)
        return RQM | (CB if self.command else 0)

    def _set_irq(self, level: bool) -> None:
        self.interrupt = level
        if self._irq is not None:
            self._irq.set(level and bool(self.dor & DOR_DMA_GATE))

    def _controller_reset(self) -> None:
        """DOR or DSR reset: abort everything; at its end IRQ6 and four ready-changed states."""
        self._abort()
        self.pending = deque((ST0_READY_CHANGED | drive, 0) for drive in range(4))
        if not self.locked:
            self.config = 0
            self.precomp = 0
        self._set_irq(True)

    # ---- ports --------------------------------------------------------------------------
    def _read(self, port: int, size: int) -> int:
        register = port - BASE
        if register == DOR:
            return self.dor
        if register == TDR:
            return self.tdr
        if register == MSR:
            return self._msr()
        if register == FIFO:
            return self._read_fifo()
        if register == DIR:
            return DIR_CHANGED if self.drives[self.dor & DOR_SELECT].changed else 0
        return 0xFF  # SRA/SRB exist in PS/2 mode only

    def _write(self, port: int, size: int, value: int) -> None:
        register, value = port - BASE, value & 0xFF
        if register == DOR:
            previous, self.dor = self.dor, value
            if not value & DOR_NRESET:
                self._abort()
                self._set_irq(False)
            elif not previous & DOR_NRESET:
                self._controller_reset()
            else:
                self._set_irq(self.interrupt)  # the DMA gate may have changed
        elif register == TDR:
            self.tdr = value & 0x03
        elif register == MSR:  # DSR
            self.rate = value & 0x03
            if value & DSR_RESET and self.dor & DOR_NRESET:
                self._controller_reset()
        elif register == FIFO:
            self._write_fifo(value)
        elif register == DIR:  # CCR
            self.rate = value & 0x03

    def _read_fifo(self) -> int:
        if not self.dor & DOR_NRESET:
            return 0
        if self.result:
            if self.clear_irq_on_result:
                self.clear_irq_on_result = False
                self._set_irq(False)
            value = self.result.popleft()
            if not self.result:
                self._idle()
            return value
        if self.transfer and self.non_dma and not self.data_in:
            value = self.data.pop(0) if self.data else 0
            if not self.data:
                self._finish_transfer()
            return value
        return 0xFF

    def _write_fifo(self, value: int) -> None:
        if not self.dor & DOR_NRESET or self.result:
            return  # a write in the result phase is ignored (RQM|DIO says read)
        if self.transfer:
            if self.non_dma and self.data_in:
                self.data.append(value)
                if len(self.data) == SECTOR:
                    self._pio_sector_written()
            return
        if not self.command:
            for mask, match, handler, count in _COMMANDS:
                if value & mask == match:
                    self.command, self.handler, self.wanted = [value], handler, count
                    break
            else:
                self._answer([ST0_INVALID])
                return
        else:
            self.command.append(value)
            self.wanted -= 1
        if self.wanted == 0:
            getattr(self, "_cmd_" + self.handler)(self.command[0], self.command[1:])

    def _answer(self, result: list[int], irq: bool = False) -> None:
        """Enter the result phase (or go idle when there is nothing to return)."""
        self._idle()
        self.result = deque(value & 0xFF for value in result)
        if irq:
            self.clear_irq_on_result = True
            self._set_irq(True)

    # ---- simple commands ----------------------------------------------------------------
    def _cmd_specify(self, _command: int, params: list[int]) -> None:
        self.step_rate, self.head_load = params[0], params[1] >> 1
        self.non_dma = bool(params[1] & 1)
        self._idle()

    def _cmd_sense_drive(self, _command: int, params: list[int]) -> None:
        number, head = params[0] & 3, (params[0] >> 2) & 1
        drive = self.drives[number]
        st3 = number | head << 2 | ST3_READY | ST3_TWO_SIDED
        if drive.cylinder == 0:
            st3 |= ST3_TRACK0
        if drive.write_protected:
            st3 |= ST3_WP
        self._answer([st3])

    def _cmd_recalibrate(self, _command: int, params: list[int]) -> None:
        self._seek(params[0] & 3, 0, 0)

    def _cmd_seek(self, _command: int, params: list[int]) -> None:
        self._seek(params[0] & 3, (params[0] >> 2) & 1, params[1])

    def _seek(self, number: int, head: int, cylinder: int) -> None:
        drive = self.drives[number]
        st0 = ST0_SEEK_END | head << 2 | number
        if not self.present[number]:
            st0 |= ST0_ABNORMAL | ST0_EQUIPMENT  # no track-0 signal: 79 steps, then give up
        else:
            if drive.backing is not None and cylinder != drive.cylinder:
                drive.changed = False  # a step pulse with a diskette in clears the line
            drive.cylinder, drive.sector = cylinder, 1
        self._idle()
        self.pending.append((st0, cylinder if self.present[number] else drive.cylinder))
        self._set_irq(True)

    def _cmd_sense_interrupt(self, _command: int, _params: list[int]) -> None:
        if not self.pending:
            self._answer([ST0_INVALID])
            return
        st0, pcn = self.pending.popleft()
        if not self.pending:
            self._set_irq(False)
        self._answer([st0, pcn])

    def _cmd_version(self, _command: int, _params: list[int]) -> None:
        self._answer([VERSION_82077AA])

    def _cmd_configure(self, _command: int, params: list[int]) -> None:
        self.config, self.precomp = params[1], params[2]
        self._idle()

    def _cmd_lock(self, command: int, _params: list[int]) -> None:
        self.locked = bool(command & 0x80)
        self._answer([0x10 if self.locked else 0])

    def _cmd_perpendicular(self, _command: int, params: list[int]) -> None:
        self.perpendicular = params[0]
        self._idle()

    def _cmd_dumpreg(self, _command: int, _params: list[int]) -> None:
        cylinders = [drive.cylinder for drive in self.drives]
        self._answer([*cylinders, self.step_rate, self.head_load << 1 | self.non_dma, 0,
                      (0x80 if self.locked else 0) | (self.perpendicular & 0x7F),
                      self.config, self.precomp])  # fmt: skip

    # ---- reading the medium -------------------------------------------------------------
    def _medium_error(self, command: int, number: int, head: int) -> int:
        """ST1 bits that stop a transfer before it starts, 0 when the track can be read."""
        drive = self.drives[number]
        geometry = drive.geometry
        if geometry is None or not self.present[number] or not command & MFM:
            return ST1_MA
        cylinders, heads, sectors = geometry
        if MEDIUM_RATES.get(sectors) != self.rate or head >= heads or drive.cylinder >= cylinders:
            return ST1_MA
        return 0

    def _cmd_read_id(self, command: int, params: list[int]) -> None:
        number, head = params[0] & 3, (params[0] >> 2) & 1
        drive = self.drives[number]
        st0 = head << 2 | number
        error = self._medium_error(command, number, head)
        if error:
            self._answer([st0 | ST0_ABNORMAL, error, 0, drive.cylinder, head, drive.sector,
                          SECTOR_CODE], irq=True)  # fmt: skip
            return
        sector = drive.sector
        drive.sector = sector % drive.geometry[2] + 1
        self._answer([st0, 0, 0, drive.cylinder, head, sector, SECTOR_CODE], irq=True)

    def _cmd_read(self, command: int, params: list[int]) -> None:
        self._start_transfer(command, params, writing=False)

    def _cmd_write(self, command: int, params: list[int]) -> None:
        self._start_transfer(command, params, writing=True)

    def _start_transfer(self, command: int, params: list[int], writing: bool) -> None:
        number, head = params[0] & 3, (params[0] >> 2) & 1
        c, h, r, n, eot = params[1:6]
        drive = self.drives[number]
        st0 = head << 2 | number
        if self.config & CONFIG_EIS and self.present[number] and c <= MAX_CYLINDER:
            drive.cylinder = c  # implied seek
        st1, st2 = self._medium_error(command, number, head), 0
        if not st1 and (c != drive.cylinder or h != head or n != SECTOR_CODE):
            st1, st2 = ST1_ND, (ST2_BC if c == 0xFF else ST2_WC) if c != drive.cylinder else 0
        if not st1 and not 1 <= r <= min(eot, drive.geometry[2]):
            st1 = ST1_ND
        if not st1 and writing and drive.write_protected:
            st1 = ST1_NW
        if st1:
            self._answer([st0 | ST0_ABNORMAL, st1, st2, c, h, r, n], irq=True)
            return
        self._idle()
        self.transfer = {"command": command, "drive": number, "head": head, "sector": r,
                         "eot": min(eot, drive.geometry[2]), "writing": int(writing),
                         "st1": 0, "tc": 0}  # fmt: skip
        if self.non_dma:
            self.data_in = writing
            if not writing:
                self.data = bytearray(self._read_sector())
            return
        if self.dma is None:
            self._end_transfer(ST1_OR)
            return
        self.dma.hold(self._dma_service)

    def _lba(self) -> int:
        t = self.transfer
        drive = self.drives[t["drive"]]
        _, heads, sectors = drive.geometry
        return (drive.cylinder * heads + t["head"]) * sectors + t["sector"] - 1

    def _read_sector(self) -> bytes:
        drive = self.drives[self.transfer["drive"]]
        try:
            return drive.backing.read_sectors(self._lba(), 1)
        except DiskError:
            self.transfer["st1"] |= ST1_DE
            return bytes(SECTOR)

    def _write_sector(self, data: bytes) -> None:
        drive = self.drives[self.transfer["drive"]]
        try:
            drive.backing.write_sectors(self._lba(), data.ljust(SECTOR, b"\0"))
        except DiskError:
            self.transfer["st1"] |= ST1_DE

    @staticmethod
    def _push(drive: FloppyDrive) -> None:
        """A drive has no write cache: what a command wrote is in the image when it ends."""
        try:
            drive.backing.flush()
        except OSError:
            pass  # the sectors were written; only the host's sync failed

    def _next_sector(self) -> bool:
        """Step to the next sector of the transfer; False past the end of the track (or of
        the cylinder with MT)."""
        t = self.transfer
        if t["sector"] < t["eot"]:
            t["sector"] += 1
            return True
        t["sector"] = 1
        if t["command"] & MT and t["head"] == 0 and self.drives[t["drive"]].geometry[1] > 1:
            t["head"] = 1
            return True
        t["head"] = t["head"] ^ 1 if t["command"] & MT else t["head"]
        t["cylinder_end"] = 1
        return False

    def _dma_service(self) -> None:
        """The DMA channel granted the transfer: move sectors until TC or the track's end."""
        dma = self.dma
        assert dma is not None
        while True:
            if self.transfer["writing"]:
                data = dma.from_memory(SECTOR)
                if len(data) < SECTOR and not dma.terminal_count:
                    self._end_transfer(ST1_OR)
                    return
                self._write_sector(data)
            else:
                taken = dma.to_memory(self._read_sector())
                if taken < SECTOR and not dma.terminal_count:
                    self._end_transfer(ST1_OR)
                    return
            more = self._next_sector()
            if dma.terminal_count or self.transfer["st1"]:
                self._end_transfer(0)
                return
            if not more:
                self._end_transfer(ST1_EN)
                return

    def _pio_sector_written(self) -> None:
        self._write_sector(bytes(self.data))
        self.data = bytearray()
        if not self._next_sector() or self.transfer["st1"]:
            self._end_transfer(0 if self.transfer["st1"] else ST1_EN)

    def _finish_transfer(self) -> None:
        """Non-DMA read: the host took a whole sector; on to the next one or the result."""
        if self._next_sector() and not self.transfer["st1"]:
            self.data = bytearray(self._read_sector())
        else:
            self._end_transfer(0 if self.transfer["st1"] else ST1_EN)

    def _end_transfer(self, st1: int) -> None:
        """The result phase: C/H/R name the sector after the last one transferred."""
        t = self.transfer
        if self.dma is not None and not self.non_dma:
            self.dma.release()
        number, head = t["drive"], t["head"]
        drive = self.drives[number]
        st1 |= t["st1"]
        if t["writing"]:
            self._push(drive)
        cylinder = drive.cylinder + t.get("cylinder_end", 0)
        st0 = head << 2 | number | (ST0_ABNORMAL if st1 else 0)
        drive.sector = t["sector"]
        self._answer([st0, st1, 0, cylinder, head, t["sector"], SECTOR_CODE], irq=True)

    # ---- formatting ---------------------------------------------------------------------
    def _cmd_format(self, command: int, params: list[int]) -> None:
        number, head = params[0] & 3, (params[0] >> 2) & 1
        n, count, _gap, fill = params[1:5]
        drive = self.drives[number]
        st0 = head << 2 | number
        st1 = self._medium_error(command, number, head)
        if not st1 and drive.write_protected:
            st1 = ST1_NW
        if not st1 and (n != SECTOR_CODE or count != drive.geometry[2]):
            st1 = ST1_MA  # the image's layout is fixed: only its own format is accepted
        if not st1 and (self.dma is None or self.non_dma):
            st1 = ST1_OR
        if st1:
            self._answer([st0 | ST0_ABNORMAL, st1, 0, drive.cylinder, head, 1, n], irq=True)
            return
        self._idle()
        self.transfer = {"command": command, "drive": number, "head": head, "count": count,
                         "fill": fill, "sector": 1, "st1": 0}  # fmt: skip
        self.dma.hold(self._format_service)

    def _format_service(self) -> None:
        """Four ID bytes (C, H, R, N) per sector from memory; each named sector is filled."""
        dma, t = self.dma, self.transfer
        assert dma is not None
        drive = self.drives[t["drive"]]
        ids = dma.from_memory(4 * t["count"])
        self.dma.release()
        _, heads, sectors = drive.geometry
        for index in range(len(ids) // 4):
            c, h, r, _ = ids[index * 4 : index * 4 + 4]
            if c != drive.cylinder or h != t["head"] or not 1 <= r <= sectors:
                t["st1"] |= ST1_ND
                continue
            t["sector"] = r
            self._write_sector(bytes([t["fill"]]) * SECTOR)
        if len(ids) < 4 * t["count"]:
            t["st1"] |= ST1_OR
        self._push(drive)
        st0 = t["head"] << 2 | t["drive"] | (ST0_ABNORMAL if t["st1"] else 0)
        self._answer([st0, t["st1"], 0, drive.cylinder, t["head"], 1, SECTOR_CODE], irq=True)

    # ---- snapshots ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Between commands only (a command in progress is not saved: it takes no time)."""
        return {
            "version": self.STATE_VERSION,
            "dor": self.dor, "tdr": self.tdr, "rate": self.rate, "step_rate": self.step_rate,
            "head_load": self.head_load, "non_dma": self.non_dma, "config": self.config,
            "precomp": self.precomp, "locked": self.locked, "perpendicular": self.perpendicular,
            "interrupt": self.interrupt, "pending": [list(entry) for entry in self.pending],
            "result": list(self.result),
            "drives": [[d.cylinder, d.sector, d.changed] for d in self.drives],
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            self._idle()
            for name in ("dor", "tdr", "rate", "step_rate", "head_load", "config", "precomp",
                         "perpendicular"):  # fmt: skip
                setattr(self, name, int(state[name]) & 0xFF)
            self.non_dma, self.locked = bool(state["non_dma"]), bool(state["locked"])
            self.pending = deque(
                (int(st0) & 0xFF, int(pcn) & 0xFF) for st0, pcn in state["pending"]
            )
            self.result = deque(int(value) & 0xFF for value in state["result"])
            for drive, (cylinder, sector, changed) in zip(
                self.drives, state["drives"], strict=True
            ):
                drive.cylinder, drive.sector, drive.changed = (
                    int(cylinder),
                    int(sector),
                    bool(changed),
                )
            self._set_irq(bool(state["interrupt"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{self.name}: malformed snapshot ({error})") from error
