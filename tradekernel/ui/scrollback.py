"""Scrollback for the window and the terminal: the console text that went off the VGA screen,
kept on the host side from the kernel's mirror of its console on COM1.

Why the serial mirror and not the screen: the kernel writes a command's whole output inside one
service (the 53 lines of `help` scroll past between two frames, or even two machine slices), so
no sampling of VGA memory sees them go by; the mirror gets every character written to the
console, and each typed line as the tty finished it. What it does not keep: colours, and what
full-screen programs draw cell by cell (the editor, `top`), which never goes through it.

Contract: `Scrollback.feed(data)` (the "com1-tx" channel, machine thread) keeps the last
`HISTORY_ROWS` rows of 80 columns as a terminal would show them: TABs expanded, long lines
wrapped, CR and the cursor moves and erases the tty sends when it draws its prompt again after a
background job's output (CSI A, B, C, J, K) carried out; other escape sequences dropped. The
UI thread moves through it with `page_up`/`page_down` (half a screen per step, as Linux's
console scrolls) and `to_live`; `view(screen)` gives the TextScreen to show: the live
`screen` when not scrolled back, else 25 rows of history ending `back` rows before the newest,
grey on black and without a cursor, drawn by the same renderers as the live screen.
"""

from __future__ import annotations

import codecs
import dataclasses
import threading
from collections import deque

from tradekernel.devices.vga import TextScreen

HISTORY_ROWS = 2000  # rows of 80 columns kept (about 160 KiB of text)
COLUMNS = 80
ROWS = 25
PAGE_ROWS = ROWS // 2
TAB = 8
PLAIN = 0x07  # grey on black: history has no colours
SERIAL_CHANNEL = "com1-tx"
ASCII_DIGITS = "0123456789"  # str.isdigit also takes cp437's superscript two, which int() refuses
ESCAPE_MAX = 16  # characters of an escape sequence read before it is dropped as malformed


class Scrollback:
    def __init__(self, history_rows: int = HISTORY_ROWS) -> None:
        self._rows: deque[str] = deque(maxlen=history_rows)
        self._line = ""  # the row the cursor is on (not in _rows yet)
        self._column = 0  # the cursor's column in _line
        self._below: list[str] = []  # rows under the cursor's after a move up, nearest last
        self._escape: str | None = None  # the escape sequence read so far
        self._decoder = codecs.getincrementaldecoder("cp437")()
        self._lock = threading.Lock()
        self.back = 0  # rows scrolled back from the newest (0: the live screen)

    # ---- the machine side -----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        with self._lock:
            for char in text:
                if self._escape is not None:
                    self._escape += char
                    if char.isalpha() or len(self._escape) > ESCAPE_MAX:
                        self._control(self._escape)
                        self._escape = None
                elif char == "\x1b":
                    self._escape = ""
                elif char == "\n":
                    self._down()
                    self._column = 0
                elif char == "\r":
                    self._column = 0
                elif char == "\t":
                    self._put(" " * (TAB - self._column % TAB))
                elif char == "\b":
                    self._column = max(0, self._column - 1)
                elif char >= " ":
                    self._put(char)

    def _put(self, text: str) -> None:
        for char in text:
            if self._column >= COLUMNS:
                self._down()
                self._column = 0
            line = self._line.ljust(self._column)
            self._line = line[: self._column] + char + line[self._column + 1 :]
            self._column += 1

    def _down(self) -> None:
        self._rows.append(self._line)
        self._line = self._below.pop() if self._below else ""

    def _control(self, sequence: str) -> None:
        """A CSI sequence (`[`, numbers, a final letter) that moves the cursor or erases."""
        if not sequence.startswith("["):
            return
        final, argument = sequence[-1], sequence[1:-1]
        count = int(argument) if argument and argument.strip(ASCII_DIGITS) == "" else 1
        if final == "A":
            for _ in range(min(count, len(self._rows))):
                self._below.append(self._line)
                self._line = self._rows.pop()
        elif final == "B":
            for _ in range(min(count, len(self._below))):
                self._down()
        elif final == "C":
            self._column = min(COLUMNS - 1, self._column + count)
        elif final in "JK" and argument in ("", "0"):
            self._line = self._line[: self._column]
            if final == "J":
                self._below.clear()

    # ---- the UI side ----------------------------------------------------------------------
    @property
    def scrolled(self) -> bool:
        return self.back > 0

    def page_up(self) -> None:
        with self._lock:
            most = max(0, len(self._rows) + 1 - ROWS)
        self.back = min(most, self.back + PAGE_ROWS)

    def page_down(self) -> None:
        self.back = max(0, self.back - PAGE_ROWS)

    def to_live(self) -> None:
        self.back = 0

    def view(self, screen: TextScreen) -> TextScreen:
        if not self.back:
            return screen
        with self._lock:
            rows = [*self._rows, self._line]
        end = len(rows) - self.back
        shown = rows[max(0, end - ROWS) : end]
        shown = [""] * (ROWS - len(shown)) + shown
        cells = bytearray()
        for row in shown:
            for char in row.ljust(COLUMNS)[:COLUMNS]:
                cells += bytes((char.encode("cp437", "replace")[0], PLAIN))
        return dataclasses.replace(screen, cells=bytes(cells), cursor_visible=False)

    def status(self) -> str:
        """A few words for a title or a hint line while scrolled back."""
        return f"scrolled back {self.back} rows (Shift+PgDn returns)" if self.back else ""
