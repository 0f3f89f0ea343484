"""The pygame renderer, headless: pixels against the font and the VGA palette."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"

import pygame  # noqa: E402
import pytest  # noqa: E402

from tradekernel.devices.base import Board  # noqa: E402
from tradekernel.devices.vga import VGA  # noqa: E402
from tradekernel.ui.font import CP437_TO_UNICODE, load_font  # noqa: E402
from tradekernel.ui.render import (  # noqa: E402
    Renderer,
    blink_phases,
    integer_scale,
    save_png,
    scale_to,
)

from .conftest import put_text  # noqa: E402

CURSOR_ON_CHAR_ON = 0.0
CURSOR_OFF_CHAR_ON = 9 / 70.086  # frame 9: cursor in its off half, characters still shown
CHAR_OFF = 17 / 70.086  # frame 17: blinking characters hidden


def cell_pixels(surface: pygame.Surface, row: int, col: int) -> list[list[tuple[int, int, int]]]:
    return [
        [tuple(surface.get_at((col * 9 + x, row * 16 + y)))[:3] for x in range(9)]
        for y in range(16)
    ]


def expected_cell(code: int, fg: tuple, bg: tuple) -> list[list[tuple]]:
    font = load_font()
    return [[fg if font.cell_pixel(code, x, y) else bg for x in range(9)] for y in range(16)]


def disable_cursor(board: Board) -> None:
    board.ports.write(0x3D4, 1, 0x0A)
    board.ports.write(0x3D5, 1, 0x20)


def test_font_covers_cp437() -> None:
    font = load_font()
    assert CP437_TO_UNICODE[0xC4] == "─" and CP437_TO_UNICODE[0x01] == "☺"
    assert font.glyph(0x20) == bytes(16)
    blank = bytes(16)
    assert all(font.glyph(code) != blank for code in range(0x21, 0xFF))
    assert font.cell_rows(0xC4)[7] == 0x1FF  # line drawing reaches the 9th column
    assert font.cell_rows(0xB0)[0] & 1 == 0  # shades do not
    assert font.cell_pixel(ord("A"), 3, 2)  # the apex of the A


@pytest.mark.parametrize("code", [ord("A"), ord("g"), 0xB0, 0xC4, 0xC5, 0xDB, 0xDF, 0x01])
def test_cell_matches_glyph(board: Board, vga: VGA, code: int) -> None:
    disable_cursor(board)
    put_text(board, 5, 10, bytes([code]), 0x1E)  # yellow on blue
    surface = Renderer().render(vga.text_screen())
    yellow, blue = (0xFF, 0xFF, 0x55), (0x00, 0x00, 0xAA)
    assert cell_pixels(surface, 5, 10) == expected_cell(code, yellow, blue)


def test_ninth_column_rule(board: Board, vga: VGA) -> None:
    disable_cursor(board)
    put_text(board, 0, 0, bytes([0xC4, 0xB0]), 0x07)
    surface = Renderer().render(vga.text_screen())
    grey, black = (0xAA, 0xAA, 0xAA), (0, 0, 0)
    assert surface.get_at((8, 7))[:3] == grey  # 0xC4 fills column 9
    assert all(surface.get_at((9 + 8, y))[:3] == black for y in range(16))  # 0xB0 does not


def test_palette_change_repaints(board: Board, vga: VGA) -> None:
    disable_cursor(board)
    put_text(board, 0, 0, b"\xdb", 0x04)
    renderer = Renderer()
    assert renderer.render(vga.text_screen()).get_at((0, 0))[:3] == (0xAA, 0, 0)
    board.ports.write(0x3C8, 1, 0x04)
    for value in (0, 0x3F, 0):
        board.ports.write(0x3C9, 1, value)
    assert renderer.render(vga.text_screen()).get_at((0, 0))[:3] == (0, 0xFF, 0)


def test_cursor_scanlines_and_blink(board: Board, vga: VGA) -> None:
    for index, value in ((0x0A, 0x0E), (0x0B, 0x0F), (0x0E, 0), (0x0F, 2 * 80 + 3)):
        board.ports.write(0x3D4, 1, index)
        board.ports.write(0x3D5, 1, value)
    put_text(board, 2, 3, b" ", 0x07)
    renderer = Renderer()
    surface = renderer.render(vga.text_screen(), CURSOR_ON_CHAR_ON)
    column = [surface.get_at((3 * 9 + 4, 2 * 16 + y))[:3] for y in range(16)]
    grey, black = (0xAA, 0xAA, 0xAA), (0, 0, 0)
    assert column == [black] * 14 + [grey] * 2
    surface = renderer.render(vga.text_screen(), CURSOR_OFF_CHAR_ON)
    assert surface.get_at((3 * 9 + 4, 2 * 16 + 15))[:3] == black
    assert renderer.dirty_rows == [2]


def test_blinking_characters(board: Board, vga: VGA) -> None:
    disable_cursor(board)
    put_text(board, 1, 0, b"\xdb", 0x8F)  # blinking white block on black
    renderer = Renderer()
    assert renderer.render(vga.text_screen(), CURSOR_ON_CHAR_ON).get_at((0, 16))[:3] == (
        255,
        255,
        255,
    )
    assert renderer.render(vga.text_screen(), CHAR_OFF).get_at((0, 16))[:3] == (0, 0, 0)
    assert renderer.dirty_rows == [1]
    # with blink off, bit 7 is background intensity: bright black (dark grey) behind a blank
    board.ports.read(0x3DA)
    board.ports.write(0x3C0, 1, 0x30)
    board.ports.write(0x3C0, 1, 0x04)
    put_text(board, 1, 0, b" ", 0x8F)
    assert renderer.render(vga.text_screen(), CHAR_OFF).get_at((0, 16))[:3] == (0x55, 0x55, 0x55)


def test_only_changed_rows_are_repainted(board: Board, vga: VGA) -> None:
    disable_cursor(board)
    renderer = Renderer()
    renderer.render(vga.text_screen())
    assert len(renderer.dirty_rows) == 25
    renderer.render(vga.text_screen())
    assert renderer.dirty_rows == []
    put_text(board, 7, 0, b"hi", 0x07)
    renderer.render(vga.text_screen())
    assert renderer.dirty_rows == [7]


def test_blink_phase_rates() -> None:
    assert blink_phases(0.0) == (True, True)
    assert blink_phases(8.5 / 70.086) == (False, True)
    assert blink_phases(16.5 / 70.086) == (True, False)


def test_scaling_and_png(board: Board, vga: VGA, tmp_path) -> None:
    assert integer_scale((1500, 900)) == 2
    assert integer_scale((300, 200)) == 1
    surface = Renderer().render(vga.text_screen())
    assert scale_to(surface, (1500, 900)).get_size() == (1440, 800)
    put_text(board, 0, 0, b"\xdb", 0x0C)
    path = tmp_path / "shot.png"
    save_png(vga.text_screen(), str(path))
    loaded = pygame.image.load(str(path))
    assert loaded.get_size() == (720, 400)
    assert loaded.get_at((0, 0))[:3] == (0xFF, 0x55, 0x55)


def test_display_off_is_black(board: Board, vga: VGA) -> None:
    put_text(board, 0, 0, b"\xdb", 0x0F)
    board.ports.write(0x3C4, 1, 0x01)
    board.ports.write(0x3C5, 1, 0x20)  # sequencer: screen off
    surface = Renderer().render(vga.text_screen())
    assert surface.get_at((0, 0))[:3] == (0, 0, 0)
