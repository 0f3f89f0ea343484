"""`more` (and `less`): text shown a screen at a time, full screen, in the tty's raw mode.

`more FILE` pages a file of the mounted volume, or a /dev or /proc node read as the shell's
cat reads it (kernel/shell/files.py read_node); `BUILTIN | more` pages a built-in's output
(the shell hands it over through `Shell.page`). The last row says where we are; Space or
PgDn shows the next screen, Enter or Down the next line, b or PgUp the previous screen, q,
Esc or Ctrl-C leaves (and so does any key at the end) and puts the screen back as it was.
Lines longer than the screen go on over the next rows, as the console would wrap them.

Imports: shell (Output, UsageError, error_text; files' node reading) and drivers (screen size,
keys).
"""

from __future__ import annotations

from tradekernel.kernel.drivers.console import COLUMNS, ROWS, cp437_code
from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.shell.files import is_node, read_node
from tradekernel.kernel.shell.shell import Output, UsageError, error_text

PAGE_ROWS = ROWS - 1  # the last row is the status line
STATUS_ATTR = 0x70  # reverse video, as more's prompt
PAGE_LIMIT = 1 << 20  # bytes of a file `more` reads at most


def screen_rows(text: str) -> list[str]:
    """`text` cut into screen rows: each line, tabs expanded, in pieces of COLUMNS."""
    rows: list[str] = []
    for line in text.split("\n"):
        line = line.expandtabs(8)
        rows.extend(line[start : start + COLUMNS] for start in range(0, len(line) or 1, COLUMNS))
    if rows and rows[-1] == "" and text.endswith("\n"):
        rows.pop()  # the final newline ends the last line, it starts none
    return rows


class Pager:
    def __init__(self, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.kernel = kernel
        self.console = kernel.console
        self.rows: list[str] = []
        self.top = 0
        self._saved: list[tuple[int, int]] = []
        self._saved_cursor = (0, 0)

    def register(self, shell) -> None:  # noqa: ANN001 - kernel.shell.Shell
        for name in ("more", "less"):
            shell.register(name, self._command, f"{name} FILE | BUILTIN | {name}",
                           "show text a screen at a time (Space, Enter, b, q)")  # fmt: skip
        shell.page = self.page

    def _command(self, args: list[str], out: Output) -> int:
        if len(args) != 1:
            raise UsageError("which file? (or pipe a built-in into it: help | more)")
        path = self.kernel.shell.resolve_path(args[0])
        node = is_node(self.kernel.vfs, path)
        fs = self.kernel.fs
        if fs is None and not node:
            out.error("more: no filesystem is mounted")
            return 1
        try:
            if node:
                data, cut = read_node(self.kernel.vfs, path, limit=PAGE_LIMIT)
            else:
                with fs.open(path, "r") as handle:
                    data = handle.read(PAGE_LIMIT + 1)
                cut = len(data) > PAGE_LIMIT
        except OSError as error:
            out.error(f"more: {args[0]}: {error_text(error)}")
            return 1
        if cut:
            out.error(f"more: {args[0]}: showing the first {PAGE_LIMIT} bytes")
        return self.page(data[:PAGE_LIMIT].decode("utf-8", "replace"))

    def page(self, text: str) -> int:
        """Show `text`; short text is simply written, longer text takes the screen until q."""
        rows = screen_rows(text)
        if len(rows) <= PAGE_ROWS:
            self.console.write("".join(row + "\n" for row in rows))
            return 0
        console = self.console
        self._saved = [console.cell(r, c) for r in range(ROWS) for c in range(COLUMNS)]
        self._saved_cursor = (console.row, console.col)
        self.rows, self.top = rows, 0
        self.kernel.shell.suspend_prompt()
        self.kernel.tty.raw_reader = lambda key: self.kernel.defer(lambda: self._key(key))
        self._draw()
        return 0

    def _draw(self) -> None:
        console = self.console
        for row in range(PAGE_ROWS):
            index = self.top + row
            text = self.rows[index] if index < len(self.rows) else ""
            for col in range(COLUMNS):
                char = text[col] if col < len(text) else " "
                console.put_cell(row, col, cp437_code(char), console.attr)
        shown = min(len(self.rows), self.top + PAGE_ROWS)
        status = f"--More-- lines {self.top + 1}-{shown} of {len(self.rows)} "
        status += "(Space: next page, Enter: next line, b: back, q: quit)"
        status = status[:COLUMNS]
        for col in range(COLUMNS):
            char = status[col] if col < len(status) else " "
            console.put_cell(ROWS - 1, col, ord(char), STATUS_ATTR)
        console.move_cursor(ROWS - 1, min(len(status), COLUMNS - 1))

    def _key(self, key: Key) -> None:
        last_top = max(0, len(self.rows) - PAGE_ROWS)
        if key.char.lower() == "q" or key.char == "\x1b" or (key.ctrl and key.char == "c"):
            self._leave()
            return
        if key.char == " " or key.name == "pagedown":
            if self.top >= last_top:
                self._leave()
                return
            self.top = min(last_top, self.top + PAGE_ROWS)
        elif key.char == "\n" or key.name == "down":
            self.top = min(last_top, self.top + 1)
        elif key.char == "b" or key.name == "pageup":
            self.top = max(0, self.top - PAGE_ROWS)
        elif key.name == "up":
            self.top = max(0, self.top - 1)
        else:
            return
        self._draw()

    def _leave(self) -> None:
        self.kernel.tty.raw_reader = None
        console = self.console
        for index, (char, attr) in enumerate(self._saved):
            console.put_cell(index // COLUMNS, index % COLUMNS, char, attr)
        console.move_cursor(*self._saved_cursor)
        self.rows = []
        self.kernel.shell.resume()
