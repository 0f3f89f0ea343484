"""`tk boot --headless` with a pipe or a file as stdin: the serial console as text on stdout,
the input typed as keys no faster than the guest takes them, and a power-off after it.

Contract. How the host knows what the guest has taken: the console tty keeps keys that arrive
while nobody reads a line as typeahead (capped inside the kernel) and shows nothing for them;
when it takes a line it writes that line, as finally typed, and a newline to the serial mirror
on COM1 (a Ctrl-C writes "^C", a Ctrl-Z "^Z"). So a line on COM1 that ends with what we typed
is the guest's receipt for it, and for everything typed before it (the tty keeps order). The
input is cut into units (a line with its Enter; a control byte alone) and typed through the
keyboard's FIFO (`KeyTypist`), from the shell's first prompt on (the kernel's keyboard driver
resets the keyboard, and its FIFO, while it starts; a guest that never shows our prompt gets
its input after `START_WAIT_NS`, and what of it has no receipt when the shell's first prompt
comes is typed again: the firmware took it, as a data diskette's "press any key" does):
- the next unit goes once every earlier one has its receipt, and the command of the line just
  taken has had `COMMAND_START_NS` to start (or the prompt is back): a Ctrl-C typed before
  its program runs would interrupt nothing;
- keys that never get one (a full-screen program in raw mode, an Escape) are not waited on
  for ever: when COM1 has been quiet for `QUIET_NS` the next unit goes as long as the keys
  still without a receipt stay within `TYPEAHEAD_BUDGET`, below the kernel's cap of 256;
- the shell's prompt as the last thing on COM1 (the tty writes it there again below a
  background job's output, as on the screen), with COM1 quiet and every typed key taken from
  the keyboard for `QUIET_NS`, means the tty holds no typeahead (it takes typeahead as soon
  as it shows a prompt): every unit counts as taken.
  A line longer than the budget is typed in pieces, each when the prompt is up and quiet.
Nothing is dropped: while units wait, stdin is not read further (the reader thread blocks on a
bounded queue, so the writer of the pipe blocks). A line holding a character no US key types
is not typed at all (one line on stderr says which): typing it without that character could
change what the command does. At end of input, once every unit has its receipt and the shell
prompt has been quiet for `QUIET_NS`, the machine powers off as if `shutdown` had been typed.
All decisions run on the machine's clock in its own thread, from what the guest wrote to COM1:
on the deterministic clock (stdin read whole first) the same input gives the same run.
"""

from __future__ import annotations

import codecs
import os
import queue
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from tradekernel.ui.keymap import KeyEvent, text_to_key_events
from tradekernel.ui.scrollback import SERIAL_CHANNEL
from tradekernel.ui.session import Session
from tradekernel.ui.terminal import KeyTypist

POLL_NS = 5_000_000  # how often (virtual time) the pacer looks at the guest
COMMAND_START_NS = 50_000_000  # after a line is taken, its command has started by then
QUIET_NS = 200_000_000  # COM1 silent this long: the guest waits for something
START_WAIT_NS = 5_000_000_000  # no prompt by then (another OS on the disk): type anyway
TYPEAHEAD_BUDGET = 192  # keys without a receipt at most (the kernel's tty keeps 256)
READ_SIZE = 4096
READ_AHEAD_CHUNKS = 16  # stdin chunks buffered at most before the reader thread blocks
PROMPT = re.compile(r"tk:[^\n]*> $")  # the shell's prompt (kernel/shell.py) ending COM1
SOLO_CONTROLS = frozenset(chr(c) for c in range(0x20)) - {"\t", "\n", "\r", "\b", "\x1b"}
RECEIPTS = {"\x03": "^C", "\x1a": "^Z"}  # what the tty writes for these control bytes


@dataclass
class Unit:
    """A piece of input typed as a whole, and the COM1 line ending that proves it was taken."""

    text: str
    receipt: str | None  # None: the guest shows nothing for it


def line_receipt(text: str) -> str | None:
    """The line the tty writes for a typed `text` ending in Enter: Backspaces applied, TABs as
    spaces, escape sequences (cursor keys) make it unpredictable (None)."""
    if "\x1b" in text:
        return None
    line: list[str] = []
    for char in text.rstrip("\n"):
        if char in "\b\x7f":
            if line:
                line.pop()
        else:
            line.append(" " if char == "\t" else char)
    return "".join(line)


