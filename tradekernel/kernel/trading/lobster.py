"""LOBSTER message files: read them, and turn them into ITCH 5.0 for the kernel's `feed`.

A LOBSTER message file (lobsterdata.com; TICKER_DATE_START_END_message_LEVEL.csv) has no
header and six columns per line:

    time       seconds after midnight, a decimal with up to 9 places
    type       1 new limit order, 2 partial cancel, 3 delete, 4 execution of a visible order,
               5 execution of a hidden order, 6 cross trade, 7 trading halt indicator
    order id   the order reference (0 for hidden executions after December 2010)
    size       shares
    price      dollars x 10000 (ITCH's Price(4)); for type 7: -1 halt, 0 quoting, 1 resume
    direction  1 buy, -1 sell: the side of the resting order (so an execution of a sell
               order is a buyer-initiated trade)

`read(data, errors)` yields one LobsterMessage per good line and puts a LobsterError (line,
reason) in `errors` for each bad one, then goes on: every number is bounded before use (times
below a day, sizes and prices within ITCH's 32-bit fields). `to_itch(messages, symbol)` writes
the same events as a framed ITCH 5.0 file (stock directory first, executions as E, hidden
executions as P, crosses as Q, halts as H), so a LOBSTER day replays through the same `feed`
path as a NASDAQ file. A message file starts from a book whose earlier orders it does not
list; their cancels and executions reach the feed as unknown order references, reported
per message, as the feed reports any such reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tradekernel.kernel.trading import itch

NS_PER_DAY = 86_400 * 10**9
MAX_FIELD_CHARS = 24  # characters of one field: longer is refused before any conversion
MAX_U32 = 2**32 - 1  # ITCH shares and Price(4) fields are 32-bit
LOCATE = 1

SUBMIT, CANCEL, DELETE, EXECUTE, HIDDEN, CROSS, HALT = 1, 2, 3, 4, 5, 6, 7


class LobsterError(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"LOBSTER error at line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LobsterMessage:
    ts_ns: int  # ns after midnight
    kind: int  # SUBMIT ... HALT
    order_id: int
    size: int
    price: int  # Price(4); for HALT: -1, 0 or 1
    direction: int  # 1 buy, -1 sell
    line: int


def _time_ns(text: str) -> int:
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and not frac.isdigit()) or len(frac) > 9:
        raise ValueError(f"time {text!r} is not seconds with up to 9 decimals")
    ns = int(whole) * 10**9 + int(frac.ljust(9, "0") if frac else 0)
    if ns >= NS_PER_DAY:
        raise ValueError(f"time {text!r} is not within a day")
    return ns


def _int(text: str, what: str, low: int, high: int) -> int:
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit():
        raise ValueError(f"{what} {text!r} is not an integer")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what} {value} outside {low}..{high}")
    return value


def read(data: bytes, errors: list[LobsterError] | None = None) -> Iterator[LobsterMessage]:
    """One message per good line (see the module docstring); blank lines are skipped."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        text = raw.decode("ascii", "replace").strip()
        if not text:
            continue
        cells = [c.strip() for c in text.split(",")]
        try:
            if len(cells) != 6:
                raise ValueError(f"{len(cells)} fields, expected 6")
            if any(len(c) > MAX_FIELD_CHARS for c in cells):
                raise ValueError(f"a field is longer than {MAX_FIELD_CHARS} characters")
            ts = _time_ns(cells[0])
            kind = _int(cells[1], "type", SUBMIT, HALT)
            order_id = _int(cells[2], "order id", 0, 2**64 - 1)
            size = _int(cells[3], "size", 0, MAX_U32)
            low = -1 if kind == HALT else 0
            price = _int(cells[4], "price", low, MAX_U32)
            direction = _int(cells[5], "direction", -1, 1)
            if direction == 0:
                raise ValueError("direction must be 1 (buy) or -1 (sell)")
            if kind in (SUBMIT, CANCEL, EXECUTE) and (size == 0 or order_id == 0):
                raise ValueError(f"type {kind} needs an order id and a positive size")
        except ValueError as err:
            failure = LobsterError(number, str(err))
            if errors is None:
                raise failure from None
            errors.append(failure)
            continue
        yield LobsterMessage(ts, kind, order_id, size, price, direction, number)


_HALT_STATES = {-1: b"H", 0: b"Q", 1: b"T"}  # ITCH trading states: halted, quotation, trading


def to_itch(messages: Iterable[LobsterMessage], symbol: str, round_lot: int = 100) -> bytes:
    """A framed ITCH 5.0 file with the same events (see the module docstring)."""
    if not (1 <= len(symbol) <= 8 and symbol.isascii() and symbol.isprintable()):
        raise ValueError(f"symbol must be 1-8 printable ASCII characters, got {symbol!r}")
    stock = symbol.ljust(8).encode("ascii")
    parts: list[bytes] = []
    tracking = 0
    match = 0

    def put(kind: bytes, ts: int, *fields: object) -> None:
        nonlocal tracking
        tracking = (tracking + 1) & 0xFFFF
        raw = (kind, LOCATE, tracking, ts >> 32, ts & 0xFFFFFFFF, *fields)
        parts.append(itch.frame(itch.encode(raw)))

    put(b"R", 0, stock, b"Q", b"N", round_lot, b"N", b"C", b"Z ", b"P", b"N", b"N", b"1", b"N",
        0, b"N")  # fmt: skip
    for m in messages:
        side = b"B" if m.direction == 1 else b"S"
        if m.kind == SUBMIT:
            put(b"A", m.ts_ns, m.order_id, side, m.size, stock, m.price)
        elif m.kind == CANCEL:
            put(b"X", m.ts_ns, m.order_id, m.size)
        elif m.kind == DELETE:
            put(b"D", m.ts_ns, m.order_id)
        elif m.kind == EXECUTE:
            match += 1
            put(b"E", m.ts_ns, m.order_id, m.size, match)
        elif m.kind == HIDDEN:
            match += 1
            put(b"P", m.ts_ns, m.order_id, side, m.size, stock, m.price, match)
        elif m.kind == CROSS:
            match += 1
            put(b"Q", m.ts_ns, m.size, stock, m.price, match, b"O")
        else:
            put(b"H", m.ts_ns, stock, _HALT_STATES[m.price], b" ", b"    ")
    return b"".join(parts)
