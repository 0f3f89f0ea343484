"""The 8042 and its keyboard, driven through ports 0x60/0x64 as a driver would."""

from __future__ import annotations

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.i8042 import (
    DEFAULT_COMMAND_BYTE,
    I8042,
    SET2_MAKE,
    ST_A2,
    ST_OBF,
    ST_SYS,
    ST_UNINHIBITED,
    typematic_timing_ns,
)

from .conftest import SignalLog, run_until


class IrqRecorder:
    def __init__(self) -> None:
        self.edges: list[tuple[int, bool]] = []

    def __call__(self, number: int, level: bool) -> None:
        self.edges.append((number, level))

    def rising(self, number: int = 1) -> int:
        return sum(1 for n, level in self.edges if n == number and level)


@pytest.fixture
def kbc(board: Board) -> I8042:
    device = I8042()
    device.attach(board)
    return device


@pytest.fixture
def irqs(board: Board) -> IrqRecorder:
    recorder = IrqRecorder()
    board.irq(1).connect(recorder)
    board.irq(12).connect(recorder)
    return recorder


def command(board: Board, value: int) -> None:
    board.ports.write(0x64, 1, value)


def drain(board: Board) -> list[int]:
    out = []
    while board.ports.read(0x64) & ST_OBF:
        out.append(board.ports.read(0x60))
    return out


def test_status_after_reset(board: Board, kbc: I8042) -> None:
    status = board.ports.read(0x64)
    assert status & ST_OBF == 0
    assert status & ST_SYS and status & ST_UNINHIBITED


def test_self_test_and_interface_test(board: Board, kbc: I8042) -> None:
    command(board, 0xAA)
    assert board.ports.read(0x64) & (ST_OBF | ST_A2) == ST_OBF | ST_A2
    assert drain(board) == [0x55]
    command(board, 0xAB)
    assert drain(board) == [0x00]


def test_command_byte_read_write(board: Board, kbc: I8042) -> None:
    command(board, 0x20)
    assert drain(board) == [DEFAULT_COMMAND_BYTE]
    command(board, 0x60)
    board.ports.write(0x60, 1, 0x00)  # no IRQ, no translation, SYS flag clear
    assert board.ports.read(0x64) & (ST_SYS | ST_A2) == 0
    command(board, 0x20)
    assert drain(board) == [0x00]


def test_keyboard_reset_identify_echo(board: Board, kbc: I8042) -> None:
    board.ports.write(0x60, 1, 0xFF)
    assert drain(board) == [0xFA, 0xAA]
    board.ports.write(0x60, 1, 0xF2)
    assert drain(board) == [0xFA, 0xAB, 0x41]  # 0x83 through the translation, as on a PC
    board.ports.write(0x60, 1, 0xEE)
    assert drain(board) == [0xEE]
    board.ports.write(0x60, 1, 0x42)  # not a command
    assert drain(board) == [0xFE]
    board.ports.write(0x60, 1, 0xFE)  # resend the last byte
    assert drain(board) == [0xFE]


def test_leds_go_to_the_channel(board: Board, kbc: I8042) -> None:
    seen: list[object] = []
    board.channels.listen("keyboard-leds", seen.append)
    board.ports.write(0x60, 1, 0xED)
    assert drain(board) == [0xFA]
    board.ports.write(0x60, 1, 0x06)  # num + caps
    assert drain(board) == [0xFA]
    assert seen == [6]


def test_translation_to_set1_make_break(board: Board, kbc: I8042) -> None:
    kbc.press("a")
    kbc.press("a", False)
    assert drain(board) == [0x1E, 0x9E]
    kbc.press("up")
    kbc.press("up", False)
    assert drain(board) == [0xE0, 0x48, 0xE0, 0xC8]
    kbc.press("rctrl")
    kbc.press("rctrl", False)
    assert drain(board) == [0xE0, 0x1D, 0xE0, 0x9D]


def test_raw_set2_without_translation(board: Board, kbc: I8042) -> None:
    command(board, 0x60)
    board.ports.write(0x60, 1, 0x05)  # IRQ1 + SYS, no translation
    board.ports.write(0x60, 1, 0xF2)
    assert drain(board) == [0xFA, 0xAB, 0x83]
    kbc.press("enter")
    kbc.press("enter", False)
    kbc.press("delete")
    kbc.press("delete", False)
    assert drain(board) == [0x5A, 0xF0, 0x5A, 0xE0, 0x71, 0xE0, 0xF0, 0x71]


