"""The BIOS services, in Python, behind real IVT entries that point into the ROM (images/bios.asm).

Each serviced vector's ROM stub pushes DX and makes hypercall 0x80 + vector. A service here
reads the caller's registers, does the work the way a PC BIOS does (through the same port bus
and guest memory a real BIOS would use), and answers: the returned value becomes EAX, the word at
SS:SP is the caller's DX, the word at SS:SP+6 the caller's FLAGS (CF, ZF), and DX = 1 asks the
stub to wait for an interrupt and call again (int 16h with no key yet).

Bulk writes into RAM (sectors read by int 13h, the boot sector) go through `GuestMemory.write`,
so the CPU drops what it translated from the bytes they replace, as a PC's CPU sees DMA.

Disks are block stores: `read_sectors(lba, count)`, `write_sectors(lba, data)`,
`sector_count`, `geometry` -> (cylinders, heads, sectors per track), `read_only`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tradekernel import memmap
from tradekernel.emu.bus import PortBus
from tradekernel.emu.cpu import DS as DS_REG
from tradekernel.emu.cpu import (
    EAX,
    EBP,
    EBX,
    ECX,
    EDI,
    EDX,
    ESI,
    ESP,
    Cpu,
)
from tradekernel.emu.cpu import ES as ES_REG
from tradekernel.emu.cpu import SS as SS_REG
from tradekernel.emu.memory import GuestMemory
from tradekernel.hypercall import BIOS_CALL_BASE

BIOS_POST = 0xFF
SECTOR = 512
CF, ZF = 0x0001, 0x0040

# BDA offsets (segment 0x40, given here as physical addresses)
BDA_COM_PORTS = 0x400  # four words: the I/O bases of the serial ports POST found
BDA_EQUIPMENT = 0x410
BDA_MEMORY_KIB = 0x413
BDA_SHIFT_FLAGS = 0x417
BDA_KBD_HEAD, BDA_KBD_TAIL = 0x41A, 0x41C
BDA_KBD_BUFFER, BDA_KBD_BUFFER_END = 0x41E, 0x43E
BDA_VIDEO_MODE, BDA_COLUMNS, BDA_PAGE_SIZE, BDA_PAGE_OFFSET = 0x449, 0x44A, 0x44C, 0x44E
BDA_CURSOR_POS, BDA_CURSOR_SHAPE, BDA_ACTIVE_PAGE, BDA_CRTC_BASE = 0x450, 0x460, 0x462, 0x463
BDA_DISK_STATUS, BDA_HARD_DISKS = 0x474, 0x475
BDA_ROWS_MINUS_1, BDA_CHAR_HEIGHT, BDA_VIDEO_CONTROL = 0x484, 0x485, 0x487
VIDEO_KEPT_MEMORY = 0x80  # BDA_VIDEO_CONTROL: the last mode set did not clear the screen
BDA_KBD_START, BDA_KBD_END = 0x480, 0x482
BDA_EBDA_SEGMENT = 0x40E
BDA_KBD_STATUS3 = 0x496  # bit 0: inside the E1 (Pause) sequence; bit 1: the last byte was E0
E1_SEQUENCE, E0_PREFIX = 0x01, 0x02

TICKS_PER_DAY = 0x1800B0
SERIAL_BASES = (0x3F8, 0x2F8, 0x3E8, 0x2E8)  # where POST looks for 8250/16550 UARTs
COLUMNS, ROWS = memmap.VGA_TEXT_COLUMNS, memmap.VGA_TEXT_ROWS

# Scancode set 1 -> (unshifted, shifted) ASCII for the keys a BIOS translates.
_KEYS = {
    0x01: ("\x1b", "\x1b"), 0x0E: ("\x08", "\x08"), 0x0F: ("\t", "\t"), 0x1C: ("\r", "\r"),
    0x39: (" ", " "), 0x37: ("*", "*"), 0x4A: ("-", "-"), 0x4E: ("+", "+"),
}  # fmt: skip
for _codes, _plain, _shifted in (
    (range(0x02, 0x0E), "1234567890-=", "!@#$%^&*()_+"),
    (range(0x10, 0x1C), "qwertyuiop[]", "QWERTYUIOP{}"),
    (range(0x1E, 0x2A), "asdfghjkl;'`", 'ASDFGHJKL:"~'),
    (range(0x2B, 0x36), "\\zxcvbnm,./", "|ZXCVBNM<>?"),
):
    for _code, _p, _s in zip(_codes, _plain, _shifted, strict=True):
        _KEYS[_code] = (_p, _s)

SHIFT_RIGHT, SHIFT_LEFT, CTRL, ALT = 0x01, 0x02, 0x04, 0x08
SCROLL_LOCK, NUM_LOCK, CAPS, INSERT = 0x10, 0x20, 0x40, 0x80
# Lock keys (set 1 make codes) toggle their shift-flag bit; Insert also goes into the buffer.
_TOGGLES = {0x46: SCROLL_LOCK, 0x45: NUM_LOCK, 0x3A: CAPS, 0x52: INSERT}
# The numeric keypad (without the E0 prefix its grey twins carry): digits when Num Lock and
# Shift disagree, cursor keys (scan code, no ASCII) otherwise. 0x52 is also Insert.
_KEYPAD = dict(zip((0x47, 0x48, 0x49, 0x4B, 0x4C, 0x4D, 0x4F, 0x50, 0x51, 0x52, 0x53),
                   "7894561230.", strict=True))  # fmt: skip
# Keys whose BIOS word (scancode << 8 | ASCII) changes with a modifier, as the IBM AT BIOS has
# them: Shift-Tab, Ctrl-Enter, Ctrl-Backspace; Alt with the top-row 1..= moves the scan code to
# 0x78..0x83 (other Alt combinations keep theirs, with ASCII 0).
_SHIFTED_WORDS = {0x0F: 0x0F00}
_CTRL_WORDS = {0x1C: 0x1C0A, 0x0E: 0x0E7F}


def _digits(flags: int) -> bool:
    """Whether the numeric keypad types digits: Num Lock, inverted while Shift is held."""
    return bool(flags & NUM_LOCK) != bool(flags & (SHIFT_LEFT | SHIFT_RIGHT))


class BlockStore(Protocol):
    sector_count: int
    read_only: bool

    @property
    def geometry(self) -> tuple[int, int, int]: ...

    def read_sectors(self, lba: int, count: int) -> bytes: ...

    def write_sectors(self, lba: int, data: bytes) -> None: ...


@dataclass
class Call:
    """One BIOS call in flight: the caller's registers, and what the service answers."""

    eax: int
    ebx: int
    ecx: int
    edx: int
    stack: int  # physical address of the saved DX (FLAGS are 6 bytes above)
    wait: bool = False

    @property
    def ah(self) -> int:
        return (self.eax >> 8) & 0xFF

    @property
    def al(self) -> int:
        return self.eax & 0xFF

    def set_ax(self, ax: int) -> None:
        self.eax = (self.eax & 0xFFFF0000) | (ax & 0xFFFF)

    def set_ah(self, ah: int) -> None:
        self.eax = (self.eax & 0xFFFF00FF) | ((ah & 0xFF) << 8)

    def set_al(self, al: int) -> None:
        self.eax = (self.eax & 0xFFFFFF00) | (al & 0xFF)


