"""`tk boot --headless` on a terminal: the VGA screen mirrored with ANSI colours, keys read raw.

Contract: `run_terminal(session)` puts the input terminal in raw mode and switches the output to
the alternate screen buffer, paints the 80x25 screen once in full and then only what changed
(about 30 times a second), with the terminal cursor where the VGA cursor is. A terminal with
fewer than 25 rows (or 80 columns) shows the rows around the VGA cursor (the last ones, where
the prompt is, as the console scrolls) and says so for `NOTICE_S` over its top row. Every
byte typed goes to the guest as PS/2 key presses (Ctrl-C included) except Ctrl-] (0x1D), which
powers the machine off cleanly and leaves, and Shift+PgUp/Shift+PgDn, which scroll back
through the console's history (ui/scrollback.py); any other key returns to the live screen.
The machine runs in a background thread under a `Supervisor` (also used by the window); the
terminal is restored however the function ends, the watchdog's hard exit included. Returns
the machine's StopInfo once its thread has finished (the session's run() has flushed the disk
by then); a crash report is written out again after leaving the alternate screen.
"""

from __future__ import annotations

import codecs
import os
import select
import signal
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable

from tradekernel.devices.i8042 import FIFO_SIZE, KEY_CHANNEL, PAUSE_MAKE_SET2
from tradekernel.emu.clock import Timer
from tradekernel.emu.machine import StopInfo
from tradekernel.ui.ansi import AnsiScreen
from tradekernel.ui.keymap import KeyEvent, TerminalKeyDecoder
from tradekernel.ui.scrollback import SERIAL_CHANNEL, Scrollback
from tradekernel.ui.session import Session
from tradekernel.ui.supervisor import Supervisor

LEAVE_BYTE = b"\x1d"  # Ctrl-], as telnet and QEMU's monitor escape use
FRAME_INTERVAL_S = 1 / 30
ESCAPE_WAIT_S = 0.05  # a lone ESC with nothing after it this long is the Escape key
READ_SIZE = 4096
TYPING_RETRY_NS = 1_000_000  # while typed keys wait, look at the keyboard FIFO this often
LONGEST_KEY_SEQUENCE = len(PAUSE_MAKE_SET2)  # bytes one key transition can queue
CLEAR = "\x1b[0m\x1b[H\x1b[2J"
ENTER_SCREEN = "\x1b[?1049h" + CLEAR
LEAVE_SCREEN = "\x1b[0m\x1b[?25h\x1b[?1049l"
HINT_ROW = 27  # below the 25 mirrored rows and a blank one, when the terminal is tall enough
HINT = "TradeKernel: Ctrl-] powers off and leaves; Shift+PgUp/PgDn scroll back"
NOTICE_S = 5.0  # how long a too-small terminal is told so
SHIFT_PAGE_UP = b"\x1b[5;2~"  # xterm's encoding of Shift+PgUp / Shift+PgDn
SHIFT_PAGE_DOWN = b"\x1b[6;2~"
SCREEN_ROWS, SCREEN_COLUMNS = 25, 80