def test_scan_code_set_select(board: Board, kbc: I8042) -> None:
    command(board, 0x60)
    board.ports.write(0x60, 1, 0x05)  # raw bytes, to see the keyboard's own set
    board.ports.write(0x60, 1, 0xF0)
    board.ports.write(0x60, 1, 0x00)
    assert drain(board) == [0xFA, 0xFA, 0x02]
    board.ports.write(0x60, 1, 0xF0)
    board.ports.write(0x60, 1, 0x01)
    assert drain(board) == [0xFA, 0xFA]
    kbc.press("a")
    kbc.press("a", False)
    assert drain(board) == [0x1E, 0x9E]
    board.ports.write(0x60, 1, 0xF0)
    board.ports.write(0x60, 1, 0x03)  # set 3 is not built
    assert drain(board) == [0xFA, 0xFE]


def test_typematic_repeat_in_virtual_time(board: Board, kbc: I8042) -> None:
    delay, period = typematic_timing_ns(0x2B)
    assert delay == 500_000_000
    assert abs(1e9 / period - 10.9) < 0.1
    kbc.press("b")
    assert drain(board) == [0x30]
    run_until(board, delay - 1)
    assert drain(board) == []
    run_until(board, delay + 3 * period)
    assert drain(board) == [0x30] * 4
    kbc.press("b", False)
    run_until(board, delay + 10 * period)
    assert drain(board) == [0xB0]


def test_typematic_rate_command(board: Board, kbc: I8042) -> None:
    board.ports.write(0x60, 1, 0xF3)
    board.ports.write(0x60, 1, 0x00)  # 250 ms, 30 cps
    assert drain(board) == [0xFA, 0xFA]
    kbc.press("c")
    run_until(board, 250_000_000 + 10 * 33_360_000)
    assert drain(board) == [0x2E] * 12


def test_irq1_only_when_enabled(board: Board, kbc: I8042, irqs: IrqRecorder) -> None:
    kbc.press("a")
    assert irqs.rising() == 1 and board.irq(1).level
    board.ports.read(0x60)
    assert not board.irq(1).level
    command(board, 0x60)
    board.ports.write(0x60, 1, 0x44)  # translation + SYS, IRQ1 off
    kbc.press("a", False)
    assert irqs.rising() == 1 and board.ports.read(0x64) & ST_OBF
    assert board.ports.read(0x60) == 0x9E


def test_fifo_waits_behind_the_output_byte(board: Board, kbc: I8042, irqs: IrqRecorder) -> None:
    for key in "qwe":
        kbc.press(key)
    assert irqs.rising() == 1
    assert board.ports.read(0x60) == 0x10
    assert irqs.rising() == 2  # the next byte loaded and raised a fresh edge
    assert drain(board) == [0x11, 0x12]


def test_disable_keyboard_holds_bytes(board: Board, kbc: I8042) -> None:
    command(board, 0xAD)
    kbc.press("z")
    assert drain(board) == []
    command(board, 0xAE)
    assert drain(board) == [0x2C]


def test_a20_through_output_port(board: Board, kbc: I8042, signal_log: SignalLog) -> None:
    command(board, 0xD1)
    board.ports.write(0x60, 1, 0xDF)
    assert signal_log.a20 and signal_log.resets == 0
    command(board, 0xD0)
    assert drain(board)[0] & 0x03 == 0x03
    command(board, 0xDD)
    assert not signal_log.a20


def test_reset_line(board: Board, kbc: I8042, signal_log: SignalLog) -> None:
    command(board, 0xFE)
    assert signal_log.resets == 1
    command(board, 0xD1)
    board.ports.write(0x60, 1, 0x02)  # bit 0 low: reset asserted
    assert signal_log.resets == 2


def test_aux_port_reports_no_mouse(board: Board, kbc: I8042) -> None:
    command(board, 0xD4)
    board.ports.write(0x60, 1, 0xF4)
    status = board.ports.read(0x64)
    assert status & 0x61 == 0x61  # data, from AUX, time-out
    assert board.ports.read(0x60) == 0xFE


def test_bad_host_events_are_dropped(board: Board, kbc: I8042) -> None:
    board.channels.send("keyboard-key", ("nosuchkey", True))
    board.channels.send("keyboard-key", "garbage")
    assert drain(board) == []
    with pytest.raises(ValueError):
        kbc.press("nosuchkey")


def test_every_key_has_a_distinct_code() -> None:
    assert len(set(SET2_MAKE.values())) == len(SET2_MAKE)


def test_state_round_trip(board: Board, kbc: I8042) -> None:
    kbc.press("lshift")
    kbc.press("x")
    board.ports.write(0x60, 1, 0xED)
    saved = kbc.state()
    copy = I8042()
    other = Board(board.ports.__class__(), board.mmio, board.clock, board.channels, board.memory)
    copy.attach(other)
    copy.restore(saved)
    assert copy.state() == saved
    bad = dict(saved, version=99)
    with pytest.raises(ValueError):
        copy.restore(bad)
