"""MC146818: time formats, setting the clock, IRQ8 sources, status registers and CMOS bytes."""

from __future__ import annotations

from datetime import datetime

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.rtc import Rtc, civil_from_days, days_from_civil
from tradekernel.emu.clock import NS_PER_S

from .conftest import IrqRecorder, advance, make_board, run_until

LEAP_EVE = datetime(2024, 2, 29, 23, 59, 58)  # a Thursday


def setup(start: datetime | int = LEAP_EVE, **kwargs: int) -> tuple[Rtc, Board, IrqRecorder]:
    board = make_board()
    recorder = IrqRecorder(board.clock)
    board.irq(8).connect(recorder)
    rtc = Rtc(start_time=start, **kwargs)
    rtc.attach(board)
    return rtc, board, recorder


def cmos_read(board: Board, register: int) -> int:
    board.ports.write(0x70, 1, register)
    return board.ports.read(0x71)


def cmos_write(board: Board, register: int, value: int) -> None:
    board.ports.write(0x70, 1, register)
    board.ports.write(0x71, 1, value)


def read_time(board: Board) -> tuple[int, ...]:
    return tuple(cmos_read(board, r) for r in (0x32, 9, 8, 7, 6, 4, 2, 0))


def test_bcd_time_and_rollover_into_march() -> None:
    _, board, _ = setup()
    assert read_time(board) == (0x20, 0x24, 0x02, 0x29, 5, 0x23, 0x59, 0x58)
    advance(board.clock, 2 * NS_PER_S)
    assert read_time(board) == (0x20, 0x24, 0x03, 0x01, 6, 0x00, 0x00, 0x00)


def test_binary_and_12_hour_formats() -> None:
    _, board, _ = setup()
    cmos_write(board, 0x0B, 0x06)  # binary, 24 h
    assert read_time(board) == (20, 24, 2, 29, 5, 23, 59, 58)
    cmos_write(board, 0x0B, 0x00)  # BCD, 12 h
    assert cmos_read(board, 4) == 0x80 | 0x11
    advance(board.clock, 2 * NS_PER_S)
    assert cmos_read(board, 4) == 0x12  # midnight is 12 AM
    cmos_write(board, 0x0B, 0x04)  # binary, 12 h
    cmos_write(board, 4, 0x80 | 3)  # 3 PM
    cmos_write(board, 0x0B, 0x06)
    assert cmos_read(board, 4) == 15


def test_set_bit_holds_clock_while_time_is_written() -> None:
    _, board, _ = setup()
    cmos_write(board, 0x0B, 0x82)  # SET, BCD, 24 h
    for register, value in ((0, 0x30), (2, 0x15), (4, 0x09), (7, 0x31), (8, 0x12), (9, 0x99)):
        cmos_write(board, register, value)
    cmos_write(board, 0x32, 0x19)
    cmos_write(board, 6, 6)
    advance(board.clock, 5 * NS_PER_S)
    assert read_time(board) == (0x19, 0x99, 0x12, 0x31, 6, 0x09, 0x15, 0x30)
    cmos_write(board, 0x0B, 0x02)
    advance(board.clock, NS_PER_S - 1)
    assert cmos_read(board, 0) == 0x30
    advance(board.clock, 1)
    assert cmos_read(board, 0) == 0x31
    advance(board.clock, 30 * NS_PER_S + 45 * 60 * NS_PER_S + 14 * 3600 * NS_PER_S)
    assert read_time(board) == (0x20, 0x00, 0x01, 0x01, 7, 0x00, 0x01, 0x01)


