"""NASDAQ TotalView-ITCH 5.0 binary messages: all 23 types of the spec, with its lengths.

Every message is big-endian with a common 11-byte head: type (1 byte), stock locate (2),
tracking number (2), timestamp (6 bytes, ns since midnight). Prices are Price(4): an unsigned
int in 1/10000 of a dollar. Files frame each message with a 2-byte big-endian length prefix
(`framed=True`); a raw stream is messages back to back, sized by their type.

Speed matters here (millions of messages a second): `iter_raw` reads the length prefix from two
bytes, finds the message's precompiled `Struct.unpack_from` and size in lists indexed by the type
byte, makes one unpack call per message and yields its tuple as is: (type byte, locate,
tracking, ts_high16, ts_low32, fields...). `decode` turns a raw tuple into a named message when
clarity beats speed. Layouts follow NASDAQ's TotalView-ITCH 5.0 specification field for field
(Price(4) is an unsigned 32-bit int, Price(8) an unsigned 64-bit int of 1e-8 dollars, Alpha
fields are space-padded ASCII). A malformed message becomes an
ItchError (offset, reason) in the caller's `errors` list and the stream goes on with the next
framed message; a raw stream stops at an unknown type, since its length cannot be known.
"""

from __future__ import annotations

from collections.abc import Iterator
from struct import Struct
from typing import NamedTuple


class ItchError(ValueError):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"ITCH error at offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


# type byte -> layout after the common head "cHHHI" (type, locate, tracking, ts hi16, ts lo32)
LAYOUTS: dict[bytes, Struct] = {
    # system and stock-related messages (informational for the books, except R)
    b"S": Struct(">cHHHIc"),  # event code
    b"R": Struct(">cHHHI8sccIcc2scccccIc"),  # stock directory
    b"H": Struct(">cHHHI8scc4s"),  # trading action: stock, state, reserved, reason
    b"Y": Struct(">cHHHI8sc"),  # Reg SHO short sale price test: stock, action
    b"L": Struct(">cHHHI4s8sccc"),  # market participant position: MPID, stock, 3 flags
    b"V": Struct(">cHHHIQQQ"),  # MWCB decline levels 1-3, Price(8)
    b"W": Struct(">cHHHIc"),  # MWCB status: breached level
    b"K": Struct(">cHHHI8sIcI"),  # IPO quoting period: stock, release time, qualifier, price
    b"J": Struct(">cHHHI8sIIII"),  # LULD auction collar: stock, reference, upper, lower, ext.
    b"h": Struct(">cHHHI8scc"),  # operational halt: stock, market code, action
    # order book messages
    b"A": Struct(">cHHHIQcI8sI"),  # ref, side, shares, stock, price
    b"F": Struct(">cHHHIQcI8sI4s"),  # ... + attribution (MPID)
    b"E": Struct(">cHHHIQIQ"),  # ref, executed shares, match number
    b"C": Struct(">cHHHIQIQcI"),  # ... + printable, execution price
    b"X": Struct(">cHHHIQI"),  # ref, cancelled shares
    b"D": Struct(">cHHHIQ"),  # ref
    b"U": Struct(">cHHHIQQII"),  # original ref, new ref, shares, price
    # trades and auction information
    b"P": Struct(">cHHHIQcI8sIQ"),  # ref, side, shares, stock, price, match number
    b"Q": Struct(">cHHHIQ8sIQc"),  # cross trade: shares (8 bytes), stock, price, match, type
    b"B": Struct(">cHHHIQ"),  # broken trade: match number
    b"I": Struct(">cHHHIQQc8sIIIcc"),  # NOII: paired, imbalance, direction, stock, 3 prices, ...
    b"N": Struct(">cHHHI8sc"),  # RPII: stock, interest flag
    b"O": Struct(">cHHHI8scIIIQII"),  # DLCR price discovery
}
SIZES = {t: s.size for t, s in LAYOUTS.items()}
# dispatch by type byte: the bound unpack_from (None if unknown) and the size (0 if unknown)
_UNPACK: list = [None] * 256
SIZE_BY_TYPE: list[int] = [0] * 256
for _type, _struct in LAYOUTS.items():
    _UNPACK[_type[0]] = _struct.unpack_from
    SIZE_BY_TYPE[_type[0]] = _struct.size