class _Output:
    """Writes text to a file descriptor in full (a terminal may accept it in pieces)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            written = os.write(self.fd, data)
            data = data[written:]


class KeyTypist:
    """Hands host key transitions to the PS/2 keyboard no faster than its 16-byte FIFO takes
    them, so a burst (a pasted line, a frame's worth of window events) is never lost to an
    overrun. A transition goes as soon as the FIFO has room for the longest sequence one can
    send; otherwise it waits, in order, and the machine loop retries on the virtual clock. A
    guest that reads its keyboard sees no delay. `type` is thread-safe."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._waiting: deque[KeyEvent] = deque()
        self._retry: Timer | None = None  # machine thread only

    def type(self, events: list[KeyEvent]) -> None:
        if events:
            self._waiting.extend(events)
            self.session.machine.post(self._pump)

    @property
    def idle(self) -> bool:
        """Every key handed over and read by the guest (machine thread only)."""
        keyboard = self.session.pc.keyboard.keyboard
        return not self._waiting and (keyboard is None or not keyboard.fifo)

    def _pump(self) -> None:
        keyboard = self.session.pc.keyboard.keyboard
        if keyboard is None:
            raise RuntimeError("the keyboard controller has no keyboard attached")
        send = self.session.machine.channels.send
        while self._waiting and len(keyboard.fifo) <= FIFO_SIZE - LONGEST_KEY_SEQUENCE:
            send(KEY_CHANNEL, self._waiting.popleft())
        if self._waiting and self._retry is None:
            self._retry = self.session.machine.clock.call_after(TYPING_RETRY_NS, self._retried)

    def _retried(self) -> None:
        self._retry = None
        self._pump()


class _Keyboard:
    """Bytes typed on the terminal -> key transitions for the typist; notices the leave key
    and the scrollback keys."""

    def __init__(self, typist: KeyTypist, history: Scrollback) -> None:
        self.typist = typist
        self.history = history
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._keys = TerminalKeyDecoder()
        self._last_input = 0.0

    def feed(self, data: bytes, now: float) -> bool:
        """Type `data`; True if it held the leave key (what follows it is dropped)."""
        typed, leave, _ = data.partition(LEAVE_BYTE)
        self._last_input = now
        for piece in _split_scroll_keys(typed):
            if piece == SHIFT_PAGE_UP:
                self.history.page_up()
            elif piece == SHIFT_PAGE_DOWN:
                self.history.page_down()
            else:
                self.history.to_live()
                self.typist.type(self._keys.feed(self._text.decode(piece)))
        return bool(leave)

    def settle(self, now: float) -> None:
        """After a pause in input, a pending lone ESC is the Escape key."""
        if now - self._last_input >= ESCAPE_WAIT_S:
            self.typist.type(self._keys.flush())


def _split_scroll_keys(data: bytes) -> list[bytes]:
    """`data` cut around each Shift+PgUp/PgDn sequence (kept as pieces of their own)."""
    pieces: list[bytes] = []
    start = index = 0
    while index < len(data):
        for key in (SHIFT_PAGE_UP, SHIFT_PAGE_DOWN):
            if data.startswith(key, index):
                pieces += [data[start:index], key] if index > start else [key]
                index += len(key)
                start = index
                break
        else:
            index += 1
    if start < len(data):
        pieces.append(data[start:])
    return pieces


def view_for(cursor_row: int, rows: int, columns: int) -> tuple[int, int, int]:
    """(top, height, width) of the screen a terminal of `rows` x `columns` shows: all of it if
    it fits, else the rows that keep the cursor in view, as low as possible."""
    height = max(1, min(SCREEN_ROWS, rows))
    top = min(max(0, cursor_row - height + 1), SCREEN_ROWS - height)
    return top, height, max(1, min(SCREEN_COLUMNS, columns))


def run_terminal(
    session: Session,
    *,
    input_fd: int | None = None,
    output_fd: int | None = None,
    supervisor: Supervisor | None = None,
) -> StopInfo:
    """Mirror the screen on `output_fd` and type `input_fd`'s bytes (default: stdin/stdout;
    raw mode only when the input is a terminal) until the machine stops or Ctrl-] is typed.
    `supervisor` (made here if not given) runs the machine; if its watchdog has to end the
    process, the terminal is restored first."""
    in_fd = 0 if input_fd is None else input_fd
    out = _Output(1 if output_fd is None else output_fd)
    saved_mode = termios.tcgetattr(in_fd) if os.isatty(in_fd) else None
    supervisor = supervisor or Supervisor(session)
    resized = threading.Event()
    unwatch_resize = _watch_resize(resized)

    def restore() -> None:
        try:
            out.write(LEAVE_SCREEN)
        except OSError:
            pass  # the terminal went away: nothing left to restore on it
        finally:
            if saved_mode is not None:
                termios.tcsetattr(in_fd, termios.TCSADRAIN, saved_mode)

    supervisor.cleanups.append(restore)
    try:
        if saved_mode is not None:
            tty.setraw(in_fd, termios.TCSANOW)
        out.write(ENTER_SCREEN + _hint(out.fd))
        history = Scrollback()
        session.machine.channels.listen(SERIAL_CHANNEL, history.feed)
        supervisor.start()
        _mirror(session, supervisor, history, in_fd, out, resized)
    finally:
        supervisor.stop()
        restore()
        unwatch_resize()
        supervisor.cleanups.remove(restore)
    stop = supervisor.result()
    if stop.reason == "crash" and stop.report:
        try:
            out.write(stop.report.rstrip("\n") + "\n")  # it was on the screen just left
        except OSError:
            pass  # no terminal to show it on: the log channel had it too
    return stop


def _mirror(
    session: Session,
    supervisor: Supervisor,
    history: Scrollback,
    in_fd: int,
    out: _Output,
    resized: threading.Event,
) -> None:
    """The UI loop: paint, read keys, until the machine ends (leaving asks it to)."""
    screen = AnsiScreen(truecolor=os.environ.get("COLORTERM", "") in ("truecolor", "24bit"))
    keyboard = _Keyboard(KeyTypist(session), history)
    reading = True
    size = _terminal_size(out.fd)
    notice_until = time.monotonic() + NOTICE_S if _too_small(size) else 0.0
    overlay = ""
    next_frame = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= next_frame:
            shown = history.view(session.pc.vga.text_screen())
            cursor_row = shown.cursor_row if not history.scrolled else SCREEN_ROWS - 1
            if resized.is_set():
                resized.clear()
                size = _terminal_size(out.fd)
                notice_until = now + NOTICE_S if _too_small(size) else 0.0
                screen.invalidate()
            changed_view = screen.set_view(*view_for(cursor_row, *size))
            wanted = _overlay(history, size, now < notice_until)
            if changed_view or wanted != overlay:
                out.write(CLEAR + _hint(out.fd) + screen.frame(shown))
            else:
                out.write(screen.diff(shown))
            if wanted:
                width = min(SCREEN_COLUMNS, size[1])
                out.write(f"\x1b[1;1H\x1b[0;7m{wanted[:width].ljust(width)}\x1b[0m")
                out.write(screen.cursor(shown))
            overlay = wanted
            next_frame = now + FRAME_INTERVAL_S
        if not supervisor.alive:
            return
        wait_s = max(0.0, next_frame - time.monotonic())
        if not reading:
            supervisor.wait(wait_s)
            continue
        readable, _, _ = select.select([in_fd], [], [], wait_s)
        now = time.monotonic()
        if not readable:
            keyboard.settle(now)
            continue
        try:
            data = os.read(in_fd, READ_SIZE)
        except OSError:  # the terminal hung up
            data = b""
        if not data or keyboard.feed(data, now):  # end of input, or Ctrl-]
            reading = False
            supervisor.request_stop("end of input" if not data else "Ctrl-]")


def _terminal_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of the terminal on `fd`; a non-terminal gets the whole screen."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return SCREEN_ROWS, SCREEN_COLUMNS
    return size.lines, size.columns


def _too_small(size: tuple[int, int]) -> bool:
    return size[0] < SCREEN_ROWS or size[1] < SCREEN_COLUMNS


def _overlay(history: Scrollback, size: tuple[int, int], notice: bool) -> str:
    """The line shown over the top row: where the scrollback is, or that the terminal is
    smaller than the screen (while the notice lasts)."""
    if history.scrolled:
        return f"TradeKernel: {history.status()}"
    if notice:
        rows, columns = size
        return (
            f"TradeKernel: this terminal is {columns}x{rows}, the screen 80x25: showing the "
            "rows around the cursor"
        )
    return ""


def _hint(fd: int) -> str:
    """The leave-key hint under the screen, if the terminal has a row for it."""
    try:
        rows = os.get_terminal_size(fd).lines
    except OSError:
        return ""
    return f"\x1b[{HINT_ROW};1H\x1b[0;2m{HINT}\x1b[0m" if rows >= HINT_ROW else ""


def _watch_resize(resized: threading.Event) -> Callable[[], None]:
    """Set `resized` on SIGWINCH (the terminal may have cleared or reflowed: repaint all);
    returns what puts the previous handler back. Only the main thread may set signal handlers:
    elsewhere resizes go unnoticed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGWINCH, lambda _signum, _frame: resized.set())
    if previous is None:  # installed outside Python: the default is the best we can restore
        previous = signal.SIG_DFL
    return lambda: signal.signal(signal.SIGWINCH, previous)