def test_write_without_set_keeps_second_phase() -> None:
    _, board, _ = setup()
    advance(board.clock, NS_PER_S // 4)
    cmos_write(board, 2, 0x10)
    assert cmos_read(board, 2) == 0x10
    advance(board.clock, 3 * NS_PER_S // 4 - 1)
    assert cmos_read(board, 0) == 0x58
    advance(board.clock, 1)
    assert cmos_read(board, 0) == 0x59


def test_status_d_and_read_only_c() -> None:
    _, board, _ = setup()
    assert cmos_read(board, 0x0D) == 0x80
    cmos_write(board, 0x0C, 0xFF)
    cmos_write(board, 0x0D, 0x00)
    assert cmos_read(board, 0x0C) == 0x00
    assert cmos_read(board, 0x0D) == 0x80


def test_periodic_interrupt_rate_and_c_clearing() -> None:
    _, board, recorder = setup(start=1_700_000_000)
    cmos_write(board, 0x0A, 0x26)  # 1024 Hz
    cmos_write(board, 0x0B, 0x42)  # PIE
    for k in range(1, 1025):
        deadline = board.clock.next_deadline()
        assert deadline == -(-k * NS_PER_S // 1024)
        run_until(board.clock, deadline)
        assert recorder.level
        assert cmos_read(board, 0x0C) & 0xC0 == 0xC0
        assert not recorder.level
    assert len(recorder.rising_edges()) == 1024
    assert board.clock.now_ns() == NS_PER_S


def test_periodic_without_reading_c_gives_one_interrupt() -> None:
    _, board, recorder = setup(start=0)
    cmos_write(board, 0x0A, 0x2F)  # 2 Hz
    cmos_write(board, 0x0B, 0x42)
    advance(board.clock, 3 * NS_PER_S)
    assert recorder.rising_edges() == [NS_PER_S // 2]
    assert board.clock.next_deadline() is None  # no timers while IRQ8 is held high
    assert cmos_read(board, 0x0C) == 0xC0 | 0x10  # PF, IRQF, and UF (updates happened)


def test_update_in_progress_window() -> None:
    _, board, _ = setup(start=0)
    run_until(board.clock, NS_PER_S - 245_000)
    assert not cmos_read(board, 0x0A) & 0x80
    run_until(board.clock, NS_PER_S - 244_000)
    assert cmos_read(board, 0x0A) & 0x80
    run_until(board.clock, NS_PER_S)
    assert not cmos_read(board, 0x0A) & 0x80
    cmos_write(board, 0x0B, 0x82)
    run_until(board.clock, 2 * NS_PER_S - 1000)
    assert not cmos_read(board, 0x0A) & 0x80  # no updates while SET holds the clock


def test_update_ended_interrupt_each_second() -> None:
    _, board, recorder = setup(start=100)
    cmos_write(board, 0x0B, 0x12)  # UIE
    for second in range(1, 4):
        run_until(board.clock, second * NS_PER_S)
        assert recorder.level
        assert cmos_read(board, 0x0C) == 0xD0  # UF and IRQF; PF runs at 1024 Hz without PIE
    assert recorder.rising_edges() == [NS_PER_S, 2 * NS_PER_S, 3 * NS_PER_S]


def test_set_clears_uie() -> None:
    _, board, _ = setup()
    cmos_write(board, 0x0B, 0x12)
    cmos_write(board, 0x0B, 0x92)
    assert cmos_read(board, 0x0B) == 0x82


def test_alarm_interrupt() -> None:
    _, board, recorder = setup(start=datetime(2024, 1, 1, 12, 0, 0))
    cmos_write(board, 5, 0x12)
    cmos_write(board, 3, 0x00)
    cmos_write(board, 1, 0x05)
    cmos_write(board, 0x0B, 0x22)  # AIE
    run_until(board.clock, 10 * NS_PER_S)
    assert recorder.rising_edges() == [5 * NS_PER_S]
    assert cmos_read(board, 0x0C) & 0xA0 == 0xA0
    cmos_write(board, 1, 0xC0)  # any second of 12:00
    run_until(board.clock, 12 * NS_PER_S)
    assert recorder.rising_edges()[-1] == 11 * NS_PER_S


def test_alarm_flag_set_lazily_without_aie() -> None:
    _, board, _ = setup(start=datetime(2024, 1, 1, 23, 59, 0))
    for register in (1, 3, 5):
        cmos_write(board, register, 0x00)  # midnight
    cmos_write(board, 0x0A, 0x20)  # periodic rate 0: no PF
    cmos_read(board, 0x0C)
    advance(board.clock, 59 * NS_PER_S)
    assert cmos_read(board, 0x0C) == 0x10
    advance(board.clock, NS_PER_S)
    assert cmos_read(board, 0x0C) == 0x30


def test_divider_reset_stops_clock_and_restarts_half_second_later() -> None:
    _, board, _ = setup(start=0)
    cmos_write(board, 0x0A, 0x76)
    advance(board.clock, 10 * NS_PER_S)
    assert cmos_read(board, 0) == 0x00
    cmos_write(board, 0x0A, 0x26)
    advance(board.clock, NS_PER_S // 2 - 1)
    assert cmos_read(board, 0) == 0x00
    advance(board.clock, 1)
    assert cmos_read(board, 0) == 0x01


def test_cmos_memory_size_bytes_and_checksum() -> None:
    _, board, _ = setup(ram_bytes=32 * 1024 * 1024, floppy_drives=1)
    word = lambda low: cmos_read(board, low) | (cmos_read(board, low + 1) << 8)  # noqa: E731
    assert word(0x15) == 640
    assert word(0x17) == 31 * 1024
    assert word(0x30) == 31 * 1024
    assert word(0x34) == (16 * 1024 * 1024) // 65536
    assert cmos_read(board, 0x14) == 0x07
    checksum = sum(cmos_read(board, r) for r in range(0x10, 0x2E))
    assert (cmos_read(board, 0x2E) << 8) | cmos_read(board, 0x2F) == checksum


def test_large_ram_saturates_extended_fields() -> None:
    _, board, _ = setup(ram_bytes=8 * 1024 * 1024 * 1024)
    assert cmos_read(board, 0x17) | (cmos_read(board, 0x18) << 8) == 0xFFFF
    assert cmos_read(board, 0x34) | (cmos_read(board, 0x35) << 8) == 0xFFFF


def test_cmos_ram_and_nmi_bit() -> None:
    rtc, board, _ = setup()
    board.ports.write(0x70, 1, 0x80 | 0x40)
    board.ports.write(0x71, 1, 0xA5)
    assert rtc.nmi_disabled
    assert board.ports.read(0x71) == 0xA5
    board.ports.write(0x70, 1, 0x40)
    assert not rtc.nmi_disabled
    assert board.ports.read(0x70) == 0xFF


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError):
        Rtc(start_time="yesterday")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Rtc(ram_bytes=-1)


def test_civil_calendar_round_trip() -> None:
    for days in range(-800_000, 800_000, 997):
        assert days_from_civil(*civil_from_days(days)) == days
    assert days_from_civil(2000, 3, 1) == 11017


def test_state_round_trip() -> None:
    rtc, board, recorder = setup(start=datetime(2030, 6, 1, 8, 30, 0))
    cmos_write(board, 0x0B, 0x42 | 0x10)
    cmos_write(board, 0x50, 0x77)
    advance(board.clock, NS_PER_S // 3)
    snapshot = rtc.state()

    other_board = make_board()
    other_board.clock.advance_to(board.clock.now_ns())
    other_recorder = IrqRecorder(other_board.clock)
    other_board.irq(8).connect(other_recorder)
    other = Rtc(start_time=0)
    other.attach(other_board)
    other.restore(snapshot)
    assert other.state() == snapshot
    assert other_recorder.level == recorder.level
    start, other_start = len(recorder.changes), len(other_recorder.changes)
    for b in (board, other_board):
        for _ in range(5):
            advance(b.clock, NS_PER_S // 7)
            cmos_read(b, 0x0C)
    assert other_recorder.changes[other_start:] == recorder.changes[start:]
    assert read_time(other_board) == read_time(board)
    assert cmos_read(other_board, 0x50) == 0x77
