"""ANSI output: what a terminal would show must equal the screen's text and colours."""

from __future__ import annotations

import re

from tradekernel.devices.base import Board
from tradekernel.devices.vga import VGA
from tradekernel.ui.ansi import AnsiScreen, screen_text, sgr

from .conftest import put_text

_SEQUENCE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class MiniTerminal:
    """Just enough of a VT100 to replay our output: CUP, SGR, cursor show/hide."""

    def __init__(self) -> None:
        self.rows = [[" "] * 80 for _ in range(25)]
        self.sgr = [[""] * 80 for _ in range(25)]
        self.row = self.col = 0
        self.current_sgr = ""
        self.cursor_shown = True

    def feed(self, data: str) -> None:
        i = 0
        while i < len(data):
            match = _SEQUENCE.match(data, i)
            if match:
                params, final = match.groups()
                if final == "H":
                    row, col = (params or "1;1").split(";")
                    self.row, self.col = int(row) - 1, int(col) - 1
                elif final == "m":
                    self.current_sgr = params
                elif params == "?25":
                    self.cursor_shown = final == "h"
                i = match.end()
                continue
            self.rows[self.row][self.col] = data[i]
            self.sgr[self.row][self.col] = self.current_sgr
            self.col = min(self.col + 1, 79)
            i += 1

    def text(self) -> list[str]:
        return ["".join(row) for row in self.rows]


def test_screen_text_decodes_cp437(board: Board, vga: VGA) -> None:
    put_text(board, 0, 0, b"\xc9\xcd\xbb Hello \x01", 0x07)
    rows = screen_text(vga.text_screen())
    assert len(rows) == 25 and all(len(r) == 80 for r in rows)
    assert rows[0].startswith("╔═╗ Hello ☺")
    assert rows[1] == " " * 80  # NUL cells read as blanks


def test_full_frame_round_trip(board: Board, vga: VGA) -> None:
    put_text(board, 3, 5, b"price 101.25", 0x1E)
    put_text(board, 24, 70, b"\xb0\xb1\xb2\xdb", 0x4F)
    position = 3 * 80 + 17
    for index, value in ((0x0E, position >> 8), (0x0F, position & 0xFF)):
        board.ports.write(0x3D4, 1, index)
        board.ports.write(0x3D5, 1, value)
    screen = vga.text_screen()
    terminal = MiniTerminal()
    terminal.feed(AnsiScreen().frame(screen))
    assert terminal.text() == screen_text(screen)
    assert (terminal.row, terminal.col) == (3, 17) and terminal.cursor_shown
    assert terminal.sgr[3][5] == "0;93;44"  # yellow on blue
    assert terminal.sgr[24][70] == "0;97;41"  # white on red


def test_diff_sends_only_changed_rows(board: Board, vga: VGA) -> None:
    ansi = AnsiScreen()
    terminal = MiniTerminal()
    terminal.feed(ansi.frame(vga.text_screen()))
    assert ansi.diff(vga.text_screen()) == ""
    put_text(board, 10, 0, b"filled", 0x07)
    out = ansi.diff(vga.text_screen())
    assert re.findall(r"\x1b\[(\d+);1H\x1b\[0;", out) == ["11"]  # rows painted
    terminal.feed(out)
    assert terminal.text() == screen_text(vga.text_screen())


def test_blink_and_bright_background() -> None:
    assert sgr(0x8F, blink_enabled=True) == "\x1b[0;97;40;5m"
    assert sgr(0x8F, blink_enabled=False) == "\x1b[0;97;100m"
    palette = tuple((i, i, i) for i in range(16))
    assert sgr(0x12, True, palette) == "\x1b[0;38;2;2;2;2;48;2;1;1;1m"
