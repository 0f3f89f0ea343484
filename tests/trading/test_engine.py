"""Order lifecycle, validation, each risk rule at its limit and one past it, and the portfolio."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.book import BUY, FOK, IOC, POST, SELL, STP_CANCEL_RESTING
from tradekernel.kernel.trading.engine import (
    EngineError,
    IllegalTransition,
    OrderState,
    TradingEngine,
)
from tradekernel.kernel.trading.instruments import InstrumentError, InstrumentTable
from tradekernel.kernel.trading.portfolio import FeeSchedule


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000

    def __call__(self) -> int:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(clock) -> TradingEngine:
    return TradingEngine(clock)


def px(engine, text, symbol="AAPL"):
    return engine.instrument(symbol).price_to_ticks(text)


def test_accept_fill_and_events_in_sequence(engine, clock):
    seen: list[ev.Event] = []
    engine.bus.subscribe(seen.append)
    sell = engine.submit("mm", "AAPL", SELL, 10, px(engine, "100.00"))
    clock.t = 2_000
    buy = engine.submit("shell", "AAPL", BUY, 4, px(engine, "100.01"))
    assert buy.state is OrderState.FILLED and sell.state is OrderState.PARTIALLY_FILLED
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    kinds = [type(e).__name__ for e in seen]
    assert kinds[:4] == ["OrderSubmitted", "OrderAccepted", "DepthChanged", "TopOfBook"]
    trade = next(e for e in seen if isinstance(e, ev.Trade))
    assert (trade.price, trade.qty, trade.buyer, trade.seller, trade.ts_ns) == (
        10000, 4, "shell", "mm", 2_000,
    )  # fmt: skip
    filled = [e for e in seen if isinstance(e, ev.OrderFilled)]
    assert filled[0].order_id == buy.order_id and filled[0].leaves_qty == 0
    log = [(t[2], t[3], t[4]) for t in engine.transitions]
    assert (buy.order_id, "ACCEPTED", "FILLED") in log
    assert [t[0] for t in engine.transitions] == list(range(1, len(log) + 1))


def test_book_events_are_built_only_for_someone_who_listens_to_them(engine):
    """An audit-like listener of order events alone costs the books nothing (no book event
    is built: the bus numbers every event it builds, and its numbers show no gap); a
    TopOfBook listener that comes later gets the current top at the next change, and one of
    every event gets the book events too."""
    orders: list[ev.Event] = []
    stop = engine.bus.subscribe(orders.append, (ev.OrderSubmitted, ev.OrderAccepted))
    engine.submit("mm", "AAPL", SELL, 10, px(engine, "100.00"))
    engine.submit("mm", "AAPL", BUY, 5, px(engine, "99.00"))
    assert [type(e) for e in orders] == [ev.OrderSubmitted, ev.OrderAccepted] * 2
    assert [e.seq for e in orders] == [1, 2, 3, 4]
    tops: list[ev.Event] = []
    engine.bus.subscribe(tops.append, (ev.TopOfBook,))
    engine.submit("mm", "AAPL", BUY, 1, px(engine, "99.50"))
    assert [(t.bid_price, t.bid_qty, t.ask_price, t.ask_qty) for t in tops] == [
        (px(engine, "99.50"), 1, px(engine, "100.00"), 10)]  # fmt: skip
    stop()
    everything: list[ev.Event] = []
    engine.bus.subscribe(everything.append)
    engine.submit("mm", "AAPL", BUY, 1, px(engine, "99.60"))
    assert ev.DepthChanged in {type(e) for e in everything}


def test_a_listener_that_comes_back_gets_the_top_even_if_it_is_the_one_it_last_saw(engine):
    tops: list[ev.Event] = []
    stop = engine.bus.subscribe(tops.append, (ev.TopOfBook,))
    resting = engine.submit("mm", "AAPL", SELL, 10, px(engine, "100.00"))
    stop()
    engine.cancel(resting.order_id)  # unseen: the book is empty again
    engine.bus.subscribe(tops.append, (ev.TopOfBook,))
    engine.submit("mm", "AAPL", SELL, 10, px(engine, "100.00"))  # the same top as before
    assert [(t.ask_price, t.ask_qty) for t in tops] == [(px(engine, "100.00"), 10)] * 2


def test_illegal_transition_raises(engine):
    order = engine.submit("shell", "AAPL", BUY, 1, px(engine, "100"))
    engine.cancel(order.order_id)
    with pytest.raises(IllegalTransition):
        engine._transition(order, OrderState.FILLED)


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(symbol="NOPE", qty=1, price=100), "unknown symbol"),
        (dict(symbol="AAPL", qty=0, price=10000), "positive"),
        (dict(symbol="AAPL", qty=1, price=99), "outside band"),
        (dict(symbol="AAPL", qty=1, price=1_000_001), "outside band"),
        (dict(symbol="AAPL", qty=1, price=None), "market order must be IOC"),
    ],
)
def test_validation_rejects_with_reason(engine, kwargs, reason):
    order = engine.submit("shell", side=BUY, **kwargs)
    assert order.state is OrderState.REJECTED and reason in order.reason


def test_tick_and_lot_multiples_checked_at_the_edge(engine):
    with pytest.raises(InstrumentError, match="not a multiple of tick"):
        engine.instrument("AAPL").price_to_ticks("100.005")
    with pytest.raises(InstrumentError, match="not a multiple of lot"):
        engine.instrument("BTCUSD").qty_to_lots("0.00015")
    assert engine.instrument("BTCUSD").qty_to_lots("0.0015") == 15


def test_duplicate_client_id_per_owner(engine):
    assert engine.submit("a", "AAPL", BUY, 1, 10000, client_id="x").state is OrderState.ACCEPTED
    assert engine.submit("b", "AAPL", BUY, 1, 10000, client_id="x").state is OrderState.ACCEPTED
    dup = engine.submit("a", "AAPL", BUY, 1, 10000, client_id="x")
    assert dup.state is OrderState.REJECTED and "duplicate client order id" in dup.reason


def test_ioc_fok_post_lifecycle(engine):
    engine.submit("mm", "AAPL", SELL, 5, 10000)
    ioc = engine.submit("s", "AAPL", BUY, 8, 10000, IOC)
    assert ioc.state is OrderState.CANCELLED and ioc.filled == 5 and ioc.reason == "IOC remainder"
    engine.submit("mm", "AAPL", SELL, 5, 10000)
    fok = engine.submit("s", "AAPL", BUY, 6, 10000, FOK)
    assert fok.state is OrderState.CANCELLED and fok.filled == 0
    post = engine.submit("s", "AAPL", BUY, 1, 10000, POST)
    assert post.state is OrderState.REJECTED and "post-only would cross best ask 100" in post.reason


def test_replace_and_cancel(engine):
    order = engine.submit("s", "AAPL", BUY, 10, 10000)
    engine.replace(order.order_id, qty=6)
    assert order.state is OrderState.REPLACED and engine.book("AAPL").best_bid() == (10000, 6)
    engine.replace(order.order_id, price=10001)
    assert engine.book("AAPL").best_bid() == (10001, 6)
    with pytest.raises(EngineError, match="belongs to s"):
        engine.cancel(order.order_id, owner="other")
    assert engine.cancel(order.order_id) == 6
    with pytest.raises(EngineError, match="not live"):
        engine.cancel(order.order_id)


def test_stp_cancel_resting_through_engine(clock):
    engine = TradingEngine(clock, stp_mode=STP_CANCEL_RESTING)
    resting = engine.submit("a", "AAPL", SELL, 5, 10000)
    incoming = engine.submit("a", "AAPL", BUY, 5, 10000)
    assert resting.state is OrderState.CANCELLED and resting.reason == "self-trade prevention"
    assert incoming.state is OrderState.ACCEPTED and engine.book("AAPL").best_bid() == (10000, 5)


# ---- risk: each rule accepts at its limit and rejects at limit + 1 ----------------------------


def accepted(order) -> bool:
    return order.state is not OrderState.REJECTED


def test_risk_max_order_qty(engine):
    engine.risk.set_limit("s", "max_order_qty", 400)
    assert accepted(engine.submit("s", "AAPL", BUY, 400, 10000))
    rejected = engine.submit("s", "AAPL", BUY, 401, 10000)
    assert rejected.reason == "risk: max_order_qty 401 > limit 400"


def test_risk_max_order_notional(engine):
    engine.risk.set_limit("s", "max_order_notional", Decimal("1000.00"))
    assert accepted(engine.submit("s", "AAPL", BUY, 10, 10000))  # 10 x 100.00 = 1000
    rejected = engine.submit("s", "AAPL", BUY, 10, 10001)  # 1000.10
    assert rejected.reason == "risk: max_order_notional 1000.10 > limit 1000.00"


def test_risk_max_position_counts_open_orders_and_fills(engine):
    engine.risk.set_limit("s", "max_position", 10)
    engine.submit("mm", "AAPL", SELL, 4, 10000)
    assert engine.submit("s", "AAPL", BUY, 4, 10000).state is OrderState.FILLED
    assert accepted(engine.submit("s", "AAPL", BUY, 3, 9000))
    assert accepted(engine.submit("s", "AAPL", BUY, 3, 9000))  # 4 filled + 6 open = 10
    rejected = engine.submit("s", "AAPL", BUY, 1, 9000)
    assert rejected.reason == "risk: max_position 11 > limit 10"
    assert accepted(engine.submit("s", "AAPL", SELL, 14, 20000))  # short side: |4 - 14| = 10
    assert engine.submit("s", "AAPL", SELL, 1, 20000).reason == "risk: max_position 11 > limit 10"


def test_risk_max_open_orders(engine):
    engine.risk.set_limit("s", "max_open_orders", 2)
    assert accepted(engine.submit("s", "AAPL", BUY, 1, 10000))
    assert accepted(engine.submit("s", "MSFT", BUY, 1, 10000))
    assert engine.submit("s", "AAPL", BUY, 1, 10000).reason == "risk: max_open_orders 3 > limit 2"


def test_risk_collar_ticks_around_last_trade(engine):
    engine.submit("mm", "AAPL", SELL, 1, 10000)
    engine.submit("x", "AAPL", BUY, 1, 10000)  # last trade 100.00
    engine.risk.set_limit("s", "collar_ticks", 10)
    assert accepted(engine.submit("s", "AAPL", BUY, 1, 10010))
    assert accepted(engine.submit("s", "AAPL", SELL, 1, 9990))
    reason = engine.submit("s", "AAPL", BUY, 1, 10011).reason
    assert reason.startswith("risk: collar_ticks 11 ticks") and "limit 10" in reason


def test_risk_collar_pct_around_mid(engine):
    engine.submit("mm", "AAPL", BUY, 1, 9900)
    engine.submit("mm", "AAPL", SELL, 1, 10100)  # mid 100.00, no trade yet
    engine.risk.set_limit("s", "collar_pct", Decimal("5"))
    assert accepted(engine.submit("s", "AAPL", SELL, 1, 10500))  # exactly 5%, rests
    assert accepted(engine.submit("s", "AAPL", BUY, 1, 9500))
    reason = engine.submit("s", "AAPL", SELL, 1, 10501).reason
    assert reason == "risk: collar_pct 5.01% from reference > limit 5%"


def test_risk_order_rate_per_virtual_second(engine, clock):
    engine.risk.set_limit("s", "max_orders_per_sec", 3)
    for _ in range(3):
        assert accepted(engine.submit("s", "AAPL", BUY, 1, 10000))
    reason = engine.submit("s", "AAPL", BUY, 1, 10000).reason
    assert reason == "risk: max_orders_per_sec 4 > limit 3"
    clock.t += 999_999_999
    assert not accepted(engine.submit("s", "AAPL", BUY, 1, 10000))
    clock.t += 1
    assert accepted(engine.submit("s", "AAPL", BUY, 1, 10000))


def test_kill_switch_cancels_and_blocks(engine):
    a = engine.submit("s", "AAPL", BUY, 1, 10000)
    b = engine.submit("s", "MSFT", SELL, 1, 20000)
    other = engine.submit("t", "AAPL", BUY, 1, 10000)
    assert engine.kill_switch("s") == 2
    assert a.state is b.state is OrderState.CANCELLED and a.reason == "kill switch"
    assert other.is_live
    assert engine.submit("s", "AAPL", BUY, 1, 10000).reason == "risk: kill_switch active for s"
    engine.risk.release("s")
    assert accepted(engine.submit("s", "AAPL", BUY, 1, 10000))


def test_replace_is_risk_checked(engine):
    engine.risk.set_limit("s", "max_order_qty", 5)
    order = engine.submit("s", "AAPL", BUY, 5, 10000)
    with pytest.raises(EngineError, match="max_order_qty 6 > limit 5"):
        engine.replace(order.order_id, qty=6)


# ---- portfolio ----------------------------------------------------------------------------


def test_positions_average_cost_and_pnl_exact(clock):
    engine = TradingEngine(clock, fees=FeeSchedule(bps=Decimal("1"), per_lot=Decimal("0.005")))
    engine.submit("mm", "AAPL", SELL, 3, 10000)
    engine.submit("mm", "AAPL", SELL, 3, 10001)
    engine.submit("s", "AAPL", BUY, 6, 10001)  # 3 @ 100.00 + 3 @ 100.01, avg 100.005
    pos = engine.portfolio.position("s", engine.instrument("AAPL"))
    assert pos.qty == 6 and pos.avg_price() == Decimal("100.005")
    engine.submit("x", "AAPL", BUY, 2, 10010)
    engine.submit("s", "AAPL", SELL, 2, 10010)  # realize 2 x (100.10 - 100.005) = 0.19
    assert pos.realized_money() == Decimal("0.19")
    assert pos.unrealized_money(engine.mark_ticks("AAPL")) == Decimal("0.38")
    # fees: 1 bp of 300.00 + 300.03 + 200.20 = 0.080023, plus 0.005 x 8 lots = 0.04
    assert pos.fees == Decimal("0.120023")
    realized, unrealized, fees = engine.pnl("s")["s"]
    assert (realized, unrealized, fees) == (Decimal("0.19"), Decimal("0.38"), Decimal("0.120023"))


def test_position_flip_through_zero(engine):
    engine.submit("mm", "AAPL", SELL, 2, 10000)
    engine.submit("s", "AAPL", BUY, 2, 10000)
    engine.submit("mm", "AAPL", BUY, 5, 9900)
    engine.submit("s", "AAPL", SELL, 5, 9900)  # close 2 at a loss of 2.00, open short 3
    pos = engine.portfolio.position("s", engine.instrument("AAPL"))
    assert pos.qty == -3 and pos.avg_price() == Decimal("99")
    assert pos.realized_money() == Decimal("-2")
    mm = engine.portfolio.position("mm", engine.instrument("AAPL"))
    assert mm.qty + pos.qty == 0  # conservation across owners


def test_instruments_toml_and_errors():
    table = InstrumentTable.from_toml(
        '[instruments.XYZ]\ntick_size = 0.05\nlot_size = 100\nprice_band = ["0.05", 50]\n'
    )
    xyz = table["XYZ"]
    assert xyz.price_to_ticks("1.15") == 23 and xyz.qty_to_lots("300") == 3
    assert len(InstrumentTable.from_toml("")) == 4
    with pytest.raises(InstrumentError, match="price_band"):
        InstrumentTable.from_toml("[instruments.X]\ntick_size = 0.01\n")
    with pytest.raises(InstrumentError, match="not a multiple of tick"):
        InstrumentTable.from_toml("[instruments.X]\ntick_size = 0.02\nprice_band = [0.01, 5]\n")
    with pytest.raises(InstrumentError, match="instruments config"):
        InstrumentTable.from_toml("[instruments.X\n")
