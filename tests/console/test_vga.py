"""VGA text mode registers, timing and the screen snapshot, poked through the ports."""

from __future__ import annotations

import pytest

from tradekernel.devices.base import Board
from tradekernel.devices.vga import FRAME_NS, LINE_NS, VGA

from .conftest import run_until


def crtc_write(board: Board, index: int, value: int) -> None:
    board.ports.write(0x3D4, 1, index)
    board.ports.write(0x3D5, 1, value)


def crtc_read(board: Board, index: int) -> int:
    board.ports.write(0x3D4, 1, index)
    return board.ports.read(0x3D5)


def test_cursor_registers_and_index_readback(board: Board, vga: VGA) -> None:
    position = 3 * 80 + 7
    crtc_write(board, 0x0E, position >> 8)
    crtc_write(board, 0x0F, position & 0xFF)
    assert board.ports.read(0x3D4) == 0x0F
    assert crtc_read(board, 0x0E) == position >> 8
    crtc_write(board, 0x0A, 0x0D)
    crtc_write(board, 0x0B, 0x0E)
    screen = vga.text_screen()
    assert (screen.cursor_row, screen.cursor_col) == (3, 7)
    assert (screen.cursor_start, screen.cursor_end) == (13, 14)
    assert screen.cursor_visible
    crtc_write(board, 0x0A, 0x2D)  # bit 5: cursor off
    assert not vga.text_screen().cursor_visible


def test_word_write_sets_index_and_data(board: Board, vga: VGA) -> None:
    board.ports.write(0x3D4, 2, 0x0A | (0x20 << 8))
    assert crtc_read(board, 0x0A) == 0x20


def test_write_protect_of_timing_registers(board: Board, vga: VGA) -> None:
    before = crtc_read(board, 0x01)
    crtc_write(board, 0x01, 0x12)  # register 0x11 bit 7 is set in mode 3
    assert crtc_read(board, 0x01) == before
    crtc_write(board, 0x11, 0x0E)
    crtc_write(board, 0x01, 0x12)
    assert crtc_read(board, 0x01) == 0x12


def test_start_address_scrolls_the_snapshot(board: Board, vga: VGA) -> None:
    board.memory.write(0xB8000 + 80 * 2, b"X\x1f")
    crtc_write(board, 0x0C, 0)
    crtc_write(board, 0x0D, 80)
    screen = vga.text_screen()
    assert screen.start_address == 80
    assert screen.cell(0, 0) == (ord("X"), 0x1F)


def test_snapshot_wraps_in_the_text_window(board: Board, vga: VGA) -> None:
    board.memory.write(0xB8000, b"W\x07")
    start = 0x4000 - 40  # the page starts 80 bytes before the end of the 32 KiB window
    crtc_write(board, 0x0C, start >> 8)
    crtc_write(board, 0x0D, start & 0xFF)
    assert vga.text_screen().cell(0, 40) == (ord("W"), 0x07)


def test_retrace_period_and_width(board: Board, vga: VGA) -> None:
    assert abs(1e9 / FRAME_NS - 70.0) < 0.2
    samples = []
    step = LINE_NS // 4
    for t in range(0, 3 * FRAME_NS, step):
        run_until(board, t)
        samples.append((t, board.ports.read(0x3DA) & 0x08))
    starts = [t for (t, v), (_, prev) in zip(samples[1:], samples, strict=False) if v and not prev]
    assert len(starts) == 3
    assert all(abs((b - a) - FRAME_NS) <= step for a, b in zip(starts, starts[1:], strict=False))
    retrace_time = sum(step for _, v in samples if v) / 3
    assert 50_000 <= retrace_time <= 80_000


def test_display_enable_toggles_within_a_line(board: Board, vga: VGA) -> None:
    run_until(board, 10 * LINE_NS + 1000)
    assert board.ports.read(0x3DA) & 0x01 == 0  # drawing pixels
    run_until(board, 10 * LINE_NS + 28_000)
    assert board.ports.read(0x3DA) & 0x01 == 1  # horizontal blanking


