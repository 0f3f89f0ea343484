"""Keeps `tk boot` in the user's hands whatever the guest does: the machine on its own thread,
a watchdog thread outside the guest's control, host signals, and the exit codes.

Contract: `Supervisor(session)` runs `session.run()` on a background thread (`MachineThread`).
A stop is asked for by a host signal (`HostSignals`: SIGTERM, SIGINT, SIGHUP), by the UI (window
closed, Ctrl-], end of piped input) or by the --timeout deadline, which the machine's own loop
checks. The machine is asked to power off at its next slice boundary, which flushes the disk.
Python code of a kernel service runs inside a CPU hook, where no guest interrupt or stop
reaches it: if the machine thread has not ended `STOP_GRACE_S` after a stop was asked (or after
the deadline), the watchdog ends the process itself: it runs the registered cleanups (disk
writes pushed to the image, the terminal restored, the scratch disk removed), prints one line
saying where the machine thread was stuck, and exits with `EXIT_HUNG`. While nobody asks to
stop, a machine loop that has not come round for `HUNG_WARN_S` gets one warning line (with
the same place) and runs on: long kernel work is reported, never cut short unasked.
The watchdog only reads the machine thread's stack and posts to the machine; it never touches
guest state.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from tradekernel.emu.machine import StopInfo
from tradekernel.ui.session import HOST_SIGNALS, Session

# Exit codes of `tk boot` (documented in its --help; click itself uses 1 and 2).
EXIT_POWER_OFF = 0
EXIT_ERROR = 1  # a one-line error before or instead of booting (bad disk image, bad path)
EXIT_USAGE = 2  # bad command-line usage (click)
EXIT_TIMEOUT = 3  # --timeout passed before the guest powered off
EXIT_CRASH = 4  # the machine crashed (triple fault, internal error): a report was printed
EXIT_HUNG = 5  # the machine stopped responding and the watchdog ended the process
EXIT_SIGNAL_BASE = 128  # a host signal N powered the machine off: exit 128 + N, as shells do

STOP_GRACE_S = 3.0  # how long a stop may take before the watchdog ends the process
HUNG_WARN_S = 10.0  # a machine loop that has not come round this long is reported once
WATCH_INTERVAL_S = 0.1  # the watchdog's look-around period
HEARTBEAT_S = 1.0  # how often it posts to the machine loop (each post also ends a slice)
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_STDLIB_DIR = Path(sysconfig.get_paths()["stdlib"]).resolve()


class MachineThread:
    """`session.run()` on a background thread, keeping its StopInfo or the exception it raised,
    so a UI on the main thread stays responsive whatever the guest does."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._result: StopInfo | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="machine", daemon=True)
        self._started = False
        self.power_off_requested = False

    def _run(self) -> None:
        try:
            self._result = self.session.run()
        except BaseException as error:  # noqa: BLE001 - handed to the UI thread by result()
            self._error = error

    def start(self) -> None:
        self._started = True
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def request_power_off(self) -> None:
        """Ask the machine loop to power off (as the ACPI soft-off button would); idempotent."""
        if not self.power_off_requested:
            self.power_off_requested = True
            machine = self.session.machine
            machine.post(machine.request_power_off)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the machine loop has ended; False if `timeout_s` passed first."""
        if self._started:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def result(self) -> StopInfo:
        """The run's StopInfo; re-raises what the machine loop raised. Only after it ended."""
        if self._thread.is_alive():
            raise RuntimeError("the machine is still running")
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the machine thread was never started")
        return self._result

    def stop(self) -> None:
        """Power off (if still running) and wait for the loop, so the disk has been flushed."""
        if self.alive:
            self.request_power_off()
        self.wait()


def stuck_at(frame: FrameType | None) -> str:
    """Where a thread is, as `kernel/tty.py:71 in on_key`: its innermost frame outside the
    standard library (the code that does not return, not the list or regex it calls)."""
    if frame is None:
        return "an unknown place"
    stack = traceback.extract_stack(frame)
    own = [entry for entry in stack if not _in_stdlib(entry.filename)]
    entry = (own or stack)[-1]
    path = Path(entry.filename).resolve()
    shown = path.relative_to(_PACKAGE_DIR).as_posix() if _inside(path, _PACKAGE_DIR) else path.name
    return f"{shown}:{entry.lineno} in {entry.name}"


def _in_stdlib(filename: str) -> bool:
    return _inside(Path(filename).resolve(), _STDLIB_DIR) and "site-packages" not in filename


def _inside(path: Path, folder: Path) -> bool:
    return path.is_relative_to(folder)


