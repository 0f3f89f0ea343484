"""The trading audit log: one record for every order event (submitted, accepted, partially
filled, filled, cancelled, replaced, rejected with its reason), appended to a file that
survives a power cut.

Record format (one line each, so the file also reads as text):
    {"rec":N,"event":"filled","seq":S,"ts_ns":T,...fields...}<TAB>crc32 as 8 hex digits<LF>
The payload is compact JSON (which escapes every tab and newline), `rec` counts records across
boots (a gap is a lost record), `seq`/`ts_ns` are the engine's event number and virtual time,
and the checksum covers the payload's bytes. A record is complete only with its checksum and
newline, so a torn write or a sector of zeros at the end is never taken for a record:
`read_records` returns every record up to the last complete one and says where and why it
stopped. At start-up `AuditLog.recover` cuts a torn tail (it can only be at the end: records
are appended whole), so records of the next boot follow the last good one.

Encoding: each event class has a plan (`_Plan`): a %-template of its compact JSON filled from
its fields (ints by %d, strings by json's own escaper), which gives the bytes `encode_record`
gives for the same payload at a fraction of json's cost (a field not of its declared type
falls back to json, with repr for what json cannot say). A record longer than
MAX_RECORD_BYTES (a huge reason or client id) has its texts cut to MAX_TEXT characters.

Durability: the engine's event listener only encodes (it may run in a feed handler); the
records are written and the drive flushed (ATA CACHE FLUSH, fsync on the host) from the
kernel's deferred work, one flush per batch, before control goes back to a program or the
prompt. A batch never waits past PENDING_MAX records: then it is written at once.

The file itself is the caller's (kernel/obs/rotating.py on the FAT volume): trading knows no
filesystem, only the small `AuditStore` protocol below.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as json_str
from operator import attrgetter, call, index
from typing import Protocol

from tradekernel.kernel.trading import events as ev

AUDIT_PATH = "/var/log/audit.log"
AUDIT_BYTES = 1024 * 1024  # one generation of the file before it is rotated
AUDIT_KEEP = 8  # audit.log.1 ... audit.log.8: at most 9 MiB of history on the disk
MAX_RECORD_BYTES = 4096  # a longer record is refused by `read_records` (and never written)
RECOVER_SCAN = 8 * MAX_RECORD_BYTES  # bytes at the end of the file `recover` reads
PENDING_MAX = 512  # records encoded but not yet written: past this, written at once

# Every engine event about one order, by the name the audit log gives it, and its fields.
ORDER_EVENTS: dict[type[ev.Event], str] = {
    cls: re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__.removeprefix("Order")).lower()
    for cls in vars(ev).values()
    if isinstance(cls, type) and issubclass(cls, ev.Event) and cls.__name__.startswith("Order")
}
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
# for a field of an unexpected type (an order refused for a quantity that is not a number of
# lots is still submitted, and recorded): its repr, as a string
_ANY_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=repr)
MAX_TEXT = 512  # characters of one text field kept in a record that would be too long


def _optional_int(value: int | None) -> str:
    return "null" if value is None else f"{value:d}"


_CONVERT: dict[str, Callable[..., object]] = {
    "int": index,  # formatted by the template's %d; index() refuses what is not an int
    "str": json_str,  # json's own C escaper (ensure_ascii): the same text as _JSON.encode
    "int | None": _optional_int,
    "bool": lambda value: "true" if value else "false",
}


class _Plan:
    """How one event class becomes the payload of a record: a %-template of its compact JSON
    (the same bytes `encode_record` makes from the dict) and the fields to fill it with."""

    def __init__(self, cls: type[ev.Event]) -> None:
        fields = dataclasses.fields(cls)
        self.names = tuple(f.name for f in fields)
        self.get = attrgetter(*self.names)
        self.convert = tuple(_CONVERT.get(str(f.type), _JSON.encode) for f in fields)
        slots = ",".join(f'"{f.name}":{"%d" if c is index else "%s"}'
                         for f, c in zip(fields, self.convert, strict=True))  # fmt: skip
        self.template = '{"rec":%d,"event":"' + ORDER_EVENTS[cls] + '",' + slots + "}"

    def encode(self, rec: int, event: ev.Event) -> bytes:
        try:
            body = (self.template % (rec, *map(call, self.convert, self.get(event)))).encode()
        except (TypeError, ValueError):  # a field not of its declared type: json says it
            body = _ANY_JSON.encode(self.payload(rec, event, cut=False)).encode("ascii")
        return seal(body)

    def payload(self, rec: int, event: ev.Event, cut: bool) -> dict[str, object]:
        """The record as a dict (strings cut to MAX_TEXT characters if `cut`)."""
        payload: dict[str, object] = {"rec": rec, "event": ORDER_EVENTS[type(event)]}
        for name, value in zip(self.names, self.get(event), strict=True):
            payload[name] = value[:MAX_TEXT] if cut and isinstance(value, str) else value
        return payload


_PLANS = {cls: _Plan(cls) for cls in ORDER_EVENTS}


class AuditStore(Protocol):
    broken: str | None

    def append(self, data: bytes) -> bool: ...

    def sync(self) -> None: ...

    def tail(self, count: int) -> tuple[int, bytes]: ...

    def truncate(self, size: int) -> None: ...


def seal(body: bytes) -> bytes:
    """A record from its payload's bytes: the checksum and the newline that complete it."""
    return body + b"\t%08x\n" % zlib.crc32(body)


