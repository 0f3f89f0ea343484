"""Draw a VGA `TextScreen` as the monitor would show it: 720x400 pixels of 9x16 cells.

Contract: `Renderer.render(screen, time_s)` returns the same 720x400 Surface each call, redrawn
only where cells, colours, the cursor or the blink phase changed since the previous call. Blink
follows the VGA's frame counter at 70 Hz: the cursor is on for 8 frames and off for 8, blinking
characters (attribute bit 7 with blink enabled) are shown for 16 frames and hidden for 16. The
cursor fills scanlines start..end of its cell in the cell's foreground colour.

Works without a display (SDL_VIDEODRIVER=dummy): nothing here opens a window.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from tradekernel.devices.vga import TextScreen  # noqa: E402
from tradekernel.ui.font import CELL_WIDTH, GLYPH_HEIGHT, Font, load_font  # noqa: E402

SCREEN_WIDTH = 80 * CELL_WIDTH
SCREEN_HEIGHT = 25 * GLYPH_HEIGHT
REFRESH_HZ = 70.086  # mode 3 vertical refresh
CURSOR_BLINK_FRAMES = 16  # period: on for the first half
CHAR_BLINK_FRAMES = 32
SNAP = 0.05  # fit_scale: a fit at most 5% above a whole factor is shown at that factor
_BLANK_CHARS = frozenset((0x00, 0x20, 0xFF))  # glyphs with no foreground pixel

Colour = tuple[int, int, int]


def blink_phases(time_s: float) -> tuple[bool, bool]:
    """(cursor shown, blinking characters shown) at `time_s` seconds of display time."""
    frame = int(time_s * REFRESH_HZ)
    return frame % CURSOR_BLINK_FRAMES < CURSOR_BLINK_FRAMES // 2, (
        frame % CHAR_BLINK_FRAMES < CHAR_BLINK_FRAMES // 2
    )


class Renderer:
    """Keeps the previous frame so each call repaints only what changed."""

    def __init__(self, font: Font | None = None) -> None:
        self.font = font or load_font()
        self.surface = pygame.Surface((SCREEN_WIDTH, SCREEN_HEIGHT))
        # (char, foreground, line graphics) -> glyph; at most 256 x 16 x 2 surfaces per palette
        self._glyphs: dict[tuple[int, Colour, bool], pygame.Surface] = {}
        self._previous: TextScreen | None = None
        self._previous_char_phase = True
        self._previous_cursor: tuple[int, int, int, int] | None = None
        self.dirty_rows: list[int] = []  # rows repainted by the last render (for the window)

    def invalidate(self) -> None:
        """Forget the previous frame: the next render repaints everything."""
        self._previous = None
        self._previous_cursor = None

    def render(self, screen: TextScreen, time_s: float = 0.0) -> pygame.Surface:
        if screen.columns * CELL_WIDTH != SCREEN_WIDTH or screen.rows * 16 != SCREEN_HEIGHT:
            raise ValueError(f"only 80x25 text is drawn, got {screen.columns}x{screen.rows}")
        if not screen.display_enabled:
            self.surface.fill((0, 0, 0))
            self.invalidate()
            self.dirty_rows = list(range(screen.rows))
            return self.surface
        cursor_phase, char_phase = blink_phases(time_s)
        previous = self._previous
        full = (
            previous is None
            or previous.palette != screen.palette
            or previous.blink_enabled != screen.blink_enabled
            or previous.line_graphics != screen.line_graphics
        )
        if full and len(self._glyphs) > 4 * 256 * 16:
            self._glyphs.clear()  # after many palette changes: drop colours no longer used
        blink_flipped = char_phase != self._previous_char_phase and screen.blink_enabled
        dirty = []
        for row in range(screen.rows):
            data = screen.row_bytes(row)
            if not full and previous is not None and data == previous.row_bytes(row):
                if not (blink_flipped and max(data[1::2]) >= 0x80):
                    continue
            self._draw_row(screen, row, data, char_phase)
            dirty.append(row)

        cursor = (
            (screen.cursor_row, screen.cursor_col, screen.cursor_start, screen.cursor_end)
            if screen.cursor_visible and cursor_phase
            else None
        )
        if cursor != self._previous_cursor or (cursor is not None and cursor[0] in dirty):
            old = self._previous_cursor
            if old is not None and old[0] not in dirty:
                self._draw_row(screen, old[0], screen.row_bytes(old[0]), char_phase)
                dirty.append(old[0])
            if cursor is not None:
                self._draw_cursor(screen, *cursor)
                if cursor[0] not in dirty:
                    dirty.append(cursor[0])
        self._previous = screen
        self._previous_char_phase = char_phase
        self._previous_cursor = cursor
        self.dirty_rows = sorted(dirty)
        return self.surface

    def _draw_row(self, screen: TextScreen, row: int, data: bytes, char_phase: bool) -> None:
        """Background as runs of one colour, then each visible glyph's foreground pixels."""
        palette = screen.palette
        blink = screen.blink_enabled
        lines = screen.line_graphics
        y = row * GLYPH_HEIGHT
        glyphs = self._glyphs
        fill = self.surface.fill
        batch = []
        run_start, run_colour = 0, None
        for col in range(screen.columns):
            char = data[2 * col]
            attr = data[2 * col + 1]
            if blink:
                bg = palette[(attr >> 4) & 0x07]
                hidden = attr & 0x80 and not char_phase
            else:
                bg = palette[attr >> 4]
                hidden = False
            if bg != run_colour:
                if run_colour is not None:
                    fill(
                        run_colour, (run_start * CELL_WIDTH, y, (col - run_start) * CELL_WIDTH, 16)
                    )
                run_start, run_colour = col, bg
            fg = palette[attr & 0x0F]
            if hidden or fg == bg or char in _BLANK_CHARS:
                continue
            key = (char, fg, lines)
            glyph = glyphs.get(key)
            if glyph is None:
                glyph = glyphs[key] = self._make_glyph(char, fg, lines)
            batch.append((glyph, (col * CELL_WIDTH, y)))
        fill(run_colour, (run_start * CELL_WIDTH, y, (screen.columns - run_start) * CELL_WIDTH, 16))
        self.surface.blits(batch, doreturn=False)

    def _make_glyph(self, char: int, fg: Colour, lines: bool) -> pygame.Surface:
        """The glyph's foreground pixels in `fg` over a transparent (colour-keyed) background."""
        rows = self.font.cell_rows(char) if lines else self._plain_rows(char)
        pixels = bytes((row >> (CELL_WIDTH - 1 - x)) & 1 for row in rows for x in range(CELL_WIDTH))
        mask = pygame.image.frombuffer(pixels, (CELL_WIDTH, GLYPH_HEIGHT), "P")
        key_colour = (0, 0, 0) if fg != (0, 0, 0) else (255, 255, 255)
        mask.set_palette([key_colour, fg])
        glyph = pygame.Surface((CELL_WIDTH, GLYPH_HEIGHT))
        glyph.blit(mask, (0, 0))
        glyph.set_colorkey(key_colour, pygame.RLEACCEL)
        return glyph

    def _plain_rows(self, char: int) -> tuple[int, ...]:
        """Glyph rows with a blank 9th column (attribute line graphics disabled)."""
        return tuple(row << 1 for row in self.font.glyph(char))

    def _draw_cursor(self, screen: TextScreen, row: int, col: int, start: int, end: int) -> None:
        attr = screen.cell(row, col)[1]
        colour = screen.palette[attr & 0x0F]
        rect = (col * CELL_WIDTH, row * GLYPH_HEIGHT + start, CELL_WIDTH, end - start + 1)
        self.surface.fill(colour, rect)


