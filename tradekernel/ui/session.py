"""A booted TradeKernel PC and its host side: where keys come from and where the screen goes.

Three front ends share this: the pygame window (ui/window.py), the raw terminal (an ANSI
mirror of the VGA screen), and the plain pipe (the serial console as text, stdin typed as
keys). Keys always travel the real path: host -> "keyboard-key" channel -> 8042 -> IRQ1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu.machine import StopInfo
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.emu.platform import Platform
from tradekernel.kernel.main import Kernel
from tradekernel.ui.ansi import screen_text
from tradekernel.ui.keymap import KeyEvent, text_to_key_events


def make_pc(config: PcConfig) -> Pc:
    return Pc(config, kernel_factory=lambda machine: Kernel(Platform.of(machine)))


def scratch_disk() -> Path:
    """A fresh OS disk for a boot without --disk (made in ~15 ms, so none is kept)."""
    handle, name = tempfile.mkstemp(prefix="tradekernel-", suffix=".img")
    os.close(handle)
    create_os_disk(name)
    return Path(name)


@dataclass
class BootOptions:
    disk: Path | None = None
    memory_mib: int = 32
    deterministic: bool = False
    read_only: bool = False
    timeout_s: float | None = None
    floppy: Path | None = None


class Session:
    def __init__(self, options: BootOptions) -> None:
        self.options = options
        self._own_disk = options.disk is None
        self.disk = scratch_disk() if options.disk is None else options.disk
        self.pc = make_pc(
            PcConfig(
                disk=self.disk,
                ram_mib=options.memory_mib,
                deterministic=options.deterministic,
                read_only=options.read_only,
                floppy=options.floppy,
            )
        )
        self.machine = self.pc.machine

    def press(self, events: list[KeyEvent]) -> None:
        """Thread-safe: queue key events for the 8042 (from a UI or stdin thread)."""
        channels = self.machine.channels
        self.machine.post(lambda: [channels.send("keyboard-key", event) for event in events])

    def feed_text_when_idle(self, source: Callable[[], str]) -> None:
        """Type characters from `source` one at a time, each when the guest next idles.
        `source()` returns the next character, or "" when there is none (yet or any more)."""
        channels = self.machine.channels

        def feeder() -> bool:
            char = source()
            if not char:
                return False
            try:
                events = text_to_key_events(char)
            except ValueError:
                return True  # a character no US key types: skipped
            for event in events:
                channels.send("keyboard-key", event)
            return True

        self.machine.feed_when_idle(feeder)

    def run(self) -> StopInfo:
        try:
            return self.machine.run(wall_timeout_s=self.options.timeout_s)
        finally:
            self.pc.flush()
            self.machine.close()

    def screen_lines(self) -> list[str]:
        return screen_text(self.pc.vga.text_screen())

    def close(self) -> None:
        if self._own_disk:
            self.disk.unlink(missing_ok=True)


class PlainText:
    """Serial console bytes -> plain text lines on a stream (escape sequences and CR dropped)."""

    def __init__(self, stream) -> None:  # noqa: ANN001
        self.stream = stream
        self._escape = False

    def feed(self, data: bytes) -> None:
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
        if out:
            self.stream.write("".join(out))
            if "\n" in out:
                self.stream.flush()


def stdin_characters(deterministic: bool) -> Callable[[], str]:
    """Characters typed from a non-terminal stdin. Deterministic runs read all input first, so
    what the guest sees never depends on how fast the pipe delivers it."""
    queue: deque[str] = deque()
    if deterministic:
        queue.extend(sys.stdin.read())
    else:

        def reader() -> None:
            for char in iter(lambda: sys.stdin.read(1), ""):
                queue.append(char)

        threading.Thread(target=reader, name="stdin", daemon=True).start()
    return lambda: queue.popleft() if queue else ""
