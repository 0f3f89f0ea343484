"""The console terminal's control: which job is in the foreground, and reads of the tty.

One job at a time holds the terminal: its processes (`foreground`) may read it, and Ctrl-C and
Ctrl-Z (the tty driver's `on_interrupt` and `on_suspend`) send SIGINT and SIGTSTP to all of
them. A read takes the rest of the last line (`Process.pending_input`) or sleeps until the tty
driver delivers the next line (or Ctrl-D); only one process reads at a time, and while it
sleeps the tty's line callbacks are its own, then given back to the shell. A background
process that reads is stopped with SIGTTIN (its whole process group), or fails with EIO if it
ignores or blocks SIGTTIN, as POSIX says. Once the foreground's processes have all ended or all
stopped, the terminal goes back to the shell through the callbacks job control subscribes to
(`on_foreground_ended`, `on_foreground_stopped`; `on_idle_interrupt` for Ctrl-C at the prompt).

This is fs/devfs.py's TerminalReader: a TtyFile's reads come here.

Imports: proc (the record, signal numbers), fs.vfs (ERESTARTSYS), mm (user memory).
"""

from __future__ import annotations

from collections.abc import Callable

from tradekernel.kernel.fs.vfs import ERESTARTSYS
from tradekernel.kernel.mm.paging import UserMemoryFault, copy_to_user
from tradekernel.kernel.proc.signals import SI_KERNEL, SIGINT, SIGTSTP, SIGTTIN, bit
from tradekernel.kernel.proc.task import Process

EIO, EFAULT = 5, 14


class Terminal:
    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager, its owner
        self.manager = manager
        self.random = manager.random  # devfs's /dev/urandom (fs/devfs.py TerminalReader)
        self.tty = tty = manager.kernel.tty
        self.kernel = manager.kernel
        self.foreground: list[Process] = []  # the foreground job (a pipeline's processes)
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

    def tty_read(self, process: Process, buffer: int, count: int) -> int | None:
        """read(0): the rest of the last line, or sleep until the next line (None)."""
        if not process.foreground:
            return self._background_read(process)
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
        self.manager.signals.send_to(None, list(self.foreground), SIGINT, SI_KERNEL)
        return True

    def _suspend(self) -> bool:
        """Ctrl-Z: SIGTSTP for every process of the foreground job (nothing at the prompt)."""
        if not self.foreground:
            return False
        self.manager.signals.send_to(None, list(self.foreground), SIGTSTP, SI_KERNEL)
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

    def join_foreground(self, processes: list[Process]) -> None:
        """A pipeline's new processes get the terminal too."""
        for process in processes:
            process.foreground = True
        self.foreground.extend(processes)

    def _foreground_changed(self) -> None:
        """A foreground process ended or stopped: once none is left running, the terminal goes
        back to the shell, and a job that stopped (Ctrl-Z) joins the job table, as under bash."""
        if not self.foreground:
            self.on_foreground_ended()
        elif all(process.stopped for process in self.foreground):
            for process in self.foreground:
                process.foreground = False
            self.foreground = []
            self.kernel.defer(self.on_foreground_stopped)  # after the tty's ^Z

    def exiting(self, process: Process) -> None:
        """`process` is dying: a read it sleeps in ends (the shell gets the tty back)."""
        if self._reader is not None and self._reader[0] is process:
            self._stop_read()

    def exited(self, process: Process) -> None:
        """`process` is dead: it leaves the foreground job."""
        if process in self.foreground:
            self.foreground.remove(process)
            self._foreground_changed()
