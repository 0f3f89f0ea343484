"""kernel/trading/audit.py: every order event of a real engine becomes one checksummed record;
a file cut anywhere reads back up to its last complete record; start-up recovery cuts a torn
tail and numbering goes on from the last good record."""

from __future__ import annotations

import dataclasses
import json
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.audit import (
    MAX_RECORD_BYTES,
    MAX_TEXT,
    ORDER_EVENTS,
    AuditLog,
    encode_record,
    read_records,
)
from tradekernel.kernel.trading.book import BUY, IOC, SELL
from tradekernel.kernel.trading.engine import TradingEngine
from tradekernel.kernel.trading.events import EventBus


class MemoryStore:
    """The AuditStore protocol over a bytearray, counting syncs."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.broken: str | None = None
        self.syncs = 0

    def append(self, data: bytes) -> bool:
        if self.broken is not None:
            return False
        self.data += data
        return True

    def sync(self) -> None:
        self.syncs += 1

    def tail(self, count: int) -> tuple[int, bytes]:
        start = max(0, len(self.data) - count)
        return start, bytes(self.data[start:])

    def truncate(self, size: int) -> None:
        del self.data[size:]


def make(store: MemoryStore) -> tuple[AuditLog, list, list[str]]:
    deferred: list = []
    warnings: list[str] = []
    return AuditLog(store, deferred.append, warnings.append), deferred, warnings


def run(deferred: list) -> None:
    while deferred:
        deferred.pop(0)()


def test_every_order_event_is_recorded_with_its_reason() -> None:
    store = MemoryStore()
    audit, deferred, _ = make(store)
    engine = TradingEngine(lambda: 1_000)
    audit.attach(engine.bus)
    engine.submit("alice", "AAPL", BUY, 10, 10_000)
    engine.submit("bob", "AAPL", SELL, 4, 10_000)  # fills 4 of alice's 10
    engine.cancel(1)  # the other 6
    engine.submit("bob", "NOPE", BUY, 1, 100)  # unknown symbol
    engine.submit("bob", "AAPL", BUY, 1, None, tif=IOC)  # market order into an empty book
    assert store.data == b""  # nothing written until the deferred work runs
    run(deferred)
    assert store.syncs == 1  # one flush for the whole batch
    found = read_records(bytes(store.data))
    assert found.problem is None and found.good_bytes == len(store.data)
    events = [(r["event"], r["order_id"]) for r in found.records]
    assert events == [
        ("submitted", 1),
        ("accepted", 1),
        ("submitted", 2),
        ("accepted", 2),
        ("partially_filled", 1),
        ("filled", 2),
        ("cancelled", 1),
        ("submitted", 3),
        ("rejected", 3),
        ("submitted", 4),
        ("accepted", 4),
        ("cancelled", 4),
    ]
    assert [r["rec"] for r in found.records] == list(range(1, 13))
    rejected = found.records[8]
    assert rejected["reason"] == "unknown symbol 'NOPE'" and rejected["owner"] == "bob"
    asked = found.records[7]  # what was asked for, before it was refused
    assert (asked["symbol"], asked["side"], asked["qty"], asked["price"]) == ("NOPE", BUY, 1, 100)
    market = found.records[9]
    assert (market["price"], market["tif"], market["client_id"]) == (None, IOC, "4")
    fill = found.records[4]
    assert (fill["fill_qty"], fill["leaves_qty"], fill["ts_ns"]) == (4, 6, 1_000)
    assert set(ORDER_EVENTS.values()) >= {"accepted", "rejected", "filled", "cancelled"}


def test_a_file_cut_anywhere_reads_up_to_its_last_complete_record() -> None:
    records = [encode_record({"rec": n, "event": "accepted", "text": "a\tb\nc"}) for n in (1, 2, 3)]
    whole = b"".join(records)
    ends = [sum(len(r) for r in records[: n + 1]) for n in range(3)]
    for cut in range(len(whole) + 1):
        found = read_records(whole[:cut])
        complete = sum(1 for end in ends if end <= cut)
        assert len(found.records) == complete, cut
        assert found.good_bytes == (ends[complete - 1] if complete else 0)
        assert (found.problem is None) == (cut in (0, *ends)), cut
        if found.problem is not None:
            assert found.problem.startswith("torn record") and f"at byte {found.good_bytes}" in (
                found.problem
            )
    assert [r["text"] for r in read_records(whole).records] == ["a\tb\nc"] * 3


def test_a_damaged_byte_or_zeros_stop_reading_with_the_reason() -> None:
    first, second = encode_record({"rec": 1}), encode_record({"rec": 2})
    flipped = bytearray(first + second)
    flipped[len(first) + 3] ^= 0x01
    found = read_records(bytes(flipped))
    assert len(found.records) == 1
    assert found.problem == f"checksum mismatch in the record at byte {len(first)}"
    zeros = read_records(first + bytes(512))  # a sector whose data never landed
    assert (
        len(zeros.records) == 1 and zeros.problem == f"torn record (512 bytes) at byte {len(first)}"
    )
    body = b'{"rec":3}'
    forged = body + b"\t" + f"{zlib.crc32(body) ^ 1:08x}".encode() + b"\n"
    assert read_records(first + forged).problem.startswith("checksum mismatch")
    assert json.loads(first.split(b"\t")[0]) == {"rec": 1}


def test_recovery_cuts_a_torn_tail_and_numbering_goes_on() -> None:
    store = MemoryStore()
    audit, deferred, warnings = make(store)
    engine = TradingEngine(lambda: 5)
    audit.attach(engine.bus)
    for _ in range(3):
        engine.submit("alice", "AAPL", BUY, 1, 9_000)
    run(deferred)
    good = len(store.data)
    torn = encode_record({"rec": 7, "event": "accepted"})[:-7]  # the power went here
    store.data += torn
    again, deferred, warnings = make(store)
    again.recover()
    assert len(store.data) == good
    expected = f"audit: torn record ({len(torn)} bytes) at byte {good}: cut the file back to"
    assert warnings == [f"{expected} {good} bytes"]
    assert again.next_rec == 7
    engine = TradingEngine(lambda: 6)
    again.attach(engine.bus)
    engine.submit("bob", "AAPL", SELL, 1, 9_500)
    run(deferred)
    found = read_records(bytes(store.data))
    assert found.problem is None and [r["rec"] for r in found.records] == list(range(1, 9))


def test_recovery_of_a_long_file_reads_only_its_end() -> None:
    records = b"".join(encode_record({"rec": n, "pad": "x" * 200}) for n in range(1, 2001))
    store = MemoryStore(records + b'{"rec":2001')
    audit, _, warnings = make(store)
    audit.recover()
    assert audit.next_rec == 2001 and bytes(store.data) == records and len(warnings) == 1


def test_a_broken_store_loses_records_and_says_so_once() -> None:
    store = MemoryStore()
    store.broken = "/var/log/audit.log: the volume is read-only"
    audit, deferred, warnings = make(store)
    engine = TradingEngine(lambda: 0)
    audit.attach(engine.bus)
    engine.submit("alice", "AAPL", BUY, 1, 9_000)
    run(deferred)
    engine.submit("alice", "AAPL", BUY, 1, 9_000)
    run(deferred)
    assert audit.lost == 4 and audit.written == 0
    assert warnings == ["audit: records are not being written: /var/log/audit.log: the volume "
                        "is read-only"]  # fmt: skip


def test_recovery_of_a_forged_record_with_a_good_checksum_does_not_raise() -> None:
    """A record whose checksum matches but whose body is nested past the JSON reader's
    recursion limit, or whose number is not a count, stops reading there (at boot)."""
    good = encode_record({"rec": 1})
    for body in (b"[" * 3000 + b"]" * 3000, b'{"rec": "x"}', b'{"rec": [1]}', b'{"rec": 1e999}'):
        forged = body + b"\t" + f"{zlib.crc32(body):08x}".encode() + b"\n"
        store = MemoryStore(good + forged)
        audit, _, warnings = make(store)
        audit.recover()
        assert audit.next_rec == 2 and bytes(store.data) == good and len(warnings) == 1


def _sample(cls: type, draw_int, draw_text) -> object:  # noqa: ANN001
    """An instance of an order event class with every field drawn by its declared type."""
    values = []
    for field in dataclasses.fields(cls):
        kind = str(field.type)
        if kind == "str":
            values.append(draw_text())
        elif kind == "bool":
            values.append(draw_int() % 2 == 0)
        elif kind == "int | None":
            number = draw_int()
            values.append(None if number % 3 == 0 else number)
        else:
            values.append(draw_int())
    return cls(*values)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_fast_encoding_is_json_byte_for_byte(data) -> None:  # noqa: ANN001
    """Each event class's record, built from its %-template, is the bytes json makes of the
    same payload, for any ints and any text (quotes, controls, tabs, non-ASCII)."""
    store = MemoryStore()
    audit, deferred, _ = make(store)
    bus = EventBus()
    audit.attach(bus)
    expected = []
    for rec, cls in enumerate(ORDER_EVENTS, 1):
        event = _sample(cls, lambda: data.draw(st.integers(-(2**70), 2**70)),
                        lambda: data.draw(st.text(max_size=40)))  # fmt: skip
        bus.publish(event)
        payload = {"rec": rec, "event": ORDER_EVENTS[cls]}
        payload |= {f.name: getattr(event, f.name) for f in dataclasses.fields(cls)}
        expected.append(encode_record(payload))
    run(deferred)
    assert bytes(store.data) == b"".join(expected)


def test_odd_values_and_huge_texts_still_make_readable_records() -> None:
    """An order refused for a quantity that is not a number of lots is recorded as submitted
    with the value it had (not truncated to an int); a reason of 100 kB is cut to MAX_TEXT
    characters, so its record stays under MAX_RECORD_BYTES and is read back."""
    store = MemoryStore()
    audit, deferred, _ = make(store)
    engine = TradingEngine(lambda: 3)
    audit.attach(engine.bus)
    engine.submit("alice", "AAPL", BUY, 1.5, 10_000)  # type: ignore[arg-type]
    engine.bus.publish(ev.OrderRejected(99, 4, 7, "bob", "c" * 100_000, "AAPL", "r" * 100_000))
    run(deferred)
    found = read_records(bytes(store.data))
    assert found.problem is None, found.problem
    submitted, rejected, refused = found.records
    assert submitted["event"] == "submitted" and submitted["qty"] == 1.5
    assert rejected["event"] == "rejected" and "quantity" in rejected["reason"]
    assert refused["reason"] == "r" * MAX_TEXT and refused["client_id"] == "c" * MAX_TEXT
    assert max(len(line) for line in store.data.split(b"\n")) <= MAX_RECORD_BYTES
