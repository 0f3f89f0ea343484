"""A booted machine's COM1 (what `tk boot --headless` and the pipe mode read) gets the prompt
and the line being typed again after a background job wrote at the prompt, as its screen does."""

from __future__ import annotations

import re
from pathlib import Path

from tests.console.test_tty_mirror import terminal
from tests.system.harness import SECOND, BootedPc, close_pc

ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def test_a_background_job_s_output_brings_the_prompt_and_the_typed_line_back_on_com1(
    tmp_path: Path,
) -> None:
    tk = BootedPc(tmp_path).boot()
    try:
        tk.command("nap 200 1 &")
        start = len(tk.serial)
        tk.type("echo typed meanwhile")
        tk.run_until(lambda: b"nap: " in tk.serial[start:], 2 * SECOND)
        tk.settle()
        text = bytes(tk.serial[start:]).decode("cp437")
        plain = ESCAPE.sub("", text).replace("\r", "")
        assert plain.endswith("nap: 200000 us\ntk:/> echo typed meanwhile"), text
        rows, (row, col) = terminal(bytes(tk.serial), tmp_path)
        vga = tk.pc.vga
        screen_row, screen_col = divmod(vga.cursor_location - vga.start_address, 80)
        screen = [line.rstrip() for line in tk.lines()]
        assert rows[row - 1 : row + 1] == screen[screen_row - 1 : screen_row + 1]
        assert col == screen_col
        tk.command("")  # Enter: the line runs, and COM1 shows it once
        assert b"tk:/> echo typed meanwhile\r\ntyped meanwhile\r\n" in tk.serial[start:]
        assert tk.serial[start:].count(b"echo typed meanwhile") == 1
    finally:
        close_pc(tk)
