"""VGA in text mode 3 (80x25, 16 colours): the registers software programs and a snapshot for
the renderers.

The character cells at 0xB8000 are plain guest RAM that the machine maps; nothing here sees
a cell write. `text_screen()` reads the 4000 visible bytes once (from the CRTC start address,
wrapping inside the 32 KiB text window) and returns a `TextScreen` with everything a renderer
needs: cells, cursor position and shape, blink mode and the 16 colours as they reach the screen
(attribute palette, then DAC).

Ports: CRTC index/data 0x3D4/0x3D5 (0x3B4/0x3B5 when misc output bit 0 is clear), input status
1 at 0x3DA (0x3BA), misc output 0x3C2 write / 0x3CC read, attribute controller 0x3C0/0x3C1,
sequencer 0x3C4/0x3C5, DAC 0x3C6-0x3C9, graphics controller 0x3CE/0x3CF, feature control
0x3CA read / 0x3DA write. Input status 1 is computed from virtual time on the 70 Hz mode 3
raster: 449 lines of 31.778 us, 400 of them displayed, vertical retrace on the last 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.memmap import VGA_TEXT_BASE, VGA_TEXT_COLUMNS, VGA_TEXT_ROWS

COLUMNS = VGA_TEXT_COLUMNS
ROWS = VGA_TEXT_ROWS
TEXT_WINDOW = 0x8000  # 32 KiB at 0xB8000; the start address wraps inside it
SCREEN_BYTES = COLUMNS * ROWS * 2

# Raster timing of mode 3 (25.175 MHz dot clock, 800 x 449 dots per frame: 70.08 Hz).
LINE_NS = 31_778
ACTIVE_LINE_NS = 25_422  # 640 of 800 dot clocks carry pixels; the rest is horizontal blanking
LINES_PER_FRAME = 449
DISPLAYED_LINES = 400
VRETRACE_LINES = 2
FRAME_NS = LINE_NS * LINES_PER_FRAME

# Input status 1 bits.
IS1_DISPLAY_DISABLED = 0x01  # in horizontal or vertical blanking
IS1_VRETRACE = 0x08

MISC_POWER_ON = 0x67  # colour I/O at 0x3Dx, RAM enabled, 28 MHz clock, -/+ sync for 400 lines
MISC_COLOUR_IO = 0x01

CRTC_CURSOR_START = 0x0A
CRTC_CURSOR_END = 0x0B
CRTC_START_HIGH = 0x0C
CRTC_START_LOW = 0x0D
CRTC_CURSOR_HIGH = 0x0E
CRTC_CURSOR_LOW = 0x0F
CRTC_MAX_SCAN_LINE = 0x09
CRTC_VRETRACE_END = 0x11  # bit 7 write-protects registers 0-7
CURSOR_DISABLE = 0x20

AC_MODE_CONTROL = 0x10
AC_BLINK = 0x08
AC_COLOUR_SELECT = 0x14
AC_PAS = 0x20  # in the index byte: palette address source (0 blanks the screen)
SEQ_CLOCKING = 0x01
SEQ_SCREEN_OFF = 0x20

# Register contents after the BIOS sets mode 3 (IBM VGA technical reference tables).
CRTC_MODE3 = bytes.fromhex("5f4f50825581bf1f004f0d0e00000000 9c8e8f281f96b9a3ff")
SEQ_MODE3 = bytes.fromhex("0300030002")
GC_MODE3 = bytes.fromhex("000000000010 0e00ff")
AC_MODE3 = bytes.fromhex("000102030405140738393a3b3c3d3e3f 0c000f0800")


def _ega_dac() -> bytes:
    """The 64 EGA colours the BIOS loads into the DAC for text modes (6-bit rgbRGB index)."""
    out = bytearray(256 * 3)
    for index in range(64):
        for channel, (primary, secondary) in enumerate(((2, 5), (1, 4), (0, 3))):
            value = (0x2A if index >> primary & 1 else 0) + (0x15 if index >> secondary & 1 else 0)
            out[index * 3 + channel] = value
    return bytes(out)


DAC_DEFAULT = _ega_dac()


def dac_to_rgb(value: int) -> int:
    """A 6-bit DAC level as an 8-bit colour component (63 -> 255)."""
    return (value << 2) | (value >> 4)


@dataclass(frozen=True)
class TextScreen:
    """One frame of text mode as the display shows it.

    `cells` is 4000 bytes, row by row, each cell (character, attribute). The cursor row/col are
    relative to the displayed page; `cursor_visible` is False if it is disabled, has an empty
    shape or lies off the page. Scanlines count from 0 at the top of the 16-line cell.
    """

    cells: bytes
    cursor_row: int
    cursor_col: int
    cursor_start: int
    cursor_end: int
    cursor_visible: bool
    start_address: int
    blink_enabled: bool
    line_graphics: bool
    palette: tuple[tuple[int, int, int], ...]
    display_enabled: bool = True
    columns: int = COLUMNS
    rows: int = ROWS
    char_height: int = 16

    def cell(self, row: int, col: int) -> tuple[int, int]:
        """(character, attribute) of one cell."""
        if not (0 <= row < self.rows and 0 <= col < self.columns):
            raise IndexError(f"cell ({row}, {col}) outside {self.rows}x{self.columns}")
        offset = (row * self.columns + col) * 2
        return self.cells[offset], self.cells[offset + 1]

    def row_bytes(self, row: int) -> bytes:
        """The raw (char, attr) pairs of one row."""
        width = self.columns * 2
        return self.cells[row * width : (row + 1) * width]


class VGA(Device):
    """The VGA's register file in text mode; the memory stays the machine's."""

    name = "vga"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self._board: Board | None = None
        self.reset()

    def attach(self, board: Board) -> None:
        self._board = board
        ports = board.ports
        ports.claim(0x3C0, 16, self.name, self._read_3cx, self._write_3cx)
        for base in (0x3B4, 0x3D4):
            ports.claim(base, 2, self.name, self._read_crtc, self._write_crtc)
            ports.claim(base + 6, 1, self.name, self._read_status1, self._write_feature)
        self.reset()

    def reset(self) -> None:
        self.misc = MISC_POWER_ON
        self.feature = 0
        self.crtc = bytearray(CRTC_MODE3)
        self.crtc_index = 0
        self.seq = bytearray(SEQ_MODE3)
        self.seq_index = 0
        self.gc = bytearray(GC_MODE3)
        self.gc_index = 0
        self.ac = bytearray(AC_MODE3)
        self.ac_index = AC_PAS  # the BIOS leaves the palette address source set
        self.ac_flipflop_data = False  # False: next 0x3C0 write is an index
        self.dac = bytearray(DAC_DEFAULT)
        self.dac_mask = 0xFF
        self.dac_write_index = 0
        self.dac_read_index = 0
        self.dac_component = 0  # which of r, g, b the next data access touches
        self.dac_reading = False

    # -- helpers -----------------------------------------------------------------------------

    def _colour_io(self, port: int) -> bool:
        """Whether `port` is live under the current misc-output I/O address select."""
        return (port & 0xF0 == 0xD0) == bool(self.misc & MISC_COLOUR_IO)

    def _now(self) -> int:
        return self._board.clock.now_ns() if self._board is not None else 0

    def input_status_1(self) -> int:
        """Status bits at this instant of virtual time (retrace and blanking)."""
        in_frame = self._now() % FRAME_NS
        line, in_line = divmod(in_frame, LINE_NS)
        value = 0
        if line >= DISPLAYED_LINES or in_line >= ACTIVE_LINE_NS:
            value |= IS1_DISPLAY_DISABLED
        if line >= LINES_PER_FRAME - VRETRACE_LINES:
            value |= IS1_VRETRACE
        return value

    @property
    def cursor_location(self) -> int:
        return self.crtc[CRTC_CURSOR_HIGH] << 8 | self.crtc[CRTC_CURSOR_LOW]

    @property
    def start_address(self) -> int:
        return self.crtc[CRTC_START_HIGH] << 8 | self.crtc[CRTC_START_LOW]

    def palette(self) -> tuple[tuple[int, int, int], ...]:
        """The 16 text colours: attribute palette register -> colour select -> DAC -> 8-bit."""
        mode = self.ac[AC_MODE_CONTROL]
        select = self.ac[AC_COLOUR_SELECT]
        colours = []
        for index in range(16):
            entry = self.ac[index] & 0x3F
            if mode & 0x80:  # P5/P4 come from the colour select register
                entry = (entry & 0x0F) | (select & 0x03) << 4
            dac_index = (entry | (select & 0x0C) << 4) & self.dac_mask
            r, g, b = self.dac[dac_index * 3 : dac_index * 3 + 3]
            colours.append((dac_to_rgb(r), dac_to_rgb(g), dac_to_rgb(b)))
        return tuple(colours)

    def text_screen(self) -> TextScreen:
        """Snapshot the visible page: one read of guest memory (two if it wraps)."""
        if self._board is None:
            raise RuntimeError("vga used before attach()")
        memory = self._board.memory
        offset = (self.start_address * 2) % TEXT_WINDOW
        first = min(SCREEN_BYTES, TEXT_WINDOW - offset)
        cells = memory.read(VGA_TEXT_BASE + offset, first)
        if first < SCREEN_BYTES:
            cells += memory.read(VGA_TEXT_BASE, SCREEN_BYTES - first)
        char_height = (self.crtc[CRTC_MAX_SCAN_LINE] & 0x1F) + 1
        start = self.crtc[CRTC_CURSOR_START] & 0x1F
        end = self.crtc[CRTC_CURSOR_END] & 0x1F
        relative = (self.cursor_location - self.start_address) % (TEXT_WINDOW // 2)
        row, col = divmod(relative, COLUMNS)
        visible = (
            not self.crtc[CRTC_CURSOR_START] & CURSOR_DISABLE
            and start <= end
            and start < char_height
            and row < ROWS
        )
        return TextScreen(
            cells=bytes(cells),
            cursor_row=row if row < ROWS else 0,
            cursor_col=col,
            cursor_start=start,
            cursor_end=min(end, char_height - 1),
            cursor_visible=visible,
            start_address=self.start_address,
            blink_enabled=bool(self.ac[AC_MODE_CONTROL] & AC_BLINK),
            line_graphics=bool(self.ac[AC_MODE_CONTROL] & 0x04),
            palette=self.palette(),
            display_enabled=bool(self.ac_index & AC_PAS)
            and not self.seq[SEQ_CLOCKING] & SEQ_SCREEN_OFF,
            char_height=char_height,
        )

    # -- port handlers -----------------------------------------------------------------------

    def _read_crtc(self, port: int, size: int) -> int:
        if not self._colour_io(port):
            return 0xFF
        if port & 1 == 0:
            return self.crtc_index
        return self.crtc[self.crtc_index] if self.crtc_index < len(self.crtc) else 0xFF

    def _write_crtc(self, port: int, size: int, value: int) -> None:
        if not self._colour_io(port):
            return
        if size == 2:  # `out dx, ax`: index in AL, data in AH, as drivers often do
            self._write_crtc(port, 1, value & 0xFF)
            self._write_crtc(port + 1, 1, value >> 8)
            return
        if port & 1 == 0:
            self.crtc_index = value & 0x1F
            return
        index = self.crtc_index
        if index >= len(self.crtc):
            return
        if index <= 7 and self.crtc[CRTC_VRETRACE_END] & 0x80:
            if index == 7:  # only the line compare bit stays writable
                self.crtc[7] = (self.crtc[7] & ~0x10) | (value & 0x10)
            return
        self.crtc[index] = value

    def _read_status1(self, port: int, size: int) -> int:
        if not self._colour_io(port):
            return 0xFF
        self.ac_flipflop_data = False
        return self.input_status_1()

    def _write_feature(self, port: int, size: int, value: int) -> None:
        if self._colour_io(port):
            self.feature = value

    def _read_3cx(self, port: int, size: int) -> int:
        reg = port & 0x0F
        if reg == 0x0:
            return self.ac_index
        if reg == 0x1:
            index = self.ac_index & 0x1F
            return self.ac[index] if index < len(self.ac) else 0xFF
        if reg == 0x2:
            return 0x10  # input status 0: switch sense high, no retrace interrupt pending
        if reg == 0x4:
            return self.seq_index
        if reg == 0x5:
            return self.seq[self.seq_index] if self.seq_index < len(self.seq) else 0xFF
        if reg == 0x6:
            return self.dac_mask
        if reg == 0x7:
            return 0x03 if self.dac_reading else 0x00
        if reg == 0x8:
            return self.dac_write_index
        if reg == 0x9:
            return self._read_dac()
        if reg == 0xA:
            return self.feature
        if reg == 0xC:
            return self.misc
        if reg == 0xE:
            return self.gc_index
        if reg == 0xF:
            return self.gc[self.gc_index] if self.gc_index < len(self.gc) else 0xFF
        return 0xFF

    def _write_3cx(self, port: int, size: int, value: int) -> None:
        reg = port & 0x0F
        if size == 2 and reg in (0x4, 0xE):  # index + data in one word write
            self._write_3cx(port, 1, value & 0xFF)
            self._write_3cx(port + 1, 1, value >> 8)
        elif reg == 0x0:
            self._write_attribute(value)
        elif reg == 0x2:
            self.misc = value
        elif reg == 0x4:
            self.seq_index = value & 0x07
        elif reg == 0x5:
            if self.seq_index < len(self.seq):
                self.seq[self.seq_index] = value
        elif reg == 0x6:
            self.dac_mask = value
        elif reg == 0x7:
            self.dac_read_index, self.dac_component, self.dac_reading = value, 0, True
        elif reg == 0x8:
            self.dac_write_index, self.dac_component, self.dac_reading = value, 0, False
        elif reg == 0x9:
            self._write_dac(value)
        elif reg == 0xE:
            self.gc_index = value & 0x0F
        elif reg == 0xF:
            if self.gc_index < len(self.gc):
                self.gc[self.gc_index] = value

    def _write_attribute(self, value: int) -> None:
        """0x3C0 alternates index and data; reading 0x3DA sends it back to index."""
        if not self.ac_flipflop_data:
            self.ac_index = value & 0x3F
        else:
            index = self.ac_index & 0x1F
            if index < len(self.ac):
                self.ac[index] = value
        self.ac_flipflop_data = not self.ac_flipflop_data

    def _read_dac(self) -> int:
        value = self.dac[self.dac_read_index * 3 + self.dac_component] & 0x3F
        self.dac_component += 1
        if self.dac_component == 3:
            self.dac_component = 0
            self.dac_read_index = (self.dac_read_index + 1) & 0xFF
        return value

    def _write_dac(self, value: int) -> None:
        self.dac[self.dac_write_index * 3 + self.dac_component] = value & 0x3F
        self.dac_component += 1
        if self.dac_component == 3:
            self.dac_component = 0
            self.dac_write_index = (self.dac_write_index + 1) & 0xFF

    # -- snapshots ---------------------------------------------------------------------------

    _BYTE_FIELDS = ("crtc", "seq", "gc", "ac", "dac")
    _INT_FIELDS = (
        "misc", "feature", "crtc_index", "seq_index", "gc_index", "ac_index", "dac_mask",
        "dac_write_index", "dac_read_index", "dac_component",
    )  # fmt: skip
    _BOOL_FIELDS = ("ac_flipflop_data", "dac_reading")

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.STATE_VERSION}
        for name in self._BYTE_FIELDS:
            out[name] = bytes(getattr(self, name))
        for name in self._INT_FIELDS + self._BOOL_FIELDS:
            out[name] = getattr(self, name)
        return out

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            for name in self._BYTE_FIELDS:
                data = bytearray(state[name])
                if len(data) != len(getattr(self, name)):
                    raise ValueError(f"{self.name}: {name} has {len(data)} bytes")
                setattr(self, name, data)
            for name in self._INT_FIELDS:
                setattr(self, name, int(state[name]))
            for name in self._BOOL_FIELDS:
                setattr(self, name, bool(state[name]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{self.name}: malformed snapshot: {exc}") from exc
