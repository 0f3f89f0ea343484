"""16550A: loopback, FIFO trigger and timeout, IIR priorities, THRE, divisor latch, channels."""

from __future__ import annotations

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.uart import Uart16550

from .conftest import ChannelRecorder, IrqRecorder, advance, make_board

COM1 = 0x3F8
THR, IER, IIR, FCR, LCR, MCR, LSR, MSR, SCR = 0, 1, 2, 2, 3, 4, 5, 6, 7


def setup(divisor: int = 1) -> tuple[Uart16550, Board, IrqRecorder, ChannelRecorder]:
    board = make_board()
    irq = IrqRecorder(board.clock)
    board.irq(4).connect(irq)
    tx = ChannelRecorder()
    board.channels.listen("com1-tx", tx)
    uart = Uart16550(base=COM1, irq=4, channel="com1")
    uart.attach(board)
    out(board, LCR, 0x83)  # DLAB, 8N1
    out(board, 0, divisor & 0xFF)
    out(board, 1, divisor >> 8)
    out(board, LCR, 0x03)
    return uart, board, irq, tx


def out(board: Board, offset: int, value: int) -> None:
    board.ports.write(COM1 + offset, 1, value)


def inp(board: Board, offset: int) -> int:
    return board.ports.read(COM1 + offset)


def test_power_on_registers() -> None:
    _, board, irq, _ = setup()
    assert inp(board, IIR) == 0x01
    assert inp(board, LSR) == 0x60
    assert inp(board, MSR) == 0xB0
    assert not irq.level


def test_divisor_latch_and_scratch() -> None:
    uart, board, _, _ = setup(divisor=0x0180)
    out(board, LCR, 0x83)
    assert inp(board, 0) == 0x80
    assert inp(board, 1) == 0x01
    out(board, LCR, 0x03)
    assert uart.divisor == 0x180
    assert uart.character_ns() == 10 * 0x180 * 10**9 // 115200  # 300 baud, 8N1
    out(board, SCR, 0x5A)
    assert inp(board, SCR) == 0x5A
    out(board, IER, 0x0F)
    assert inp(board, IER) == 0x0F  # DLAB clear: the real IER, not DLM


def test_transmit_goes_to_channel() -> None:
    _, board, _, tx = setup()
    for byte in b"hi\n":
        out(board, THR, byte)
    assert tx.payloads == [b"h", b"i", b"\n"]
    assert inp(board, LSR) & 0x60 == 0x60


def test_loopback_really_loops_and_keeps_host_out() -> None:
    _, board, _, tx = setup()
    out(board, MCR, 0x10)
    out(board, THR, 0x41)
    assert tx.payloads == []
    assert inp(board, LSR) & 0x01
    assert inp(board, THR) == 0x41
    assert not inp(board, LSR) & 0x01
    board.channels.send("com1-rx", b"x")
    advance(board.clock, 10**6)
    assert not inp(board, LSR) & 0x01  # the receiver is cut off from the line in loopback


def test_loopback_modem_lines_and_deltas() -> None:
    _, board, _, _ = setup()
    out(board, MCR, 0x10)
    assert inp(board, MSR) == 0x0B  # CTS, DSR, DCD dropped: deltas, lines low
    out(board, MCR, 0x1F)
    assert inp(board, MSR) == 0xF0 | 0x0B
    out(board, MCR, 0x1B)  # OUT1 (RI) falls: trailing-edge RI
    assert inp(board, MSR) == 0xB0 | 0x04


def test_receive_from_channel_paced_by_baud_rate() -> None:
    uart, board, _, _ = setup(divisor=12)
    char = uart.character_ns()
    out(board, FCR, 0x01)
    board.channels.send("com1-rx", b"abc")
    advance(board.clock, char - 1)
    assert not inp(board, LSR) & 0x01
    advance(board.clock, 1)
    assert inp(board, LSR) & 0x01
    advance(board.clock, 2 * char)
    assert bytes(inp(board, THR) for _ in range(3)) == b"abc"


def test_overrun_without_fifo() -> None:
    uart, board, _, _ = setup()
    board.channels.send("com1-rx", b"12")
    advance(board.clock, 3 * uart.character_ns())
    assert inp(board, LSR) & 0x03 == 0x03
    assert inp(board, LSR) & 0x02 == 0  # reading LSR clears OE
    assert inp(board, THR) == ord("1")


def test_fifo_overrun_keeps_first_sixteen() -> None:
    uart, board, _, _ = setup()
    out(board, FCR, 0x07)
    board.channels.send("com1-rx", bytes(range(20)))
    advance(board.clock, 21 * uart.character_ns())
    assert inp(board, LSR) & 0x02
    assert bytes(inp(board, THR) for _ in range(16)) == bytes(range(16))
    assert not inp(board, LSR) & 0x01


