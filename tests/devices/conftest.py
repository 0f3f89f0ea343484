"""Shared fixtures for device tests, in the style of QEMU's qtest: a bare board with buses, a
clock advanced by hand, channels and RAM, so a test pokes a chip through its ports only."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tradekernel.devices.base import Board
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock


class ByteMemory:
    """Guest physical memory backed by a bytearray."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address : address + len(data)] = data


def make_board() -> Board:
    return Board(PortBus(), MmioBus(), Clock(), Channels(), ByteMemory(1 << 20))


def run_until(clock: Clock, deadline_ns: int) -> None:
    """Advance virtual time to `deadline_ns`, firing each timer at its own deadline on the way
    (as the machine's run loop does), so callbacks see `now_ns()` equal to their deadline."""
    while True:
        next_deadline = clock.next_deadline()
        if next_deadline is None or next_deadline > deadline_ns:
            break
        clock.advance_to(next_deadline)
        clock.run_due()
    clock.advance_to(deadline_ns)
    clock.run_due()


def advance(clock: Clock, delta_ns: int) -> None:
    run_until(clock, clock.now_ns() + delta_ns)


@dataclass
class IrqRecorder:
    """Far end of an IRQ line for devices tested without a PIC: logs (time, level) changes."""

    clock: Clock
    changes: list[tuple[int, bool]] = field(default_factory=list)

    def __call__(self, number: int, level: bool) -> None:
        self.changes.append((self.clock.now_ns(), level))

    def rising_edges(self) -> list[int]:
        return [t for t, level in self.changes if level]

    @property
    def level(self) -> bool:
        return bool(self.changes) and self.changes[-1][1]


@dataclass
class ChannelRecorder:
    payloads: list[object] = field(default_factory=list)

    def __call__(self, payload: object) -> None:
        self.payloads.append(payload)


@pytest.fixture
def board() -> Board:
    return make_board()