class UnitSplitter:
    """Text in, units out: a line ends at its Enter, a control byte is a unit of its own,
    CR LF is one Enter, and a line holding a character no key types is refused whole."""

    def __init__(self, refuse: Callable[[str], None]) -> None:
        self.refuse = refuse
        self._text = ""
        self._line_number = 1

    def feed(self, text: str, at_end: bool = False) -> list[Unit]:
        data = (self._text + text).replace("\r\n", "\n").replace("\r", "\n")
        units: list[Unit] = []
        start = 0
        for index, char in enumerate(data):
            if char in SOLO_CONTROLS:
                self._add(units, data[start:index], False)
                units.append(Unit(char, RECEIPTS.get(char)))
                start = index + 1
            elif char == "\n":
                self._add(units, data[start : index + 1], True)
                start = index + 1
                self._line_number += 1
        self._text = data[start:]
        if at_end and self._text:
            self._add(units, self._text, False)
            self._text = ""
        return units

    def _add(self, units: list[Unit], text: str, ended: bool) -> None:
        if not text:
            return
        try:
            text_to_key_events(text)
        except ValueError:
            bad = next(c for c in text if _untypable(c))
            self.refuse(
                f"tk: input line {self._line_number} not typed: {bad!r} (U+{ord(bad):04X}) "
                "has no key on a US keyboard"
            )
            return
        units.append(Unit(text, line_receipt(text) if ended else None))


def _untypable(char: str) -> bool:
    try:
        text_to_key_events(char)
    except ValueError:
        return True
    return False


class StdinSource:
    """Text from a file descriptor. Deterministic runs read it whole first (what the guest
    sees never depends on how fast the pipe delivers); otherwise a thread reads chunks into a
    bounded queue, so it stops reading while the guest is behind."""

    def __init__(
        self,
        fd: int,
        read_all: bool,
        *,
        leave_byte: bytes | None = None,
        on_leave: Callable[[], None] = lambda: None,
    ) -> None:
        """`leave_byte` (Ctrl-] from a terminal) ends reading and calls `on_leave`."""
        self._chunks: queue.Queue[str | None] = queue.Queue(maxsize=READ_AHEAD_CHUNKS)
        self.at_end = False
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if read_all:
            data = b""
            while chunk := os.read(fd, 65536):
                data += chunk
            self._ready = [decoder.decode(data, final=True)]
            self.at_end = True
            return
        self._ready = []

        def reader() -> None:
            while True:
                try:
                    chunk = os.read(fd, READ_SIZE)
                except OSError:
                    chunk = b""
                leaving = leave_byte is not None and leave_byte in chunk
                if leaving:
                    chunk = chunk[: chunk.index(leave_byte)]
                text = decoder.decode(chunk, final=not chunk)
                if leaving:
                    if text:
                        self._chunks.put(text)
                    on_leave()
                    return
                if text:
                    self._chunks.put(text)
                if not chunk:
                    self._chunks.put(None)
                    return

        threading.Thread(target=reader, name="stdin", daemon=True).start()

    def take(self) -> str:
        """What has arrived since the last call (thread-safe, never blocks)."""
        parts, self._ready = self._ready, []
        while True:
            try:
                chunk = self._chunks.get_nowait()
            except queue.Empty:
                return "".join(parts)
            if chunk is None:
                self.at_end = True
            else:
                parts.append(chunk)


