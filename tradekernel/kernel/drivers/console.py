"""The VGA text console driver: cells in guest memory at 0xB8000, the cursor through the CRTC.

Contract: `write(text)` interprets \\n, \\r, \\b, \\t (8-column stops; from column 72 a tab
fills the line and the text goes on at the next row), and a small ANSI subset
for programs: ESC[m / ESC[<n>;...m (SGR colours 30-37, 90-97, 40-47, 100-107, 0, 1, 7), ESC[2J
(clear), ESC[H / ESC[<row>;<col>H (cursor), ESC[K (erase to end of line). The screen scrolls
up when output passes the last row. Text is CP437; characters outside it show as '?'.
While `input_line` is set (the tty edits a line at a prompt), text written by anyone else takes
the prompt's place and the prompt and line are drawn again after it.
"""

from __future__ import annotations

from typing import Protocol

from tradekernel import memmap
from tradekernel.emu.bus import PortBus
from tradekernel.emu.memory import GuestMemory

COLUMNS, ROWS = memmap.VGA_TEXT_COLUMNS, memmap.VGA_TEXT_ROWS
DEFAULT_ATTR = 0x07
CRTC_INDEX, CRTC_DATA = 0x3D4, 0x3D5
TAB = 8
# ANSI colour order (black, red, green, yellow, blue, magenta, cyan, white) -> VGA numbers
_ANSI_TO_VGA = (0, 4, 2, 6, 1, 5, 3, 7)


def cp437_code(char: str) -> int:
    """The console font's code for `char` ('?' where CP437 has none)."""
    if " " <= char < "\x7f":
        return ord(char)
    try:
        return char.encode("cp437")[0]
    except UnicodeEncodeError:
        return ord("?")


class InputLine(Protocol):
    """What the console needs of the tty's line editor."""

    def hide_line(self) -> None: ...
    def show_line(self) -> None: ...