def render_once(screen: TextScreen, time_s: float = 0.0) -> pygame.Surface:
    """A fresh 720x400 picture of `screen` (no state kept between calls)."""
    return Renderer().render(screen, time_s).copy()


def save_png(screen: TextScreen, path: str, time_s: float = 0.0) -> None:
    """Screenshot of `screen` at display time `time_s`, written as PNG."""
    pygame.image.save(render_once(screen, time_s), path)


def integer_scale(window_size: tuple[int, int]) -> int:
    """The largest whole factor at which 720x400 fits in `window_size` (at least 1)."""
    width, height = window_size
    return max(1, min(width // SCREEN_WIDTH, height // SCREEN_HEIGHT))


def fit_scale(window_size: tuple[int, int]) -> float:
    """The factor at which 720x400 fills `window_size` with its aspect kept; the whole factor
    below it when that is within SNAP (crisp pixels for a barely smaller picture)."""
    width, height = window_size
    fit = min(width / SCREEN_WIDTH, height / SCREEN_HEIGHT)
    whole = integer_scale(window_size)
    if fit >= 1 and fit - whole <= SNAP * whole:
        return whole
    return fit


def scaled_size(scale: float) -> tuple[int, int]:
    """The picture's size in pixels at `scale`."""
    return max(1, round(SCREEN_WIDTH * scale)), max(1, round(SCREEN_HEIGHT * scale))


def scale_surface(surface: pygame.Surface, size: tuple[int, int]) -> pygame.Surface:
    """Nearest-neighbour when growing (the VGA's blocky pixels), smoothed when shrinking (so
    thin strokes do not vanish between the rows kept)."""
    if size == surface.get_size():
        return surface
    if size[0] < surface.get_width():
        return pygame.transform.smoothscale(surface, size)
    return pygame.transform.scale(surface, size)


def scale_to(surface: pygame.Surface, window_size: tuple[int, int]) -> pygame.Surface:
    """The 720x400 `surface` scaled to fit `window_size`, aspect kept (see fit_scale)."""
    return scale_surface(surface, scaled_size(fit_scale(window_size)))
