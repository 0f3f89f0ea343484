"""The console terminal's control: which job is in the foreground, and reads of the tty.

One job at a time holds the terminal: its processes (`foreground`) may read it, and Ctrl-C and
Ctrl-Z (the tty driver's `on_interrupt` and `on_suspend`) send SIGINT and SIGTSTP to all of
them. A read takes the rest of the last line (`Process.pending_input`) or sleeps until the tty
driver delivers the next line (or Ctrl-D); only one process reads at a time, and while it
sleeps the tty's line callbacks are its own, then given back to the shell. A background
process that reads is stopped with SIGTTIN (its whole process group), or fails with EIO if it
ignores or blocks SIGTTIN, as POSIX says. Inside the foreground job, a program with job control of
its own (busybox sh) picks which of its process groups holds the terminal with TIOCSPGRP
(`pgrp`, asked with TIOCGPGRP): then only that group reads and gets Ctrl-C/Ctrl-Z, the job's
other processes are background to it; a caller outside that group gets SIGTTOU unless it
ignores or blocks it. The choice ends with the job. Once the foreground's processes have all
ended or all stopped, the terminal goes back to the shell through the callbacks job control
subscribes to (`on_foreground_ended`, `on_foreground_stopped`; `on_idle_interrupt` for Ctrl-C
at the prompt).

Settings (termios): TCGETS reads them, TCSETS/TCSETSW/TCSETSF set them. With ICANON cleared
(a line editor such as busybox's, a full-screen program) the terminal is non-canonical: every
key goes to the reader at once as the bytes a terminal sends (Enter as CR, or NL with ICRNL;
Backspace as DEL; arrows and Home/End/Delete as VT100 sequences), echoed only with ECHO, and
with ISIG Ctrl-C, Ctrl-Z and Ctrl-Backslash still send SIGINT, SIGTSTP and SIGQUIT. A read
then returns what is queued, sleeps for the first byte when VMIN > 0, or returns 0 at once
when VMIN is 0. Canonical mode comes back with ICANON, and when the process that left it dies.

Readiness (poll, select): readable with a finished line waiting (canonical) or a byte queued
(non-canonical), or a foreground reader's unread part of a line; always writable. Every
change (a key kept as typeahead, a byte queued) tells the terminal's watchers (the TtyFiles
share them: fs/vfs.py OpenFile.watch), so a sleeping poll looks again at once.

This is fs/devfs.py's TerminalReader: a TtyFile's reads and settings come here.

Imports: proc (the record, signal numbers), fs (ERESTARTSYS, readiness, the default termios),
drivers (the key record), mm (user memory).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.fs.devfs import TTY_TERMIOS
from tradekernel.kernel.fs.vfs import ERESTARTSYS, Poll
from tradekernel.kernel.mm.paging import UserMemoryFault, copy_to_user
from tradekernel.kernel.proc.signals import (
    SI_KERNEL,
    SIGINT,
    SIGQUIT,
    SIGTSTP,
    SIGTTIN,
    SIGTTOU,
    bit,
)
from tradekernel.kernel.proc.task import Process

EIO, EFAULT, EPERM, ESRCH, EINVAL = 5, 14, 1, 3, 22
TERMIOS = struct.Struct("<IIIIB19s")  # Linux i386 struct termios (the kernel's, 36 bytes)
ICRNL = 0o400  # c_iflag
ISIG, ICANON, ECHO = 0o1, 0o2, 0o10  # c_lflag
VMIN = 6  # c_cc index
KEY_SEQUENCES = {
    "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D",
    "home": b"\x1b[H", "end": b"\x1b[F", "delete": b"\x1b[3~",
}  # fmt: skip
RAW_QUEUE_LIMIT = 4096  # bytes queued for a non-canonical reader; more keys are dropped


class Terminal:
    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager, its owner
        self.manager = manager
        self.random = manager.random  # devfs's /dev/urandom (fs/devfs.py TerminalReader)
        self.tty = tty = manager.kernel.tty
        self.kernel = manager.kernel
        self.foreground: list[Process] = []  # the foreground job (a pipeline's processes)
        self.pgrp: int | None = None  # the job's own choice of foreground group (TIOCSPGRP)
        self._reader: tuple[Process, int, int] | None = None  # (process, buffer, count)
        self._shell_on_line = tty.on_line
        self._shell_on_end = tty.on_end_of_input
        tty.on_interrupt = self._interrupt
        tty.on_suspend = self._suspend
        # Job control's hooks: the foreground job's processes all ended; all stopped (run as
        # deferred work, after the tty's ^Z); Ctrl-C with no foreground job (True: taken).
        self.on_foreground_ended: Callable[[], None] = lambda: None
        self.on_foreground_stopped: Callable[[], None] = lambda: None
        self.on_idle_interrupt: Callable[[], bool] = lambda: False
        self.termios = TTY_TERMIOS
        self._raw = bytearray()  # non-canonical input not read yet
        self._raw_keys: deque[list] = deque()  # [key, bytes of it still in _raw], in order
        self._raw_owner: Process | None = None  # who left canonical mode
        self._raw_waiter: tuple[Process, int, int, int] | None = None  # process, token, buf, n
        self.watchers: set[Callable[[], None]] = set()
        tty.on_typeahead = self.changed

    # ---- settings and readiness ---------------------------------------------------------
    @property
    def _lflag(self) -> int:
        return TERMIOS.unpack(self.termios)[3]

    def set_termios(self, process: Process, data: bytes) -> None:
        """TCSETS*: new settings; leaving or re-entering canonical mode switches how keys
        reach readers."""
        was_canonical = bool(self._lflag & ICANON)
        self.termios = data
        canonical = bool(self._lflag & ICANON)
        if was_canonical and not canonical:
            self._raw_owner = process
            self.tty.raw_reader = self._raw_key
            for key in self.tty.take_typeahead():
                self._raw_key(key)
        elif canonical and not was_canonical:
            self._canonical_again()

    def _canonical_again(self) -> None:
        """Keys typed ahead and not read yet go back to the line editor, as Linux keeps the
        input queue across a mode change."""
        self._raw_owner = None
        keys = [key for key, left in self._raw_keys if left == len(self._encode(key))]
        self._raw.clear()
        self._raw_keys.clear()
        self.tty.raw_reader = None
        self.tty.give_back(keys)

    def _take_raw(self, count: int) -> bytes:
        """Up to `count` queued bytes, removed (with the keys they came from)."""
        data = bytes(self._raw[:count])
        del self._raw[:count]
        taken = len(data)
        while taken and self._raw_keys:
            entry = self._raw_keys[0]
            used = min(taken, entry[1])
            entry[1] -= used
            taken -= used
            if not entry[1]:
                self._raw_keys.popleft()
        return data

    def readiness(self) -> Poll:
        if not self._lflag & ICANON:
            ready = bool(self._raw)
        else:
            ready = self.tty.line_waiting() or any(p.pending_input for p in self.foreground)
        return Poll.OUT | (Poll.IN if ready else Poll(0))

    def changed(self) -> None:
        for callback in list(self.watchers):
            callback()

    def _raw_key(self, key: Key) -> None:
        """A key in non-canonical mode: a signal (ISIG), or bytes for the reader."""
        lflag = TERMIOS.unpack(self.termios)[3]
        letter = key.char.lower() if key.ctrl and len(key.char) == 1 else ""
        if lflag & ISIG and letter in ("c", "z", "\\"):
            if letter == "c":
                self._interrupt()
            elif letter == "z":
                self._suspend()
            elif self.foreground:
                self.manager.signals.send_to(None, self._targets(), SIGQUIT, SI_KERNEL)
            return
        data = self._encode(key)
        if not data or len(self._raw) + len(data) > RAW_QUEUE_LIMIT:
            return
        if lflag & ECHO and data.isascii() and data.decode().isprintable():
            self.kernel.console.write(data.decode())
        self._raw += data
        self._raw_keys.append([key, len(data)])
        self._serve_raw()
        self.changed()

    def _encode(self, key: Key) -> bytes:
        """The bytes a terminal sends for `key`."""
        letter = key.char.lower() if key.ctrl and len(key.char) == 1 else ""
        if letter and (letter.isascii() and letter.isalpha() or letter in "[\\]^_"):
            return bytes([ord(letter) & 0x1F])
        if key.name in KEY_SEQUENCES:
            return KEY_SEQUENCES[key.name]
        if key.char == "\n":
            return b"\n" if TERMIOS.unpack(self.termios)[0] & ICRNL else b"\r"
        if key.char == "\b":
            return b"\x7f"
        return key.char.encode("utf-8")

    def _serve_raw(self) -> None:
        if self._raw_waiter is None or not self._raw:
            return
        process, token, buffer, count = self._raw_waiter
        self._raw_waiter = None
        if not self.manager.asleep(process, token):
            return
        try:
            copy_to_user(process.aspace, buffer, bytes(self._raw[:count]))
        except UserMemoryFault:
            self.manager.wake(process, token, -EFAULT)
            return
        self.manager.wake(process, token, len(self._take_raw(count)))

    def _raw_read(self, process: Process, buffer: int, count: int) -> int | None:
        if self._raw:
            copy_to_user(process.aspace, buffer, bytes(self._raw[:count]))
            return len(self._take_raw(count))
        if TERMIOS.unpack(self.termios)[5][VMIN] == 0:
            return 0
        if self._raw_waiter is not None:
            return -EIO
        token = self.manager.block(process, cancel=self._cancel_raw_read)
        self._raw_waiter = (process, token, buffer, count)
        return None

    def _cancel_raw_read(self) -> int:
        self._raw_waiter = None
        return -ERESTARTSYS

    def tty_read(self, process: Process, buffer: int, count: int) -> int | None:
        """read(0): the rest of the last line, or sleep until the next line (None)."""
        if not self.holds_terminal(process):
            return self._background_read(process)
        if not self._lflag & ICANON:
            return self._raw_read(process, buffer, count)
        if process.pending_input:
            data, process.pending_input = (
                process.pending_input[:count],
                process.pending_input[count:],
            )
            copy_to_user(process.aspace, buffer, data)
            return len(data)
        if self._reader is not None:
            return -EIO
        self._reader = (process, buffer, count)
        token = self.manager.block(process, cancel=self._cancel_read)
        tty = self.tty
        tty.on_line = lambda line: self._line_arrived(process, token, line)
        tty.on_end_of_input = lambda: self._line_arrived(process, token, None)
        tty.read_line("")
        return None

    def tty_pending(self, process: Process) -> int:
        """Bytes of the last line `process` has yet to read."""
        return len(process.pending_input)

    def _background_read(self, process: Process) -> int:
        """A background job may not take the terminal's input: SIGTTIN stops its process group
        (the read runs again after SIGCONT, in the foreground once `fg` has made it so), or
        the read fails with EIO if the process ignores or blocks SIGTTIN (POSIX)."""
        if process.signals.blocked & bit(SIGTTIN) or process.signals.ignores(SIGTTIN):
            return -EIO
        self.manager.signals.send_to(None, self.manager.group(process.pgid), SIGTTIN, SI_KERNEL)
        return -ERESTARTSYS

    def reads_tty(self, process: Process) -> bool:
        """Whether `process` sleeps in a read of the terminal."""
        return self._reader is not None and self._reader[0] is process

    def _line_arrived(self, process: Process, token: int, line: str | None) -> None:
        """A line (or Ctrl-D: None) for the sleeping reader."""
        _, buffer, count = self._reader or (process, 0, 0)
        self._stop_read()
        data = b"" if line is None else (line + "\n").encode("utf-8")
        process.pending_input = data[count:]
        try:
            copy_to_user(process.aspace, buffer, data[:count])
            result = min(count, len(data))
        except UserMemoryFault:
            result = -EFAULT
        self.manager.wake(process, token, result)

    def _cancel_read(self) -> int:
        self._stop_read()
        return -ERESTARTSYS

    def _stop_read(self) -> None:
        self._reader = None
        self.tty.on_line = self._shell_on_line
        self.tty.on_end_of_input = self._shell_on_end
        self.tty.reading = False

    def _interrupt(self) -> bool:
        """Ctrl-C: SIGINT for every process of the foreground job (or the shell stops `wait`)."""
        if not self.foreground:
            return self.on_idle_interrupt()
        self.manager.signals.send_to(None, self._targets(), SIGINT, SI_KERNEL)
        return True

    def _suspend(self) -> bool:
        """Ctrl-Z: SIGTSTP for every process of the foreground job (nothing at the prompt)."""
        if not self.foreground:
            return False
        self.manager.signals.send_to(None, self._targets(), SIGTSTP, SI_KERNEL)
        return True

    def process_stopped(self, process: Process) -> None:
        """A stop signal took `process` off the CPU (its parent has heard of it already)."""
        if process in self.foreground:
            self._foreground_changed()

    def take_foreground(self, processes: list[Process]) -> None:
        """`fg`: these processes (a job's live ones) get the terminal."""
        for process in processes:
            process.foreground = True
        self.foreground = list(processes)
        self.pgrp = None

    # ---- the foreground process group (TIOCGPGRP/TIOCSPGRP) -----------------------------
    def _group_members(self) -> list[Process]:
        """The foreground job's processes in the chosen group (none chosen: none)."""
        return [p for p in self.foreground if p.pgid == self.pgrp] if self.pgrp else []

    def holds_terminal(self, process: Process) -> bool:
        """Whether `process` is foreground: in the job, and in its chosen group if any."""
        return process.foreground and (not self._group_members() or process.pgid == self.pgrp)

    def _targets(self) -> list[Process]:
        """Who Ctrl-C, Ctrl-Z and Ctrl-Backslash signal."""
        return self._group_members() or list(self.foreground)

    def foreground_group(self, process: Process) -> int:
        if self._group_members():
            return self.pgrp or 0
        return self.foreground[0].pgid if self.foreground else 0

    def set_foreground_group(self, process: Process, pgid: int) -> int:
        """As Linux's tiocspgrp: a caller in the background is sent SIGTTOU (the call runs
        again once it is continued) unless it ignores or blocks it; the group must be one of
        the foreground job's (EPERM: another job's; ESRCH: none)."""
        if pgid <= 0:
            return -EINVAL
        if not self.holds_terminal(process):
            if not (process.signals.blocked & bit(SIGTTOU) or process.signals.ignores(SIGTTOU)):
                group = self.manager.group(process.pgid)
                self.manager.signals.send_to(None, group, SIGTTOU, SI_KERNEL)
                return -ERESTARTSYS
            if not process.foreground:
                return -EPERM  # another job's process: it may not take this job's terminal
        if not any(p.pgid == pgid for p in self.foreground):
            return -EPERM if self.manager.group(pgid) else -ESRCH
        self.pgrp = pgid
        self.changed()
        return 0

    def join_foreground(self, processes: list[Process]) -> None:
        """A pipeline's new processes get the terminal too."""
        for process in processes:
            process.foreground = True
        self.foreground.extend(processes)

    def _foreground_changed(self) -> None:
        """A foreground process ended or stopped: once none is left running, the terminal goes
        back to the shell, and a job that stopped (Ctrl-Z) joins the job table, as under bash."""
        if not self.foreground:
            self.pgrp = None
            self.on_foreground_ended()
        elif all(process.stopped for process in self.foreground):
            for process in self.foreground:
                process.foreground = False
            self.foreground = []
            self.pgrp = None
            self.kernel.defer(self.on_foreground_stopped)  # after the tty's ^Z

    def exiting(self, process: Process) -> None:
        """`process` is dying: a read it sleeps in ends (the shell gets the tty back)."""
        if self._reader is not None and self._reader[0] is process:
            self._stop_read()

    def exited(self, process: Process) -> None:
        """`process` is dead: it leaves the foreground job; canonical mode comes back if it
        had left it (the kernel's shell reads lines)."""
        if process is self._raw_owner:
            self.termios = TTY_TERMIOS
            self._canonical_again()
        if process in self.foreground:
            self.foreground.remove(process)
            self._foreground_changed()