def test_fifo_trigger_level_and_character_timeout() -> None:
    uart, board, irq, _ = setup()
    char = uart.character_ns()
    out(board, FCR, 0x81)  # FIFO on, trigger 8
    out(board, MCR, 0x08)  # OUT2
    out(board, IER, 0x01)
    assert inp(board, IIR) == 0xC1
    board.channels.send("com1-rx", b"0123456789")
    advance(board.clock, 7 * char)
    assert inp(board, IIR) == 0xC1  # 7 bytes: below trigger, timeout not yet
    advance(board.clock, char)
    assert inp(board, IIR) == 0xC4
    assert irq.level
    for _ in range(8):
        inp(board, THR)
    advance(board.clock, 2 * char)  # the last two arrive, below the trigger
    assert inp(board, IIR) == 0xC1
    advance(board.clock, 4 * char)
    assert inp(board, IIR) == 0xCC  # character timeout
    assert irq.level
    assert inp(board, THR) == ord("8")
    assert inp(board, IIR) == 0xC1  # a read clears the timeout and restarts its clock
    advance(board.clock, 4 * char)
    assert inp(board, IIR) == 0xCC
    assert inp(board, THR) == ord("9")
    assert not irq.level


def test_thre_interrupt_on_enable_and_cleared_by_iir_read() -> None:
    _, board, irq, _ = setup()
    out(board, MCR, 0x08)
    out(board, IER, 0x02)
    assert irq.level
    assert inp(board, IIR) == 0x02
    assert not irq.level
    assert inp(board, IIR) == 0x01
    out(board, THR, 0x55)  # the byte leaves at once: THRE again, with a fresh edge
    assert irq.level
    edges = len(irq.rising_edges())
    out(board, THR, 0x56)
    assert len(irq.rising_edges()) == edges + 1


def test_out2_gates_the_irq_line() -> None:
    _, board, irq, _ = setup()
    out(board, IER, 0x02)
    assert inp(board, IIR) & 0x0F == 0x02
    assert not irq.level
    out(board, IER, 0x00)
    out(board, IER, 0x02)
    out(board, MCR, 0x08)
    assert irq.level


def test_interrupt_priorities() -> None:
    uart, board, _, _ = setup()
    out(board, MCR, 0x18)  # loopback, OUT2
    out(board, IER, 0x0F)
    inp(board, IIR)  # consume the THRE from enabling ETBEI
    out(board, MCR, 0x19)  # DTR -> DSR: modem status change
    assert inp(board, IIR) == 0x00
    out(board, THR, 1)  # loopback: data ready, and THRE re-armed
    out(board, THR, 2)  # overrun without FIFO
    assert inp(board, IIR) == 0x06
    assert inp(board, LSR) & 0x02
    assert inp(board, IIR) == 0x04
    inp(board, THR)
    assert inp(board, IIR) == 0x02
    assert inp(board, IIR) == 0x00
    inp(board, MSR)
    assert inp(board, IIR) == 0x01
    del uart


def test_bad_channel_payload_is_refused() -> None:
    _, board, _, _ = setup()
    with pytest.raises(TypeError):
        board.channels.send("com1-rx", "text")


def test_constructor_checks_and_second_port() -> None:
    with pytest.raises(ValueError):
        Uart16550(irq=16)
    board = make_board()
    com2 = Uart16550(base=0x2F8, irq=3, channel="com2")
    com2.attach(board)
    tx = ChannelRecorder()
    board.channels.listen("com2-tx", tx)
    board.ports.write(0x2F8, 1, 0x7A)
    assert tx.payloads == [b"z"]
    assert board.ports.owner(0x2FF) is not None


def test_state_round_trip_mid_reception() -> None:
    uart, board, irq, _ = setup(divisor=3)
    out(board, FCR, 0x41)
    out(board, MCR, 0x08)
    out(board, IER, 0x01)
    board.channels.send("com1-rx", b"hello world")
    advance(board.clock, 3 * uart.character_ns() + 5)
    snapshot = uart.state()

    other_board = make_board()
    other_board.clock.advance_to(board.clock.now_ns())
    other = Uart16550()
    other.attach(other_board)
    other.restore(snapshot)
    assert other.state() == snapshot
    received = []
    for b in (board, other_board):
        advance(b.clock, 20 * uart.character_ns())
        received.append(bytes(b.ports.read(COM1) for _ in range(11)))
    assert received == [b"hello world"] * 2
    with pytest.raises(ValueError):
        other.restore({"version": 1})
