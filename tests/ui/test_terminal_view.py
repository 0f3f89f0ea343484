"""The terminal front end on a small terminal (issue 17 item 3), scrollback with Shift+PgUp and
Shift+PgDn (item 8, host side), and `tk boot --headless | tee` with a terminal on stdin."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tradekernel.ui.scrollback import Scrollback
from tradekernel.ui.terminal import SHIFT_PAGE_DOWN, SHIFT_PAGE_UP, view_for

from .conftest import PROMPT
from .test_terminal import DEADLINE_S, TK, PtyReader

HELP_FIRST = "bg           continue stopped jobs in the background"  # help's first row


@contextmanager
def tk_on_pty(rows: int, columns: int, *args: str) -> Iterator[tuple[int, PtyReader]]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(
        [str(TK), "boot", "--headless", "--timeout", "60", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    reader = PtyReader(master)
    try:
        yield master, reader
        os.write(master, b"\x1d")
        assert process.wait(DEADLINE_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        os.close(slave)


def at_row(row: int, text: str) -> re.Pattern[bytes]:
    position = rb"\x1b\[" + str(row).encode() + rb";1H"
    return re.compile(position + rb"\x1b\[[0-9;]*m" + re.escape(text.encode()))


def test_an_80x24_terminal_shows_the_last_rows_and_says_it_is_small() -> None:
    with tk_on_pty(24, 80) as (master, reader):
        reader.wait_for(b"this terminal is 80x24")
        reader.wait_for(PROMPT.encode())
        os.write(master, b"help\r")
        reader.wait_for(at_row(24, f"{PROMPT} "))  # the new prompt on the terminal's last row
        assert not re.search(rb"\x1b\[25;", reader.output)  # nothing aimed below the last row


TO_THE_TOP = 12  # half-screen steps: past the top of a history of the boot lines and `help`


def test_shift_page_up_shows_what_scrolled_off_and_page_down_returns() -> None:
    with tk_on_pty(30, 80) as (master, reader):
        reader.wait_for(PROMPT.encode())
        os.write(master, b"help\r")
        reader.wait_for(at_row(25, f"{PROMPT} "))
        assert HELP_FIRST.encode() not in reader.output  # gone off the top before a frame
        for _ in range(TO_THE_TOP):
            os.write(master, SHIFT_PAGE_UP)
            reader.pump(0.1)
        reader.wait_for(HELP_FIRST.encode())
        reader.wait_for(b"scrolled back")
        mark = len(reader.output)
        for _ in range(TO_THE_TOP):
            os.write(master, SHIFT_PAGE_DOWN)
            reader.pump(0.1)
        reader.pump(0.3)
        assert at_row(25, f"{PROMPT} ").search(reader.output, mark)  # the live screen again


def test_history_rows_and_views() -> None:
    history = Scrollback()
    history.feed(b"".join(b"line %d\r\n" % number for number in range(60)))
    history.feed(b"\x1b[1;32mgreen\x1b[0m\t|" + b"x" * 90 + b"\ntk:/> ")
    live = _screen()
    assert history.view(live) is live
    history.page_up()  # half a screen back from the newest row (the prompt's)
    shown = history.view(live)
    rows = [shown.row_bytes(row)[0::2].decode("cp437").rstrip() for row in range(25)]
    assert not shown.cursor_visible
    assert (rows[0], rows[-1]) == ("line 26", "line 50")
    for _ in range(20):
        history.page_up()
    top = history.view(live)
    assert top.row_bytes(0)[0::2].decode().rstrip() == "line 0"  # no further than the first
    history.to_live()
    assert history.view(live) is live


def test_wrapping_tabs_and_escapes_in_history() -> None:
    history = Scrollback()
    history.feed(b"\x1b[1;32mgreen\x1b[0m\tend\n" + b"y" * 85 + b"\n" + b"tk:/> ")
    history.back = 1  # the view ends one row before the prompt's row
    rows = [history.view(_screen()).row_bytes(r)[0::2].decode().rstrip() for r in range(25)]
    assert rows[-3:] == ["green   end", "y" * 80, "y" * 5]


def test_view_for_keeps_the_cursor_in_the_rows_shown() -> None:
    assert view_for(24, 24, 80) == (1, 24, 80)
    assert view_for(3, 24, 80) == (0, 24, 80)
    assert view_for(24, 10, 60) == (15, 10, 60)
    assert view_for(24, 40, 120) == (0, 25, 80)


def test_tee_with_a_terminal_on_stdin_echoes_once_and_ctrl_c_reaches_the_guest() -> None:
    """`tk boot --headless | tee log`: stdin is a terminal, stdout a pipe."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [str(TK), "boot", "--headless", "--timeout", "60"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    out = b""

    def read_until(text: bytes) -> None:
        nonlocal out
        end = time.monotonic() + DEADLINE_S
        while text not in out:
            assert time.monotonic() < end, out
            if select.select([process.stdout], [], [], 0.1)[0]:
                out += os.read(process.stdout.fileno(), 65536)

    try:
        read_until(PROMPT.encode())
        os.write(master, b"spin 100000\r")
        read_until(b"spin 100000")
        time.sleep(0.3)
        os.write(master, b"\x03")  # a key for the guest, not SIGINT for tk
        read_until(b"^C")
        os.write(master, b"echo typed once\r")
        read_until(b"\ntyped once\n")
        echoed = PtyReader(master)
        echoed.pump(0.2)
        assert echoed.output == b""  # the terminal itself echoed nothing
        assert out.count(b"echo typed once") == 1
        os.write(master, b"\x1d")
        assert process.wait(DEADLINE_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        os.close(slave)


def _screen():  # noqa: ANN202
    from tradekernel.devices.vga import TextScreen

    return TextScreen(
        cells=bytes(4000), cursor_row=24, cursor_col=6, cursor_start=14, cursor_end=15,
        cursor_visible=True, start_address=0, blink_enabled=True, line_graphics=True,
        palette=tuple((0, 0, 0) for _ in range(16)),
    )  # fmt: skip


def test_history_follows_the_ttys_prompt_redraw() -> None:
    """A background job's line at the prompt: the tty erases the prompt and pending line (even
    one wrapped over two rows), writes the line, and draws them again; history keeps what a
    terminal shows."""
    history = Scrollback()
    typed = "x" * 80  # the prompt and this fill a row and wrap onto the next
    history.feed(f"done\ntk:/> {typed}".encode())
    history.feed(b"\x1b[1A\r\x1b[6C" + b"\r\x1b[J" + b"nap: 200000 us\n")  # up, to the start
    history.feed(f"\x1b[Jtk:/> {typed}".encode())
    history.back = 1
    rows = [history.view(_screen()).row_bytes(r)[0::2].decode().rstrip() for r in range(25)]
    assert rows[-3:] == ["done", "nap: 200000 us", "tk:/> " + "x" * 74]
    history.feed(b"\r\x1b[K12\x1b[5Cend\n")  # CR, erase the row, move right
    history.back = 0
    assert history._rows[-1] == "12     end"  # noqa: SLF001 - the row as a terminal shows it


def test_history_takes_any_bytes_in_an_escape_sequence() -> None:
    """What a guest prints on COM1 is outside input: a cp437 superscript two ('²', which
    Python counts as a digit) in a CSI is dropped, a huge count moves no further than the
    rows there are; neither raises."""
    history = Scrollback()
    history.feed(b"before\nx\x1b[\xfdA\x1b[99999999999999B\x1b[99999999999999Ay\n")
    assert list(history._rows) == ["byfore"]  # noqa: SLF001 - up one row only, y at column 1