class SerialWatch:
    """COM1 as lines of plain text (escape sequences and CR dropped): the last complete line
    and the line being written, and when (virtual ns) the guest last wrote."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.tail = ""
        self.last_output_ns = 0
        self._escape = False

    def feed(self, text: str, now_ns: int) -> None:
        self.last_output_ns = now_ns
        for char in text:
            if self._escape:
                if char.isalpha() and char != "[":
                    self._escape = False
            elif char == "\x1b":
                self._escape = True
            elif char == "\n":
                line, self.tail = self.tail, ""
                self.on_line(line)
            elif char != "\r":
                self.tail += char


class InputPacer:
    """Types a `StdinSource` into the guest as described in the module docstring."""

    def __init__(
        self,
        session: Session,
        source: StdinSource,
        refuse: Callable[[str], None],
    ) -> None:
        self.session = session
        self.source = source
        self.typist = KeyTypist(session)
        self.splitter = UnitSplitter(refuse)
        self.waiting: deque[Unit] = deque()  # read, not typed yet
        self.unconfirmed: deque[Unit] = deque()  # typed, no receipt yet
        self.serial = SerialWatch(self._serial_line)
        self._decoder = codecs.getincrementaldecoder("cp437")()
        self._typed_ns = 0  # when the last unit was typed
        self._receipt_ns = 0  # when the last receipt came
        self._receipts = 0
        self.started = False  # the shell's first prompt is up (or START_WAIT_NS passed)
        self._seen_prompt = False  # the shell's first quiet prompt has been seen
        self._looking = False  # the poll timer runs
        self.finished = False

    def start(self) -> None:
        """Looks begin with the guest's first word on COM1 (or after START_WAIT_NS): while
        the firmware and the entry stub run, the pacer adds no slice ends of its own."""
        machine = self.session.machine
        machine.channels.listen(SERIAL_CHANNEL, self._on_serial)
        machine.post(lambda: machine.clock.call_after(START_WAIT_NS, self._begin))

    def _begin(self) -> None:
        if not self._looking:
            self._looking = True
            self._schedule()

    def _on_serial(self, data: bytes) -> None:
        """(A CPU hook: the look it may ask for runs once the slice has ended.)"""
        had_prompt = PROMPT.search(self.serial.tail) is not None
        receipts = self._receipts
        self.serial.feed(self._decoder.decode(data), self.session.machine.clock.now_ns())
        self._begin()
        if self._receipts != receipts or (PROMPT.search(self.serial.tail) and not had_prompt):
            self.session.machine.post(self._look)  # the guest took a line or is ready again

    def _serial_line(self, line: str) -> None:
        for index in range(len(self.unconfirmed) - 1, -1, -1):
            receipt = self.unconfirmed[index].receipt
            if receipt is not None and line.endswith(receipt):
                for _ in range(index + 1):
                    self.unconfirmed.popleft()
                self._receipt_ns = self.session.machine.clock.now_ns()
                self._receipts += 1
                return

    def _schedule(self) -> None:
        if not self.finished:
            self.session.machine.clock.call_after(POLL_NS, self._poll)

    def _poll(self) -> None:
        if self._look():
            self._schedule()

    def _look(self) -> bool:
        """Read what stdin has, type what may go, power off at the end; False once done."""
        if self.finished:
            return False
        text = self.source.take()
        if text or self.source.at_end:
            self.waiting.extend(self.splitter.feed(text, at_end=self.source.at_end))
        now = self.session.machine.clock.now_ns()
        quiet = (
            now - max(self.serial.last_output_ns, self._typed_ns) >= QUIET_NS
            and self.typist.idle
        )
        at_prompt = quiet and PROMPT.search(self.serial.tail) is not None
        if at_prompt:
            if not self._seen_prompt:
                # Typed before the shell was up (START_WAIT_NS) and never taken: the firmware
                # had it (a data diskette's "press any key") or the kernel's keyboard reset
                # dropped it. Typed again, as the user meant it for the shell.
                self._seen_prompt = True
                self.waiting.extendleft(reversed(self.unconfirmed))
            self.unconfirmed.clear()  # the tty has taken all typeahead to show its prompt
        self.started = self.started or at_prompt or now >= START_WAIT_NS
        if self.started:
            self._type_next(now, quiet, at_prompt)
        if self.source.at_end and not self.waiting and not self.unconfirmed and at_prompt:
            self.finished = True
            self.session.machine.request_power_off()
        return not self.finished

    def _type_next(self, now: int, quiet: bool, at_prompt: bool) -> None:
        """At most one unit per look: typing makes the guest busy again."""
        if not self.waiting:
            return
        unit = self.waiting[0]
        if self.unconfirmed:
            pending = sum(len(u.text) for u in self.unconfirmed)
            if not quiet or pending + len(unit.text) > TYPEAHEAD_BUDGET:
                return
        elif not (PROMPT.search(self.serial.tail) or now - self._receipt_ns >= COMMAND_START_NS):
            return  # the line just taken has not started its command yet (a Ctrl-C waits)
        if len(unit.text) > TYPEAHEAD_BUDGET:
            if not at_prompt or self.unconfirmed:
                return
            # A long line goes into the shell's line buffer, not typeahead: in pieces, each
            # once the prompt is up and quiet again.
            piece, rest = unit.text[:TYPEAHEAD_BUDGET], unit.text[TYPEAHEAD_BUDGET:]
            self.waiting[0] = Unit(rest, unit.receipt)
            self._type(Unit(piece, None))
            return
        self.waiting.popleft()
        self._type(unit)

    def _type(self, unit: Unit) -> None:
        self._typed_ns = self.session.machine.clock.now_ns()
        self.unconfirmed.append(unit)
        events: list[KeyEvent] = text_to_key_events(unit.text)
        self.typist.type(events)


class PlainText:
    """Serial console bytes -> plain text lines on a stream (escape sequences and CR dropped).
    A stream that goes away (`tk boot | head`) is written no more and `on_closed` is called
    once, as a program whose output pipe closed would get SIGPIPE."""

    def __init__(self, stream: TextIO, on_closed: Callable[[], None] = lambda: None) -> None:
        self.stream = stream
        self.on_closed = on_closed
        self.closed = False
        self._escape = False

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        out = []
        for char in data.decode("cp437"):
            if self._escape:
                if char.isalpha() and char != "[":
                    self._escape = False
                continue
            if char == "\x1b":
                self._escape = True
            elif char != "\r":
                out.append(char)
        if not out:
            return
        try:
            self.stream.write("".join(out))
            if "\n" in out:
                self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.closed = True
            self.on_closed()
