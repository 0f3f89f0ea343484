"""The structures chosen for speed keep their promises: the book allocates nothing per order and
leaves no cyclic garbage, events cost nothing unheard, the risk gate's cache follows every limit
change, the integer cost basis matches exact average cost, and the parsers' fast paths report
bad input as precisely as the careful ones."""

from __future__ import annotations

import gc
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading import fix, itch
from tradekernel.kernel.trading.book import BUY, IOC, SELL, OrderBook
from tradekernel.kernel.trading.engine import OrderState, TradingEngine
from tradekernel.kernel.trading.portfolio import COST_SCALE, Position
from tradekernel.kernel.trading.risk import RiskLimits


def churn(book: OrderBook, count: int, seed: int = 7) -> None:
    """Random adds, cancels and crossing IOCs around 1000, like the bench's mix."""
    rng = random.Random(seed)
    live: list[int] = []
    for oid in range(1, count + 1):
        roll = rng.random()
        if roll < 0.3 and live:
            victim = live.pop(rng.randrange(len(live)))
            if victim in book:
                book.cancel(victim)
        elif roll < 0.4:
            book.submit(oid, "t", rng.choice((BUY, SELL)), 1000, rng.randint(1, 10), IOC)
        else:
            side = rng.choice((BUY, SELL))
            if book.submit(oid, "m", side, 1000 - side * rng.randint(1, 20), rng.randint(1, 5)):
                live.append(oid)


def test_book_allocates_no_tracked_object_per_resting_order():
    book = OrderBook("X")
    churn(book, 2_000)  # warm up: levels and slot lists exist
    gc.collect()
    before = len(gc.get_objects())
    for oid in range(10_000, 30_000):
        book.submit(oid, "m", BUY, 900 - oid % 10, 1)
    assert len(gc.get_objects()) - before < 50  # a few levels, not 20,000 orders
    assert len(book) >= 20_000


def test_book_leaves_no_cyclic_garbage_and_reuses_slots():
    book = OrderBook("X")
    gc.collect()
    churn(book, 5_000)
    assert gc.collect() == 0
    resting = len(book)
    for oid in list(range(1, 5_001)):
        if oid in book:
            book.cancel(oid)
    assert len(book) == 0 and book.depth() == ([], [])
    slots = len(book._oid)  # noqa: SLF001 - the slot pool is the structure under test
    for oid in range(10_000, 10_000 + resting):
        book.submit(oid, "m", SELL, 2000, 1)
    assert len(book._oid) == slots  # noqa: SLF001 - freed slots were reused, none added


def test_cancel_head_middle_tail_keeps_fifo_and_totals():
    book = OrderBook("X")
    for oid in range(1, 6):
        book.submit(oid, "m", BUY, 100, oid)
    assert book.cancel(3) == 3 and book.cancel(1) == 1 and book.cancel(5) == 5
    assert book.level_orders(BUY, 100) == [(2, 2), (4, 4)]
    assert book.depth(1) == ([(100, 6, 2)], [])
    book.submit(6, "m", BUY, 100, 1)
    book.submit(7, "t", SELL, 100, 3, IOC)  # takes 2 from order 2, then 1 from order 4
    assert book.level_orders(BUY, 100) == [(4, 3), (6, 1)]
    assert book.order(4) == ("m", BUY, 100, 3) and book.order(2) is None


def test_reused_slot_joins_the_back_of_its_level():
    book = OrderBook("X")
    for oid in (1, 2, 3):
        book.submit(oid, "m", SELL, 100, 1)
    book.cancel(1)
    book.submit(4, "m", SELL, 100, 1)  # takes the slot order 1 left
    assert book.level_orders(SELL, 100) == [(2, 1), (3, 1), (4, 1)]
    fills = []
    book.on_fill = lambda maker, *_rest: fills.append(maker)
    book.submit(5, "t", BUY, 100, 3, IOC)
    assert fills == [2, 3, 4] and len(book) == 0


def test_deep_level_eaten_from_the_head_keeps_fifo_through_rebuilds():
    book = OrderBook("X")
    for oid in range(3_000):
        book.submit(oid, "m", SELL, 100, 2)
    for oid in range(1, 3_000, 7):  # holes in the middle as well as at the head
        book.cancel(oid)
    expected = [oid for oid in range(3_000) if oid % 7 != 1]
    fills: list[int] = []
    book.on_fill = lambda maker, _o, _t, _p, qty, left, _tl: fills.append(maker) if not left else 0
    for taker in range(10_000, 10_000 + 2 * 2_000):  # one lot each: two per maker
        book.submit(taker, "t", BUY, 100, 1, IOC)
    assert fills == expected[:2_000]  # well past the point where the level is rebuilt
    assert book.level_orders(SELL, 100)[:2] == [(expected[2_000], 2), (expected[2_001], 2)]
    assert book.cancel(expected[-1]) == 2  # orders still find their (rebuilt) level
    rest = len(expected) - 2_001
    assert book.depth(1) == ([], [(100, 2 * rest, rest)])


