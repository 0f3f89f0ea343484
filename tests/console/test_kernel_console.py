"""The kernel's console driver and tty on bare RAM and a bare port bus (no CPU): control
characters, wrapping, the input line's drawing cost, scrollback."""

from __future__ import annotations

import threading

import pytest

from tradekernel import memmap
from tradekernel.devices.i8042 import SET2_MAKE, set1_make
from tradekernel.emu.bus import PortBus
from tradekernel.emu.memory import GuestMemory
from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console
from tradekernel.kernel.drivers.keyboard import Key, KeyboardDriver
from tradekernel.kernel.drivers.tty import TYPEAHEAD_LIMIT, Tty
from tradekernel.kernel.shell.shell import plural, wrap_items


def make_console() -> Console:
    console = Console(GuestMemory(memoryview(bytearray(1 << 20))), PortBus())
    console.clear()
    return console


def row_text(console: Console, row: int) -> str:
    """What the VGA shows on `row`: the cells in RAM (console.cell would first put the live
    screen back, as any driver access does)."""
    start = memmap.VGA_TEXT_BASE + row * COLUMNS * 2
    cells = console._ram[start : start + COLUMNS * 2 : 2]
    return bytes(cells).decode("cp437").rstrip()


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


def make_tty() -> tuple[Console, Tty]:
    console = make_console()
    tty = Tty(console)
    tty.read_line("tk:/> ")
    return console, tty


def cells_written(console: Console, action) -> int:  # noqa: ANN001
    """How many screen cells `action()` writes through the driver."""
    count = 0
    original = console.put_cell

    def counting(row: int, col: int, char: int, attr: int) -> None:
        nonlocal count
        count += 1
        original(row, col, char, attr)

    console.put_cell = counting  # type: ignore[method-assign]
    try:
        action()
    finally:
        del console.put_cell
    return count


def test_a_key_costs_the_same_whatever_the_line_length() -> None:
    console, tty = make_tty()
    for _ in range(5000):  # longer than the screen: the line's start has scrolled away
        tty.on_key(Key(char="x"))
    assert cells_written(console, lambda: tty.on_key(Key(char="y"))) == 1
    assert cells_written(console, lambda: tty.on_key(Key(char="\b"))) == 1  # a blank
    tty.on_key(Key(name="home"))
    inserted = cells_written(console, lambda: tty.on_key(Key(char="z")))
    assert inserted <= COLUMNS * ROWS  # what is on screen, not the whole line
    assert row_text(console, ROWS - 1).endswith("x")


def test_a_long_line_arrives_whole() -> None:
    console, tty = make_tty()
    lines: list[str] = []
    tty.on_line = lines.append
    text = "".join(chr(ord("a") + n % 26) for n in range(3000))
    for char in text[:1500] + text[2000:]:
        tty.on_key(Key(char=char))
    for _ in range(1000):
        tty.on_key(Key(name="left"))
    for char in text[1500:2000]:
        tty.on_key(Key(char=char))
    tty.on_key(Key(char="\n"))
    assert lines == [text]
    assert row_text(console, ROWS - 2).endswith(text[-1])  # the end of the line, then a new row


def test_typeahead_is_bounded_and_says_when_there_is_room() -> None:
    _, tty = make_tty()
    lines: list[str] = []
    tty.on_line = lambda line: lines.append(line)  # the reader stops reading after a line
    rooms: list[int] = []
    tty.on_room = lambda: rooms.append(1)
    tty.on_key(Key(char="\n"))
    keys = 0
    while tty.has_room():
        tty.on_key(Key(char="a"))
        keys += 1
    assert keys == TYPEAHEAD_LIMIT
    tty.read_line("> ")  # the reader takes the typeahead and there is room again
    assert tty.has_room() and rooms == [1]


@pytest.mark.parametrize(
    ("digits", "char"),
    [("233", "é"), ("26085", "日"), ("55296", "\ufffd"), ("99999999999999", "\ufffd")],
)
def test_alt_and_keypad_digits_give_a_code_point(digits: str, char: str) -> None:
    keys: list[Key] = []
    driver = KeyboardDriver(PortBus(), keys.append)
    sequence = [set1_make(SET2_MAKE["lalt"])[0]]
    for digit in digits:
        make = set1_make(SET2_MAKE[f"kp{digit}"])[0]
        sequence += [make, make | 0x80]
    for byte in [*sequence, sequence[0] | 0x80]:
        driver._byte(byte)
    assert keys == [Key(char=char)]


def test_output_written_meanwhile_goes_above_the_line_being_typed() -> None:
    console, tty = make_tty()
    for char in "echo abc":
        tty.on_key(Key(char=char))
    tty.on_key(Key(name="left"))
    console.write("[1]+  Done    nap 1\n")
    console.write("no newline")
    assert [row_text(console, row) for row in range(4)] == [
        "[1]+  Done    nap 1", "no newline", "tk:/> echo abc", "",
    ]  # fmt: skip
    assert (console.row, console.col) == (2, len("tk:/> echo ab"))
    tty.on_key(Key(char="Z"))
    assert row_text(console, 2) == "tk:/> echo abZc"


def test_scrollback_shows_rows_that_scrolled_off_and_output_returns_to_the_live_screen() -> None:
    console = make_console()
    console.write("".join(f"line {n}\n" for n in range(60)))
    live = [row_text(console, row) for row in range(ROWS)]
    assert live[0] == "line 36"
    console.view_scroll(12)
    assert [row_text(console, row) for row in range(3)] == ["line 24", "line 25", "line 26"]
    assert row_text(console, ROWS - 1) == "line 48"
    console.view_scroll(1000)  # no further than what was kept
    assert row_text(console, 0) == "line 0"
    console.view_scroll(-1000)
    assert [row_text(console, row) for row in range(ROWS)] == live
    console.view_scroll(5)
    console.write("new")  # output puts the live screen back first
    assert row_text(console, 0) == "line 36" and row_text(console, ROWS - 1) == "new"


def test_shift_page_up_in_the_tty_pages_the_scrollback() -> None:
    console, tty = make_tty()
    console.write("".join(f"line {n}\n" for n in range(60)))
    tty.on_key(Key(name="pageup", shift=True))
    assert row_text(console, 0) == f"line {36 - ROWS // 2}"
    tty.on_key(Key(name="pagedown", shift=True))
    assert row_text(console, 0) == "line 36"


def test_counts_agree_with_their_nouns() -> None:
    assert [plural(n, "process") for n in (0, 1, 2)] == ["0 processes", "1 process", "2 processes"]
    assert [plural(n, "byte") for n in (1, 18)] == ["1 byte", "18 bytes"]
    assert wrap_items("faults:", ["a 1", "b 2"]) == ["faults: a 1, b 2"]
    long = wrap_items("page faults:", [f"kind{n} {n}" for n in range(20)])
    assert len(long) > 1 and all(len(line) <= 79 for line in long)
    assert all(line.startswith(" " * len("page faults: ")) for line in long[1:])
