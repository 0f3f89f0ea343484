"""The tty's serial mirror against a real terminal: what the console's COM1 mirror gets, played
into tmux (an 80x25 VT100-compatible terminal), shows the same rows and the same cursor as the
VGA screen after output from elsewhere interrupts a line being typed, Ctrl-L, Ctrl-C and Enter.
(Keys are not echoed to the mirror one by one: a scenario ends on a redraw or a finished line.)"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.console.test_kernel_console import make_console, row_text
from tests.peers import peer
from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console
from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.drivers.tty import ERASE_BELOW, Tty

PROMPT = "tk:/> "


def terminal(data: str | bytes, folder: Path) -> tuple[list[str], tuple[int, int]]:
    """The rows and the cursor (row, col) of an 80x25 tmux pane after `data` (the mirror's
    text, or bytes as COM1 sent them) was written to it as the serial port sends it (LF as
    CR LF, no output processing by the pty)."""
    tmux, server = peer("tmux"), str(folder / "tmux.socket")  # a server of its own
    (folder / "tmux.conf").write_text("set -g status off\n")
    if isinstance(data, str):
        data = data.replace("\n", "\r\n").encode("cp437", "replace")
    (folder / "com1.bin").write_bytes(data)
    command = f"stty -opost -echo; cat com1.bin; {tmux} -S {server} wait-for -S shown; sleep 60"
    base = [tmux, "-S", server]
    try:
        subprocess.run([*base, "-f", str(folder / "tmux.conf"), "new-session", "-d", "-x",
                        str(COLUMNS), "-y", str(ROWS), "-c", str(folder), command],
                       check=True, timeout=20)  # fmt: skip
        subprocess.run([*base, "wait-for", "shown"], check=True, timeout=20)
        rows = ask([*base, "capture-pane", "-p"]).split("\n")
        cursor = ask([*base, "display", "-p", "#{cursor_y} #{cursor_x}"]).split()
    finally:
        subprocess.run([*base, "kill-server"], check=False, capture_output=True, timeout=20)
    rows = [row.rstrip() for row in rows[:ROWS]]
    return rows + [""] * (ROWS - len(rows)), (int(cursor[0]), int(cursor[1]))


def ask(command: list[str]) -> str:
    return subprocess.run(command, check=True, timeout=20, capture_output=True, text=True).stdout


def typed(tty: Tty, text: str) -> None:
    for char in text:
        tty.on_key(Key(char=char))


def left(tty: Tty, times: int) -> None:
    for _ in range(times):
        tty.on_key(Key(name="left"))


def interrupted_short_line(console: Console, tty: Tty) -> None:
    typed(tty, "echo abc")
    left(tty, 1)
    console.write("[1]+  Done    nap 1\n")
    console.write("no newline")
    tty.on_key(Key(char="\n"))  # the mirror gets the prompt below an unfinished row with a key


def prompt_after_text(console: Console, tty: Tty) -> None:
    console.write("\n" * 3)
    tty.reading = False
    console.write("name? ")
    tty.read_line("> ")
    typed(tty, "bob")
    console.write("job: done\n")


def long_line_cursor_back(console: Console, tty: Tty) -> None:
    typed(tty, "x" * 150)
    left(tty, 100)
    console.write("first\n")
    console.write("second\n")


def line_ends_at_the_right_edge(console: Console, tty: Tty) -> None:
    typed(tty, "e" * (COLUMNS - len(PROMPT)))
    console.write("job 1\n")
    typed(tty, "f" * COLUMNS)
    console.write("job 2\n")


def output_scrolls_the_screen(console: Console, tty: Tty) -> None:
    typed(tty, "ls /bin")
    for number in range(40):
        console.write(f"line {number}\n")
    left(tty, 3)
    console.write("x" * 100)
    tty.on_key(Key(char="\n"))


def ctrl_l_then_output(console: Console, tty: Tty) -> None:
    console.write("some\nearlier\noutput\n")
    typed(tty, "abc")
    tty.on_key(Key(char="l", ctrl=True))
    console.write("late\n")


def edited_below_what_the_mirror_showed_then_enter(console: Console, tty: Tty) -> None:
    typed(tty, "echo abc")
    console.write("job\n")
    for _ in range(5):
        tty.on_key(Key(char="\b"))
    typed(tty, "cat x")
    tty.on_key(Key(char="\n"))


def ctrl_c_after_output(console: Console, tty: Tty) -> None:
    typed(tty, "sleep")
    console.write("job\n")
    typed(tty, " 5")
    tty.on_key(Key(char="c", ctrl=True))


def a_line_written_in_pieces(console: Console, tty: Tty) -> None:
    typed(tty, "ls")
    for piece in ("from ", "10.9.0.2", ":34094: ITCH-2\n", "x" * 90, "y\n"):
        console.write(piece)


def a_key_between_the_pieces(console: Console, tty: Tty) -> None:
    console.write("from ")
    typed(tty, "e")  # the screen shows the prompt: the mirror gets it now
    console.write("10.9.0.2\n")


SCENARIOS: list[Callable[[Console, Tty], None]] = [
    interrupted_short_line,
    prompt_after_text,
    long_line_cursor_back,
    line_ends_at_the_right_edge,
    output_scrolls_the_screen,
    ctrl_l_then_output,
    edited_below_what_the_mirror_showed_then_enter,
    ctrl_c_after_output,
    a_line_written_in_pieces,
    a_key_between_the_pieces,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_a_serial_terminal_shows_what_the_screen_shows(
    scenario: Callable[[Console, Tty], None], tmp_path: Path
) -> None:
    console = make_console()
    mirrored: list[str] = []
    console.on_output = mirrored.append
    tty = Tty(console)
    tty.read_line(PROMPT)
    scenario(console, tty)
    screen = [row_text(console, row) for row in range(ROWS)]
    rows, cursor = terminal("".join(mirrored), tmp_path)
    assert rows == screen
    assert cursor == (console.row, console.col)


def test_the_prompt_and_the_pending_line_follow_output_on_the_mirror() -> None:
    """What a line-oriented reader of COM1 (escape sequences and CR dropped) sees: a line
    written in pieces at the prompt stays whole, and the prompt follows it."""
    console = make_console()
    mirrored: list[str] = []
    console.on_output = mirrored.append
    tty = Tty(console)
    tty.read_line(PROMPT)
    typed(tty, "echo ab")
    console.write("nap: 200000 us\n")
    for piece in ("from ", "10.9.0.2", ":34094\n"):
        console.write(piece)
    typed(tty, "c")
    tty.on_key(Key(char="\n"))
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", "".join(mirrored)).replace("\r", "")
    assert plain == (
        "tk:/> nap: 200000 us\ntk:/> echo abfrom 10.9.0.2:34094\ntk:/> echo abc\n"
    )


def test_a_line_written_in_pieces_at_the_prompt_stays_on_one_row_of_the_screen() -> None:
    console = make_console()
    tty = Tty(console)
    tty.read_line(PROMPT)
    typed(tty, "ls")
    for piece in ("from ", "10.9.0.2", ":34094"):
        console.write(piece)
    assert [row_text(console, row) for row in range(3)] == [
        "from 10.9.0.2:34094", "tk:/> ls", "",
    ]  # fmt: skip
    assert (console.row, console.col) == (1, len("tk:/> ls"))


def test_a_prompt_drawn_again_follows_an_erase_and_a_new_one_does_not() -> None:
    """How a reader counting prompts on COM1 (tests/system/harness.py) tells them apart."""
    console = make_console()
    mirrored: list[str] = []
    console.on_output = mirrored.append
    tty = Tty(console)
    tty.read_line(PROMPT)
    console.write("job 1\n")  # drawn again
    console.write("job ")
    typed(tty, "ls")  # drawn again (the mirror owed it after an unfinished row)
    console.write("2\n")  # drawn again
    tty.on_key(Key(char="\n"))
    tty.read_line("")  # a program reads a line: nothing to draw again but its input
    console.write("job 3\n")
    tty.read_line(PROMPT)  # new
    text = "".join(mirrored)
    starts = [match.start() for match in re.finditer(re.escape(PROMPT), text)]
    assert [text[:start].endswith(ERASE_BELOW) for start in starts] == [
        False, True, True, True, False,
    ]  # fmt: skip