class Console:
    def __init__(self, memory: GuestMemory, ports: PortBus) -> None:
        self._ram = memory.view()
        self._ports = ports
        self.row = 0
        self.col = 0
        self.attr = DEFAULT_ATTR
        self._escape: str | None = None
        self.on_output = None  # optional observer of everything written (serial mirror, tests)
        # The line being edited at a prompt (the tty): output written meanwhile goes where
        # the prompt was and the line is drawn again below it.
        self.input_line: InputLine | None = None

    # ---- cells --------------------------------------------------------------------------
    def _offset(self, row: int, col: int) -> int:
        return memmap.VGA_TEXT_BASE + (row * COLUMNS + col) * 2

    def put_cell(self, row: int, col: int, char: int, attr: int) -> None:
        offset = self._offset(row, col)
        self._ram[offset] = char
        self._ram[offset + 1] = attr

    def cell(self, row: int, col: int) -> tuple[int, int]:
        offset = self._offset(row, col)
        return self._ram[offset], self._ram[offset + 1]

    def clear(self) -> None:
        start = memmap.VGA_TEXT_BASE
        self._ram[start : start + COLUMNS * ROWS * 2] = bytes((0x20, self.attr)) * (COLUMNS * ROWS)
        self.move_cursor(0, 0)

    def clear_to_end_of_line(self) -> None:
        start = self._offset(self.row, self.col)
        self._ram[start : self._offset(self.row, COLUMNS - 1) + 2] = bytes((0x20, self.attr)) * (
            COLUMNS - self.col
        )

    def scroll_up(self) -> None:
        base = memmap.VGA_TEXT_BASE
        line = COLUMNS * 2
        self._ram[base : base + line * (ROWS - 1)] = bytes(
            self._ram[base + line : base + line * ROWS]
        )
        self._ram[base + line * (ROWS - 1) : base + line * ROWS] = (
            bytes((0x20, self.attr)) * COLUMNS
        )

    # ---- cursor -------------------------------------------------------------------------
    def move_cursor(self, row: int, col: int) -> None:
        self.row = max(0, min(ROWS - 1, row))
        self.col = max(0, min(COLUMNS - 1, col))
        self.sync_cursor()

    def sync_cursor(self) -> None:
        position = self.row * COLUMNS + self.col
        ports = self._ports
        ports.write(CRTC_INDEX, 1, 0x0E)
        ports.write(CRTC_DATA, 1, position >> 8)
        ports.write(CRTC_INDEX, 1, 0x0F)
        ports.write(CRTC_DATA, 1, position & 0xFF)

    # ---- text ---------------------------------------------------------------------------
    def _newline(self) -> None:
        self.col = 0
        self.row += 1
        if self.row >= ROWS:
            self.scroll_up()
            self.row = ROWS - 1

    def new_line(self) -> None:
        """The cursor to the start of the next row (scrolling at the bottom)."""
        self._newline()
        self.sync_cursor()

    def write(self, text: str, attr: int | None = None) -> None:
        line = self.input_line
        if line is not None:
            self.input_line = None  # what the line's owner draws goes straight to the screen
            line.hide_line()
            try:
                self._write(text, attr)
            finally:
                line.show_line()
                self.input_line = line
            return
        self._write(text, attr)

    def _write(self, text: str, attr: int | None) -> None:
        saved = self.attr
        if attr is not None:
            self.attr = attr
        for char in text:
            self._put(char)
        if attr is not None:
            self.attr = saved
        self.sync_cursor()
        if self.on_output is not None:
            self.on_output(text)

    def _put(self, char: str) -> None:
        if self._escape is not None:
            self._escape_char(char)
            return
        if char == "\n":
            self._newline()
        elif char == "\r":
            self.col = 0
        elif char == "\b":
            if self.col > 0:
                self.col -= 1
        elif char == "\t":
            # Spaces to the next stop, counted before any is written: the last stop is the
            # right edge, where the line wraps (counting to a column would never end there).
            for _ in range(min(COLUMNS, (self.col // TAB + 1) * TAB) - self.col):
                self._put(" ")
        elif char == "\x1b":
            self._escape = ""
        else:
            code = cp437_code(char)
            if self.col >= COLUMNS:
                self._newline()
            self.put_cell(self.row, self.col, code, self.attr)
            self.col += 1
            if self.col >= COLUMNS:
                self._newline()

    def _escape_char(self, char: str) -> None:
        sequence = self._escape + char
        if sequence == "[" or (sequence.startswith("[") and not char.isalpha()):
            self._escape = sequence if len(sequence) < 16 else None
            return
        self._escape = None
        if not sequence.startswith("["):
            return
        params = [int(p) if p.isdigit() else 0 for p in sequence[1:-1].split(";")] or [0]
        if char == "m":
            self._sgr(params)
        elif char == "J" and params[0] == 2:
            self.clear()
        elif char == "H":
            row = params[0] if params else 1
            col = params[1] if len(params) > 1 else 1
            self.move_cursor(max(1, row) - 1, max(1, col) - 1)
        elif char == "K":
            self.clear_to_end_of_line()

    def _sgr(self, params: list[int]) -> None:
        for p in params:
            if p == 0:
                self.attr = DEFAULT_ATTR
            elif p == 1:
                self.attr |= 0x08
            elif p == 7:
                self.attr = ((self.attr & 0x0F) << 4) | (self.attr >> 4)
            elif 30 <= p <= 37:
                self.attr = (self.attr & 0xF0) | _ANSI_TO_VGA[p - 30]
            elif 90 <= p <= 97:
                self.attr = (self.attr & 0xF0) | 0x08 | _ANSI_TO_VGA[p - 90]
            elif 40 <= p <= 47:
                self.attr = (self.attr & 0x0F) | (_ANSI_TO_VGA[p - 40] << 4)
            elif 100 <= p <= 107:
                self.attr = (self.attr & 0x0F) | ((0x08 | _ANSI_TO_VGA[p - 100]) << 4)
