"""The matching rules, one test per rule, and the book against a naive reference model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradekernel.kernel.trading.book import (
    BUY,
    FOK,
    GTC,
    IOC,
    POST,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_INCOMING,
    STP_CANCEL_RESTING,
    BookError,
    OrderBook,
)


class Recorder:
    def __init__(self) -> None:
        self.fills: list[tuple[int, int, int, int]] = []  # (maker, taker, price, qty)
        self.cancels: list[tuple[int, int]] = []

    def on_fill(self, maker, maker_owner, taker, price, qty, maker_left, taker_left):
        self.fills.append((maker, taker, price, qty))

    def on_cancel(self, oid, owner, qty):
        self.cancels.append((oid, qty))


def make_book(stp=STP_CANCEL_INCOMING) -> tuple[OrderBook, Recorder]:
    rec = Recorder()
    return OrderBook("TEST", stp, rec.on_fill, rec.on_cancel), rec


def test_price_priority_better_price_fills_first():
    book, rec = make_book()
    book.submit(1, "a", SELL, 101, 5)
    book.submit(2, "b", SELL, 100, 5)
    book.submit(3, "c", BUY, 101, 5)
    assert rec.fills == [(2, 3, 100, 5)]
    assert book.best_ask() == (101, 5)


def test_time_priority_at_same_price():
    book, rec = make_book()
    book.submit(1, "a", BUY, 100, 5)
    book.submit(2, "b", BUY, 100, 5)
    book.submit(3, "c", SELL, 100, 7)
    assert rec.fills == [(1, 3, 100, 5), (2, 3, 100, 2)]
    assert book.level_orders(BUY, 100) == [(2, 3)]


def test_partial_fill_rests_the_remainder():
    book, rec = make_book()
    book.submit(1, "a", SELL, 100, 3)
    rested = book.submit(2, "b", BUY, 100, 10)
    assert rec.fills == [(1, 2, 100, 3)]
    assert rested == 7
    assert book.best_bid() == (100, 7) and book.best_ask() is None


def test_market_order_sweeps_levels():
    book, rec = make_book()
    book.submit(1, "a", SELL, 100, 2)
    book.submit(2, "a", SELL, 101, 2)
    book.submit(3, "a", SELL, 105, 2)
    rested = book.submit(4, "b", BUY, None, 5, IOC)
    assert rec.fills == [(1, 4, 100, 2), (2, 4, 101, 2), (3, 4, 105, 1)]
    assert rested == 0
    assert book.best_ask() == (105, 1)
    assert book.last_price == 105 and book.volume == 5


def test_ioc_remainder_is_cancelled():
    book, rec = make_book()
    book.submit(1, "a", SELL, 100, 2)
    assert book.submit(2, "b", BUY, 100, 5, IOC) == 0
    assert rec.fills == [(1, 2, 100, 2)]
    assert book.best_bid() is None and 2 not in book


def test_fok_is_all_or_nothing():
    book, rec = make_book()
    book.submit(1, "a", SELL, 100, 2)
    book.submit(2, "a", SELL, 101, 2)
    assert book.submit(3, "b", BUY, 101, 5, FOK) == 0
    assert rec.fills == []
    assert book.best_ask() == (100, 2)
    assert book.submit(4, "b", BUY, 101, 4, FOK) == 0
    assert rec.fills == [(1, 4, 100, 2), (2, 4, 101, 2)]


def test_post_only_rejected_if_it_would_cross():
    book, rec = make_book()
    book.submit(1, "a", SELL, 100, 2)
    assert book.submit(2, "b", BUY, 100, 5, POST) == 0
    assert rec.fills == [] and 2 not in book
    assert book.submit(3, "b", BUY, 99, 5, POST) == 5
    assert book.best_bid() == (99, 5)


def test_replace_size_decrease_keeps_priority():
    book, rec = make_book()
    book.submit(1, "a", BUY, 100, 5)
    book.submit(2, "b", BUY, 100, 5)
    book.amend(1, 100, 3)
    assert book.level_orders(BUY, 100) == [(1, 3), (2, 5)]


def test_replace_size_increase_loses_priority():
    book, rec = make_book()
    book.submit(1, "a", BUY, 100, 5)
    book.submit(2, "b", BUY, 100, 5)
    book.amend(1, 100, 8)
    assert book.level_orders(BUY, 100) == [(2, 5), (1, 8)]


def test_replace_price_change_loses_priority_and_may_trade():
    book, rec = make_book()
    book.submit(1, "a", BUY, 99, 5)
    book.submit(2, "b", BUY, 100, 5)
    book.amend(1, 100, 5)
    assert book.level_orders(BUY, 100) == [(2, 5), (1, 5)]
    book.submit(3, "c", SELL, 102, 4)
    book.amend(1, 102, 5)
    assert rec.fills == [(3, 1, 102, 4)]
    assert book.best_bid() == (102, 1)


def test_self_trade_prevention_cancel_incoming():
    book, rec = make_book(STP_CANCEL_INCOMING)
    book.submit(1, "x", SELL, 100, 2)
    book.submit(2, "a", SELL, 101, 5)
    assert book.submit(3, "a", BUY, 101, 10) == 0
    assert rec.fills == [(1, 3, 100, 2)]  # traded with x, then met its own order and stopped
    assert book.best_ask() == (101, 5) and 3 not in book


def test_self_trade_prevention_cancel_resting():
    book, rec = make_book(STP_CANCEL_RESTING)
    book.submit(1, "a", SELL, 100, 5)
    book.submit(2, "x", SELL, 100, 5)
    assert book.submit(3, "a", BUY, 100, 10) == 5
    assert rec.cancels == [(1, 5)]
    assert rec.fills == [(2, 3, 100, 5)]
    assert book.best_bid() == (100, 5) and book.best_ask() is None


def test_self_trade_prevention_cancel_both():
    book, rec = make_book(STP_CANCEL_BOTH)
    book.submit(1, "x", SELL, 100, 2)
    book.submit(2, "a", SELL, 100, 5)
    book.submit(3, "x", SELL, 100, 5)
    assert book.submit(4, "a", BUY, 100, 10) == 0
    assert rec.fills == [(1, 4, 100, 2)] and rec.cancels == [(2, 5)]
    assert book.best_ask() == (100, 5) and book.stp_killed == 4


def test_stp_mode_per_owner_override():
    book, rec = make_book(STP_CANCEL_INCOMING)
    book.stp_modes["a"] = STP_CANCEL_RESTING
    book.submit(1, "a", SELL, 100, 5)
    book.submit(2, "a", BUY, 100, 5)
    assert rec.cancels == [(1, 5)] and book.best_bid() == (100, 5)


def test_cancel_removes_order_and_empty_level():
    book, rec = make_book()
    book.submit(1, "a", BUY, 100, 5)
    book.submit(2, "a", BUY, 99, 5)
    assert book.cancel(1) == 5
    assert book.best_bid() == (99, 5)
    with pytest.raises(BookError):
        book.cancel(1)


def test_bad_requests_raise():
    book, _ = make_book()
    book.submit(1, "a", BUY, 100, 5)
    with pytest.raises(BookError):
        book.submit(1, "a", BUY, 100, 5)
    with pytest.raises(BookError):
        book.submit(2, "a", BUY, 100, 0)
    with pytest.raises(BookError):
        book.submit(3, "a", BUY, None, 1, GTC)
    with pytest.raises(BookError):
        book.reduce(1, 6)


def test_l1_l2_snapshots():
    book, _ = make_book()
    for oid, (side, price, qty) in enumerate(
        [(BUY, 99, 1), (BUY, 99, 2), (BUY, 98, 4), (SELL, 101, 3), (SELL, 103, 1)], start=1
    ):
        book.submit(oid, "a", side, price, qty)
    assert book.l1() == (99, 3, 101, 3)
    assert book.depth(1) == ([(99, 3, 2)], [(101, 3, 1)])
    assert book.depth(5) == ([(99, 3, 2), (98, 4, 1)], [(101, 3, 1), (103, 1, 1)])
    assert book.mid_x2() == 200


# ---- property test against a naive list-scanning reference book ----------------------------


class NaiveBook:
    """Scans a flat list every time: obviously right, obviously slow."""

    def __init__(self, stp_mode: int) -> None:
        self.orders: list[list] = []  # [oid, owner, side, price, qty, seq]
        self.seq = 0
        self.stp_mode = stp_mode
        self.fills: list[tuple[int, int, int, int]] = []
        self.cancels: list[tuple[int, int]] = []

    def _crossing(self, side, price):
        opp = [o for o in self.orders if o[2] == -side]
        if price is not None:
            opp = [o for o in opp if (o[3] <= price if side == BUY else o[3] >= price)]
        opp.sort(key=lambda o: (o[3] * side, o[5]))
        return opp

    def submit(self, oid, owner, side, price, qty, tif):
        crossing = self._crossing(side, price)
        if tif == POST:
            if crossing:
                return 0
        elif tif == FOK:
            avail = 0
            for o in crossing:
                if o[1] == owner:
                    if self.stp_mode != STP_CANCEL_RESTING:
                        break
                    continue
                avail += o[4]
            if avail < qty:
                return 0
        for o in crossing:
            if qty == 0:
                break
            if o[1] == owner:
                if self.stp_mode != STP_CANCEL_INCOMING:
                    self.orders.remove(o)
                    self.cancels.append((o[0], o[4]))
                if self.stp_mode != STP_CANCEL_RESTING:
                    return 0
                continue
            trade = min(qty, o[4])
            o[4] -= trade
            qty -= trade
            self.fills.append((o[0], oid, o[3], trade))
            if o[4] == 0:
                self.orders.remove(o)
        if qty == 0 or tif in (IOC, FOK) or price is None:
            return 0
        self.seq += 1
        self.orders.append([oid, owner, side, price, qty, self.seq])
        return qty

    def cancel(self, oid):
        for o in self.orders:
            if o[0] == oid:
                self.orders.remove(o)
                return o[4]
        return None

    def resting(self, side):
        mine = sorted((o for o in self.orders if o[2] == side), key=lambda o: (-o[3] * side, o[5]))
        return [(o[0], o[1], o[3], o[4]) for o in mine]


order_op = st.tuples(
    st.sampled_from(["add", "add", "add", "cancel"]),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([BUY, SELL]),
    st.one_of(st.none(), st.integers(95, 105)),
    st.integers(1, 20),
    st.sampled_from([GTC, GTC, IOC, FOK, POST]),
    st.integers(0, 60),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(order_op, max_size=60),
    st.sampled_from([STP_CANCEL_INCOMING, STP_CANCEL_RESTING, STP_CANCEL_BOTH]),
)
def test_book_matches_naive_reference(ops, stp_mode):
    book, rec = make_book(stp_mode)
    ref = NaiveBook(stp_mode)
    submitted = 0
    for oid, (kind, owner, side, price, qty, tif, target) in enumerate(ops, start=1):
        if kind == "cancel":
            expected = ref.cancel(target)
            if expected is None:
                assert target not in book
            else:
                assert book.cancel(target) == expected
            continue
        if price is None and tif in (GTC, POST):
            tif = IOC
        submitted += qty
        assert book.submit(oid, owner, side, price, qty, tif) == ref.submit(
            oid, owner, side, price, qty, tif
        )
        assert not book.is_crossed()
    assert rec.fills == ref.fills
    assert rec.cancels == ref.cancels
    assert book.resting_orders(BUY) == ref.resting(BUY)
    assert book.resting_orders(SELL) == ref.resting(SELL)
    # conservation: each fill removes its qty from both sides, so volume is the fill total
    assert book.volume == sum(f[3] for f in rec.fills)
    resting_total = sum(o[3] for o in book.resting_orders(BUY) + book.resting_orders(SELL))
    assert resting_total <= submitted - book.volume
    for side in (BUY, SELL):
        for price, qty, count in book.depth(100)[0 if side == BUY else 1]:
            assert qty == sum(q for _, q in book.level_orders(side, price))
            assert count == len(book.level_orders(side, price))
