"""The kernel's console driver and tty on bare RAM and a bare port bus (no CPU): control
characters, wrapping, the input line's drawing cost, scrollback."""

from __future__ import annotations

import threading

import pytest

from tradekernel import memmap
from tradekernel.emu.bus import PortBus
from tradekernel.emu.memory import GuestMemory
from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console


def make_console() -> Console:
    console = Console(GuestMemory(memoryview(bytearray(1 << 20))), PortBus())
    console.clear()
    return console


def row_text(console: Console, row: int) -> str:
    return bytes(console.cell(row, col)[0] for col in range(COLUMNS)).decode("cp437").rstrip()


def write_bounded(console: Console, text: str) -> None:
    """console.write(text) in a thread, failing (not hanging) if it never returns."""
    worker = threading.Thread(target=console.write, args=(text,), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), f"console.write({text!r}) never returned"


@pytest.mark.parametrize("column", range(COLUMNS - 9, COLUMNS))
def test_a_tab_near_the_right_edge_wraps(column: int) -> None:
    console = make_console()
    write_bounded(console, "x" * column + "\tY")
    if column >= COLUMNS - 8:  # the last tab stop: the text goes on at the next row
        assert [row_text(console, 0), row_text(console, 1)] == ["x" * column, "Y"]
    else:
        assert row_text(console, 0) == "x" * column + " " * (COLUMNS - 8 - column) + "Y"


def test_a_tab_at_the_bottom_right_scrolls() -> None:
    console = make_console()
    write_bounded(console, "\n" * (ROWS - 1) + "x" * 75 + "\tY")
    assert row_text(console, ROWS - 2) == "x" * 75
    assert row_text(console, ROWS - 1) == "Y"


def test_control_characters_at_every_column_end() -> None:
    console = make_console()
    for column in range(COLUMNS + 1):
        for control in "\t\b\r\n\x1b[K\x1b[2J\x1b[H":
            write_bounded(console, "x" * column + control + "z")
    assert memmap.VGA_TEXT_BASE  # the screen survived every sequence
