"""The VGA text-mode font: 256 code page 437 glyphs, 8x16 pixels, shown in 9x16 cells.

Contract: `load_font()` returns the font shipped in tradekernel/data/cp437-8x16.bin (256 glyphs
of 16 row bytes, bit 7 = leftmost pixel, in CP437 order). `Font.cell_rows(code)` applies the
VGA 9-dot rule: the 9th column repeats the 8th for the line-drawing range 0xC0-0xDF, so box
borders join up, and is blank for every other character.

The data file is built from a Unicode-indexed PSF console font (see
tradekernel/data/cp437-8x16.README for the source and licence) with
`python -m tradekernel.ui.font build OUT.bin PRIMARY.psf.gz [FALLBACK.psf.gz ...]`:
each CP437 code point is looked up by its Unicode meaning in the fonts in order.
"""

from __future__ import annotations

import gzip
import struct
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources

GLYPH_WIDTH = 8
GLYPH_HEIGHT = 16
CELL_WIDTH = 9
GLYPH_COUNT = 256
FONT_BYTES = GLYPH_COUNT * GLYPH_HEIGHT
FONT_RESOURCE = "cp437-8x16.bin"
LINE_GRAPHICS = range(0xC0, 0xE0)  # the VGA repeats column 8 into column 9 for these

# CP437 0x01-0x1F and 0x7F are pictures on screen, not control codes; Python's cp437 codec
# decodes them as controls, so their Unicode meanings are listed here (0x00 is blank).
_CP437_PICTURES = "\u0000☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼"
CP437_TO_UNICODE: tuple[str, ...] = tuple(
    _CP437_PICTURES[code] if code < 0x20 else "⌂" if code == 0x7F else bytes([code]).decode("cp437")
    for code in range(GLYPH_COUNT)
)

# Glyphs drawn for this project where the source fonts have none (rows top to bottom).
_DRAWN_GLYPHS: dict[str, tuple[int, ...]] = {
    "►": (0, 0, 0x80, 0xC0, 0xE0, 0xF0, 0xF8, 0xFE, 0xF8, 0xF0, 0xE0, 0xC0, 0x80, 0, 0, 0),
    "◄": (0, 0, 0x02, 0x06, 0x0E, 0x1E, 0x3E, 0xFE, 0x3E, 0x1E, 0x0E, 0x06, 0x02, 0, 0, 0),
}


class FontError(ValueError):
    """A font file that is not what it claims to be."""


@dataclass(frozen=True)
class Font:
    """256 glyphs of `GLYPH_HEIGHT` row bytes each; bit 7 of a row byte is the leftmost pixel."""

    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != FONT_BYTES:
            raise FontError(f"font data is {len(self.data)} bytes, expected {FONT_BYTES}")

    def glyph(self, code: int) -> bytes:
        """The 16 row bytes of character `code` (0-255)."""
        if not 0 <= code < GLYPH_COUNT:
            raise ValueError(f"character code {code} outside 0-255")
        return self.data[code * GLYPH_HEIGHT : (code + 1) * GLYPH_HEIGHT]

    def cell_rows(self, code: int) -> tuple[int, ...]:
        """The 16 rows as 9-bit ints (bit 8 = leftmost pixel), with the 9th-column rule."""
        repeat = code in LINE_GRAPHICS
        return tuple((row << 1) | (row & 1 if repeat else 0) for row in self.glyph(code))

    def cell_pixel(self, code: int, x: int, y: int) -> bool:
        """Whether pixel (x, y) of a 9x16 cell showing `code` is foreground."""
        return bool(self.cell_rows(code)[y] >> (CELL_WIDTH - 1 - x) & 1)


@cache
def load_font() -> Font:
    """The shipped CP437 font (read once)."""
    data = resources.files("tradekernel").joinpath("data", FONT_RESOURCE).read_bytes()
    return Font(data)


