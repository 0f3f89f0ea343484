"""A booted TradeKernel PC and its host side: where keys come from and where the screen goes.

Three front ends share this: the pygame window (ui/window.py), the raw terminal (an ANSI
mirror of the VGA screen, ui/terminal.py), and the plain pipe (the serial console as text,
stdin typed as keys, ui/pipe.py); ui/supervisor.py runs the machine for all three. Scratch
disks (a boot without --disk) carry their owner's PID in their name and are removed by
`close()`, or by a later `tk` once that process is gone. Keys always travel the real path:
host -> "keyboard-key" channel -> 8042 -> IRQ1.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu.gdbstub import GdbStub
from tradekernel.emu.machine import StopInfo
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.emu.platform import Platform
from tradekernel.kernel.main import Kernel
from tradekernel.ui.ansi import screen_text
from tradekernel.ui.keymap import KeyEvent


def make_pc(config: PcConfig) -> Pc:
    return Pc(config, kernel_factory=lambda machine: Kernel(Platform.of(machine)))


SCRATCH_PREFIX = "tradekernel-"  # scratch disks: tradekernel-PID-RANDOM.img in the temp dir
SCRATCH_SUFFIX = ".img"
HOST_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # what `tk boot` cleans up after


def scratch_disk(directory: Path | None = None) -> Path:
    """A fresh OS disk for a boot without --disk (made in ~15 ms, so none is kept). Its name
    carries our PID, so a later `tk` can tell it from one whose owner is still running."""
    handle, name = tempfile.mkstemp(
        prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", suffix=SCRATCH_SUFFIX, dir=directory
    )
    os.close(handle)
    try:
        create_os_disk(name)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold HOST_SIGNALS back (they stay pending) for a step that must finish as a whole."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HOST_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def remove_stale_scratch_disks(directory: Path | None = None) -> list[Path]:
    """Delete scratch disks left by `tk` processes that are gone (SIGKILL, a power cut), the
    only ways out that cannot clean up. Returns what was removed."""
    folder = Path(directory or tempfile.gettempdir())
    removed = []
    for path in folder.glob(f"{SCRATCH_PREFIX}*-*{SCRATCH_SUFFIX}"):
        owner = path.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _process_exists(int(owner)):
            try:
                path.unlink()
            except OSError:
                continue  # another user's, or already gone
            removed.append(path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


@dataclass
class BootOptions:
    disk: Path | None = None
    memory_mib: int = 32
    deterministic: bool = False
    read_only: bool = False
    timeout_s: float | None = None
    floppy: Path | None = None
    net: str = "user"  # the NE2000's cable: user, tap:NAME, socket:OPTIONS or none
    hostfwd: tuple[str, ...] = ()
    pcap: Path | None = None
    profile: Path | None = None  # --profile: the system profile from the first prompt on
    gdb: tuple[str, int] | None = None  # serve a GDB here (emu/gdbstub.py), as QEMU's -gdb
    gdb_wait: bool = False  # -S: hold the CPU before its first instruction for the GDB


class Session:
    def __init__(self, options: BootOptions) -> None:
        self.options = options
        self._own_disk = options.disk is None
        self.disk: Path | None = options.disk
        self.pc: Pc | None = None
        self.gdb: GdbStub | None = None
        try:
            if self._own_disk:
                with held_signals():  # a signal lands once the disk is ours to remove
                    self.disk = scratch_disk()
            self.pc = make_pc(
                PcConfig(
                    disk=self.disk,
                    ram_mib=options.memory_mib,
                    deterministic=options.deterministic,
                    read_only=options.read_only,
                    floppy=options.floppy,
                    net=options.net,
                    hostfwd=options.hostfwd,
                    pcap=None if options.pcap is None else str(options.pcap),
                )
            )
            if options.gdb is not None:
                host, port = options.gdb
                self.gdb = GdbStub(self.pc.machine, host, port, wait=options.gdb_wait)
        except BaseException:
            self.close()
            raise
        self.machine = self.pc.machine
        if options.profile is not None:
            self.machine.feed_when_idle(self._start_profile)

    def _start_profile(self) -> bool:
        """Idle feeder: start the kernel's profiler once the kernel is up; gives no input."""
        kernel = self.pc.kernel
        if kernel is not None and kernel.obs is not None and not kernel.obs.profiler.started_ns:
            kernel.obs.profiler.start()
        return False

    def finish_profile(self) -> list[str]:
        """Stop the profiler, write --profile's file (speedscope JSON for .json, else folded
        stacks) and return the report's lines; [] when the kernel never came up."""
        kernel = self.pc.kernel
        if self.options.profile is None or kernel is None or kernel.obs is None:
            return []
        profiler = kernel.obs.profiler
        profiler.stop()
        path = self.options.profile
        text = profiler.speedscope() if path.suffix == ".json" else profiler.folded()
        try:
            path.write_text(text)
        except OSError as error:  # checked writable before booting, but a disk can fill up
            return [*profiler.report(), f"tk: --profile {path}: {error.strerror or error}"]
        return [*profiler.report(), f"profile written to {path}"]

    def press(self, events: list[KeyEvent]) -> None:
        """Thread-safe: queue key events for the 8042 (from a UI or stdin thread)."""
        channels = self.machine.channels
        self.machine.post(lambda: [channels.send("keyboard-key", event) for event in events])

    def release_held_keys(self) -> None:
        """After a snapshot load: the machine may have been saved while a key was down (the
        Enter of `snapshot save`), and no key is down on this host, so each key its keyboard
        holds goes up; otherwise that key's next press would be taken for a repeat and dropped,
        whatever front end types it."""
        keyboard = self.pc.keyboard.keyboard
        if keyboard is not None and keyboard.held:
            self.press([(key, False) for key in sorted(keyboard.held)])

    def run(self) -> StopInfo:
        try:
            return self.machine.run(wall_timeout_s=self.options.timeout_s)
        finally:
            self.pc.flush()
            self.machine.close()

    def screen_lines(self) -> list[str]:
        return screen_text(self.pc.vga.text_screen())

    def close(self) -> None:
        """Idempotent: the GDB stub, the network link, then a scratch disk."""
        if self.gdb is not None:
            self.gdb.close()
        if self.pc is not None:
            self.pc.close()
        if self._own_disk and self.disk is not None:
            self.disk.unlink(missing_ok=True)
