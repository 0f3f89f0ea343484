"""The VGA text console driver: cells in guest memory at 0xB8000, the cursor through the CRTC.

Contract: `write(text)` interprets \\n, \\r, \\b, \\t (8-column stops; from column 72 a tab
fills the line and the text goes on at the next row), and a small ANSI subset
for programs: ESC[m / ESC[<n>;...m (SGR colours 30-37, 90-97, 40-47, 100-107, 0, 1, 7), ESC[2J
(clear), ESC[H / ESC[<row>;<col>H (cursor), ESC[K (erase to end of line). The screen scrolls
up when output passes the last row. Text is CP437; characters outside it show as '?'.
Rows that scroll off the top are kept (SCROLLBACK_ROWS of them): `view_scroll(rows)` shows
earlier ones in their place (the tty binds it to Shift+PgUp/PgDn), and the first write or cell
change after that puts the live screen back, as on the Linux console.
While `input_line` is set (the tty edits a line at a prompt), text written by anyone else takes
the prompt's place and the prompt and line are drawn again after it.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from tradekernel import memmap
from tradekernel.emu.bus import PortBus
from tradekernel.emu.memory import GuestMemory

COLUMNS, ROWS = memmap.VGA_TEXT_COLUMNS, memmap.VGA_TEXT_ROWS
DEFAULT_ATTR = 0x07
CRTC_INDEX, CRTC_DATA = 0x3D4, 0x3D5
TAB = 8
SCROLLBACK_ROWS = 1000  # rows kept after they scroll off the top
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
        self._history: deque[bytes] = deque(maxlen=SCROLLBACK_ROWS)  # cells and attributes
        self._view = 0  # rows of history shown above the live screen (0: the live screen)
        self._live = b""  # the live screen while history is shown

    # ---- cells --------------------------------------------------------------------------
    def _offset(self, row: int, col: int) -> int:
        return memmap.VGA_TEXT_BASE + (row * COLUMNS + col) * 2

    def put_cell(self, row: int, col: int, char: int, attr: int) -> None:
        if self._view:
            self._show_live()
        offset = self._offset(row, col)
        self._ram[offset] = char
        self._ram[offset + 1] = attr

    def cell(self, row: int, col: int) -> tuple[int, int]:
        if self._view:
            self._show_live()
        offset = self._offset(row, col)
        return self._ram[offset], self._ram[offset + 1]

    def clear(self) -> None:
        if self._view:
            self._show_live()
        start = memmap.VGA_TEXT_BASE
        self._ram[start : start + COLUMNS * ROWS * 2] = bytes((0x20, self.attr)) * (COLUMNS * ROWS)
        self.move_cursor(0, 0)

    def clear_to_end_of_line(self) -> None:
        start = self._offset(self.row, self.col)
        self._ram[start : self._offset(self.row, COLUMNS - 1) + 2] = bytes((0x20, self.attr)) * (
            COLUMNS - self.col
        )

    def scroll_up(self) -> None:
        if self._view:
            self._show_live()
        base = memmap.VGA_TEXT_BASE
        line = COLUMNS * 2
        self._history.append(bytes(self._ram[base : base + line]))
        self._ram[base : base + line * (ROWS - 1)] = bytes(
            self._ram[base + line : base + line * ROWS]
        )
        self._ram[base + line * (ROWS - 1) : base + line * ROWS] = (
            bytes((0x20, self.attr)) * COLUMNS
        )

    # ---- scrollback ---------------------------------------------------------------------
    def view_scroll(self, rows: int) -> None:
        """Show the screen `rows` further back in the scrollback (negative: forward), within
        what is kept; back at 0 the live screen returns."""
        target = max(0, min(len(self._history), self._view + rows))
        if target == self._view:
            return
        base, size = memmap.VGA_TEXT_BASE, COLUMNS * ROWS * 2
        if not self._view:
            self._live = bytes(self._ram[base : base + size])
        if not target:
            self._show_live()
            return
        self._view = target
        history, line = self._history, COLUMNS * 2
        for row in range(ROWS):
            index = len(history) - target + row  # past the history: the live screen's rows
            if index < len(history):
                cells = history[index]
            else:
                start = (index - len(history)) * line
                cells = self._live[start : start + line]
            self._ram[base + row * line : base + (row + 1) * line] = cells
        self._hide_cursor()

    def show_live(self) -> None:
        """Back to the live screen if history is shown (a key was pressed)."""
        if self._view:
            self._show_live()

    def _show_live(self) -> None:
        base = memmap.VGA_TEXT_BASE
        self._ram[base : base + len(self._live)] = self._live
        self._view, self._live = 0, b""
        self.sync_cursor()

    def _hide_cursor(self) -> None:
        """The cursor off the screen (past the last cell) while history is shown."""
        position = ROWS * COLUMNS
        for register, value in ((0x0E, position >> 8), (0x0F, position & 0xFF)):
            self._ports.write(CRTC_INDEX, 1, register)
            self._ports.write(CRTC_DATA, 1, value)

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
        if self._view:
            self._show_live()
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
        params = [int(p) if p.isdecimal() else 0 for p in sequence[1:-1].split(";")] or [0]
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