@dataclass(frozen=True)
class PsfFont:
    """A PC Screen Font (PSF1 or PSF2) with its Unicode table: character -> glyph rows."""

    width: int
    height: int
    glyphs: tuple[bytes, ...]
    unicode: dict[str, int]

    def rows_for(self, char: str) -> bytes | None:
        index = self.unicode.get(char)
        return None if index is None else self.glyphs[index]


def read_psf(data: bytes) -> PsfFont:
    """Parse a PSF1/PSF2 font (gzip accepted); fonts without a Unicode table are refused."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:2] == b"\x36\x04":
        return _read_psf1(data)
    if data[:4] == b"\x72\xb5\x4a\x86":
        return _read_psf2(data)
    raise FontError("not a PSF1 or PSF2 font")


def _read_psf1(data: bytes) -> PsfFont:
    mode, height = data[2], data[3]
    count = 512 if mode & 0x01 else 256
    if not mode & 0x02:
        raise FontError("PSF1 font has no Unicode table")
    end = 4 + count * height
    glyphs = tuple(data[4 + i * height : 4 + (i + 1) * height] for i in range(count))
    unicode: dict[str, int] = {}
    pos = end
    for index in range(count):
        while True:
            if pos + 2 > len(data):
                raise FontError("PSF1 Unicode table truncated")
            (value,) = struct.unpack_from("<H", data, pos)
            pos += 2
            if value == 0xFFFF:
                break
            if value != 0xFFFE:
                unicode.setdefault(chr(value), index)
    return PsfFont(8, height, glyphs, unicode)


def _read_psf2(data: bytes) -> PsfFont:
    if len(data) < 32:
        raise FontError("PSF2 header truncated")
    _, _, header_size, flags, count, glyph_bytes, height, width = struct.unpack_from("<8I", data)
    if not flags & 0x01:
        raise FontError("PSF2 font has no Unicode table")
    if width > 8:
        raise FontError(f"PSF2 font is {width} pixels wide; only 8-wide fonts fit VGA text")
    glyphs = tuple(
        data[header_size + i * glyph_bytes : header_size + (i + 1) * glyph_bytes]
        for i in range(count)
    )
    unicode: dict[str, int] = {}
    pos = header_size + count * glyph_bytes
    for index in range(count):
        end = data.find(b"\xff", pos)
        if end < 0:
            raise FontError("PSF2 Unicode table truncated")
        # Single characters come first; sequences (after 0xFE) are combinations we skip.
        singles = data[pos:end].split(b"\xfe")[0].decode("utf-8", "replace")
        for char in singles:
            unicode.setdefault(char, index)
        pos = end + 1
    return PsfFont(width, height, glyphs, unicode)


def build_cp437(fonts: list[PsfFont]) -> bytes:
    """The 4096-byte CP437 font: each code point from the first font that has its character."""
    out = bytearray()
    for code, char in enumerate(CP437_TO_UNICODE):
        if char in (" ", "\u0000", "\u00a0"):
            out += bytes(GLYPH_HEIGHT)
            continue
        rows = next((f.rows_for(char) for f in fonts if f.rows_for(char) is not None), None)
        if rows is None and char in _DRAWN_GLYPHS:
            rows = bytes(_DRAWN_GLYPHS[char])
        if rows is None:
            raise FontError(f"no glyph for CP437 {code:#04x} ({char!r}) in the given fonts")
        if len(rows) != GLYPH_HEIGHT:
            raise FontError(f"glyph for {char!r} has {len(rows)} rows, expected {GLYPH_HEIGHT}")
        out += rows
    return bytes(out)


def _main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "build":
        print("usage: python -m tradekernel.ui.font build OUT.bin PRIMARY.psf[.gz] [FALLBACK...]")
        return 2
    fonts = []
    for path in argv[2:]:
        with open(path, "rb") as f:
            fonts.append(read_psf(f.read()))
    data = build_cp437(fonts)
    with open(argv[1], "wb") as f:
        f.write(data)
    print(f"wrote {len(data)} bytes to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