def test_listener_that_empties_or_refills_the_level_mid_match():
    book = OrderBook("X")
    for oid in (1, 2, 3):
        book.submit(oid, "m", SELL, 100, 1)
    book.submit(4, "m", SELL, 101, 5)
    fills: list[tuple[int, int, int]] = []

    def on_fill(maker, _owner, _taker, price, qty, _maker_left, _taker_left):
        fills.append((maker, price, qty))
        if maker == 1:  # the rest of the level goes away, and a newer order comes at its price
            book.cancel(2)
            book.cancel(3)
            book.submit(9, "m", SELL, 100, 1)

    book.on_fill = on_fill
    assert book.submit(5, "t", BUY, 101, 4, IOC) == 0
    assert fills == [(1, 100, 1), (9, 100, 1), (4, 101, 2)]
    assert book.depth() == ([], [(101, 3, 1)]) and book.volume == 4


def test_events_built_only_while_someone_listens():
    engine = TradingEngine(lambda: 5)
    assert not engine.bus.active
    engine.submit("mm", "AAPL", SELL, 5, 10000)
    seen: list[ev.Event] = []
    unsubscribe = engine.bus.subscribe(seen.append)
    assert engine.bus.active
    engine.submit("s", "AAPL", BUY, 2, 10000)
    assert seen[0].seq == 1  # nothing was built (or numbered) while nobody listened
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert any(isinstance(e, ev.Trade) for e in seen)
    unsubscribe()
    assert not engine.bus.active
    heard = len(seen)
    engine.submit("s", "AAPL", BUY, 2, 10000)
    assert len(seen) == heard and len(engine.trades) == 2  # trade history is kept regardless


def test_risk_gate_cache_follows_limit_changes():
    engine = TradingEngine(lambda: 0)
    assert engine.submit("s", "AAPL", BUY, 50, 10000).state is OrderState.ACCEPTED
    engine.risk.set_limit("s", "max_order_qty", 10)  # after the gate said "no checks for s"
    assert engine.submit("s", "AAPL", BUY, 11, 10000).reason.startswith("risk: max_order_qty")
    engine.risk.set_limit("s", "max_order_qty", None)
    assert engine.submit("s", "AAPL", BUY, 11, 10000).state is OrderState.ACCEPTED
    engine.risk.defaults = RiskLimits(max_order_qty=1)
    assert engine.submit("t", "AAPL", BUY, 2, 10000).state is OrderState.REJECTED
    with pytest.raises(AttributeError):
        engine.risk.defaults.max_order_qty = 5  # limits are immutable: the cache stays true


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from((1, -1)), st.integers(1, 500), st.integers(1, 9))))
def test_integer_cost_basis_matches_exact_average_cost(fills):
    pos = Position(TradingEngine(lambda: 0).instrument("AAPL"))
    qty, cost, realized = 0, Fraction(0), Fraction(0)  # exact reference
    closes = 0
    for side, price, lots in fills:
        pos.apply(side, price, lots)
        if qty == 0 or (qty > 0) == (side > 0):
            qty += side * lots
            cost += side * lots * price
            continue
        closes += 1
        closing = min(lots, abs(qty))
        share = cost * closing / abs(qty)
        realized += (closing if qty > 0 else -closing) * price - share
        cost -= share
        qty -= closing if qty > 0 else -closing
        if lots > closing:
            qty = side * (lots - closing)
            cost = Fraction(qty * price)
        elif qty == 0:
            cost = Fraction(0)
    assert pos.qty == qty
    tolerance = Fraction(closes, 2 * COST_SCALE)  # half a unit per closing fill at most
    assert abs(Fraction(pos.realized, COST_SCALE) - realized) <= tolerance
    assert abs(Fraction(pos.cost, COST_SCALE) - cost) <= tolerance


def test_integer_cost_basis_is_exact_when_the_split_is():
    pos = Position(TradingEngine(lambda: 0).instrument("AAPL"))
    pos.apply(BUY, 10000, 3)
    pos.apply(SELL, 10003, 1)  # closes a third of 30000 ticks of cost: exactly 10000
    assert (pos.qty, pos.cost, pos.realized) == (2, 20000 * COST_SCALE, 3 * COST_SCALE)
    assert pos.realized_money() == Decimal("0.03")


def test_fix_fast_path_still_reports_bad_fields_with_offsets():
    writer = fix.FixWriter("TK", "C", lambda: 0)
    good = writer.heartbeat()
    assert fix.parse_message(good)[0].msg_type == "0"  # every tag now cached
    for broken_field, reason in ((b"49=", "empty value for tag 49"), (b"49", "bad field")):
        body = good[good.index(b"35=") : good.index(b"10=")]
        body = body.replace(b"49=TK", broken_field)
        frame = b"8=FIX.4.4\x019=%d\x01" % len(body) + body
        message = frame + b"10=%03d\x01" % fix.checksum(frame)
        with pytest.raises(fix.FixError) as info:
            fix.parse_message(message)
        assert reason in info.value.reason
        assert info.value.offset == message.index(broken_field + b"\x01")


def test_fix_non_ascii_value_names_its_tag_and_offset():
    body = b"35=0\x0149=T\xe9\x0156=C\x0134=1\x0152=x\x01"
    frame = b"8=FIX.4.4\x019=%d\x01" % len(body) + body
    message = frame + b"10=%03d\x01" % fix.checksum(frame)
    with pytest.raises(fix.FixError) as info:
        fix.parse_message(message)
    assert info.value.reason == "non-ASCII value for tag 49"
    assert info.value.offset == message.index(b"49=")


def test_itch_frame_length_limit():
    with pytest.raises(itch.ItchError, match="2-byte length"):
        itch.frame(b"A" * 70_000)
    assert itch.frame(b"xyz") == b"\x00\x03xyz"
