"""The full-screen text editor behind the shell's `edit`: the file as lines, drawn into VGA text
memory, driven key by key from the tty's raw mode.

Contract: `Editor(console, name, data, save)` holds the file's bytes (None for a new file) and
a `save(bytes)` callable that writes them (raising OSError on failure). `run(tty, defer,
on_exit)` takes over the screen and the keyboard: keys arrive in interrupt context and are
handled later from the kernel's idle loop through `defer`, so a save never runs inside IRQ1.
When the user quits, the screen as it was before is put back, the tty returns to line mode and
`on_exit()` is called (the shell prints its prompt then).

Screen: rows 0-22 show the text (tabs to 8-column stops, long lines scroll sideways), row 23
the status line (name, modified flag, line:col), row 24 messages or the key help. Keys: arrows,
Home/End (Ctrl: start/end of file), PgUp/PgDn, Backspace/Delete (joining lines at the ends),
Enter splits the line, Tab inserts a tab, Ctrl-S or F2 saves, Ctrl-Q or Esc quits and asks
"save changes? (y/n/c)" first when there are unsaved changes.

Text is UTF-8; bytes that are not survive a load and save unchanged (surrogate escapes) and
show as '?'. A file that used CRLF line ends is saved with CRLF. A saved file ends in a line
end, as POSIX text files do.
"""

from __future__ import annotations

from collections.abc import Callable

from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console
from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.drivers.tty import Tty
from tradekernel.kernel.shell.shell import error_text, plural

TEXT_ROWS = ROWS - 2
STATUS_ROW, MESSAGE_ROW = ROWS - 2, ROWS - 1
TAB = 8
TEXT_ATTR = 0x07
STATUS_ATTR = 0x70  # black on grey
MESSAGE_ATTR = 0x0F
ERROR_ATTR = 0x0C
HELP = "^S/F2 save   ^Q/Esc quit   arrows Home End PgUp PgDn move   Bksp/Del delete"
SAVE_QUESTION = "save changes? (y/n/c)"