class Supervisor:
    """The machine thread plus the watchdog that guarantees the process ends when asked."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.machine = MachineThread(session)
        self.stop_grace_s = STOP_GRACE_S  # read here, so a test driver can shorten them
        self.hung_warn_s = HUNG_WARN_S
        self.cleanups: list[Callable[[], None]] = []  # run before a hard exit, newest first
        self.stop_reason: str | None = None
        self.signal_number: int | None = None
        self._stop_asked_at: float | None = None
        self._beat = time.monotonic()
        self._posted_at = self._beat
        self._waiting_since = self._beat
        self._warned = False
        self._watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        timeout = session.options.timeout_s
        self._deadline = None if not timeout else time.monotonic() + timeout

    def start(self) -> None:
        self._beat = time.monotonic()
        self.machine.start()
        self._watchdog.start()

    @property
    def alive(self) -> bool:
        return self.machine.alive

    def request_stop(self, why: str) -> None:
        """Thread-safe: power the machine off; the watchdog makes sure the process ends. A
        second request while one is pending (a second Ctrl-C or SIGTERM) ends it at once."""
        if self._stop_asked_at is not None:
            if why.startswith("signal") and self.machine.alive:
                self._stop_asked_at = time.monotonic() - self.stop_grace_s
            return
        self.stop_reason = why
        self._stop_asked_at = time.monotonic()
        self.machine.request_power_off()

    def on_signal(self, signum: int) -> None:
        if self.signal_number is None:
            self.signal_number = signum
        self.request_stop(f"signal {signal.Signals(signum).name}")

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.machine.wait(timeout_s)

    def result(self) -> StopInfo:
        return self.machine.result()

    def stop(self) -> None:
        """Power off if still running and wait for the loop (the watchdog bounds the wait)."""
        if self.machine.alive:
            self.request_stop("the front end ended")
        self.machine.wait()

    # ---- the watchdog thread --------------------------------------------------------------
    def _watch(self) -> None:
        while not self.machine.wait(WATCH_INTERVAL_S):
            now = time.monotonic()
            asked = self._stop_asked_at
            if asked is None and self._deadline is not None and now >= self._deadline:
                asked = self._deadline  # the machine loop ends itself with "timeout"
                self.stop_reason = "timeout"
            if asked is not None and now - asked >= self.stop_grace_s and self.machine.alive:
                self._end_hung(now - asked)
                return
            self._heartbeat(now)

    def _heartbeat(self, now: float) -> None:
        """Post a no-op that notes when the machine loop came round (it runs posted actions
        between slices, never inside one), every HEARTBEAT_S: a post also asks the CPU to end
        its slice, which recovers a slice whose timer was lost (a post from another thread can
        overwrite the slice timer's deadline between two slices, emu/machine.py _SliceTimer,
        and then nothing ends the slice). Warn once if the loop has not come round for
        `hung_warn_s`."""
        if now - self._posted_at >= HEARTBEAT_S:
            if self._beat >= self._posted_at:  # the last post was answered: a new wait
                self._waiting_since = now
            self._posted_at = now
            self.session.machine.post(self._beaten)
        waited = now - self._waiting_since
        if self._beat < self._waiting_since and waited >= self.hung_warn_s and not self._warned:
            self._warned = True
            self._say(
                f"tk: the machine has not responded for {waited:.0f} s: a kernel "
                f"service does not return ({self._where()}); --timeout, Ctrl-C, SIGTERM or "
                "closing the window ends the run"
            )

    def _beaten(self) -> None:
        self._beat = time.monotonic()
        self._warned = False

    def _where(self) -> str:
        ident = self.machine.ident
        return stuck_at(sys._current_frames().get(ident) if ident is not None else None)

    def _end_hung(self, waited_s: float) -> None:
        where = self._where()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001, S110 - the next cleanup still runs; we are exiting
                pass
        why = self.stop_reason or "a stop"
        self._say(
            f"tk: the machine did not stop {waited_s:.0f} s after {why}: a kernel service "
            f"never returned ({where}); ended (exit {EXIT_HUNG})"
        )
        os._exit(EXIT_HUNG)  # the machine thread cannot be joined: no interpreter shutdown

    def _say(self, line: str) -> None:
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # no stderr left to say it on


class HostSignals:
    """SIGTERM, SIGINT and SIGHUP for the whole of `tk boot` (main thread only). Before a
    supervisor is attached, a signal unwinds the boot (`SystemExit(128 + N)`), so `finally`
    blocks remove what was made; once attached, it asks the supervisor to power off."""

    def __init__(self) -> None:
        self.supervisor: Supervisor | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> HostSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in HOST_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.supervisor is None:
            raise SystemExit(EXIT_SIGNAL_BASE + signum)
        self.supervisor.on_signal(signum)
