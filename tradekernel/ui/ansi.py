"""The VGA text screen on an ANSI terminal, and as plain text.

Contract: `screen_text(screen)` gives the 25 rows as 80-character strings, CP437 decoded to
Unicode (NUL and 0xFF shown as spaces): what tests and `--dump-screen` compare against.
`AnsiScreen.frame(screen)` returns the escape sequences that paint the whole screen with SGR
colours and put the cursor where the VGA shows it; `AnsiScreen.diff(screen)` paints only the
rows that changed since the last frame or diff (and moves the cursor if it moved). On a
terminal smaller than the screen, `set_view` picks the rows and columns shown: screen row
`top` goes to terminal row 1, and nothing is written beyond `height` rows or `width` columns
(the cursor is hidden while it is outside them).
"""

from __future__ import annotations

from tradekernel.devices.vga import TextScreen
from tradekernel.ui.font import CP437_TO_UNICODE

ESC = "\x1b"
_TEXT = tuple(" " if code in (0x00, 0xFF) else ch for code, ch in enumerate(CP437_TO_UNICODE))
# VGA colour order (black, blue, green, cyan, red, magenta, brown, grey) -> ANSI colour order.
_VGA_TO_ANSI = (0, 4, 2, 6, 1, 5, 3, 7)


def row_text(screen: TextScreen, row: int) -> str:
    return "".join(_TEXT[c] for c in screen.row_bytes(row)[0::2])


def screen_text(screen: TextScreen) -> list[str]:
    """The screen as plain text, one string of `columns` characters per row."""
    return [row_text(screen, row) for row in range(screen.rows)]


def sgr(attr: int, blink_enabled: bool, palette: tuple | None = None) -> str:
    """The SGR sequence for a VGA attribute: 16 standard colours, or 24-bit colours taken
    from `palette` when one is given (so DAC changes show)."""
    fg = attr & 0x0F
    bg = (attr >> 4) & 0x07 if blink_enabled else attr >> 4
    codes = ["0"]
    if palette is not None:
        codes.append("38;2;{};{};{}".format(*palette[fg]))
        codes.append("48;2;{};{};{}".format(*palette[bg]))
    else:
        codes.append(str((90 if fg & 8 else 30) + _VGA_TO_ANSI[fg & 7]))
        codes.append(str((100 if bg & 8 else 40) + _VGA_TO_ANSI[bg & 7]))
    if blink_enabled and attr & 0x80:
        codes.append("5")
    return f"{ESC}[{';'.join(codes)}m"


class AnsiScreen:
    """Paints TextScreens on a terminal, remembering the last one for `diff`."""

    def __init__(self, truecolor: bool = False) -> None:
        self.truecolor = truecolor
        self._previous: TextScreen | None = None
        self.top = 0
        self.height = 1 << 16  # rows and columns shown: all, until set_view says otherwise
        self.width = 1 << 16

    def set_view(self, top: int, height: int, width: int) -> bool:
        """Show screen rows top..top+height-1, columns 0..width-1; True if that changed (the
        next diff is then a full frame)."""
        if (top, height, width) == (self.top, self.height, self.width):
            return False
        self.top, self.height, self.width = top, height, width
        self._previous = None
        return True

    def invalidate(self) -> None:
        """Forget the last frame: the next diff paints everything shown."""
        self._previous = None

    def cursor(self, screen: TextScreen) -> str:
        """Put the terminal cursor where the VGA shows it (after writing elsewhere)."""
        return self._cursor(screen)

    def _shown(self, screen: TextScreen) -> range:
        return range(self.top, min(screen.rows, self.top + self.height))

    def frame(self, screen: TextScreen) -> str:
        """Every row shown, then the cursor."""
        out = [f"{ESC}[?25l"]
        out += (self._row(screen, row) for row in self._shown(screen))
        out.append(self._cursor(screen))
        self._previous = screen
        return "".join(out)

    def diff(self, screen: TextScreen) -> str:
        """Only what changed since the last call (a full frame the first time, or after a
        colour or blink-mode change, which alters every row's look)."""
        previous = self._previous
        if (
            previous is None
            or previous.palette != screen.palette
            or previous.blink_enabled != screen.blink_enabled
        ):
            return self.frame(screen)
        rows = [r for r in self._shown(screen) if screen.row_bytes(r) != previous.row_bytes(r)]
        cursor_moved = (
            screen.cursor_row,
            screen.cursor_col,
            screen.cursor_visible,
        ) != (previous.cursor_row, previous.cursor_col, previous.cursor_visible)
        self._previous = screen
        if not rows and not cursor_moved:
            return ""
        out = [f"{ESC}[?25l"] if rows else []
        out += (self._row(screen, row) for row in rows)
        out.append(self._cursor(screen))
        return "".join(out)

    def _row(self, screen: TextScreen, row: int) -> str:
        data = screen.row_bytes(row)
        palette = screen.palette if self.truecolor else None
        parts = [f"{ESC}[{row - self.top + 1};1H"]
        current = -1
        for col in range(min(screen.columns, self.width)):
            attr = data[2 * col + 1]
            if attr != current:
                parts.append(sgr(attr, screen.blink_enabled, palette))
                current = attr
            parts.append(_TEXT[data[2 * col]])
        parts.append(f"{ESC}[0m")
        return "".join(parts)

    def _cursor(self, screen: TextScreen) -> str:
        row = screen.cursor_row - self.top
        inside = 0 <= row < self.height and screen.cursor_col < self.width
        if not inside:
            return f"{ESC}[?25l"
        position = f"{ESC}[{row + 1};{screen.cursor_col + 1}H"
        return position + (f"{ESC}[?25h" if screen.cursor_visible else "")
