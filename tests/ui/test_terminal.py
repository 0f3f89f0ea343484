"""The terminal front end: `tk boot --headless` under a pseudo-terminal (raw mode, alternate
screen, ANSI rows, Ctrl-] leaves with the terminal restored), run_terminal on plain pipes, and
the typist that keeps a pasted line from overrunning the keyboard's FIFO."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from tradekernel.ui.keymap import text_to_key_events
from tradekernel.ui.terminal import ENTER_SCREEN, LEAVE_SCREEN, KeyTypist, run_terminal

from .conftest import PROMPT, CrashedSession, line_after

TK = Path(sys.executable).with_name("tk")
DEADLINE_S = 15.0


def painted_row(text: str) -> re.Pattern[bytes]:
    """A whole row painted by AnsiScreen: position, one colour, `text` padded to 80 columns."""
    return re.compile(rb"\x1b\[\d+;1H\x1b\[[0-9;]*m" + re.escape(text.ljust(80).encode()))


class PtyReader:
    """Collects what the program writes to the pseudo-terminal, waiting for patterns."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.output = b""

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the program closed its side
                    return

    def wait_for(self, pattern: re.Pattern[bytes] | bytes) -> None:
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        end = time.monotonic() + DEADLINE_S
        while not regex.search(self.output):
            assert time.monotonic() < end, f"no {regex.pattern!r} in {self.output[-2000:]!r}"
            self.pump(0.05)


def test_tk_boot_headless_on_a_terminal_mirrors_the_screen_and_ctrl_bracket_leaves() -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    cooked = termios.tcgetattr(slave)
    process = subprocess.Popen(
        [str(TK), "boot", "--headless", "--deterministic", "--timeout", "30"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    reader = PtyReader(master)
    try:
        reader.wait_for(PROMPT.encode())
        assert not termios.tcgetattr(slave)[3] & termios.ICANON  # raw while it runs
        os.write(master, b"echo hi\r")
        reader.wait_for(painted_row(f"{PROMPT} echo hi"))
        reader.wait_for(painted_row("hi"))
        os.write(master, b"\x1d")
        assert process.wait(DEADLINE_S) == 0
        reader.pump(0.1)
        assert termios.tcgetattr(slave) == cooked  # the terminal is as it was
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        os.close(slave)
    assert reader.output.startswith(ENTER_SCREEN.encode())
    assert reader.output.endswith(LEAVE_SCREEN.encode())
    assert b"Ctrl-] powers off" in reader.output  # the hint, on a terminal with room for it


PASTED = "pasted line longer than the keyboard fifo"


def test_run_terminal_on_pipes_types_input_and_leaves_on_ctrl_bracket(session) -> None:  # noqa: ANN001
    keys_in, keys_out = os.pipe()
    screen_in, screen_out = os.pipe()
    painted = bytearray()

    def drain() -> None:
        while chunk := os.read(screen_in, 65536):
            painted.extend(chunk)

    def type_when_ready() -> None:
        end = time.monotonic() + DEADLINE_S
        while not any(line.startswith(PROMPT) for line in session.screen_lines()):
            if time.monotonic() > end:
                break
            time.sleep(0.02)
        os.write(keys_out, f"echo {PASTED}\r".encode())
        while not painted_row(PASTED).search(painted):  # seen on the terminal
            if time.monotonic() > end:
                break
            time.sleep(0.02)
        os.write(keys_out, b"\x1dexit\r")  # what follows Ctrl-] is never typed

    threads = [threading.Thread(target=drain), threading.Thread(target=type_when_ready)]
    for thread in threads:
        thread.start()
    try:
        stop = run_terminal(session, input_fd=keys_in, output_fd=screen_out)
    finally:
        os.close(screen_out)
        for thread in threads:
            thread.join(DEADLINE_S)
        for fd in (keys_in, keys_out, screen_in):
            os.close(fd)
    assert stop.reason == "poweroff"
    assert line_after(session.screen_lines(), f"{PROMPT} echo {PASTED}") == PASTED
    assert session.screen_lines()[-1].rstrip() != f"{PROMPT} exit"
    assert painted.startswith(ENTER_SCREEN.encode()) and painted.endswith(LEAVE_SCREEN.encode())
    assert painted_row(PASTED).search(painted)


def test_end_of_input_powers_off(session) -> None:  # noqa: ANN001
    keys_in, keys_out = os.pipe()
    os.close(keys_out)
    with open(os.devnull, "wb") as sink:
        stop = run_terminal(session, input_fd=keys_in, output_fd=sink.fileno())
    os.close(keys_in)
    assert stop.reason == "poweroff"


def _boot_to_prompt(session) -> None:  # noqa: ANN001
    stop = session.machine.run(
        wall_timeout_s=DEADLINE_S,
        until=lambda: any(line.startswith(PROMPT) for line in session.screen_lines()),
    )
    assert stop.reason == "until", session.screen_lines()


def _typed_line(session, type_keys) -> str | None:  # noqa: ANN001
    """Type a 40-character command in one burst, run to the next prompt (or 2 s of virtual time
    if the Enter was lost), return its echo."""
    command = "echo " + "abcdefghij" * 3 + "klmno"
    _boot_to_prompt(session)
    type_keys(text_to_key_events(command + "\r"))
    clock = session.machine.clock
    give_up_ns = clock.now_ns() + 2_000_000_000  # virtual: an echo takes far less
    session.machine.run(
        wall_timeout_s=DEADLINE_S,
        until=lambda: (
            sum(line.startswith(PROMPT) for line in session.screen_lines()) == 2
            or clock.now_ns() > give_up_ns
        ),
    )
    return line_after(session.screen_lines(), f"{PROMPT} {command}")


def test_a_burst_of_keys_through_the_typist_arrives_whole(session) -> None:  # noqa: ANN001
    assert _typed_line(session, KeyTypist(session).type) == "abcdefghij" * 3 + "klmno"


def test_the_same_burst_pressed_at_once_overruns_the_keyboard_fifo(session) -> None:  # noqa: ANN001
    """What the typist is for: 16 bytes of FIFO hold about five keystrokes."""
    assert _typed_line(session, session.press) is None


def test_a_crash_report_is_written_again_after_leaving_the_alternate_screen() -> None:
    keys_in, keys_out = os.pipe()
    with tempfile.TemporaryFile() as screen:
        stop = run_terminal(CrashedSession(), input_fd=keys_in, output_fd=screen.fileno())
        screen.seek(0)
        painted = screen.read()
    os.close(keys_in)
    os.close(keys_out)
    assert stop.reason == "crash"
    assert painted.endswith(LEAVE_SCREEN.encode() + CrashedSession.REPORT.encode() + b"\n")
