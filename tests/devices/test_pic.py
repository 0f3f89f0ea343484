"""8259A pair: initialisation, masking, priority, EOI, cascade and spurious vectors via ports."""

from __future__ import annotations

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.pic import PicPair

from .conftest import make_board


def init_linux_style(board: Board, master_imr: int = 0x00, slave_imr: int = 0x00) -> None:
    """The ICW sequence Linux's init_8259A uses, remapped to 0x20/0x28."""
    out = board.ports.write
    out(0x20, 1, 0x11)
    out(0x21, 1, 0x20)
    out(0x21, 1, 0x04)
    out(0x21, 1, 0x01)
    out(0xA0, 1, 0x11)
    out(0xA1, 1, 0x28)
    out(0xA1, 1, 0x02)
    out(0xA1, 1, 0x01)
    out(0x21, 1, master_imr)
    out(0xA1, 1, slave_imr)


def read_isr(board: Board, command_port: int) -> int:
    board.ports.write(command_port, 1, 0x0B)
    return board.ports.read(command_port)


def read_irr(board: Board, command_port: int) -> int:
    board.ports.write(command_port, 1, 0x0A)
    return board.ports.read(command_port)


@pytest.fixture
def pic_board() -> tuple[PicPair, Board]:
    board = make_board()
    pic = PicPair()
    pic.attach(board)
    init_linux_style(board)
    return pic, board


def test_bios_power_on_state_delivers_timer_at_vector_8() -> None:
    board = make_board()
    pic = PicPair()
    pic.attach(board)
    assert board.interrupt_controller is pic
    assert board.ports.read(0x21) == 0xF8
    assert board.ports.read(0xA1) == 0xFF
    board.irq(0).pulse()
    assert pic.pending()
    assert pic.acknowledge() == 0x08
    board.irq(8).pulse()
    assert not pic.pending()  # the slave is fully masked after POST


def test_raw_reset_waits_for_icw_and_needs_a_fresh_edge() -> None:
    board = make_board()
    pic = PicPair(bios_initialised=False)
    pic.attach(board)
    board.irq(3).raise_()
    assert not pic.pending()
    init_linux_style(board)
    assert not pic.pending()  # ICW1 resets the edge detector: the line is already high
    board.irq(3).lower()
    board.irq(3).raise_()
    assert pic.pending()
    assert pic.acknowledge() == 0x23


def test_mask_holds_request_until_unmasked(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0x21, 1, 0x10)
    board.irq(4).pulse()
    assert not pic.pending()
    assert read_irr(board, 0x20) == 0x10
    board.ports.write(0x21, 1, 0x00)
    assert pic.pending()
    assert pic.acknowledge() == 0x24