def display_width(text: str) -> int:
    """Screen columns `text` takes from the line's start (tabs run to the next stop)."""
    column = 0
    for char in text:
        column = (column // TAB + 1) * TAB if char == "\t" else column + 1
    return column


def expand_tabs(text: str) -> str:
    return text.expandtabs(TAB)


class TextBuffer:
    """Lines of text and a cursor (line, column in characters); every edit goes through here,
    so the screen code never changes text."""

    def __init__(self, text: str = "") -> None:
        self.lines = text.split("\n")
        self.row = 0
        self.col = 0
        self._goal = 0  # the column up/down aim for, kept across short lines
        self.modified = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def line(self) -> str:
        return self.lines[self.row]

    def _set_col(self, col: int) -> None:
        self.col = col
        self._goal = col

    # ---- editing --------------------------------------------------------------------------
    def insert(self, text: str) -> None:
        line = self.line
        self.lines[self.row] = line[: self.col] + text + line[self.col :]
        self._set_col(self.col + len(text))
        self.modified = True

    def split_line(self) -> None:
        line = self.line
        self.lines[self.row : self.row + 1] = [line[: self.col], line[self.col :]]
        self.row += 1
        self._set_col(0)
        self.modified = True

    def backspace(self) -> None:
        if self.col > 0:
            line = self.line
            self.lines[self.row] = line[: self.col - 1] + line[self.col :]
            self._set_col(self.col - 1)
        elif self.row > 0:
            previous = self.lines[self.row - 1]
            self.lines[self.row - 1 : self.row + 1] = [previous + self.line]
            self.row -= 1
            self._set_col(len(previous))
        else:
            return
        self.modified = True

    def delete(self) -> None:
        line = self.line
        if self.col < len(line):
            self.lines[self.row] = line[: self.col] + line[self.col + 1 :]
        elif self.row + 1 < len(self.lines):
            self.lines[self.row : self.row + 2] = [line + self.lines[self.row + 1]]
        else:
            return
        self.modified = True

    # ---- moving ---------------------------------------------------------------------------
    def left(self) -> None:
        if self.col > 0:
            self._set_col(self.col - 1)
        elif self.row > 0:
            self.row -= 1
            self._set_col(len(self.line))

    def right(self) -> None:
        if self.col < len(self.line):
            self._set_col(self.col + 1)
        elif self.row + 1 < len(self.lines):
            self.row += 1
            self._set_col(0)

    def vertical(self, rows: int) -> None:
        """Up (negative) or down by `rows` lines, stopping at the ends, aiming at the goal."""
        self.row = max(0, min(len(self.lines) - 1, self.row + rows))
        self.col = min(self._goal, len(self.line))

    def home(self) -> None:
        self._set_col(0)

    def end(self) -> None:
        self._set_col(len(self.line))

    def start_of_file(self) -> None:
        self.row = 0
        self._set_col(0)

    def end_of_file(self) -> None:
        self.row = len(self.lines) - 1
        self._set_col(len(self.line))


class Editor:
    def __init__(
        self, console: Console, name: str, data: bytes | None, save: Callable[[bytes], None]
    ) -> None:
        self.console = console
        self.name = name
        self._save = save
        text = "" if data is None else data.decode("utf-8", "surrogateescape")
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.buffer = TextBuffer(text.replace("\r\n", "\n"))
        self.message = "new file" if data is None else ""
        self.message_attr = MESSAGE_ATTR
        self.asking = False  # the save-changes question is on screen
        self.running = False
        self._top = 0  # first line on screen
        self._left = 0  # first screen column shown (horizontal scroll)
        self._saved_screen: list[tuple[int, int]] = []
        self._saved_cursor = (0, 0)
        self._tty: Tty | None = None
        self._on_exit: Callable[[], None] = lambda: None

    # ---- life cycle -----------------------------------------------------------------------
    def run(
        self, tty: Tty, defer: Callable[[Callable[[], None]], None], on_exit: Callable[[], None]
    ) -> None:
        """Take the screen and the keyboard until the user quits; then call `on_exit`."""
        console = self.console
        self._saved_screen = [console.cell(r, c) for r in range(ROWS) for c in range(COLUMNS)]
        self._saved_cursor = (console.row, console.col)
        self._tty = tty
        self._on_exit = on_exit
        self.running = True
        tty.raw_reader = lambda key: defer(lambda: self.handle_key(key))
        self.draw()

    def _quit(self) -> None:
        self.running = False
        if self._tty is not None:
            self._tty.raw_reader = None
        console = self.console
        for index, (char, attr) in enumerate(self._saved_screen):
            console.put_cell(index // COLUMNS, index % COLUMNS, char, attr)
        console.move_cursor(*self._saved_cursor)
        self._on_exit()

    def content(self) -> bytes:
        """The bytes a save writes: the lines, each ended by the file's line end."""
        text = self.buffer.text
        if text and not text.endswith("\n"):
            text += "\n"
        return text.replace("\n", self.newline).encode("utf-8", "surrogateescape")

    def save(self) -> bool:
        content = self.content()
        try:
            self._save(content)
        except OSError as error:
            self._say(f"save failed: {error_text(error)}", ERROR_ATTR)
            return False
        self.buffer.modified = False
        self._say(f"saved {self.name}: {plural(len(content), 'byte')}")
        return True

    def _say(self, text: str, attr: int = MESSAGE_ATTR) -> None:
        self.message, self.message_attr = text, attr

    # ---- keys -----------------------------------------------------------------------------
    def handle_key(self, key: Key) -> None:
        """One key, from the idle loop. A failure shows on the message line: the editor and
        the kernel go on."""
        if not self.running:
            return
        try:
            self._dispatch(key)
        except Exception as error:  # noqa: BLE001 - an editor bug must not take the kernel down
            self._say(f"internal error: {type(error).__name__}: {error}", ERROR_ATTR)
        if self.running:
            self.draw()

    def _dispatch(self, key: Key) -> None:
        if self.asking:
            self._answer(key)
            return
        self._say("")
        buffer = self.buffer
        letter = key.char.lower() if key.ctrl else ""
        if letter == "s" or key.name == "f2":
            self.save()
        elif letter == "q" or key.char == "\x1b":
            if buffer.modified:
                self.asking = True
                self._say(SAVE_QUESTION)
            else:
                self._quit()
        elif key.ctrl and key.name in ("home", "end"):
            buffer.start_of_file() if key.name == "home" else buffer.end_of_file()
        elif key.name in self._MOVES:
            self._MOVES[key.name](buffer)
        elif key.char == "\n":
            buffer.split_line()
        elif key.char == "\b":
            buffer.backspace()
        elif key.name == "delete":
            buffer.delete()
        elif key.char and not key.ctrl and (key.char == "\t" or key.char.isprintable()):
            buffer.insert(key.char)

    _MOVES: dict[str, Callable[[TextBuffer], None]] = {
        "left": TextBuffer.left,
        "right": TextBuffer.right,
        "up": lambda buffer: buffer.vertical(-1),
        "down": lambda buffer: buffer.vertical(1),
        "pageup": lambda buffer: buffer.vertical(-(TEXT_ROWS - 1)),
        "pagedown": lambda buffer: buffer.vertical(TEXT_ROWS - 1),
        "home": TextBuffer.home,
        "end": TextBuffer.end,
    }

    def _answer(self, key: Key) -> None:
        """The save-changes question: y saves and quits, n quits, c or Esc goes back."""
        answer = key.char.lower()
        if answer == "y":
            self.asking = False
            if self.save():
                self._quit()
        elif answer == "n":
            self.asking = False
            self._quit()
        elif answer == "c" or key.char == "\x1b":
            self.asking = False
            self._say("")

    # ---- drawing --------------------------------------------------------------------------
    def _scroll_into_view(self) -> int:
        """Move the window so the cursor is on screen; returns the cursor's screen column."""
        buffer = self.buffer
        if buffer.row < self._top:
            self._top = buffer.row
        elif buffer.row >= self._top + TEXT_ROWS:
            self._top = buffer.row - TEXT_ROWS + 1
        column = display_width(buffer.line[: buffer.col])
        if column < self._left:
            self._left = column
        elif column >= self._left + COLUMNS:
            self._left = column - COLUMNS + 1
        return column - self._left

    def _put_row(self, row: int, text: str, attr: int) -> None:
        cells = text[:COLUMNS].ljust(COLUMNS).encode("cp437", "replace")
        for col, char in enumerate(cells):
            self.console.put_cell(row, col, char, attr)

    def draw(self) -> None:
        column = self._scroll_into_view()
        buffer = self.buffer
        for row in range(TEXT_ROWS):
            index = self._top + row
            text = expand_tabs(buffer.lines[index]) if index < len(buffer.lines) else ""
            self._put_row(row, text[self._left :], TEXT_ATTR)
        flag = " [modified]" if buffer.modified else ""
        position = f"line {buffer.row + 1}:{buffer.col + 1} "
        title = f" {self.name}{flag}"
        self._put_row(STATUS_ROW, title.ljust(COLUMNS - len(position)) + position, STATUS_ATTR)
        self._put_row(
            MESSAGE_ROW, self.message or HELP, self.message_attr if self.message else 0x07
        )
        if self.asking:
            self.console.move_cursor(MESSAGE_ROW, len(SAVE_QUESTION) + 1)
        else:
            self.console.move_cursor(buffer.row - self._top, column)
