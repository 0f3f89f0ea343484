"""The PSF reader and CP437 builder behind the shipped font file."""

from __future__ import annotations

import gzip
import struct

import pytest

from tradekernel.ui.font import CP437_TO_UNICODE, FontError, build_cp437, load_font, read_psf


def psf2(glyphs: list[bytes], chars: list[str]) -> bytes:
    header = struct.pack("<8I", 0x864AB572, 0, 32, 1, len(glyphs), 16, 16, 8)
    table = b"".join(c.encode() + b"\xff" for c in chars)
    return header + b"".join(glyphs) + table


def test_psf2_lookup_by_unicode() -> None:
    font = read_psf(gzip.compress(psf2([b"\x01" * 16, b"\x02" * 16], ["A", "─"])))
    assert font.rows_for("─") == b"\x02" * 16
    assert font.rows_for("B") is None


def test_build_refuses_missing_glyphs() -> None:
    font = read_psf(psf2([b"\x01" * 16], ["A"]))
    with pytest.raises(FontError, match="no glyph"):
        build_cp437([font])


def test_build_from_complete_font_is_cp437_ordered() -> None:
    chars = [c for c in CP437_TO_UNICODE if c not in ("\x00", " ", "\xa0")]
    glyphs = [bytes([i % 256]) * 16 for i in range(len(chars))]
    data = build_cp437([read_psf(psf2(glyphs, chars))])
    assert len(data) == 4096
    assert data[0xC4 * 16 : 0xC5 * 16] == glyphs[chars.index("─")]
    assert data[0x20 * 16 : 0x21 * 16] == bytes(16)


def test_not_a_font() -> None:
    with pytest.raises(FontError):
        read_psf(b"hello")


def test_shipped_font_loads() -> None:
    assert len(load_font().data) == 4096
