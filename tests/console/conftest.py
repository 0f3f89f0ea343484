"""A bare board for the console devices: buses, clock, channels and 1 MiB of RAM."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tradekernel.devices.base import Board, SystemSignals
from tradekernel.devices.vga import VGA
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock


class RamMemory:
    """PhysicalMemory over a bytearray; out-of-range access raises like a bus error would."""

    def __init__(self, size: int = 1 << 20) -> None:
        self.data = bytearray(size)

    def read(self, address: int, size: int) -> bytes:
        if address < 0 or address + size > len(self.data):
            raise ValueError(f"read {address:#x}+{size} outside RAM")
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        if address < 0 or address + len(data) > len(self.data):
            raise ValueError(f"write {address:#x}+{len(data)} outside RAM")
        self.data[address : address + len(data)] = data


@dataclass
class SignalLog:
    """Records what chips do to the board's reset and A20 lines."""

    resets: int = 0
    a20: bool = False
    a20_writes: list[bool] = field(default_factory=list)

    def signals(self) -> SystemSignals:
        def set_a20(enabled: bool) -> None:
            self.a20 = enabled
            self.a20_writes.append(enabled)

        def reset() -> None:
            self.resets += 1

        return SystemSignals(reset=reset, set_a20=set_a20, a20_enabled=lambda: self.a20)


@pytest.fixture
def signal_log() -> SignalLog:
    return SignalLog()


@pytest.fixture
def board(signal_log: SignalLog) -> Board:
    return Board(
        ports=PortBus(),
        mmio=MmioBus(),
        clock=Clock(),
        channels=Channels(),
        memory=RamMemory(),
        signals=signal_log.signals(),
    )


def run_until(board: Board, ns: int) -> None:
    """Advance virtual time, firing timers in order, as the machine's run loop does."""
    clock = board.clock
    while True:
        deadline = clock.next_deadline()
        if deadline is None or deadline > ns:
            break
        clock.advance_to(deadline)
        clock.run_due()
    clock.advance_to(ns)


@pytest.fixture
def vga(board: Board) -> VGA:
    device = VGA()
    device.attach(board)
    return device


def put_text(board: Board, row: int, col: int, text: bytes, attr: int) -> None:
    """Write characters with one attribute straight into the text buffer."""
    cells = bytes(b for char in text for b in (char, attr))
    board.memory.write(0xB8000 + (row * 80 + col) * 2, cells)