def test_priority_nesting_and_non_specific_eoi(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.irq(3).pulse()
    board.irq(1).pulse()
    assert pic.acknowledge() == 0x21
    assert not pic.pending()  # IRQ3 is lower than IRQ1, now in service
    board.irq(0).pulse()
    assert pic.pending()  # IRQ0 outranks IRQ1: nests
    assert pic.acknowledge() == 0x20
    assert read_isr(board, 0x20) == 0x03
    assert read_irr(board, 0x20) == 0x08
    board.ports.write(0x20, 1, 0x20)  # non-specific EOI ends the highest: IRQ0
    assert read_isr(board, 0x20) == 0x02
    assert not pic.pending()
    board.ports.write(0x20, 1, 0x20)
    assert read_isr(board, 0x20) == 0x00
    assert pic.acknowledge() == 0x23


def test_specific_eoi_clears_only_that_level(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.irq(5).pulse()
    assert pic.acknowledge() == 0x25
    board.irq(2 + 1).pulse()
    assert pic.acknowledge() == 0x23
    board.ports.write(0x20, 1, 0x60 | 5)
    assert read_isr(board, 0x20) == 0x08


def test_cascade_through_slave(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.irq(10).pulse()
    assert pic.pending()
    assert pic.acknowledge() == 0x2A
    assert read_isr(board, 0x20) == 0x04
    assert read_isr(board, 0xA0) == 0x04
    board.irq(12).pulse()
    assert not pic.pending()  # lower than IRQ10 on the slave
    board.irq(9).pulse()
    assert not pic.pending()  # fully nested: the master holds IR2 in service
    board.ports.write(0xA0, 1, 0x20)
    board.ports.write(0x20, 1, 0x20)
    assert pic.acknowledge() == 0x29
    board.ports.write(0xA0, 1, 0x20)
    board.ports.write(0x20, 1, 0x20)
    assert pic.acknowledge() == 0x2C


def test_special_fully_nested_lets_slave_nest(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    master_init = ((0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x11), (0x21, 0x00))
    for port, value in master_init:  # ICW4 0x11: special fully nested mode
        board.ports.write(port, 1, value)
    board.irq(10).pulse()
    assert pic.acknowledge() == 0x2A
    board.irq(9).pulse()
    assert pic.pending()
    assert pic.acknowledge() == 0x29
    assert read_isr(board, 0xA0) == 0x06


def test_slave_mask_blocks_cascade(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0xA1, 1, 0x01)
    board.irq(8).pulse()
    assert not pic.pending()
    board.ports.write(0x21, 1, 0x04)
    board.ports.write(0xA1, 1, 0x00)
    assert not pic.pending()  # cascade input masked on the master


def test_spurious_irq7_when_level_request_vanishes(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0x4D0, 1, 0x08)  # IRQ3 level-triggered
    assert board.ports.read(0x4D0) == 0x08
    board.irq(3).raise_()
    assert pic.pending()
    board.irq(3).lower()
    assert pic.acknowledge() == 0x27
    assert read_isr(board, 0x20) == 0x00


def test_acknowledge_without_request_is_spurious(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    assert pic.acknowledge() == 0x27
    assert read_isr(board, 0x20) == 0x00


def test_spurious_irq15_leaves_cascade_in_service(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0x4D1, 1, 0x04)  # IRQ10 level-triggered
    board.irq(10).raise_()
    board.irq(10).lower()
    assert pic.pending()  # the master latched the slave's INT edge on IR2
    assert pic.acknowledge() == 0x2F
    assert read_isr(board, 0xA0) == 0x00
    assert read_isr(board, 0x20) == 0x04
    board.ports.write(0x20, 1, 0x20)
    assert read_isr(board, 0x20) == 0x00


def test_elcr_hardwired_edge_bits(pic_board: tuple[PicPair, Board]) -> None:
    _, board = pic_board
    board.ports.write(0x4D0, 1, 0xFF)
    board.ports.write(0x4D1, 1, 0xFF)
    assert board.ports.read(0x4D0) == 0xF8
    assert board.ports.read(0x4D1) == 0xDE


def test_level_request_stays_pending_while_line_high(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0x4D1, 1, 0x08)  # IRQ11 level
    board.irq(11).raise_()
    assert pic.acknowledge() == 0x2B
    board.ports.write(0xA0, 1, 0x20)
    board.ports.write(0x20, 1, 0x20)
    assert pic.pending()  # still asserted: requests again after EOI
    assert pic.acknowledge() == 0x2B
    board.irq(11).lower()  # the driver clears the cause, then sends EOI
    board.ports.write(0xA0, 1, 0x20)
    board.ports.write(0x20, 1, 0x20)
    assert not pic.pending()


def test_auto_eoi_never_sets_isr() -> None:
    board = make_board()
    pic = PicPair(bios_initialised=False)
    pic.attach(board)
    for port, value in ((0x20, 0x11), (0x21, 0x40), (0x21, 0x04), (0x21, 0x03), (0x21, 0)):
        board.ports.write(port, 1, value)
    board.irq(6).pulse()
    assert pic.acknowledge() == 0x46
    assert read_isr(board, 0x20) == 0x00


def test_single_mode_without_icw4() -> None:
    board = make_board()
    pic = PicPair(bios_initialised=False)
    pic.attach(board)
    board.ports.write(0x20, 1, 0x12)  # single, no ICW4
    board.ports.write(0x21, 1, 0x50)
    board.ports.write(0x21, 1, 0x00)  # OCW1 straight away
    board.irq(1).pulse()
    assert pic.acknowledge() == 0x51


def test_poll_mode_acknowledges(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0x20, 1, 0x0C)
    assert board.ports.read(0x20) == 0x00
    board.irq(4).pulse()
    board.ports.write(0x20, 1, 0x0C)
    assert board.ports.read(0x20) == 0x84
    assert read_isr(board, 0x20) == 0x10
    assert not pic.pending()


def test_rotate_on_non_specific_eoi(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.irq(1).pulse()
    assert pic.acknowledge() == 0x21
    board.ports.write(0x20, 1, 0xA0)  # rotate on non-specific EOI: IRQ1 becomes lowest
    board.irq(1).pulse()
    board.irq(5).pulse()
    assert pic.acknowledge() == 0x25
    board.ports.write(0x20, 1, 0xC0 | 4)  # set priority: IRQ4 lowest, so IRQ5 is highest
    board.ports.write(0x20, 1, 0x20)
    assert pic.acknowledge() == 0x21


def test_special_mask_mode_lets_lower_levels_in(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.irq(3).pulse()
    assert pic.acknowledge() == 0x23
    board.irq(5).pulse()
    assert not pic.pending()
    board.ports.write(0x21, 1, 0x08)
    board.ports.write(0x20, 1, 0x68)  # OCW3: set special mask
    assert pic.pending()
    assert pic.acknowledge() == 0x25
    board.ports.write(0x20, 1, 0x48)  # reset special mask
    assert read_isr(board, 0x20) == 0x28


def test_isa_irq2_is_routed_to_irq9(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.irq(2).pulse()
    assert pic.acknowledge() == 0x29


def test_interrupt_changed_called_when_intr_rises() -> None:
    board = make_board()
    calls: list[int] = []
    board.interrupt_changed = lambda: calls.append(1)
    pic = PicPair()
    pic.attach(board)
    calls.clear()
    board.irq(1).pulse()
    assert calls
    assert pic.acknowledge() == 0x09
    calls.clear()
    board.irq(7).pulse()  # masked after POST
    assert not calls


def test_state_round_trip(pic_board: tuple[PicPair, Board]) -> None:
    pic, board = pic_board
    board.ports.write(0x21, 1, 0x02)
    board.irq(4).pulse()
    board.irq(10).pulse()
    assert pic.acknowledge() == 0x22 + 0x08  # IRQ10 via cascade outranks IRQ4
    board.irq(1).pulse()
    snapshot = pic.state()

    other_board = make_board()
    other = PicPair()
    other.attach(other_board)
    other.restore(snapshot)
    assert other.state() == snapshot
    for target, target_board in ((pic, board), (other, other_board)):
        assert read_isr(target_board, 0x20) == 0x04
        target_board.ports.write(0xA0, 1, 0x20)
        target_board.ports.write(0x20, 1, 0x20)
        assert target.acknowledge() == 0x24
        target_board.ports.write(0x21, 1, 0x00)
        assert target.acknowledge() == 0x21


def test_restore_refuses_other_version() -> None:
    pic = PicPair()
    with pytest.raises(ValueError, match="version"):
        pic.restore({"version": 99})
    with pytest.raises(ValueError):
        pic.restore({"version": PicPair.STATE_VERSION, "master": {}})
