"""Scrollback for the window and the terminal: the console text that went off the VGA screen,
kept on the host side from the kernel's mirror of its console on COM1.

Why the serial mirror and not the screen: the kernel writes a command's whole output inside one
service (the 53 lines of `help` scroll past between two frames, or even two machine slices), so
no sampling of VGA memory sees them go by; the mirror gets every character written to the
console, and each typed line as the tty finished it. What it does not keep: colours, and what
full-screen programs draw cell by cell (the editor, `top`), which never goes through it.

Contract: `Scrollback.feed(data)` (the "com1-tx" channel, machine thread) keeps the last
`HISTORY_ROWS` rows of 80 columns: escape sequences and CR dropped, TABs expanded, long lines
wrapped. The UI thread moves through it with `page_up`/`page_down` (half a screen per step, as
Linux's console scrolls) and `to_live`; `view(screen)` gives the TextScreen to show: the live
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


class Scrollback:
    def __init__(self, history_rows: int = HISTORY_ROWS) -> None:
        self._rows: deque[str] = deque(maxlen=history_rows)
        self._line = ""  # the row being written (not in _rows yet)
        self._escape = False
        self._decoder = codecs.getincrementaldecoder("cp437")()
        self._lock = threading.Lock()
        self.back = 0  # rows scrolled back from the newest (0: the live screen)

    # ---- the machine side -----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        with self._lock:
            for char in text:
                if self._escape:
                    if char.isalpha() and char != "[":
                        self._escape = False
                elif char == "\x1b":
                    self._escape = True
                elif char == "\n":
                    self._rows.append(self._line)
                    self._line = ""
                elif char == "\t":
                    self._line += " " * (TAB - len(self._line) % TAB)
                elif char == "\b":
                    self._line = self._line[:-1]
                elif char >= " ":
                    self._line += char
                if len(self._line) >= COLUMNS:
                    self._rows.append(self._line[:COLUMNS])
                    self._line = self._line[COLUMNS:]

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