def test_misc_output_moves_the_crtc(board: Board, vga: VGA) -> None:
    assert board.ports.read(0x3CC) == 0x67
    crtc_write(board, 0x0E, 0x05)
    board.ports.write(0x3C2, 1, 0x66)  # mono addressing
    assert board.ports.read(0x3CC) == 0x66
    assert board.ports.read(0x3D5) == 0xFF
    board.ports.write(0x3B4, 1, 0x0E)
    assert board.ports.read(0x3B5) == 0x05


def test_attribute_blink_bit_and_flipflop(board: Board, vga: VGA) -> None:
    assert vga.text_screen().blink_enabled
    board.ports.read(0x3DA)  # flip-flop to index
    board.ports.write(0x3C0, 1, 0x20 | 0x10)
    board.ports.write(0x3C0, 1, 0x04)  # mode control: line graphics, no blink
    assert not vga.text_screen().blink_enabled
    board.ports.write(0x3C0, 1, 0x20 | 0x10)  # flip-flop back at index after the data write
    assert board.ports.read(0x3C1) == 0x04
    board.ports.read(0x3DA)
    board.ports.write(0x3C0, 1, 0x10)  # PAS clear: the display blanks
    assert not vga.text_screen().display_enabled


def test_dac_read_write_changes_the_palette(board: Board, vga: VGA) -> None:
    board.ports.write(0x3C7, 1, 0x14)  # colour 6 (brown) lives at DAC 0x14
    assert [board.ports.read(0x3C9) for _ in range(3)] == [0x2A, 0x15, 0x00]
    assert vga.text_screen().palette[6] == (0xAA, 0x55, 0x00)
    board.ports.write(0x3C8, 1, 0x01)
    for value in (0x3F, 0x00, 0x3F):
        board.ports.write(0x3C9, 1, value)
    assert board.ports.read(0x3C8) == 0x02  # auto-incremented
    assert vga.text_screen().palette[1] == (0xFF, 0x00, 0xFF)
    board.ports.write(0x3C7, 1, 0x01)
    assert board.ports.read(0x3C7) == 0x03
    assert [board.ports.read(0x3C9) for _ in range(3)] == [0x3F, 0x00, 0x3F]


def test_standard_palette(vga: VGA) -> None:
    palette = vga.text_screen().palette
    assert palette[0] == (0, 0, 0)
    assert palette[1] == (0, 0, 0xAA)
    assert palette[7] == (0xAA, 0xAA, 0xAA)
    assert palette[8] == (0x55, 0x55, 0x55)
    assert palette[14] == (0xFF, 0xFF, 0x55)
    assert palette[15] == (0xFF, 0xFF, 0xFF)


def test_sequencer_and_graphics_storage(board: Board, vga: VGA) -> None:
    board.ports.write(0x3C4, 1, 0x02)
    board.ports.write(0x3C5, 1, 0x0F)
    board.ports.write(0x3CE, 1, 0x05)
    board.ports.write(0x3CF, 1, 0x40)
    board.ports.write(0x3C4, 1, 0x02)
    board.ports.write(0x3CE, 1, 0x05)
    assert (board.ports.read(0x3C5), board.ports.read(0x3CF)) == (0x0F, 0x40)


def test_state_round_trip(board: Board, vga: VGA) -> None:
    crtc_write(board, 0x0E, 0x01)
    board.ports.write(0x3C8, 1, 0x05)
    board.ports.write(0x3C9, 1, 0x11)
    saved = vga.state()
    copy = VGA()
    copy.restore(saved)
    assert copy.state() == saved
    with pytest.raises(ValueError):
        copy.restore(dict(saved, dac=b"\x00"))
    with pytest.raises(ValueError):
        copy.restore(dict(saved, version=0))
