"""Port 0x92 (fast A20, fast reset), debug console 0xE9, POST code 0x80, ACPI soft-off 0x604."""

from __future__ import annotations

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.debugcon import DebugCon
from tradekernel.devices.port92 import Port92
from tradekernel.devices.postcode import PostCode
from tradekernel.devices.power import PowerControl

from .conftest import ChannelRecorder, make_board


class SignalLog:
    """Board signals that remember what the chips did."""

    def __init__(self, board: Board) -> None:
        self.a20 = False
        self.resets = 0
        self.power_offs = 0
        board.signals.set_a20 = self._set_a20
        board.signals.a20_enabled = lambda: self.a20
        board.signals.reset = self._reset
        board.signals.power_off = self._power_off

    def _set_a20(self, enabled: bool) -> None:
        self.a20 = enabled

    def _reset(self) -> None:
        self.resets += 1

    def _power_off(self) -> None:
        self.power_offs += 1


def test_port92_fast_a20_reads_board_state() -> None:
    board = make_board()
    signals = SignalLog(board)
    Port92().attach(board)
    assert board.ports.read(0x92) & 0x02 == 0
    board.ports.write(0x92, 1, 0x02)
    assert signals.a20
    assert board.ports.read(0x92) & 0x02
    signals.a20 = False  # the 8042 turned it off behind our back
    assert board.ports.read(0x92) & 0x02 == 0
    board.ports.write(0x92, 1, 0x00)
    assert not signals.a20
    assert signals.resets == 0


def test_port92_fast_reset_on_rising_bit0() -> None:
    board = make_board()
    signals = SignalLog(board)
    Port92().attach(board)
    board.ports.write(0x92, 1, 0x03)
    assert signals.resets == 1
    board.ports.write(0x92, 1, 0x03)  # already 1: no new edge
    assert signals.resets == 1
    board.ports.write(0x92, 1, 0x02)
    board.ports.write(0x92, 1, 0x03)
    assert signals.resets == 2
    assert signals.a20


def test_debugcon_sends_bytes_and_identifies() -> None:
    board = make_board()
    log = ChannelRecorder()
    board.channels.listen("debugcon", log)
    DebugCon().attach(board)
    for byte in b"ok\n":
        board.ports.write(0xE9, 1, byte)
    board.ports.write(0xE9, 2, 0x4142)
    assert log.payloads == [b"o", b"k", b"\n", b"B"]
    assert board.ports.read(0xE9) == 0xE9


def test_postcode_remembers_and_reports() -> None:
    board = make_board()
    log = ChannelRecorder()
    board.channels.listen("post", log)
    post = PostCode()
    post.attach(board)
    board.ports.write(0x80, 1, 0x55)
    board.ports.write(0x80, 1, 0xAA)
    assert board.ports.read(0x80) == 0xAA
    assert log.payloads == [0x55, 0xAA]
    post.reset()
    assert board.ports.read(0x80) == 0


def test_power_off_on_s5() -> None:
    board = make_board()
    signals = SignalLog(board)
    PowerControl().attach(board)
    board.ports.write(0x604, 2, 0x0001)  # SCI_EN only
    assert signals.power_offs == 0
    assert board.ports.read(0x604, 2) == 0x0001
    board.ports.write(0x604, 2, 0x2000)
    assert signals.power_offs == 1
    assert board.ports.read(0x604, 2) & 0x2000 == 0  # SLP_EN reads as 0


def test_power_other_sleep_types_and_byte_writes() -> None:
    board = make_board()
    signals = SignalLog(board)
    PowerControl().attach(board)
    board.ports.write(0x604, 2, 0x2000 | (1 << 10))  # S1-ish: not modelled
    assert signals.power_offs == 0
    board.ports.write(0x604, 1, 0x00)
    board.ports.write(0x605, 1, 0x20)  # high byte alone: SLP_EN, SLP_TYP 0
    assert signals.power_offs == 1


@pytest.mark.parametrize("device_class", [Port92, DebugCon, PostCode, PowerControl])
def test_restore_refuses_other_version(device_class: type) -> None:
    device = device_class()
    with pytest.raises(ValueError):
        device.restore({"version": 999})