def iter_raw(
    data: bytes, framed: bool = True, errors: list[ItchError] | None = None
) -> Iterator[tuple]:
    """Raw tuples, one per well-formed message (see module docstring)."""
    unpack = _UNPACK
    sizes = SIZE_BY_TYPE
    n = len(data)
    off = 0
    if framed:
        while off < n:
            if off + 2 > n:
                _fail(errors, off, "truncated length prefix")
                return
            length = data[off] << 8 | data[off + 1]  # the big-endian length, without a Struct
            body = off + 2
            off = body + length
            if length and off <= n and sizes[kind := data[body]] == length:
                yield unpack[kind](data, body)
            elif not framing_error(data, body, length, errors):
                return
        return
    while off < n:
        kind = data[off]
        size = sizes[kind]
        if not size:
            _fail(errors, off, f"unknown message type {data[off : off + 1]!r}; raw stream stops")
            return
        if off + size > n:
            _fail(errors, off, f"truncated: type {data[off : off + 1]!r} needs {size} bytes")
            return
        yield unpack[kind](data, off)
        off += size


def iter_framed(data: bytes, errors: list[ItchError] | None = None) -> Iterator[tuple[int, tuple]]:
    """(offset of the message's length prefix, raw tuple) per well-formed framed message: for
    a replay that must say where a message it could not apply was. (`iter_raw` is the same walk
    without offsets; it stays separate because it is the parser's hot loop.)"""
    unpack = _UNPACK
    sizes = SIZE_BY_TYPE
    n = len(data)
    off = 0
    while off < n:
        if off + 2 > n:
            _fail(errors, off, "truncated length prefix")
            return
        start = off
        length = data[off] << 8 | data[off + 1]
        body = off + 2
        off = body + length
        if length and off <= n and sizes[kind := data[body]] == length:
            yield start, unpack[kind](data, body)
        elif not framing_error(data, body, length, errors):
            return


def framing_error(data: bytes, body: int, length: int, errors: list[ItchError] | None) -> bool:
    """Record why the framed message at `body` is bad; False if the stream cannot go on."""
    left = len(data) - body
    if left < 0:
        _fail(errors, body - 2, "truncated length prefix")
        return False
    if length > left:
        _fail(errors, body - 2, f"truncated: length {length}, {left} bytes left")
        return False
    if length == 0:
        _fail(errors, body - 2, "zero-length message")
        return True
    kind = data[body : body + 1]
    size = SIZE_BY_TYPE[kind[0]]
    if not size:
        _fail(errors, body, f"unknown message type {kind!r}")
    else:
        _fail(errors, body, f"type {kind!r} is {size} bytes, length says {length}")
    return True


def _fail(errors: list[ItchError] | None, offset: int, reason: str) -> None:
    err = ItchError(offset, reason)
    if errors is None:
        raise err
    errors.append(err)


def parse_one(message: bytes) -> tuple:
    """One raw (unframed) message that must be exactly its type's size."""
    if not message:
        raise ItchError(0, "empty message")
    size = SIZE_BY_TYPE[message[0]]
    if not size:
        raise ItchError(0, f"unknown message type {message[:1]!r}")
    if len(message) != size:
        raise ItchError(0, f"type {message[:1]!r} is {size} bytes, got {len(message)}")
    return _UNPACK[message[0]](message)


def encode(raw: tuple) -> bytes:
    """A raw tuple (as `iter_raw` yields) back to its bytes, unframed."""
    layout = LAYOUTS.get(raw[0])
    if layout is None:
        raise ItchError(0, f"unknown message type {raw[0]!r}")
    return layout.pack(*raw)


def frame(message: bytes) -> bytes:
    """The 2-byte big-endian length prefix of a file's framing, then the message."""
    if len(message) > 0xFFFF:
        raise ItchError(0, f"message of {len(message)} bytes does not fit a 2-byte length")
    return len(message).to_bytes(2, "big") + message


# ---- named messages --------------------------------------------------------------------------


