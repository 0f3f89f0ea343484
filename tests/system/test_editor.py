"""The full-screen editor: keys typed through the PS/2 model, the VGA screen read back, the
saved file read by the shell and by mtools; and the text buffer on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.harness import BootedPc
from tests.system.test_files import fsck, mcopy_in, mtype, prompt_line, run
from tradekernel.kernel.shell.editor import TEXT_ROWS, TextBuffer

STATUS_ROW, MESSAGE_ROW = 23, 24


@pytest.fixture
def tk(tmp_path: Path) -> BootedPc:
    return BootedPc(tmp_path).boot()


def open_editor(tk: BootedPc, line: str) -> None:
    tk.type(line + "\n")
    tk.settle()


def keys(tk: BootedPc, *taps: str | tuple[str, ...]) -> None:
    """Tap keys ("up", or ("s", "lctrl") for a chord), then let the editor catch up."""
    for tap in taps:
        tk.tap(*((tap,) if isinstance(tap, str) else tap))
    tk.settle()


def status(tk: BootedPc) -> str:
    return tk.lines()[STATUS_ROW]


def test_type_move_delete_save_quit_and_reopen(tk: BootedPc, tmp_path: Path) -> None:
    run(tk, "echo before the editor")
    open_editor(tk, "edit notes.txt")
    assert status(tk).startswith(" notes.txt") and status(tk).endswith("line 1:1")
    assert tk.lines()[MESSAGE_ROW] == "new file"
    assert tk.attribute_at(STATUS_ROW, 0) == 0x70  # the status line in inverse video
    tk.type("buy lowx\nsell high\n")
    keys(tk, "left")  # past the start of line 3: back to the end of line 2
    keys(tk, "up", "end", "backspace")  # the x goes
    keys(tk, "down", "home", "delete", "delete")  # "sell high" loses "se"
    tk.type("fi")
    tk.settle()
    assert tk.lines()[:3] == ["buy low", "fill high", ""]
    assert status(tk) == " notes.txt [modified]" + " " * 50 + "line 2:3"
    keys(tk, ("s", "lctrl"))
    assert tk.lines()[MESSAGE_ROW] == "saved notes.txt: 18 bytes"
    assert "[modified]" not in status(tk)
    keys(tk, "esc")  # nothing unsaved: quits at once, and the shell's screen comes back
    assert "before the editor" in tk.lines()
    assert prompt_line(tk) == "tk:/>"
    assert run(tk, "cat notes.txt") == ["buy low", "fill high"]
    assert mtype(tk.disk, "/notes.txt") == b"buy low\nfill high\n"
    fsck(tk.disk, tmp_path)
    open_editor(tk, "edit notes.txt")
    assert tk.lines()[:2] == ["buy low", "fill high"]
    keys(tk, ("end", "lctrl"))
    assert status(tk).endswith("line 3:1")  # after the last line end, as it was typed
    keys(tk, ("q", "lctrl"))
    assert prompt_line(tk) == "tk:/>"


def test_unsaved_changes_ask_before_quitting(tk: BootedPc) -> None:
    open_editor(tk, "edit draft.txt")
    tk.type("unsaved words")
    keys(tk, ("q", "lctrl"))
    assert tk.lines()[MESSAGE_ROW] == "save changes? (y/n/c)"
    keys(tk, "c")  # cancel: back to editing
    assert tk.lines()[0] == "unsaved words" and "[modified]" in status(tk)
    tk.type("!")
    keys(tk, "esc")
    assert tk.lines()[MESSAGE_ROW] == "save changes? (y/n/c)"
    keys(tk, "n")  # quit without saving
    assert prompt_line(tk) == "tk:/>"
    assert run(tk, "cat draft.txt") == ["cat: draft.txt: no such file or directory"]
    open_editor(tk, "edit draft.txt")
    tk.type("kept")
    keys(tk, "esc", "y")  # save, then quit
    assert run(tk, "cat draft.txt") == ["kept"]


def test_f2_saves_in_a_subdirectory_through_the_cwd(tk: BootedPc) -> None:
    run(tk, "mkdir desk")
    run(tk, "cd desk")
    open_editor(tk, "edit plan.txt")
    tk.type("\tindent")  # a tab shows as 8 columns
    keys(tk, "f2")
    assert tk.lines()[0] == "        indent"
    assert status(tk).endswith("line 1:8")
    keys(tk, "esc")
    assert mtype(tk.disk, "/desk/plan.txt") == b"\tindent\n"
    assert prompt_line(tk) == "tk:/desk>"


def test_long_files_scroll_both_ways(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path)
    text = "".join(f"line {n:03}" + ("." * 90 if n == 50 else "") + "\n" for n in range(1, 101))
    mcopy_in(tk.disk, text.encode(), "/long.txt", tmp_path)
    tk.boot()
    open_editor(tk, "edit long.txt")
    assert tk.lines()[0] == "line 001" and tk.lines()[TEXT_ROWS - 1] == "line 023"
    keys(tk, "pagedown", "pagedown")
    assert status(tk).endswith(f"line {1 + 2 * (TEXT_ROWS - 1)}:1")
    assert tk.lines()[TEXT_ROWS - 1] == f"line {1 + 2 * (TEXT_ROWS - 1):03}"
    keys(tk, ("end", "lctrl"))
    assert tk.lines()[TEXT_ROWS - 2 : TEXT_ROWS] == ["line 100", ""]
    keys(tk, "pageup", "pageup")
    keys(tk, *["up"] * 7)
    assert status(tk).endswith("line 50:1")
    keys(tk, "end")  # column 99 is off the 80-column screen: the view slides right
    row = next(i for i, line in enumerate(tk.lines()) if line.startswith("."))
    assert tk.lines()[row] == "." * 79
    keys(tk, "home")
    assert tk.lines()[row] == "line 050" + "." * 72
    keys(tk, ("home", "lctrl"))
    assert tk.lines()[0] == "line 001"
    keys(tk, "esc")
    assert prompt_line(tk) == "tk:/>"


def test_edit_refuses_what_it_cannot_open(tk: BootedPc) -> None:
    assert run(tk, "edit /nope/new.txt") == ["edit: /nope/new.txt: no such file or directory"]
    assert run(tk, "edit /etc") == ["edit: /etc: is a directory"]
    assert run(tk, "edit 'a*b'")[0].startswith("edit: a*b: invalid argument (")
    assert run(tk, "edit") == ["edit: name one file", "usage: edit FILE"]


# ---- the buffer alone ----------------------------------------------------------------------
def test_buffer_joins_and_splits_lines() -> None:
    buffer = TextBuffer("ab\ncd")
    buffer.right()
    buffer.split_line()
    assert buffer.lines == ["a", "b", "cd"] and (buffer.row, buffer.col) == (1, 0)
    buffer.backspace()
    assert buffer.lines == ["ab", "cd"] and (buffer.row, buffer.col) == (0, 1)
    buffer.end()
    buffer.delete()
    assert buffer.lines == ["abcd"] and buffer.modified
    buffer.start_of_file()
    buffer.backspace()  # nothing before the start
    buffer.end_of_file()
    buffer.delete()  # nothing after the end
    assert buffer.text == "abcd"


def test_buffer_keeps_the_goal_column_across_short_lines() -> None:
    buffer = TextBuffer("long line\nab\nanother long")
    buffer.end()
    buffer.vertical(1)
    assert (buffer.row, buffer.col) == (1, 2)
    buffer.vertical(1)
    assert (buffer.row, buffer.col) == (2, 9)
    buffer.vertical(-10)
    assert (buffer.row, buffer.col) == (0, 9)