class Bios:
    def __init__(
        self,
        cpu: Cpu,
        memory: GuestMemory,
        ports: PortBus,
        disks: dict[int, BlockStore],
        set_a20: Callable[[bool], None],
        a20_enabled: Callable[[], bool],
        log: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.cpu = cpu
        self.ram = cpu.ram
        self.memory = memory
        self.ports = ports
        self.disks = disks
        self.set_a20 = set_a20
        self.a20_enabled = a20_enabled
        self.log = log
        self._last_disk_status = 0
        self._boot_next = 0  # index in the boot order of the next drive to try (POST: 0)
        self.services: dict[int, Callable[[Call], None]] = {
            0x09: self._int09_keyboard_irq,
            0x10: self._int10_video,
            0x11: self._int11_equipment,
            0x12: self._int12_memory,
            0x13: self._int13_disk,
            0x15: self._int15_system,
            0x16: self._int16_keyboard,
            0x1A: self._int1a_time,
        }

    def hypercalls(self) -> dict[int, Callable[[object], int]]:
        """Hypercall number -> handler, for Machine.register_hypercall."""
        table: dict[int, Callable[[object], int]] = {
            BIOS_CALL_BASE + vector: self._service(vector) for vector in self.services
        }
        table[BIOS_CALL_BASE + 0x19] = lambda _regs: self.bootstrap()
        table[BIOS_POST] = lambda _regs: self.post()
        return table

    # ---- plumbing -----------------------------------------------------------------------
    def _service(self, vector: int) -> Callable[[object], int]:
        service = self.services[vector]

        def run(_regs: object) -> int:
            cpu = self.cpu
            stack = ((cpu.read(SS_REG) & 0xFFFF) << 4) + (cpu.read(ESP) & 0xFFFF)
            (caller_dx,) = struct.unpack_from("<H", self.ram, stack)
            call = Call(cpu.read(EAX), cpu.read(EBX), cpu.read(ECX), caller_dx, stack)
            service(call)
            struct.pack_into("<H", self.ram, stack, call.edx & 0xFFFF)
            cpu.write(EDX, 1 if call.wait else 0)
            return call.eax

        return run

    def _set_flag(self, call: Call, flag: int, value: bool) -> None:
        (flags,) = struct.unpack_from("<H", self.ram, call.stack + 6)
        flags = (flags | flag) if value else (flags & ~flag)
        struct.pack_into("<H", self.ram, call.stack + 6, flags)

    def _u16(self, address: int) -> int:
        return struct.unpack_from("<H", self.ram, address)[0]

    def _put16(self, address: int, value: int) -> None:
        struct.pack_into("<H", self.ram, address, value & 0xFFFF)

    def _segment(self, reg: int) -> int:
        return (self.cpu.read(reg) & 0xFFFF) << 4

    # ---- POST ---------------------------------------------------------------------------
    def post(self) -> int:
        """Power-on self test: IVT, BDA, PIC, PIT and the screen, as a PC BIOS leaves them."""
        self._boot_next = 0
        rom = memmap.BIOS_ROM_BASE
        for vector in range(256):
            offset = self._u16(rom + vector * 2)
            struct.pack_into("<HH", self.ram, vector * 4, offset, rom >> 4)
        self.ram[memmap.BDA_BASE : memmap.BDA_BASE + 0x100] = bytes(0x100)
        hard_disks = sum(1 for drive in self.disks if drive >= 0x80)
        floppies = sum(1 for drive in self.disks if drive < 0x80)
        equipment = 0x0020 | 0x0002  # 80x25 colour, x87 present
        if floppies:
            equipment |= 0x0001 | ((floppies - 1) << 6)
        serial = [base for base in SERIAL_BASES if self._uart_present(base)]
        for index, base in enumerate(serial):
            self._put16(BDA_COM_PORTS + 2 * index, base)
        equipment |= len(serial) << 9
        self._put16(BDA_EQUIPMENT, equipment)
        self._put16(BDA_MEMORY_KIB, memmap.EBDA_BASE // 1024)
        self._put16(BDA_EBDA_SEGMENT, memmap.EBDA_BASE >> 4)
        self._put16(BDA_KBD_HEAD, BDA_KBD_BUFFER - 0x400)
        self._put16(BDA_KBD_TAIL, BDA_KBD_BUFFER - 0x400)
        self._put16(BDA_KBD_START, BDA_KBD_BUFFER - 0x400)
        self._put16(BDA_KBD_END, BDA_KBD_BUFFER_END - 0x400)
        self.ram[BDA_HARD_DISKS] = hard_disks
        self._set_video_mode(3)
        # 8259A pair to the real-mode vectors 0x08 and 0x70; IRQ0, IRQ1 and the cascade open.
        for port, value in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01),
                            (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01),
                            (0x21, 0xF8), (0xA1, 0xFF)):  # fmt: skip
            self.ports.write(port, 1, value)
        # 8254 channel 0: mode 3, divisor 65536 -> 18.2 Hz.
        for port, value in ((0x43, 0x36), (0x40, 0x00), (0x40, 0x00)):
            self.ports.write(port, 1, value)
        hours, minutes, seconds = self._rtc_time()
        self._put32(memmap.BDA_TICKS, (hours * 3600 + minutes * 60 + seconds) * 1193182 // 65536)
        return 0

    def _uart_present(self, base: int) -> bool:
        """The usual probe: IER keeps what is written and, with only the transmitter interrupt
        on, IIR reports it (an empty bus reads 0xFF everywhere). IER is left at 0."""
        self.ports.write(base + 1, 1, 0x02)
        present = (
            self.ports.read(base + 1, 1) == 0x02 and self.ports.read(base + 2, 1) & 0x3F == 0x02
        )
        self.ports.write(base + 1, 1, 0x00)
        return present

    def _put32(self, address: int, value: int) -> None:
        struct.pack_into("<I", self.ram, address, value & 0xFFFFFFFF)

    # ---- int 19h / 18h: bootstrap -------------------------------------------------------
    def bootstrap(self) -> int:
        """Load the first boot sector found in the boot order (A: before C:) at 0000:7C00.
        After POST the order starts at its first drive; an int 19h or 18h that comes after a
        boot attempt (a data floppy's "not a bootable disk" code calls int 19h) goes on with
        the drives after the one last booted, as a boot order does, instead of retrying it."""
        order = sorted(self.disks)
        for drive in order[self._boot_next :]:
            self._boot_next = order.index(drive) + 1
            disk = self.disks[drive]
            if disk.sector_count == 0:
                continue
            sector = disk.read_sectors(0, 1)
            if sector[510:512] != b"\x55\xaa":
                self._print(f"Drive {drive:#04x}: no boot signature (0x55AA) in sector 0\r\n")
                continue
            self.memory.write(memmap.BOOT_SECTOR, sector)
            self.cpu.write(EDX, drive)
            return 0
        self._boot_next = len(order)
        self._print("No bootable device.\r\n")
        self.log("bios: no bootable device")
        return 1

    # ---- int 10h: video -----------------------------------------------------------------
    def _crtc(self, index: int, value: int) -> None:
        self.ports.write(0x3D4, 1, index)
        self.ports.write(0x3D5, 1, value)

    def _set_video_mode(self, mode: int, clear: bool = True) -> None:
        self.ram[BDA_VIDEO_MODE] = mode
        self._put16(BDA_COLUMNS, COLUMNS)
        self._put16(BDA_PAGE_SIZE, COLUMNS * ROWS * 2)
        self._put16(BDA_PAGE_OFFSET, 0)
        self.ram[BDA_ACTIVE_PAGE] = 0
        self._put16(BDA_CRTC_BASE, 0x3D4)
        self.ram[BDA_ROWS_MINUS_1] = ROWS - 1
        self._put16(BDA_CHAR_HEIGHT, 16)
        self.ram[BDA_VIDEO_CONTROL] = 0x60 | (0 if clear else VIDEO_KEPT_MEMORY)
        self.ram[BDA_CURSOR_POS : BDA_CURSOR_POS + 16] = bytes(16)
        self._put16(BDA_CURSOR_SHAPE, 0x0D0E)
        self._crtc(0x0A, 0x0D)
        self._crtc(0x0B, 0x0E)
        self._crtc(0x0C, 0)
        self._crtc(0x0D, 0)
        if clear:
            base = memmap.VGA_TEXT_BASE
            self.ram[base : base + COLUMNS * ROWS * 2] = b"\x20\x07" * (COLUMNS * ROWS)
        self._place_cursor(0, 0, 0)

    def _cursor(self, page: int = 0) -> tuple[int, int]:
        col = self.ram[BDA_CURSOR_POS + page * 2]
        row = self.ram[BDA_CURSOR_POS + page * 2 + 1]
        return row, col

    def _place_cursor(self, page: int, row: int, col: int) -> None:
        self.ram[BDA_CURSOR_POS + page * 2] = col
        self.ram[BDA_CURSOR_POS + page * 2 + 1] = row
        if page == self.ram[BDA_ACTIVE_PAGE]:
            position = row * COLUMNS + col
            self._crtc(0x0E, position >> 8)
            self._crtc(0x0F, position & 0xFF)

    def _cell(self, page: int, row: int, col: int) -> int:
        return memmap.VGA_TEXT_BASE + page * 0x1000 + (row * COLUMNS + col) * 2

    def _scroll(self, up: bool, lines: int, attr: int, top: int, left: int, bottom: int,
                right: int, page: int = 0) -> None:  # fmt: skip
        bottom, right = min(bottom, ROWS - 1), min(right, COLUMNS - 1)
        if top > bottom or left > right:
            return
        height = bottom - top + 1
        if lines == 0 or lines > height:
            lines = height
        width = (right - left + 1) * 2
        rows = range(top, bottom + 1) if up else range(bottom, top - 1, -1)
        for row in rows:
            source = row + lines if up else row - lines
            target = self._cell(page, row, left)
            if top <= source <= bottom:
                start = self._cell(page, source, left)
                self.ram[target : target + width] = bytes(self.ram[start : start + width])
            else:
                self.ram[target : target + width] = bytes((0x20, attr)) * (width // 2)

    def _teletype(self, char: int, page: int = 0, attr: int | None = None) -> None:
        row, col = self._cursor(page)
        row, col = min(row, ROWS - 1), min(col, COLUMNS - 1)  # a cursor parked off screen
        if char == 0x0D:
            col = 0
        elif char == 0x0A:
            row += 1
        elif char == 0x08:
            col = max(0, col - 1)
        elif char == 0x07:
            pass
        else:
            cell = self._cell(page, row, col)
            self.ram[cell] = char
            if attr is not None:
                self.ram[cell + 1] = attr
            col += 1
            if col >= COLUMNS:
                col = 0
                row += 1
        if row >= ROWS:
            fill = self.ram[self._cell(page, ROWS - 1, 0) + 1]
            self._scroll(True, 1, fill, 0, 0, ROWS - 1, COLUMNS - 1, page)
            row = ROWS - 1
        self._place_cursor(page, row, col)

    def _print(self, text: str) -> None:
        for byte in text.encode("cp437", "replace"):
            self._teletype(byte)

    def _int10_video(self, call: Call) -> None:
        ah, al = call.ah, call.al
        bh, bl = (call.ebx >> 8) & 0xFF, call.ebx & 0xFF
        ch, cl = (call.ecx >> 8) & 0xFF, call.ecx & 0xFF
        dh, dl = (call.edx >> 8) & 0xFF, call.edx & 0xFF
        page = bh & 7
        if ah == 0x00:
            mode = al & 0x7F
            self._set_video_mode(mode if mode in (2, 3, 7) else 3, clear=not al & 0x80)
        elif ah == 0x01:
            self._put16(BDA_CURSOR_SHAPE, (ch << 8) | cl)
            self._crtc(0x0A, ch & 0x3F)
            self._crtc(0x0B, cl & 0x1F)
        elif ah == 0x02:
            self._place_cursor(page, dh, dl)  # stored as given: row 25 hides the cursor
        elif ah == 0x03:
            row, col = self._cursor(page)
            call.edx = (row << 8) | col
            self.cpu.write(ECX, (call.ecx & 0xFFFF0000) | self._u16(BDA_CURSOR_SHAPE))
            call.set_ax(0)
        elif ah == 0x05:
            self.ram[BDA_ACTIVE_PAGE] = al & 7
            self._put16(BDA_PAGE_OFFSET, (al & 7) * 0x1000)
            self._crtc(0x0C, ((al & 7) * 0x800) >> 8)
            self._crtc(0x0D, 0)
        elif ah in (0x06, 0x07):
            self._scroll(ah == 0x06, al, bh, ch, cl, dh, dl, self.ram[BDA_ACTIVE_PAGE])
        elif ah == 0x08:
            row, col = self._cursor(page)
            cell = self._cell(page, row, col)
            call.set_ax((self.ram[cell + 1] << 8) | self.ram[cell])
        elif ah in (0x09, 0x0A):
            row, col = self._cursor(page)
            count = call.ecx & 0xFFFF
            start = self._cell(page, row, col)
            for i in range(min(count, COLUMNS * ROWS - (row * COLUMNS + col))):
                self.ram[start + 2 * i] = al
                if ah == 0x09:
                    self.ram[start + 2 * i + 1] = bl
        elif ah == 0x0E:
            self._teletype(al, self.ram[BDA_ACTIVE_PAGE])
        elif ah == 0x0F:
            kept = self.ram[BDA_VIDEO_CONTROL] & VIDEO_KEPT_MEMORY
            call.set_ax((COLUMNS << 8) | self.ram[BDA_VIDEO_MODE] | kept)
            self.cpu.write(EBX, (call.ebx & 0xFFFF00FF) | (self.ram[BDA_ACTIVE_PAGE] << 8))
        elif ah == 0x13:
            self._write_string(call, al, bh & 7, bl, call.ecx & 0xFFFF, dh, dl)

    def _write_string(self, call: Call, mode: int, page: int, attr: int, count: int, row: int,
                      col: int) -> None:  # fmt: skip
        saved = self._cursor(page)
        self._place_cursor(page, row, col)
        source = self._segment(ES_REG) + (self.cpu.read(EBP) & 0xFFFF)
        for i in range(count):
            if mode & 2:
                char, attr = self.ram[source + 2 * i], self.ram[source + 2 * i + 1]
            else:
                char = self.ram[source + i]
            self._teletype(char, page, attr)
        if not mode & 1:
            self._place_cursor(page, *saved)

    # ---- int 11h / 12h ------------------------------------------------------------------
    def _int11_equipment(self, call: Call) -> None:
        call.set_ax(self._u16(BDA_EQUIPMENT))

    def _int12_memory(self, call: Call) -> None:
        call.set_ax(self._u16(BDA_MEMORY_KIB))

    # ---- int 13h: disk ------------------------------------------------------------------
    def _disk_done(self, call: Call, status: int) -> None:
        self._last_disk_status = status
        self.ram[BDA_DISK_STATUS] = status
        call.set_ah(status)
        self._set_flag(call, CF, status != 0)

    def _int13_disk(self, call: Call) -> None:
        ah = call.ah
        drive = call.edx & 0xFF
        disk = self.disks.get(drive)
        if ah == 0x00:
            self._disk_done(call, 0 if disk else 0x01)
            return
        if ah == 0x01:  # status of the last operation, which stays recorded
            call.set_ah(self._last_disk_status)
            self._set_flag(call, CF, self._last_disk_status != 0)
            return
        if disk is None:
            self._disk_done(call, 0x01 if ah != 0x15 else 0)
            if ah == 0x15:
                call.set_ah(0)
            return
        cylinders, heads, spt = disk.geometry
        if ah in (0x02, 0x03, 0x04):
            count = call.al
            cl, ch = call.ecx & 0xFF, (call.ecx >> 8) & 0xFF
            cylinder = ch | ((cl & 0xC0) << 2)
            sector = cl & 0x3F
            head = (call.edx >> 8) & 0xFF
            if count == 0 or count > 128:  # 128 sectors fill the 64 KiB a segment can hold
                call.set_al(0)
                self._disk_done(call, 0x01)
                return
            if sector == 0 or sector > spt or head >= heads or cylinder >= cylinders:
                call.set_al(0)
                self._disk_done(call, 0x04)
                return
            lba = (cylinder * heads + head) * spt + sector - 1
            if ah == 0x04:  # verify: the sectors exist; nothing moves
                status = 0 if lba + count <= disk.sector_count else 0x04
            else:
                buffer = self._segment(ES_REG) + (call.ebx & 0xFFFF)
                status = self._transfer(disk, ah == 0x03, lba, count, buffer)
            call.set_al(count if status == 0 else 0)
            self._disk_done(call, status)
        elif ah in (0x0C, 0x0D, 0x10, 0x11):  # seek, reset, ready, recalibrate: no mechanics
            self._disk_done(call, 0)
        elif ah == 0x08:
            max_cyl = self._chs_cylinders(drive, cylinders) - 1
            call.set_ax(0)
            self.cpu.write(ECX, ((max_cyl & 0xFF) << 8) | ((max_cyl >> 2) & 0xC0) | spt)
            drives = sum(1 for d in self.disks if (d >= 0x80) == (drive >= 0x80))
            call.edx = ((heads - 1) << 8) | drives
            if drive < 0x80:
                self.cpu.write(EBX, (call.ebx & 0xFFFF0000) | 0x04)  # 1.44 MB
            self._disk_done(call, 0)
        elif ah == 0x15:
            if drive >= 0x80:
                sectors = self._chs_cylinders(drive, cylinders) * heads * spt
                self.cpu.write(ECX, sectors >> 16)
                call.edx = sectors & 0xFFFF
                self._disk_done(call, 0)
                call.set_ah(0x03)
            else:
                self._disk_done(call, 0)
                call.set_ah(0x01)
        elif ah == 0x41 and drive >= 0x80 and (call.ebx & 0xFFFF) == 0x55AA:
            self.cpu.write(EBX, (call.ebx & 0xFFFF0000) | 0xAA55)
            self.cpu.write(ECX, (call.ecx & 0xFFFF0000) | 0x0001)
            self._disk_done(call, 0)
            call.set_ah(0x30)
        elif ah in (0x42, 0x43, 0x44, 0x47) and drive >= 0x80:
            packet = self._segment(DS_REG) + (self.cpu.read(ESI) & 0xFFFF)
            size, _, count, offset, segment, lba = struct.unpack_from("<BBHHHQ", self.ram, packet)
            if size < 0x10:
                self._disk_done(call, 0x01)
                return
            if ah in (0x44, 0x47):  # verify, seek: the blocks exist; nothing moves
                status = 0 if lba + max(count, 1) <= disk.sector_count else 0x04
            elif count == 0:  # EDD: a packet for no blocks is a successful no-op
                status = 0
            else:
                status = self._transfer(disk, ah == 0x43, lba, count, (segment << 4) + offset)
            if status:
                struct.pack_into("<H", self.ram, packet + 2, 0)
            self._disk_done(call, status)
        elif ah == 0x48 and drive >= 0x80:
            table = self._segment(DS_REG) + (self.cpu.read(ESI) & 0xFFFF)
            struct.pack_into("<HHIIIQH", self.ram, table, 0x1A, 0x02, cylinders, heads, spt,
                             disk.sector_count, SECTOR)  # fmt: skip
            self._disk_done(call, 0)
        else:
            self._disk_done(call, 0x01)

    @staticmethod
    def _chs_cylinders(drive: int, cylinders: int) -> int:
        """Cylinders int 13h AH=08h/15h report: at most 1024, and on a hard disk one fewer, the
        last cylinder being kept for diagnostics since the IBM AT (SeaBIOS and Bochs do too)."""
        cylinders = min(cylinders, 1024)
        return cylinders - 1 if drive >= 0x80 and cylinders > 1 else cylinders

    def _transfer(self, disk: BlockStore, write: bool, lba: int, count: int, buffer: int) -> int:
        """BIOS status: 0 ok, 0x03 write protected, 0x04 sector not found, 0x09 DMA boundary."""
        if count == 0 or lba + count > disk.sector_count:
            return 0x04
        if buffer + count * SECTOR > self.cpu.ram_bytes:
            return 0x09
        if write:
            if disk.read_only:
                return 0x03
            disk.write_sectors(lba, bytes(self.ram[buffer : buffer + count * SECTOR]))
        else:
            self.memory.write(buffer, disk.read_sectors(lba, count))
        return 0

    # ---- int 15h: system ----------------------------------------------------------------
    def e820_map(self) -> list[tuple[int, int, int]]:
        """(base, length, type) with type 1 usable, 2 reserved."""
        ram = self.cpu.ram_bytes
        return [
            (0, memmap.EBDA_BASE, 1),
            (memmap.EBDA_BASE, memmap.CONVENTIONAL_TOP - memmap.EBDA_BASE, 2),
            (memmap.BIOS_ROM_BASE, memmap.BIOS_ROM_SIZE, 2),
            (memmap.EXTENDED_BASE, ram - memmap.EXTENDED_BASE, 1),
        ]

    def _int15_system(self, call: Call) -> None:
        ah = call.ah
        if (call.eax & 0xFFFF) == 0xE820:
            edx_full = self.cpu.read(EDX)  # the stub saved only DX; the high half is intact
            signature = (edx_full & 0xFFFF0000) | call.edx
            entries = self.e820_map()
            index = call.ebx
            if signature != 0x534D4150 or index >= len(entries) or call.ecx < 20:
                self._set_flag(call, CF, True)
                call.set_ah(0x86)
                return
            base, length, kind = entries[index]
            target = self._segment(ES_REG) + (self.cpu.read(EDI) & 0xFFFF)
            struct.pack_into("<QQI", self.ram, target, base, length, kind)
            call.eax = 0x534D4150
            self.cpu.write(ECX, 20)
            self.cpu.write(EBX, 0 if index + 1 == len(entries) else index + 1)
            self._set_flag(call, CF, False)
        elif (call.eax & 0xFFFF) == 0xE801:
            # AX = CX: KiB from 1 MiB to 16 MiB (at most 15 MiB); BX = DX: 64 KiB blocks above.
            extended = self.cpu.ram_bytes - memmap.EXTENDED_BASE
            low_kib = min(extended, 15 * 1024 * 1024) // 1024
            high_blocks = max(0, self.cpu.ram_bytes - 16 * 1024 * 1024) // 65536
            call.set_ax(low_kib)
            self.cpu.write(ECX, (call.ecx & 0xFFFF0000) | low_kib)
            self.cpu.write(EBX, (call.ebx & 0xFFFF0000) | high_blocks)
            call.edx = high_blocks
            self._set_flag(call, CF, False)
        elif ah == 0x88:
            call.set_ax(min(0xFFFF, (self.cpu.ram_bytes - memmap.EXTENDED_BASE) // 1024))
            self._set_flag(call, CF, False)
        elif ah == 0x24 and call.al <= 3:
            if call.al in (0, 1):
                self.set_a20(call.al == 1)
                call.set_ah(0)
            elif call.al == 2:
                call.set_ax(1 if self.a20_enabled() else 0)
            else:
                call.set_ax(0)
                self.cpu.write(EBX, (call.ebx & 0xFFFF0000) | 0x0003)  # kbc and port 0x92
            self._set_flag(call, CF, False)
        else:
            call.set_ah(0x86)
            self._set_flag(call, CF, True)

    # ---- int 09h / 16h: keyboard ----------------------------------------------------------
    def _int09_keyboard_irq(self, call: Call) -> None:
        scancode = self.ports.read(0x60, 1)
        status = self.ram[BDA_KBD_STATUS3]
        self.ram[BDA_KBD_STATUS3] = status & ~E0_PREFIX
        if scancode == 0xE0:
            self.ram[BDA_KBD_STATUS3] |= E0_PREFIX
        elif scancode == 0xE1:
            self.ram[BDA_KBD_STATUS3] |= E1_SEQUENCE
        elif status & E1_SEQUENCE:  # Pause: E1 1D 45 (and E1 9D C5) move no key
            if scancode & 0x7F == 0x45:
                self.ram[BDA_KBD_STATUS3] &= ~E1_SEQUENCE
        else:
            self._key_event(scancode, extended=bool(status & E0_PREFIX))
        self.ports.write(0x20, 1, 0x20)

    def _key_event(self, scancode: int, extended: bool) -> None:
        """One set 1 make or break code (after any E0 prefix): the shift flags, the buffer."""
        release = bool(scancode & 0x80)
        code = scancode & 0x7F
        flags = self.ram[BDA_SHIFT_FLAGS]
        modifier = {0x2A: SHIFT_LEFT, 0x36: SHIFT_RIGHT, 0x1D: CTRL, 0x38: ALT}.get(code)
        if extended and code in (0x2A, 0x36, 0x37):
            return  # the keyboard's own shifts around grey keys, and Print Screen
        if modifier is not None:
            flags = flags & ~modifier if release else flags | modifier
        elif release or code == 0:  # a break code, or 00h: the keyboard's buffer overran
            pass
        elif code in _TOGGLES and not (code in _KEYPAD and not extended and _digits(flags)):
            flags ^= _TOGGLES[code]
            if code == 0x52:  # Insert is a key as well as a state
                self._store_key(self._key_word(code, flags, extended))
        else:
            self._store_key(self._key_word(code, flags, extended))
        self.ram[BDA_SHIFT_FLAGS] = flags

    @staticmethod
    def _key_word(code: int, flags: int, extended: bool) -> int:
        """The word int 16h returns for a make code: scan code high, ASCII low (0 for keys
        with no character, and for Alt combinations)."""
        shift = bool(flags & (SHIFT_LEFT | SHIFT_RIGHT))
        if code in _KEYPAD and not extended:
            return (code << 8) | (ord(_KEYPAD[code]) if _digits(flags) else 0)
        if flags & ALT:
            if 0x02 <= code <= 0x0D:
                return (code + 0x76) << 8
            return code << 8
        if flags & CTRL and code in _CTRL_WORDS:
            return _CTRL_WORDS[code]
        if shift and code in _SHIFTED_WORDS:
            return _SHIFTED_WORDS[code]
        if code not in _KEYS:
            return code << 8
        plain, shifted = _KEYS[code]
        if plain.isalpha() and flags & CAPS:
            shift = not shift
        char = shifted if shift else plain
        if flags & CTRL and char.isalpha():
            return (code << 8) | (ord(char.lower()) - 0x60)
        return (code << 8) | ord(char)

    def _store_key(self, word: int) -> None:
        head, tail = self._u16(BDA_KBD_HEAD), self._u16(BDA_KBD_TAIL)
        next_tail = tail + 2
        if next_tail >= BDA_KBD_BUFFER_END - 0x400:
            next_tail = BDA_KBD_BUFFER - 0x400
        if next_tail == head:
            return  # buffer full: a real BIOS beeps and drops the key
        self._put16(0x400 + tail, word)
        self._put16(BDA_KBD_TAIL, next_tail)

    def _int16_keyboard(self, call: Call) -> None:
        ah = call.ah & ~0x10
        head, tail = self._u16(BDA_KBD_HEAD), self._u16(BDA_KBD_TAIL)
        if ah == 0x00:
            if head == tail:
                call.wait = True
                return
            call.set_ax(self._u16(0x400 + head))
            head += 2
            if head >= BDA_KBD_BUFFER_END - 0x400:
                head = BDA_KBD_BUFFER - 0x400
            self._put16(BDA_KBD_HEAD, head)
        elif ah == 0x01:
            if head == tail:
                self._set_flag(call, ZF, True)
            else:
                call.set_ax(self._u16(0x400 + head))
                self._set_flag(call, ZF, False)
        elif ah == 0x02:
            call.set_al(self.ram[BDA_SHIFT_FLAGS])

    # ---- int 1Ah: time ------------------------------------------------------------------
    def _cmos(self, index: int) -> int:
        self.ports.write(0x70, 1, index)
        return self.ports.read(0x71, 1)

    def _set_cmos(self, index: int, value: int) -> None:
        self.ports.write(0x70, 1, index)
        self.ports.write(0x71, 1, value)

    def _rtc_time(self) -> tuple[int, int, int]:
        binary = bool(self._cmos(0x0B) & 0x04)

        def decode(value: int) -> int:
            return value if binary else (value >> 4) * 10 + (value & 0xF)

        hours = self._cmos(0x04)
        if hours == 0xFF:  # no RTC on this board
            return 0, 0, 0
        return decode(hours & 0x7F), decode(self._cmos(0x02)), decode(self._cmos(0x00))

    def _int1a_time(self, call: Call) -> None:
        ah = call.ah
        if ah == 0x00:
            ticks = struct.unpack_from("<I", self.ram, memmap.BDA_TICKS)[0]
            self.cpu.write(ECX, (call.ecx & 0xFFFF0000) | (ticks >> 16))
            call.edx = ticks & 0xFFFF
            call.set_al(self.ram[memmap.BDA_MIDNIGHT])
            self.ram[memmap.BDA_MIDNIGHT] = 0
        elif ah == 0x01:
            self._put32(memmap.BDA_TICKS, ((call.ecx & 0xFFFF) << 16) | (call.edx & 0xFFFF))
        elif ah == 0x02:
            self.cpu.write(ECX, (call.ecx & 0xFFFF0000) | (self._cmos(4) << 8) | self._cmos(2))
            call.edx = (self._cmos(0) << 8) | (self._cmos(0x0B) & 0x01)  # DL: daylight saving
            self._set_flag(call, CF, False)
        elif ah == 0x03:
            self._set_cmos(4, (call.ecx >> 8) & 0xFF)
            self._set_cmos(2, call.ecx & 0xFF)
            self._set_cmos(0, (call.edx >> 8) & 0xFF)
            self._set_flag(call, CF, False)
        elif ah == 0x04:
            self.cpu.write(ECX, (call.ecx & 0xFFFF0000) | (self._cmos(0x32) << 8) | self._cmos(9))
            call.edx = (self._cmos(8) << 8) | self._cmos(7)
            self._set_flag(call, CF, False)
        elif ah == 0x05:
            self._set_cmos(0x32, (call.ecx >> 8) & 0xFF)
            self._set_cmos(9, call.ecx & 0xFF)
            self._set_cmos(8, (call.edx >> 8) & 0xFF)
            self._set_cmos(7, call.edx & 0xFF)
            self._set_flag(call, CF, False)
        else:
            self._set_flag(call, CF, True)
