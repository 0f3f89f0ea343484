"""Shared pieces for the front-end tests: a booted session and waiting on its screen."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"  # before pygame opens a display

from collections.abc import Callable  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

from tradekernel.devices.base import Board  # noqa: E402
from tradekernel.devices.vga import VGA  # noqa: E402
from tradekernel.emu.bus import Channels, MmioBus, PortBus  # noqa: E402
from tradekernel.emu.clock import Clock  # noqa: E402
from tradekernel.emu.machine import StopInfo  # noqa: E402
from tradekernel.ui.session import BootOptions, Session  # noqa: E402

PROMPT = "tk:/>"
SAFETY_TIMEOUT_S = 30.0  # a wedged guest ends the run instead of hanging the test run


@pytest.fixture
def session():
    booted = Session(BootOptions(deterministic=True, timeout_s=SAFETY_TIMEOUT_S))
    yield booted
    booted.close()


def line_after(lines: list[str], command_line: str) -> str | None:
    """The screen line just below the last line that is `command_line` (trailing spaces
    ignored), or None if there is none yet."""
    stripped = [line.rstrip() for line in lines]
    for index in range(len(stripped) - 2, -1, -1):
        if stripped[index] == command_line:
            return stripped[index + 1]
    return None


class StoppedMachine:
    """The machine side of CrashedSession: it records what the UI posts and runs nothing."""

    def __init__(self) -> None:
        self.channels = Channels()
        self.posted: list[Callable[[], None]] = []

    def post(self, action: Callable[[], None]) -> None:
        self.posted.append(action)

    def request_power_off(self) -> None:
        raise AssertionError("only posted, never called from the UI thread")


class CrashedSession:
    """A session whose machine crashed at once: what the front ends do with a dead machine."""

    REPORT = "crash: triple fault\n  EIP 0x00010000"

    def __init__(self) -> None:
        board = Board(PortBus(), MmioBus(), Clock(), Channels(), memory=Ram())
        vga = VGA()
        vga.attach(board)
        self.machine = StoppedMachine()
        self.pc = SimpleNamespace(vga=vga)
        self.options = SimpleNamespace(deterministic=False, timeout_s=None)

    def run(self) -> StopInfo:
        return StopInfo("crash", self.REPORT)


class Ram:
    """1 MiB of plain memory for the fake session's VGA."""

    def __init__(self) -> None:
        self.data = bytearray(1 << 20)

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address : address + len(data)] = data
