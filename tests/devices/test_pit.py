"""8254: IRQ0 edges at exact virtual times, one-shot, latch/read-back, access order, port 0x61."""

from __future__ import annotations

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.pit import PIT_HZ, Pit, tick_time
from tradekernel.emu.clock import NS_PER_S

from .conftest import IrqRecorder, advance, make_board, run_until


def expected_edge(start_ns: int, ticks: int) -> int:
    return start_ns + -(-ticks * NS_PER_S // PIT_HZ)


def setup(start_ns: int = 0, bios: bool = False) -> tuple[Pit, Board, IrqRecorder]:
    board = make_board()
    board.clock.advance_to(start_ns)
    recorder = IrqRecorder(board.clock)
    board.irq(0).connect(recorder)
    pit = Pit(bios_initialised=bios)
    pit.attach(board)
    return pit, board, recorder


def program(board: Board, counter: int, mode: int, count: int, bcd: bool = False) -> None:
    board.ports.write(0x43, 1, (counter << 6) | 0x30 | (mode << 1) | int(bcd))
    board.ports.write(0x40 + counter, 1, count & 0xFF)
    board.ports.write(0x40 + counter, 1, (count >> 8) & 0xFF)


def read_lohi(board: Board, counter: int) -> int:
    low = board.ports.read(0x40 + counter)
    return low | (board.ports.read(0x40 + counter) << 8)


@pytest.mark.parametrize("mode", [2, 3])
@pytest.mark.parametrize("divisor", [2, 100, 1193, 11932, 0])
def test_periodic_irq0_edges_land_exactly(mode: int, divisor: int) -> None:
    start = 12_345
    _, board, recorder = setup(start)
    program(board, 0, mode, divisor)
    period = divisor or 0x10000
    run_until(board.clock, expected_edge(start, 1000 * period))
    edges = recorder.rising_edges()
    assert edges == [expected_edge(start, k * period) for k in range(1, 1001)]
    assert len(board.clock._heap) <= 2  # one live timer (plus at most one cancelled entry)


def test_bios_default_is_18_2_hz() -> None:
    _, board, recorder = setup(bios=True)
    run_until(board.clock, NS_PER_S)
    assert len(recorder.rising_edges()) == 18
    assert recorder.rising_edges()[0] == expected_edge(0, 65536)


def test_mode0_one_shot_raises_and_holds() -> None:
    _, board, recorder = setup(1_000)
    program(board, 0, 0, 5000)
    run_until(board.clock, 10 * NS_PER_S // 1000)
    assert recorder.rising_edges() == [expected_edge(1_000, 5000)]
    assert recorder.level  # OUT stays high after terminal count
    board.ports.write(0x40, 1, 0x10)  # first byte of a new count drops OUT
    assert not recorder.level
    board.ports.write(0x40, 1, 0x00)
    reload_time = board.clock.now_ns()
    advance(board.clock, NS_PER_S // 100)
    assert recorder.rising_edges()[-1] == expected_edge(reload_time, 0x10)


def test_mode0_count_keeps_counting_after_terminal_count() -> None:
    _, board, _ = setup()
    program(board, 0, 0, 10)
    run_until(board.clock, tick_time(0, 15))
    assert read_lohi(board, 0) == 0x10000 - 5


def test_reprogramming_cancels_pending_edge() -> None:
    _, board, recorder = setup()
    program(board, 0, 2, 1000)
    run_until(board.clock, expected_edge(0, 500))
    restart = board.clock.now_ns()
    program(board, 0, 2, 3000)
    run_until(board.clock, expected_edge(restart, 6000))
    assert recorder.rising_edges() == [expected_edge(restart, 3000), expected_edge(restart, 6000)]


def test_new_count_while_running_applies_at_period_end() -> None:
    _, board, recorder = setup()
    program(board, 0, 2, 1000)
    run_until(board.clock, expected_edge(0, 500))
    board.ports.write(0x40, 1, 500 & 0xFF)  # same mode, no control word
    board.ports.write(0x40, 1, 500 >> 8)
    boundary = expected_edge(0, 1000)
    run_until(board.clock, boundary + 3 * NS_PER_S * 500 // PIT_HZ + 1000)
    assert recorder.rising_edges() == [boundary] + [
        expected_edge(boundary, k * 500) for k in range(1, 4)
    ]


def test_mode4_strobe_pulses_after_terminal_count() -> None:
    _, board, recorder = setup()
    program(board, 0, 4, 100)
    run_until(board.clock, NS_PER_S // 100)
    assert recorder.rising_edges() == [expected_edge(0, 101)]
    assert not recorder.level


def test_live_read_is_lazy_and_lohi_ordered() -> None:
    _, board, _ = setup()
    program(board, 0, 2, 1000)
    run_until(board.clock, tick_time(0, 300))
    assert read_lohi(board, 0) == 700
    run_until(board.clock, tick_time(0, 1300))
    assert read_lohi(board, 0) == 700  # one full period later


def test_counter_latch_freezes_value() -> None:
    _, board, _ = setup()
    program(board, 0, 2, 1000)
    run_until(board.clock, tick_time(0, 250))
    board.ports.write(0x43, 1, 0x00)  # latch counter 0
    run_until(board.clock, tick_time(0, 400))
    board.ports.write(0x43, 1, 0x00)  # ignored: the first latch is unread
    assert read_lohi(board, 0) == 750
    assert read_lohi(board, 0) == 600  # live again


def test_low_only_and_high_only_access() -> None:
    _, board, _ = setup()
    board.ports.write(0x43, 1, 0x14)  # counter 0, LSB only, mode 2
    board.ports.write(0x40, 1, 200)
    run_until(board.clock, tick_time(0, 50))
    assert board.ports.read(0x40) == 150
    board.ports.write(0x43, 1, 0x24)  # MSB only, mode 2
    start = board.clock.now_ns()
    board.ports.write(0x40, 1, 0x02)  # count 0x200
    run_until(board.clock, tick_time(start, 0x100))
    assert board.ports.read(0x40) == 0x01


def test_read_back_status_then_count() -> None:
    _, board, _ = setup()
    board.ports.write(0x43, 1, 0x34)
    board.ports.write(0x43, 1, 0xE2)  # read-back status of counter 0
    assert board.ports.read(0x40) == 0x80 | 0x40 | 0x34  # OUT high, null count, mode 2 lo/hi
    board.ports.write(0x40, 1, 0xE8)
    board.ports.write(0x40, 1, 0x03)
    run_until(board.clock, tick_time(0, 10))
    board.ports.write(0x43, 1, 0xC2)  # count and status
    assert board.ports.read(0x40) == 0x80 | 0x34
    assert read_lohi(board, 0) == 990
    board.ports.write(0x43, 1, 0xD2)  # count only
    run_until(board.clock, tick_time(0, 20))
    assert read_lohi(board, 0) == 990


def test_mode3_counts_down_by_two() -> None:
    _, board, _ = setup()
    program(board, 0, 3, 100)
    run_until(board.clock, tick_time(0, 10))
    assert read_lohi(board, 0) == 80
    run_until(board.clock, tick_time(0, 60))
    assert read_lohi(board, 0) == 80
    board.ports.write(0x43, 1, 0xE2)
    assert board.ports.read(0x40) & 0x80 == 0  # second half: OUT low


def test_bcd_counting() -> None:
    _, board, recorder = setup()
    program(board, 0, 2, 0x1000, bcd=True)  # 1000 decimal
    run_until(board.clock, tick_time(0, 1))
    assert read_lohi(board, 0) == 0x0999
    run_until(board.clock, expected_edge(0, 2000))
    assert recorder.rising_edges() == [expected_edge(0, 1000), expected_edge(0, 2000)]


def test_port61_gate_and_out2() -> None:
    pit, board, _ = setup()
    board.ports.write(0x61, 1, 0x00)
    program(board, 2, 0, 1000)  # Linux's PIT calibration loop: mode 0 on counter 2
    run_until(board.clock, tick_time(0, 2000))
    assert board.ports.read(0x61) & 0x20 == 0  # gate low: not counting
    assert read_lohi(board, 2) == 1000
    board.ports.write(0x61, 1, 0x01)
    gate_on = board.clock.now_ns()
    run_until(board.clock, tick_time(gate_on, 999))
    assert board.ports.read(0x61) & 0x21 == 0x01
    run_until(board.clock, tick_time(gate_on, 1000))
    assert board.ports.read(0x61) & 0x21 == 0x21
    assert pit.counters[0].timer_deadline() is None  # counter 2 needs no clock timer


def test_port61_refresh_toggle_flips_with_time() -> None:
    _, board, _ = setup()
    seen = set()
    for step in range(8):
        run_until(board.clock, step * 15_085)
        seen.add(board.ports.read(0x61) & 0x10)
    assert seen == {0x00, 0x10}
    board.ports.write(0x61, 1, 0xFF)
    assert board.ports.read(0x61) & 0x0F == 0x0F


def test_mode1_retriggered_by_gate() -> None:
    _, board, _ = setup()
    board.ports.write(0x61, 1, 0x00)
    program(board, 2, 1, 100)
    run_until(board.clock, tick_time(0, 500))
    assert board.ports.read(0x61) & 0x20  # OUT high until triggered
    board.ports.write(0x61, 1, 0x01)
    trigger = board.clock.now_ns()
    assert not board.ports.read(0x61) & 0x20
    run_until(board.clock, tick_time(trigger, 100))
    assert board.ports.read(0x61) & 0x20


def test_state_round_trip_continues_identically() -> None:
    pit, board, recorder = setup()
    program(board, 0, 2, 1193)
    program(board, 2, 3, 500)
    run_until(board.clock, expected_edge(0, 1193 * 3 + 100))
    board.ports.write(0x43, 1, 0x80)  # latch counter 2
    snapshot = pit.state()

    other_board = make_board()
    other_board.clock.advance_to(board.clock.now_ns())
    other_recorder = IrqRecorder(other_board.clock)
    other_board.irq(0).connect(other_recorder)
    other = Pit()
    other.attach(other_board)
    other.restore(snapshot)
    assert other.state() == snapshot
    edges_before = len(recorder.rising_edges())
    for b in (board, other_board):
        run_until(b.clock, expected_edge(0, 1193 * 10))
    assert other_recorder.rising_edges() == recorder.rising_edges()[edges_before:]
    assert read_lohi(other_board, 2) == read_lohi(board, 2)
    assert read_lohi(other_board, 0) == read_lohi(board, 0)


def test_restore_rejects_bad_snapshot() -> None:
    pit, _, _ = setup()
    with pytest.raises(ValueError, match="version"):
        pit.restore({"version": 0})
    with pytest.raises(ValueError):
        pit.restore({"version": Pit.STATE_VERSION, "port_b": 0, "counters": [{}, {}, {}]})
