"""The console tty: line discipline between the keyboard driver and whoever reads lines.

Shift+PgUp/PgDn page the console's scrollback in every mode. Canonical mode edits a line in
place on screen: echo, Backspace, Left/Right/Home/End and Delete, Up/Down through the
history, Ctrl-C (cancel the line, or interrupt the foreground program through
`on_interrupt`), Ctrl-Z (stop the foreground program through `on_suspend`; nothing at the
prompt), Ctrl-L (clear the screen and redraw the line), Ctrl-D (end of input on an empty line).
A finished line goes to `on_line`. Raw mode hands every key to `raw_reader` instead
(full-screen programs such as the editor or `top`).

Keys that arrive while nobody reads a line (a program runs, the prompt is not up yet) are kept
as typeahead and taken by the next `read_line`, as a Unix tty keeps them for the next reader
(`on_typeahead` says a key was kept, `line_waiting` whether a whole line is there: what a
poll of the terminal asks);
Ctrl-C and Ctrl-Z throw them away. Typeahead is bounded but never lost: `has_room` is False
once TYPEAHEAD_LIMIT keys wait, and the keyboard driver then leaves the next byte in the 8042
(which holds it, and the keyboard's FIFO behind it) until `on_room` says the reader took them.

Characters outside ASCII are kept as typed and shown in the console's CP437 where it has them
(the shell gets "é" as "é"). A line holding a character the console cannot show (U+65E5, or
U+FFFD for an impossible Alt+keypad number) is refused at Enter with one line saying which
character, and is not run: a command must never lose a character and change its meaning
(`rm -r /home/日本` is not `rm -r /home/`).

Each key costs the same whatever the line's length: only the cells from the edit to the end of
the line are rewritten (one cell for a key typed at the end).

The console's serial mirror (COM1, `console.on_output`) gets the prompt when it is shown and the
line once it is taken (keys are not echoed there one by one). What the tty redraws on the
screen it redraws there too, as readline does on a serial terminal: output from elsewhere
written at a prompt first erases the prompt and the pending line (CR, cursor up and right to
where the prompt began, erase below), and the prompt and the pending line follow it again, the
cursor moved back to where it is in the line; Ctrl-L clears the terminal before the prompt. When
a line is taken the mirror ends up holding the prompt and the line as finally typed, so a
serial reader sees on its last row what the screen shows on the cursor's row. Output from
elsewhere that stops mid-row (a program writing a line in pieces) goes on where it stopped, on
the screen (the prompt drawn below it meanwhile) and on the mirror, which gets the prompt once
that output has ended its row or a key is pressed: a line-oriented reader gets the line whole.
Each prompt drawn again on the mirror directly follows an erase (ERASE_BELOW), which the
prompts the shell shows anew never do: a reader counting prompts on COM1 tells them apart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tradekernel.kernel.drivers.console import COLUMNS, ROWS, Console, cp437_code
from tradekernel.kernel.drivers.keyboard import Key

HISTORY_LIMIT = 100
SCROLL_STEP = ROWS // 2  # rows Shift+PgUp/PgDn move the scrollback, as Linux's console
REFUSED_ATTR = 0x0C  # light red, as the shell's errors
TYPEAHEAD_LIMIT = 256  # keys kept while nobody reads; then the keyboard is left unread
CLEAR_TERMINAL = "\x1b[H\x1b[2J"  # Ctrl-L on the serial mirror
ERASE_BELOW = "\x1b[J"  # from the cursor to the end of a serial terminal's screen


class Tty:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.prompt = ""
        self.on_line: Callable[[str], None] = lambda line: None
        self.on_interrupt: Callable[[], bool] = lambda: False  # True if a program took it
        self.on_suspend: Callable[[], bool] = lambda: False  # likewise, for Ctrl-Z
        self.on_end_of_input: Callable[[], None] = lambda: None
        self.raw_reader: Callable[[Key], None] | None = None
        self.on_room: Callable[[], None] = lambda: None  # typeahead was taken: read keys again
        self.on_typeahead: Callable[[], None] = lambda: None  # a key was kept: poll looks again
        self.history: list[str] = []
        self._buffer: list[str] = []
        self._cursor = 0
        self._history_index = 0
        self._origin = (0, 0)  # screen position of the line's first character
        self.reading = False
        self._typeahead: deque[Key] = deque()
        self._mirrored = ""  # the line's text the serial mirror shows after the prompt
        self._mirrored_cursor = 0  # where the serial terminal's cursor is in it
        # Output from elsewhere that stopped mid-row: its column (it goes on there, on the row
        # above the prompt), and whether the mirror still owes the prompt and line after it.
        self._resume: int | None = None
        self._mirror_owed = False

    # ---- the prompt ---------------------------------------------------------------------
    def read_line(self, prompt: str) -> None:
        """Show `prompt` and start collecting a line."""
        self.prompt = prompt
        self._say(prompt)
        self.console.input_line = self
        self._buffer = []
        self._cursor = 0
        self._history_index = len(self.history)
        self._origin = (self.console.row, self.console.col)
        self._mirrored = ""
        self._mirror_wrote(prompt, 0)  # (`_say` sent the prompt to the mirror)
        self._resume, self._mirror_owed = None, False
        self.reading = True
        while self._typeahead and self.reading and self.raw_reader is None:
            self.on_key(self._typeahead.popleft())  # a finished line may start a program
        if self.has_room():
            self.on_room()

    def line_waiting(self) -> bool:
        """Whether the typeahead holds a finished line (Enter) or an end of input (Ctrl-D): a
        canonical read would not sleep."""
        return any(
            key.char == "\n" or key.ctrl and key.char.lower() == "d" for key in self._typeahead
        )

    def take_typeahead(self) -> list[Key]:
        """The kept keys, removed (a program switching the tty to non-canonical mode reads
        them as bytes)."""
        keys = list(self._typeahead)
        self._typeahead.clear()
        if keys:
            self.on_room()
        return keys

    def give_back(self, keys: list[Key]) -> None:
        """Keys a non-canonical reader did not read, back in front of the typeahead (the
        terminal went canonical again)."""
        self._typeahead.extendleft(reversed(keys))
        if keys:
            self.on_typeahead()

    def has_room(self) -> bool:
        """Whether a key can be taken now (else it must wait in the keyboard controller)."""
        return self.reading or self.raw_reader is not None or (
            len(self._typeahead) < TYPEAHEAD_LIMIT
        )  # fmt: skip

    def on_key(self, key: Key) -> None:
        if key.shift and key.name in ("pageup", "pagedown"):  # the console's scrollback
            self.console.view_scroll(SCROLL_STEP if key.name == "pageup" else -SCROLL_STEP)
            return
        self.console.show_live()
        if self.raw_reader is not None:
            self.raw_reader(key)
            return
        if self.reading and self._mirror_owed:  # the screen shows the prompt: so must the mirror
            self._mirror_owed = False
            self._mirror_prompt("\n")
            self._mirror_line()
        if key.ctrl and key.char.lower() == "c":
            self._typeahead.clear()
            self._interrupt()
        elif key.ctrl and key.char.lower() == "z":
            if self.on_suspend():
                self._typeahead.clear()
                self._say("^Z\n")
        elif not self.reading:
            self._typeahead.append(key)  # bounded by the driver asking `has_room` first
            self.on_typeahead()
        elif key.ctrl and key.char.lower() == "l":
            self.console.clear()
            self._resume = None
            self._mirror(CLEAR_TERMINAL)
            self._say(self.prompt)
            self._origin = (self.console.row, self.console.col)
            self._redraw()
            self._mirrored = ""
            self._mirror_wrote(self.prompt, 0)  # (the mirror had it from `_say`)
            self._mirror_line()
        elif key.ctrl and key.char.lower() == "d":
            if not self._buffer:
                self.reading = False
                self._say("\n")
                self.on_end_of_input()
        elif key.char == "\n":
            self._finish()
        elif key.char == "\b":
            if self._cursor > 0:
                del self._buffer[self._cursor - 1]
                self._cursor -= 1
                self._redraw(self._cursor, erase=1)
        elif key.name == "delete":
            if self._cursor < len(self._buffer):
                del self._buffer[self._cursor]
                self._redraw(self._cursor, erase=1)
        elif key.name == "left":
            self._cursor = max(0, self._cursor - 1)
            self._place_cursor()
        elif key.name == "right":
            self._cursor = min(len(self._buffer), self._cursor + 1)
            self._place_cursor()
        elif key.name == "home":
            self._cursor = 0
            self._place_cursor()
        elif key.name == "end":
            self._cursor = len(self._buffer)
            self._place_cursor()
        elif key.name in ("up", "down"):
            self._recall(-1 if key.name == "up" else 1)
        elif key.char and (key.char == "\t" or key.char.isprintable()) and not key.ctrl:
            char = " " if key.char == "\t" else key.char
            self._buffer.insert(self._cursor, char)
            self._cursor += 1
            self._redraw(self._cursor - 1)

    # ---- output written while a line is edited --------------------------------------------
    def _say(self, text: str, attr: int | None = None) -> None:
        """The tty's own output (prompt, echo of control keys, messages): not someone else's
        output written over the line."""
        saved, self.console.input_line = self.console.input_line, None
        try:
            self.console.write(text, attr)
        finally:
            self.console.input_line = saved

    def hide_line(self) -> None:
        """Output from elsewhere (a background job, a timer) is about to be written: take the
        prompt and the line off the screen and leave the cursor where the prompt began, or
        where the last such output stopped mid-row (on the row above: it goes on there)."""
        if not self.reading or self.raw_reader is not None:
            return
        console = self.console
        row, col = self._origin
        prompt_start = row * COLUMNS + col - len(self.prompt)
        start = max(0, prompt_start)
        end = min(ROWS * COLUMNS, row * COLUMNS + col + len(self._buffer))
        for linear in range(start, end):
            console.put_cell(linear // COLUMNS, linear % COLUMNS, 0x20, console.attr)
        resume = self._resume if prompt_start >= COLUMNS else None  # that row is on screen
        at = start if resume is None else prompt_start - COLUMNS + resume
        console.row, console.col = divmod(at, COLUMNS)
        # (owed: the mirror's cursor is still where output stopped; nothing shown: no erase,
        # which would mark the prompt the shell may show next as a redraw)
        if not self._mirror_owed and (self.prompt or self._mirrored):
            self._mirror_erase()
            if resume is not None:
                self._mirror_move(at - row * COLUMNS - col)

    def show_line(self) -> None:
        """That output is written: the prompt and the line again below it, the cursor where
        it was in the line (as readline redraws after an asynchronous message). The mirror
        gets them once that output has ended its row (or a key is pressed): a line written in
        pieces reaches a serial reader as one line."""
        if not self.reading or self.raw_reader is not None:
            return
        console = self.console
        self._resume = console.col or None
        self._mirror_owed = bool(console.col)
        if console.col:
            console.new_line()
        self._origin = divmod(console.row * COLUMNS + len(self.prompt), COLUMNS)
        self._redraw(0)  # scrolls first if the line now passes the bottom
        row, col = self._origin
        for index, char in enumerate(self.prompt, row * COLUMNS + col - len(self.prompt)):
            if index >= 0:
                console.put_cell(index // COLUMNS, index % COLUMNS, cp437_code(char), console.attr)
        self._place_cursor()
        if not self._mirror_owed:
            self._mirror_prompt()
            self._mirror_line()

    # ---- the serial mirror ----------------------------------------------------------------
    def _mirror(self, text: str) -> None:
        """`text` to the serial mirror only (the screen is drawn cell by cell)."""
        if text and self.console.on_output is not None:
            self.console.on_output(text)

    def _mirror_wrote(self, text: str, index: int) -> None:
        """`text`, just sent to the mirror, left its cursor at `index` of the line. Where it
        filled a row's last column the screen's cursor is on the next row already, while a
        terminal's waits for the next character (a VT100's pending wrap): a blank, then CR,
        puts it there too (the cell after the line is blank on the screen)."""
        self._mirrored_cursor = index
        row, col = self._origin
        if text and (row * COLUMNS + col + index) % COLUMNS == 0:
            self._mirror(" \r")

    def _mirror_move(self, index: int) -> None:
        """The serial terminal's cursor to `index` of the line (negative: into the prompt)."""
        row, col = self._origin
        here = row * COLUMNS + col + self._mirrored_cursor
        target = row * COLUMNS + col + index
        rows = here // COLUMNS - target // COLUMNS
        vertical = f"\x1b[{rows}A" if rows > 0 else f"\x1b[{-rows}B" if rows < 0 else ""
        right = f"\x1b[{target % COLUMNS}C" if target % COLUMNS else ""
        self._mirror(vertical + "\r" + right)
        self._mirrored_cursor = index

    def _mirror_erase(self) -> None:
        """The prompt and the mirrored line off the serial terminal, its cursor where the
        prompt began."""
        self._mirror_move(-len(self.prompt))
        self._mirror(ERASE_BELOW)
        self._mirrored = ""

    def _mirror_prompt(self, lead: str = "") -> None:
        """The prompt drawn again on the mirror after `lead`, ERASE_BELOW right before it (the
        rest of the terminal's line is stale or blank): the shell's own prompts never follow
        one, so a reader counting prompts on COM1 tells the two apart."""
        self._mirror(lead + (ERASE_BELOW + self.prompt if self.prompt else ""))
        self._mirrored = ""
        self._mirror_wrote(self.prompt, 0)

    def _mirror_line(self) -> None:
        """Bring the mirror from the prompt and `_mirrored` to the prompt and the line being
        edited, its cursor at the line's cursor: only what was not there yet is written."""
        line = "".join(self._buffer)
        if not line.startswith(self._mirrored):
            self._mirror_move(-len(self.prompt))
            self._mirror_prompt()
        elif self._mirrored_cursor != len(self._mirrored):
            self._mirror_move(len(self._mirrored))
        if len(line) > len(self._mirrored):
            self._mirror(line[len(self._mirrored) :])
            self._mirror_wrote(line[len(self._mirrored) :], len(line))
        self._mirrored = line
        if self._cursor != len(line):
            self._mirror_move(self._cursor)

    # ---- editing ------------------------------------------------------------------------
    def _position(self, index: int) -> tuple[int, int]:
        row, col = self._origin
        linear = row * COLUMNS + col + index
        return linear // COLUMNS, linear % COLUMNS

    def _place_cursor(self) -> None:
        row, col = self._position(self._cursor)
        self.console.move_cursor(min(row, ROWS - 1), col)

    def _redraw(self, start: int = 0, erase: int = 0) -> None:
        """Rewrite the line from character `start` to its end (and `erase` blanks after it),
        scrolling the screen (and the origin with it) if the line now passes the bottom.
        Cells scrolled off the top are not drawn: only what changed is touched."""
        console = self.console
        end = len(self._buffer) + erase
        overflow = self._position(end)[0] - (ROWS - 1)
        if overflow > 0:
            for _ in range(min(overflow, ROWS)):
                console.scroll_up()
            row, col = self._origin
            self._origin = (row - overflow, col)
        origin_row, origin_col = self._origin
        start = max(start, -(origin_row * COLUMNS + origin_col))  # the first cell on screen
        row, col = self._position(start)
        put, attr, buffer = console.put_cell, console.attr, self._buffer
        for index in range(start, end):
            put(row, col, cp437_code(buffer[index]) if index < len(buffer) else 0x20, attr)
            col += 1
            if col == COLUMNS:
                row, col = row + 1, 0
        self._place_cursor()

    def _recall(self, step: int) -> None:
        if not self.history:
            return
        index = max(0, min(len(self.history), self._history_index + step))
        if index == self._history_index:
            return
        self._history_index = index
        old_length = len(self._buffer)
        line = self.history[index] if index < len(self.history) else ""
        self._buffer = list(line)
        self._cursor = len(self._buffer)
        self._redraw(erase=max(0, old_length - len(self._buffer)))

    def _finish(self) -> None:
        line = "".join(self._buffer)
        self._cursor = len(self._buffer)
        self._place_cursor()
        self._mirror_line()  # the mirror sees the line as finally typed
        unshown = next(
            (char for char in line if cp437_code(char) == ord("?") and char != "?"), None
        )
        if unshown is not None:
            self._say("\n")
            self._say(
                f"tty: line not run: U+{ord(unshown):04X} cannot be typed "
                "(the console's characters are CP437)\n", REFUSED_ATTR,
            )  # fmt: skip
            self.read_line(self.prompt)
            return
        self._say("\n")
        self.reading = False
        if line.strip() and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[:-HISTORY_LIMIT]
        self.on_line(line)

    def _interrupt(self) -> None:
        if self.on_interrupt():
            self._say("^C\n")
            return
        if self.reading:
            self._cursor = len(self._buffer)
            self._place_cursor()
            self._mirror_line()
            self._say("^C\n")
            self.read_line(self.prompt)