def encode_record(payload: dict[str, object]) -> bytes:
    return seal(_JSON.encode(payload).encode("ascii"))


def _decode_line(line: bytes) -> dict[str, object] | str:
    """The record in one line (without its newline), or what is wrong with it."""
    body, tab, crc = line.rpartition(b"\t")
    if not tab or len(crc) != 8:
        return "no checksum"
    try:
        expected = int(crc, 16)
    except ValueError:
        return "no checksum"
    if zlib.crc32(body) != expected:
        return "checksum mismatch"
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested a thousand deep
        return "not a JSON record"
    if not isinstance(payload, dict):
        return "not a JSON record"
    rec = payload.get("rec")
    if rec is not None and (type(rec) is not int or rec < 0):
        return f"record number {str(rec)[:20]!r} is not a count"
    return payload


@dataclass
class AuditRead:
    records: list[dict[str, object]]
    good_bytes: int  # where the last complete record ends
    problem: str | None  # why reading stopped before the end, with its byte offset


def read_records(data: bytes, base: int = 0) -> AuditRead:
    """Every record from the start of `data` up to the last complete one (`base` is the
    offset of `data` in the file, for the message)."""
    records: list[dict[str, object]] = []
    position = 0
    while position < len(data):
        end = data.find(b"\n", position, position + MAX_RECORD_BYTES + 1)
        if end < 0:
            rest = len(data) - position
            why = "torn record" if rest <= MAX_RECORD_BYTES else "record too long"
            return AuditRead(records, position, f"{why} ({rest} bytes) at byte {base + position}")
        decoded = _decode_line(data[position:end])
        if isinstance(decoded, str):
            where = f"{decoded} in the record at byte {base + position}"
            return AuditRead(records, position, where)
        records.append(decoded)
        position = end + 1
    return AuditRead(records, position, None)


def describe(record: dict[str, object]) -> str:
    """One line for a person: `#rec  ts  event  order  key=value...`."""
    skip = {"rec", "event", "seq", "ts_ns", "order_id"}
    rest = " ".join(f"{key}={value}" for key, value in record.items() if key not in skip)
    return (f"#{record.get('rec')} {record.get('ts_ns')} {record.get('event')} "
            f"order {record.get('order_id')} {rest}").rstrip()  # fmt: skip


class AuditLog:
    def __init__(self, store: AuditStore, defer: Callable[[Callable[[], None]], None],
                 warn: Callable[[str], None]) -> None:  # fmt: skip
        self.store = store
        self._defer = defer
        self._warn = warn
        self._pending: list[bytes] = []
        self._scheduled = False
        self.next_rec = 1
        self.written = 0  # records written since boot
        self.lost = 0  # records the store could not take (its reason is in the kernel log)

    def recover(self) -> None:
        """Find the last complete record at the end of the file, cut anything after it (a
        record torn by a power cut), and continue the numbering from it."""
        offset, data = self.store.tail(RECOVER_SCAN)
        start = 0
        if offset:  # the read began inside a record: resynchronise at the next newline
            start = data.find(b"\n") + 1
            if start == 0:
                self._warn(f"audit: no record boundary in the last {len(data)} bytes; appending")
                return
        found = read_records(data[start:], offset + start)
        if found.records:
            self.next_rec = found.records[-1].get("rec", 0) + 1  # type: ignore[operator]
        if found.problem is not None:
            good = offset + start + found.good_bytes
            self.store.truncate(good)
            self._warn(f"audit: {found.problem}: cut the file back to {good} bytes")

    def attach(self, bus: ev.EventBus) -> Callable[[], None]:
        """Record every order event from now on; returns the way to stop."""
        return bus.subscribe(self._on_event, tuple(ORDER_EVENTS))

    def _on_event(self, event: ev.Event) -> None:
        plan = _PLANS[type(event)]
        record = plan.encode(self.next_rec, event)
        if len(record) > MAX_RECORD_BYTES:  # a very long reason or client id: cut its text
            cut = plan.payload(self.next_rec, event, cut=True)
            record = seal(_ANY_JSON.encode(cut).encode("ascii"))
        self.next_rec += 1
        self._pending.append(record)
        if len(self._pending) >= PENDING_MAX:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._defer(self.flush)

    def flush(self) -> None:
        """Write the pending records and flush the drive."""
        self._scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self.store.append(b"".join(batch)):
            self.store.sync()
            self.written += len(batch)
        if self.store.broken is not None:
            if not self.lost:  # said once: the store stays broken
                self._warn(f"audit: records are not being written: {self.store.broken}")
            self.lost += len(batch)
