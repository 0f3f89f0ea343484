"""FIX 4.4 tag=value: a strict parser, a stream splitter and an encoder for what the engine writes.

Parsing checks the frame: BeginString (8) first, BodyLength (9) second and equal to the bytes
from after its SOH up to and including the SOH before CheckSum (10), MsgType (35) first in the
body, CheckSum last and equal to the byte sum mod 256 as three digits. Repeating groups are
decoded for market data (35=W/X, NoMDEntries 268): the count must match the entries found.
A bad message raises FixError with its byte offset and the reason; `parse_stream` records it
and resynchronises on the next "8=FIX".
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING

from .instruments import plain

if TYPE_CHECKING:
    from .engine import Order
    from .instruments import Instrument

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"

# tags the engine uses
MSG_TYPE, SENDER, TARGET, SEQ_NUM, SENDING_TIME = 35, 49, 56, 34, 52
CL_ORD_ID, ORIG_CL_ORD_ID, ORDER_ID, EXEC_ID = 11, 41, 37, 17
SYMBOL, SIDE, ORDER_QTY, ORD_TYPE, PRICE, TIME_IN_FORCE, EXEC_INST = 55, 54, 38, 40, 44, 59, 18
EXEC_TYPE, ORD_STATUS, LAST_QTY, LAST_PX, LEAVES_QTY, CUM_QTY, AVG_PX = 150, 39, 32, 31, 151, 14, 6
TEXT, TRANSACT_TIME, ENCRYPT_METHOD, HEART_BT_INT = 58, 60, 98, 108
NO_MD_ENTRIES, MD_UPDATE_ACTION, MD_ENTRY_TYPE, MD_ENTRY_PX, MD_ENTRY_SIZE = 268, 279, 269, 270, 271

# MsgType -> {count tag: (first tag of each entry, tags allowed in an entry)}
GROUPS: dict[str, dict[int, tuple[int, frozenset[int]]]] = {
    "W": {NO_MD_ENTRIES: (MD_ENTRY_TYPE, frozenset({269, 270, 271, 272, 273, 290, 1023}))},
    "X": {NO_MD_ENTRIES: (MD_UPDATE_ACTION, frozenset({279, 269, 55, 270, 271, 272, 273, 290}))},
}
KNOWN_TYPES = {"0": "Heartbeat", "A": "Logon", "D": "NewOrderSingle", "8": "ExecutionReport",
               "F": "OrderCancelRequest", "W": "MarketDataSnapshotFullRefresh",
               "X": "MarketDataIncrementalRefresh", "5": "Logout", "G": "OrderCancelReplaceRequest",
               "9": "OrderCancelReject"}  # fmt: skip
REQUIRED: dict[str, tuple[int, ...]] = {
    "D": (CL_ORD_ID, SYMBOL, SIDE, ORDER_QTY, ORD_TYPE),
    "F": (ORIG_CL_ORD_ID, CL_ORD_ID, SYMBOL, SIDE),
    "8": (ORDER_ID, EXEC_ID, EXEC_TYPE, ORD_STATUS, SYMBOL, SIDE, LEAVES_QTY, CUM_QTY),
    "A": (ENCRYPT_METHOD, HEART_BT_INT),
    "W": (SYMBOL, NO_MD_ENTRIES),
    "X": (NO_MD_ENTRIES,),
}


class FixError(ValueError):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"FIX error at offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


@dataclass(slots=True)
class FixMessage:
    msg_type: str
    fields: list[tuple[int, str]]  # every field in wire order, header and trailer included
    groups: dict[int, list[dict[int, str]]] = field(default_factory=dict)
    offset: int = 0

    def get(self, tag: int, default: str | None = None) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return default

    def __getitem__(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(tag)
        return value


def checksum(data: bytes) -> int:
    return sum(data) % 256


def _frame_end(data: bytes, start: int) -> tuple[int, int]:
    """(end of the body, end of the message) for the message at `start`; raises FixError."""
    if not data.startswith(b"8=", start):
        raise FixError(start, "message does not start with 8= (BeginString)")
    soh1 = data.find(SOH, start)
    if soh1 < 0:
        raise FixError(start, "truncated: no SOH after BeginString")
    if not data.startswith(b"9=", soh1 + 1):
        raise FixError(soh1 + 1, "second field must be 9= (BodyLength)")
    soh2 = data.find(SOH, soh1 + 1)
    if soh2 < 0:
        raise FixError(soh1 + 1, "truncated: no SOH after BodyLength")
    length_text = data[soh1 + 3 : soh2]
    if not length_text.isdigit() or len(length_text) > 9:
        raise FixError(soh1 + 1, f"BodyLength {length_text!r} is not a number")
    body_end = soh2 + 1 + int(length_text)
    if body_end + 7 > len(data):
        raise FixError(start, "truncated: fewer bytes than BodyLength + CheckSum")
    if data[body_end - 1] != 1 or not data.startswith(b"10=", body_end):
        raise FixError(body_end, f"BodyLength {int(length_text)} does not end where 10= starts")
    if data[body_end + 6] != 1:
        raise FixError(body_end, "CheckSum must be three digits followed by SOH")
    return body_end, body_end + 7


MAX_TAG_DIGITS = 9  # FIX tags are positive ints; user-defined ones stay below 10**9
MAX_COUNT_DIGITS = 6  # a repeating group of up to 999,999 entries
_TAG_OF: dict[str, int] = {}  # tag text -> number, for tags already seen well-formed
_TAG_CACHE_LIMIT = 4096  # bounds the cache against a stream of made-up tags
_VALUE = itemgetter(2)


def _checked_fields(pairs: list[tuple[str, str, str]], start: int) -> list[tuple[int, str]]:
    """Fields one by one with the reason and byte offset of the first bad one; learns tags."""
    fields: list[tuple[int, str]] = []
    pos = start
    for tag_text, eq, value in pairs:
        raw = tag_text + eq + value
        if not eq or not tag_text.isdigit() or tag_text.startswith("0"):
            raise FixError(pos, f"bad field {raw[:40]!r}")
        if len(tag_text) > MAX_TAG_DIGITS:
            raise FixError(pos, f"tag {tag_text[:12]}... has {len(tag_text)} digits")
        tag = int(tag_text)
        if not value:
            raise FixError(pos, f"empty value for tag {tag}")
        if len(_TAG_OF) < _TAG_CACHE_LIMIT:
            _TAG_OF[tag_text] = tag
        fields.append((tag, value))
        pos += len(raw) + 1
    return fields


def parse_message(data: bytes, start: int = 0) -> tuple[FixMessage, int]:
    """Parse the message at `start`; returns it and the offset just past it."""
    body_end, end = _frame_end(data, start)
    sum_text = data[body_end + 3 : body_end + 6]
    if not sum_text.isdigit():
        raise FixError(body_end, f"CheckSum {sum_text!r} is not three digits")
    expected = checksum(data[start:body_end])  # a bytes slice sums faster than a memoryview
    if int(sum_text) != expected:
        raise FixError(body_end, f"CheckSum {int(sum_text):03d} != computed {expected:03d}")
    try:
        text = data[start : end - 1].decode("ascii")
    except UnicodeDecodeError as err:
        field_start = data.rfind(SOH, start, start + err.start) + 1 or start
        tag = data[field_start : data.find(b"=", field_start)].decode("ascii", "replace")
        raise FixError(field_start, f"non-ASCII value for tag {tag}") from None
    pairs = [raw.partition("=") for raw in text.split("\x01")]
    try:  # fast path: every tag already known well-formed, no empty value or missing "="
        if "" in map(_VALUE, pairs):
            raise KeyError
        fields = [(_TAG_OF[tag_text], value) for tag_text, _, value in pairs]
    except KeyError:
        fields = _checked_fields(pairs, start)
    if fields[0] != (8, BEGIN_STRING):
        raise FixError(start, f"BeginString {fields[0][1]!r} is not {BEGIN_STRING}")
    if fields[2][0] != MSG_TYPE:
        raise FixError(start, "MsgType (35) must be the first field of the body")
    msg = FixMessage(fields[2][1], fields, offset=start)
    tags = {t for t, _ in fields}
    for tag in REQUIRED.get(msg.msg_type, ()):
        if tag not in tags:
            raise FixError(start, f"35={msg.msg_type} without required tag {tag}")
    for count_tag, (first, allowed) in GROUPS.get(msg.msg_type, {}).items():
        msg.groups[count_tag] = _group(fields, count_tag, first, allowed, start)
    return msg, end


def _group(
    fields: list[tuple[int, str]], count_tag: int, first: int, allowed: frozenset[int], at: int
) -> list[dict[int, str]]:
    index = next((i for i, (t, _) in enumerate(fields) if t == count_tag), None)
    if index is None:
        return []
    count_text = fields[index][1]
    if not count_text.isdigit() or len(count_text) > MAX_COUNT_DIGITS:
        raise FixError(at, f"group count {count_tag}={count_text[:20]!r} is not a count")
    entries: list[dict[int, str]] = []
    for tag, value in fields[index + 1 :]:
        if tag == first:
            entries.append({tag: value})
        elif tag in allowed and entries:
            if tag in entries[-1]:
                raise FixError(at, f"tag {tag} twice in one entry of group {count_tag}")
            entries[-1][tag] = value
        elif tag in allowed:
            raise FixError(at, f"group {count_tag} entry must start with tag {first}, got {tag}")
        else:
            break
    if len(entries) != int(count_text):
        raise FixError(
            at, f"group {count_tag} says {int(count_text)} entries, found {len(entries)}"
        )
    return entries


def parse_stream(data: bytes, errors: list[FixError] | None = None) -> Iterator[FixMessage]:
    """Messages one after another; a bad one goes to `errors` (or raises if None) and parsing
    resumes at the next "8=FIX". Whitespace (newlines in a log file) between messages is skipped."""
    pos = 0
    n = len(data)
    while pos < n:
        while pos < n and data[pos] in b" \r\n\t":
            pos += 1
        if pos >= n:
            return
        try:
            msg, pos = parse_message(data, pos)
        except FixError as err:
            if errors is None:
                raise
            errors.append(err)
            nxt = data.find(b"8=FIX", pos + 1)
            if nxt < 0:
                return
            pos = nxt
            continue
        yield msg


def _text(value: object) -> bytes:
    if isinstance(value, bytes):
        text = value
    elif isinstance(value, float):
        raise TypeError("binary floats are not written to FIX; use Decimal or str")
    elif isinstance(value, Decimal):
        text = format(value, "f").encode("ascii")
    else:
        text = str(value).encode("ascii")
    if not text or SOH in text:
        raise ValueError(f"FIX value {value!r} is empty or contains SOH")
    return text


def encode(
    msg_type: str,
    body: Iterable[tuple[int, object]],
    sender: str,
    target: str,
    seq_num: int,
    sending_time: str,
) -> bytes:
    """A complete message: standard header, `body` fields in order, BodyLength and CheckSum."""
    parts = [b"35=" + msg_type.encode("ascii"), b"49=" + _text(sender), b"56=" + _text(target),
             b"34=" + _text(seq_num), b"52=" + _text(sending_time)]  # fmt: skip
    parts.extend(b"%d=%s" % (tag, _text(value)) for tag, value in body)
    payload = SOH.join(parts) + SOH
    head = b"8=" + BEGIN_STRING.encode() + SOH + b"9=%d" % len(payload) + SOH
    frame = head + payload
    return frame + b"10=%03d" % checksum(frame) + SOH


def fix_time(ns: int) -> str:
    """Virtual ns since power-on as a FIX UTCTimestamp with milliseconds (epoch = 1970-01-01)."""
    stamp = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=ns // 1000)
    return stamp.strftime("%Y%m%d-%H:%M:%S.") + f"{(ns // 1_000_000) % 1000:03d}"


# ExecType (150) / OrdStatus (39) codes
EXEC_NEW, EXEC_PARTIAL, EXEC_FILL, EXEC_CANCELED, EXEC_REPLACED, EXEC_REJECTED, EXEC_TRADE = (
    "0",
    "1",
    "2",
    "4",
    "5",
    "8",
    "F",
)
_ORD_STATUS = {"ACCEPTED": "0", "PARTIALLY_FILLED": "1", "FILLED": "2", "CANCELLED": "4",
               "REPLACED": "0", "REJECTED": "8", "NEW": "A"}  # fmt: skip
_TIF_CODES = {0: "1", 1: "3", 2: "4", 3: "1"}  # GTC, IOC, FOK, post-only (GTC + ExecInst 6)


class FixWriter:
    """Writes the engine's side of a FIX session: numbered messages stamped in virtual time."""

    def __init__(self, sender: str, target: str, now_ns: Callable[[], int]) -> None:
        self.sender = sender
        self.target = target
        self.now_ns = now_ns
        self.seq_num = 0
        self._exec_ids = 0

    def message(self, msg_type: str, body: Iterable[tuple[int, object]]) -> bytes:
        self.seq_num += 1
        now = fix_time(self.now_ns())
        return encode(msg_type, body, self.sender, self.target, self.seq_num, now)

    def logon(self, heartbeat_s: int = 30) -> bytes:
        return self.message("A", [(ENCRYPT_METHOD, 0), (HEART_BT_INT, heartbeat_s)])

    def heartbeat(self) -> bytes:
        return self.message("0", [])

    def execution_report(
        self,
        order: Order,
        instrument: Instrument,
        exec_type: str,
        last_qty: int = 0,
        last_px: int | None = None,
        text: str = "",
    ) -> bytes:
        self._exec_ids += 1
        body: list[tuple[int, object]] = [
            (ORDER_ID, order.order_id),
            (CL_ORD_ID, order.client_id),
            (EXEC_ID, self._exec_ids),
            (EXEC_TYPE, exec_type),
            (ORD_STATUS, _ORD_STATUS[order.state.value]),
            (SYMBOL, instrument.symbol),
            (SIDE, "1" if order.side > 0 else "2"),
            (ORDER_QTY, instrument.lots_to_qty(order.qty)),
            (ORD_TYPE, "1" if order.price is None else "2"),
        ]
        if order.price is not None:
            body.append((PRICE, instrument.ticks_to_price(order.price)))
        body.append((TIME_IN_FORCE, _TIF_CODES[order.tif]))
        if order.tif == 3:
            body.append((EXEC_INST, "6"))
        if last_qty:
            body.append((LAST_QTY, instrument.lots_to_qty(last_qty)))
            body.append((LAST_PX, instrument.ticks_to_price(last_px or 0)))
        body.append((LEAVES_QTY, instrument.lots_to_qty(order.leaves)))
        body.append((CUM_QTY, instrument.lots_to_qty(order.filled)))
        body.append((AVG_PX, order_avg_px(order, instrument)))
        if text:
            body.append((TEXT, text))
        body.append((TRANSACT_TIME, fix_time(self.now_ns())))
        return self.message("8", body)

    def market_data_snapshot(
        self,
        instrument: Instrument,
        bids: list[tuple[int, int, int]],
        asks: list[tuple[int, int, int]],
        last: tuple[int, int] | None = None,
    ) -> bytes:
        entries: list[tuple[str, int, int]] = [("0", p, q) for p, q, _ in bids]
        entries += [("1", p, q) for p, q, _ in asks]
        if last is not None:
            entries.append(("2", last[0], last[1]))
        body: list[tuple[int, object]] = [
            (SYMBOL, instrument.symbol),
            (NO_MD_ENTRIES, len(entries)),
        ]
        for kind, price, qty in entries:
            body += [
                (MD_ENTRY_TYPE, kind),
                (MD_ENTRY_PX, instrument.ticks_to_price(price)),
                (MD_ENTRY_SIZE, instrument.lots_to_qty(qty)),
            ]
        return self.message("W", body)


def order_avg_px(order: Order, instrument: Instrument) -> Decimal:
    """Average fill price of an order (0 before any fill), exact to the tick's precision x 1e-6."""
    if not order.filled:
        return Decimal(0)
    avg_ticks = Decimal(order.notional) / Decimal(order.filled)
    return plain((avg_ticks * instrument.tick_size).quantize(Decimal("1e-6")))
