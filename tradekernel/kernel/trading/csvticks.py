"""CSV market data: trade ticks, quotes or bars, recognised by the header line.

    ts_ns,symbol,price,qty                       trade ticks
    ts_ns,symbol,bid,bid_qty,ask,ask_qty         quotes (top of book)
    ts_ns,symbol,open,high,low,close,volume      bars

Prices and quantities are parsed (and bounded) by `parse_decimal` and converted to ticks and
lots by the feed with the instrument; `ts_ns` is a non-negative integer of at most 19 digits. A
bad row becomes a CsvError (byte offset of the row, line, reason) and parsing continues with
the next row; a missing or unknown header is one CsvError for line 1 naming the accepted
headers, and nothing else of the file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .instruments import InstrumentError, parse_decimal

FORMATS = {
    "tick": ("ts_ns", "symbol", "price", "qty"),
    "quote": ("ts_ns", "symbol", "bid", "bid_qty", "ask", "ask_qty"),
    "bar": ("ts_ns", "symbol", "open", "high", "low", "close", "volume"),
}


MAX_TS_DIGITS = 19  # ts_ns below 10**19 ns (317 years): a paced replay's times stay sane


class CsvError(ValueError):
    def __init__(self, offset: int, line: int, reason: str) -> None:
        super().__init__(f"CSV error at offset {offset} (line {line}): {reason}")
        self.offset = offset
        self.line = line
        self.reason = reason


def parse(
    data: bytes, errors: list[CsvError] | None = None
) -> Iterator[tuple[str, int, str, tuple[Decimal, ...]]]:
    """(kind, ts_ns, symbol, decimal values in header order, line number) per good row."""
    lines = data.split(b"\n")
    header = lines[0].decode("ascii", "replace").strip().lower()
    columns = tuple(c.strip() for c in header.split(","))
    kind = next((k for k, cols in FORMATS.items() if cols == columns), None)
    if kind is None:
        known = "; ".join(",".join(c) for c in FORMATS.values())
        shown = "no header (empty first line)" if not header else f"unknown header {header[:60]!r}"
        failure = CsvError(0, 1, f"{shown}; expected one of: {known}")
        if errors is None:
            raise failure
        errors.append(failure)
        return
    offset = len(lines[0]) + 1
    last_ts = -1
    for number, raw in enumerate(lines[1:], start=2):
        row_offset = offset
        offset += len(raw) + 1
        text = raw.decode("ascii", "replace").strip()
        if not text or text.startswith("#"):
            continue
        cells = [c.strip() for c in text.split(",")]
        try:
            if len(cells) != len(columns):
                raise ValueError(f"{len(cells)} fields, header has {len(columns)}")
            if not cells[0].isdigit() or len(cells[0]) > MAX_TS_DIGITS:
                raise ValueError(f"ts_ns {cells[0][:24]!r} is not an integer of 1-19 digits")
            ts = int(cells[0])
            if ts < last_ts:
                raise ValueError(f"ts_ns {ts} goes back in time (previous {last_ts})")
            if not cells[1]:
                raise ValueError("empty symbol")
            values = tuple(
                parse_decimal(c, name) for c, name in zip(cells[2:], columns[2:], strict=True)
            )
            if any(v < 0 for v in values):
                raise ValueError("negative price or quantity")
        except (ValueError, InstrumentError) as err:
            failure = CsvError(row_offset, number, str(err))
            if errors is None:
                raise failure from None
            errors.append(failure)
            continue
        last_ts = ts
        yield kind, ts, cells[1], values, number