class SystemEvent(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    event_code: str


class StockDirectory(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    stock: str
    market_category: str
    financial_status: str
    round_lot_size: int
    round_lots_only: str
    issue_classification: str
    issue_subtype: str
    authenticity: str
    short_sale_threshold: str
    ipo_flag: str
    luld_tier: str
    etp_flag: str
    etp_leverage: int
    inverse: str


class AddOrder(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    side: str  # "B" or "S"
    shares: int
    stock: str
    price: int  # Price(4)
    mpid: str | None  # F messages only


class OrderExecuted(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    shares: int
    match_number: int
    printable: str | None  # C messages only
    price: int | None  # C messages only


class OrderCancel(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    shares: int


class OrderDelete(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    order_ref: int


class OrderReplace(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    new_order_ref: int
    shares: int
    price: int


class TradeMessage(NamedTuple):
    locate: int
    tracking: int
    timestamp: int
    order_ref: int
    side: str
    shares: int
    stock: str
    price: int
    match_number: int


def _named(name: str, *fields: str) -> type:
    """A NamedTuple of the common head plus `fields`: the informational types need no more."""
    return NamedTuple(name, [(f, object) for f in ("locate", "tracking", "timestamp", *fields)])


TradingAction = _named("TradingAction", "stock", "trading_state", "reserved", "reason")
RegSho = _named("RegSho", "stock", "reg_sho_action")
ParticipantPosition = _named(
    "ParticipantPosition", "mpid", "stock", "primary_market_maker", "market_maker_mode",
    "participant_state",
)  # fmt: skip
MwcbDecline = _named("MwcbDecline", "level1", "level2", "level3")
MwcbStatus = _named("MwcbStatus", "breached_level")
IpoQuoting = _named("IpoQuoting", "stock", "release_time", "release_qualifier", "ipo_price")
LuldCollar = _named(
    "LuldCollar", "stock", "reference_price", "upper_price", "lower_price", "extension"
)
OperationalHalt = _named("OperationalHalt", "stock", "market_code", "halt_action")
CrossTrade = _named("CrossTrade", "shares", "stock", "price", "match_number", "cross_type")
BrokenTrade = _named("BrokenTrade", "match_number")
Noii = _named(
    "Noii", "paired_shares", "imbalance_shares", "imbalance_direction", "stock", "far_price",
    "near_price", "reference_price", "cross_type", "price_variation",
)  # fmt: skip
Rpii = _named("Rpii", "stock", "interest_flag")
Dlcr = _named(
    "Dlcr", "stock", "open_eligibility", "min_allowable_price", "max_allowable_price",
    "near_execution_price", "near_execution_time", "lower_price_range_collar",
    "upper_price_range_collar",
)  # fmt: skip
_GENERIC: dict[bytes, type] = {
    b"H": TradingAction, b"Y": RegSho, b"L": ParticipantPosition, b"V": MwcbDecline,
    b"W": MwcbStatus, b"K": IpoQuoting, b"J": LuldCollar, b"h": OperationalHalt,
    b"Q": CrossTrade, b"B": BrokenTrade, b"I": Noii, b"N": Rpii, b"O": Dlcr,
}  # fmt: skip


def _s(raw: bytes) -> str:
    return raw.decode("ascii", "replace").rstrip(" ")


def decode(raw: tuple) -> NamedTuple:
    """A raw tuple as a named message (timestamp joined, text fields as str)."""
    kind = raw[0]
    head = (raw[1], raw[2], (raw[3] << 32) | raw[4])
    f = raw[5:]
    if kind == b"A" or kind == b"F":
        mpid = _s(f[5]) if kind == b"F" else None
        return AddOrder(*head, f[0], _s(f[1]), f[2], _s(f[3]), f[4], mpid)
    if kind == b"E":
        return OrderExecuted(*head, f[0], f[1], f[2], None, None)
    if kind == b"C":
        return OrderExecuted(*head, f[0], f[1], f[2], _s(f[3]), f[4])
    if kind == b"X":
        return OrderCancel(*head, *f)
    if kind == b"D":
        return OrderDelete(*head, *f)
    if kind == b"U":
        return OrderReplace(*head, *f)
    if kind == b"P":
        return TradeMessage(*head, f[0], _s(f[1]), f[2], _s(f[3]), f[4], f[5])
    if kind == b"S":
        return SystemEvent(*head, _s(f[0]))
    if kind == b"R":
        text = [_s(v) if isinstance(v, bytes) else v for v in f]
        return StockDirectory(*head, *text)
    named = _GENERIC.get(kind)
    if named is not None:
        return named(*head, *(_s(v) if isinstance(v, bytes) else v for v in f))
    raise ItchError(0, f"unknown message type {kind!r}")


def iter_messages(
    data: bytes, framed: bool = True, errors: list[ItchError] | None = None
) -> Iterator[NamedTuple]:
    for raw in iter_raw(data, framed, errors):
        yield decode(raw)
