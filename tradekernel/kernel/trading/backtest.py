"""Deterministic backtests: a replayed feed rebuilds the market's books with the kernel's own
order books, and a strategy's orders are simulated against them by a fill model. The shell's
`backtest` (kernel/shell/strategy.py) and the host's `tk backtest` both run `run_backtest`.

Two markets, never mixed: `market` is what the data replays into: replay.ItchMarket for ITCH
and LOBSTER (via its ITCH converter; the bare books, no OMS: the fast path), a TradingEngine
for CSV and FIX (through feed.open_feed), with the same matching engine the OS runs. `SimVenue`
is what the strategy's StrategyHost is bound to in place of an engine (the same calls: submit,
cancel, replace, live, open_orders, portfolio, book(...).l1(), bus), so the strategy code is
the one that runs live. The strategy's orders never enter the market's books: the replayed
orders keep their own history, and the venue decides the strategy's fills from what the feed
reports.

The fill model (all times virtual ns on one VirtualScheduler; FillModel holds the knobs):

- Market data latency `md_latency_ns`: a market event (TopOfBook, Trade) at exchange time t
  reaches the strategy at t + md_latency_ns; `ctx.top()` shows the last top delivered, not the
  book of the exchange's present. Events of a kind the strategy has no callback for are not
  scheduled one by one: what they change (that top, the tick-to-order clock) is applied when
  the strategy next looks, for those delivered strictly before that ns.
- Order entry latency `order_latency_ns`: a submit, cancel or replace made at t acts at the
  venue at t + order_latency_ns, in the order it was made. Until then the order is pending (an
  order can fill while its cancel is on the way). Reports back (accepted, fills, cancelled)
  are delivered at the venue time they happen.
- Taking: at arrival, an order that crosses the replayed book takes the displayed liquidity of
  the opposite side, best level first, at each level's price, up to `max_sweep_levels` levels
  (partial fills). The replayed book is not changed (no market impact), but liquidity the
  strategy took at a level is remembered and not taken twice while that level still shows it.
  IOC and market orders cancel the rest; FOK fills fully or not at all; post-only that would
  cross is cancelled; GTC rests the remainder.
- Queue position: a resting order joins the back of the replayed queue at its price; `ahead`
  starts at the displayed quantity of that level. A replayed execution, partial cancel or
  delete of an order that was there before ours (order-by-order data knows exactly which)
  reduces `ahead`; once nothing is ahead, a replayed execution at our price fills us (the
  aggressor would have met us first), up to its size. A replayed execution at a price worse
  than ours for the aggressor (it swept through our price) fills us at our price. A print with
  no order behind it (ITCH P, CSV ticks and bars) fills orders priced through it; at our price
  it first trades the quantity ahead of us (for ITCH's hidden-order P, conservative). One
  replayed execution's size is shared by our orders in priority order, never counted twice.
- Trade-only data (CSV ticks or bars: no book at all): a market order waits for the next print
  and fills there in full. Bars are replayed as two prints, the open at the bar's ts_ns and the
  close 1 ns later (each with the bar's volume), so an order sent on a bar's close fills at the
  next bar's open: backtrader's default convention, which tests/research/test_crosscheck.py
  checks trade for trade and to the cent.
- Fees: `fee_bps` of notional plus `fee_per_lot` on every fill (maker and taker alike), booked
  by the kernel's Portfolio with its exact average-cost P&L.
- Risk (RiskLimits): maximum order size, maximum absolute position including open orders on
  that side, and orders per virtual second; a breach is an OrderRejected with the reason.

Determinism: no wall clock, no hashing of objects, no floats in fills or P&L; the same data,
strategy and configuration give byte-identical `fills_csv()` and `summary_json()`.
"""

from __future__ import annotations

import gc
import hashlib
import json
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tradekernel.kernel.trading import csvticks
from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.book import BUY, FOK, GTC, IOC, POST
from tradekernel.kernel.trading.engine import EngineError, TradingEngine
from tradekernel.kernel.trading.feed import Feed, FeedError, open_feed
from tradekernel.kernel.trading.instruments import Instrument
from tradekernel.kernel.trading.portfolio import FeeSchedule, Portfolio
from tradekernel.kernel.trading.replay import ItchMarket, Listener

from . import lobster
from .strategy import Strategy, StrategyHost, VirtualScheduler

MAX_FILLS = 2_000_000  # fills kept in a result (a run that makes more stops with a message)
SAMPLE_NS = 1_000_000_000  # equity/position sampling period of a run (virtual ns)
FEED_BATCH = 10_000
MAX_DEFERRED = 4_096  # market events waiting for a look before the venue applies the due ones
# The cyclic collector's young-generation threshold during a run (CPython's default is 700): a
# replay keeps every resting order of the market alive, so the default makes the collector walk
# them over and over (12% of an idle backtest); cycles a strategy leaves are still collected.
GC_YOUNG_THRESHOLD = 50_000


@dataclass(frozen=True)
class FillModel:
    order_latency_ns: int = 50_000
    md_latency_ns: int = 20_000
    fee_bps: Decimal = Decimal(0)
    fee_per_lot: Decimal = Decimal(0)
    max_sweep_levels: int = 10


@dataclass(frozen=True)
class RiskLimits:
    max_order_lots: int = 1_000_000
    max_position_lots: int = 10_000_000
    max_orders_per_s: int = 1_000_000


class SimOrder:
    """A strategy order as the venue keeps it; the attributes Context reads of an Order."""

    __slots__ = ("order_id", "owner", "symbol", "side", "price", "qty", "filled", "tif",
                 "state", "ahead", "boundary", "submit_ns", "arrival_mid", "seq")  # fmt: skip

    def __init__(self, order_id: int, owner: str, symbol: str, side: int, price: int | None,
                 qty: int, tif: int, submit_ns: int) -> None:  # fmt: skip
        self.order_id = order_id
        self.owner = owner
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = 0
        self.tif = tif
        self.state = "PENDING"
        self.ahead = 0
        self.boundary = 0  # replayed orders with an id up to this were queued before ours
        self.submit_ns = submit_ns
        self.arrival_mid: Decimal | None = None  # the mid the strategy saw when it sent it
        self.seq = 0  # venue time priority among the strategy's own orders

    @property
    def leaves(self) -> int:
        return self.qty - self.filled

    @property
    def is_live(self) -> bool:
        return self.state in ("PENDING", "ACCEPTED", "PARTIALLY_FILLED")


class _DelayedBook:
    """`book(symbol)` for a strategy: the top of book as delivered (after md latency)."""

    def __init__(self, l1: tuple) -> None:
        self._l1 = l1

    def l1(self) -> tuple:
        return self._l1


_EMPTY_L1 = (None, 0, None, 0)
# fill row: ts_ns, order_id, symbol, side, price ticks, lots, liquidity, fee, arrival mid
Fill = tuple[int, int, str, int, int, int, str, Decimal, Decimal | None]


class SimVenue:
    """The engine a backtested strategy talks to; fills by the model above."""

    def __init__(self, market: TradingEngine | ItchMarket, clock: VirtualScheduler,
                 model: FillModel, limits: RiskLimits) -> None:  # fmt: skip
        self.market = market
        self.clock = clock
        self.model = model
        self.limits = limits
        self.instruments = market.instruments
        self.bus = ev.EventBus()
        self.portfolio = Portfolio(FeeSchedule(model.fee_bps, model.fee_per_lot))
        self.live: dict[int, SimOrder] = {}
        self.fills: list[Fill] = []
        self.orders_sent = 0
        self.lots_sent = 0
        self.tick_to_order_ns: list[int] = []
        self.error: str | None = None
        # symbol -> resting orders, a symbol only while it has some (replay.Listener.resting)
        self._resting: dict[str, list[SimOrder]] = {}
        self.resting = self._resting
        self._waiting: dict[str, list[SimOrder]] = {}  # market orders on trade-only data
        # a TradingEngine market's feed orders: id -> (side, price), and the latest id
        self._feed_orders: dict[int, tuple[int, int]] = {}
        self._last_feed_id = 0
        self._taken: dict[tuple[str, int, int], tuple[int, int]] = {}  # level -> (shown, took)
        self._l1: dict[str, tuple] = {}
        self._last_md_ts = 0  # exchange time of the last market event delivered
        self._next_id = 1
        self._seq = 0
        self._sent_times: list[int] = []
        # which market events a callback hears (run_backtest sets them from the strategy); the
        # rest wait in _later until something reads what they change
        self.wants_book = True
        self.wants_trades = True
        # (delivery ns, exchange ns, symbol, top or None for a trade) in delivery order
        self._later: list[tuple[int, int, str, tuple | None]] = []
        self._md_latency = model.md_latency_ns
        self._relayed: deque[ev.Event] = deque()  # relayed market events not yet delivered
        if isinstance(market, TradingEngine):
            self._listen_to_engine(market)
        else:
            market.listener = self

    # ---- the engine surface a StrategyHost and its Context use -------------------------------

    def now_ns(self) -> int:
        return self.clock.now

    @property
    def next_order_id(self) -> int:
        """The id the next order submitted here will get (as TradingEngine.next_order_id)."""
        return self._next_id

    def instrument(self, symbol: str) -> Instrument:
        return self.market.instrument(symbol)

    def book(self, symbol: str) -> _DelayedBook:
        self.market.book(symbol)  # an unknown symbol raises InstrumentError, as live
        self._catch_up()
        return _DelayedBook(self._l1.get(symbol, _EMPTY_L1))

    def open_orders(self, owner: str | None = None) -> list[SimOrder]:
        return [o for o in self.live.values() if owner is None or o.owner == owner]

    def submit(self, owner: str, symbol: str, side: int, lots: int, ticks: int | None,
               tif: int = GTC) -> SimOrder:  # fmt: skip
        now = self.clock.now
        order = SimOrder(self._next_id, owner, symbol, side, ticks, lots, tif, now)
        self._next_id += 1
        reason = self._check(order)
        if reason is not None:
            order.state = "REJECTED"
            self._publish(ev.OrderRejected, order.order_id, owner, str(order.order_id), symbol,
                          reason)  # fmt: skip
            return order
        self.orders_sent += 1
        self.lots_sent += lots
        self._sent_times.append(now)
        self._catch_up()
        bid, _, ask, _ = self._l1.get(symbol, _EMPTY_L1)
        if bid is not None and ask is not None:
            order.arrival_mid = Decimal(bid + ask) / 2
        if self._last_md_ts:
            self.tick_to_order_ns.append(now - self._last_md_ts)
        self.live[order.order_id] = order
        self.clock.call_at(now + self.model.order_latency_ns, lambda: self._arrive(order))
        return order

    def cancel(self, order_id: int, owner: str | None = None, reason: str = "requested") -> int:
        order = self._mine(order_id, owner)
        self.clock.call_at(self.clock.now + self.model.order_latency_ns,
                           lambda: self._cancel_now(order, reason))  # fmt: skip
        return 1

    def replace(self, order_id: int, ticks: int | None, lots: int | None,
                owner: str | None = None) -> None:  # fmt: skip
        order = self._mine(order_id, owner)
        if lots is not None and lots <= 0:
            raise EngineError(f"replace of order {order_id}: quantity must be positive")

        def act() -> None:
            if not order.is_live:
                return
            if lots is not None and lots <= order.filled:
                self._cancel_now(order, "replaced below its filled quantity")
                return
            self._unrest(order)
            order.price = order.price if ticks is None else ticks
            order.qty = order.qty if lots is None else lots
            self._enter(order)  # a replace loses its place in the queue

        self.clock.call_at(self.clock.now + self.model.order_latency_ns, act)

    # ---- checks ------------------------------------------------------------------------------

    def _mine(self, order_id: int, owner: str | None) -> SimOrder:
        order = self.live.get(order_id)
        if order is None or (owner is not None and order.owner != owner):
            raise EngineError(f"order {order_id} is not a live order of {owner}")
        return order

    def _check(self, order: SimOrder) -> str | None:
        limits = self.limits
        if order.symbol not in self.market.books:
            return f"unknown symbol {order.symbol!r}"
        if order.qty <= 0:
            return "quantity must be positive"
        if order.qty > limits.max_order_lots:
            return f"order of {order.qty} lots exceeds max_order_qty {limits.max_order_lots}"
        if order.tif == POST and order.price is None:
            return "post-only needs a price"
        held = self.portfolio.position_qty(order.owner, order.symbol)
        open_same = sum(o.leaves for o in self.live.values()
                        if o.symbol == order.symbol and o.side == order.side)  # fmt: skip
        if abs(held + order.side * (open_same + order.qty)) > limits.max_position_lots:
            return f"position could pass max_position {limits.max_position_lots} lots"
        times = self._sent_times
        while times and times[0] <= order.submit_ns - 1_000_000_000:
            times.pop(0)
        if len(times) >= limits.max_orders_per_s:
            return f"more than max_orders_per_s {limits.max_orders_per_s} orders in 1 s"
        return None

    # ---- the venue ---------------------------------------------------------------------------

    def _publish(self, kind: type[ev.Event], *fields: object) -> None:
        self.bus.publish(kind(self.bus.next_seq(), self.clock.now, *fields))

    def _arrive(self, order: SimOrder) -> None:
        if order.state != "PENDING":
            return
        order.state = "ACCEPTED"
        self._publish(ev.OrderAccepted, order.order_id, order.owner, str(order.order_id),
                      order.symbol, order.side, order.price, order.qty, order.tif)  # fmt: skip
        self._enter(order)

    def _enter(self, order: SimOrder) -> None:
        """Take what crosses, then rest, cancel or kill the rest by time in force."""
        book = self.market.book(order.symbol)
        bids, asks = book.depth(self.model.max_sweep_levels)
        levels = asks if order.side == BUY else bids
        if order.price is None and not levels and not (bids or asks):
            self._waiting.setdefault(order.symbol, []).append(order)  # no book: next print
            return
        crossing = [(price, qty) for price, qty, _ in levels
                    if order.price is None or (price - order.price) * order.side <= 0]  # fmt: skip
        if order.tif == POST and crossing:
            self._cancel_now(order, "post-only order would cross")
            return
        opposite = -order.side
        room = [(price, self._free(order.symbol, opposite, price, qty)) for price, qty in crossing]
        if order.tif == FOK and sum(free for _, free in room) < order.leaves:
            self._cancel_now(order, "fill or kill: not enough liquidity")
            return
        for price, free in room:
            if not order.leaves:
                return
            take = min(free, order.leaves)
            if take:
                key = (order.symbol, -order.side, price)
                shown, took = self._taken.get(key, (0, 0))
                self._taken[key] = (shown, took + take)
                self._fill(order, price, take, "taker")
        if not order.leaves:
            return
        if order.tif == IOC or order.price is None or order.tif == FOK:
            self._cancel_now(order, "immediate or cancel: rest cancelled")
            return
        order.ahead = sum(qty for _, qty in book.level_orders(order.side, order.price))
        market = self.market
        order.boundary = (market.last_order_id if isinstance(market, ItchMarket)
                          else self._last_feed_id)  # fmt: skip
        self._seq += 1
        order.seq = self._seq
        resting = self._resting.setdefault(order.symbol, [])
        resting.append(order)
        resting.sort(key=lambda o: (-o.side * o.price, o.seq))  # type: ignore[operator]

    def _free(self, symbol: str, side: int, price: int, shown: int) -> int:
        """Displayed quantity at a level the strategy has not taken already."""
        key = (symbol, side, price)
        seen = self._taken.get(key)
        if seen is None:
            self._taken[key] = (shown, 0)
            return shown
        if shown < seen[0]:  # the level shrank: what we took is at most what is still shown
            seen = (shown, min(seen[1], shown))
        else:
            seen = (shown, seen[1])
        self._taken[key] = seen
        return shown - seen[1]

    def _unrest(self, order: SimOrder) -> None:
        for table in (self._resting, self._waiting):
            queue = table.get(order.symbol)
            if queue and order in queue:
                queue.remove(order)
                if not queue:
                    del table[order.symbol]

    def _cancel_now(self, order: SimOrder, reason: str) -> None:
        if not order.is_live:
            return
        order.state = "CANCELLED"
        self._unrest(order)
        del self.live[order.order_id]
        self._publish(ev.OrderCancelled, order.order_id, order.owner, order.symbol, order.leaves,
                      reason)  # fmt: skip

    def _fill(self, order: SimOrder, price: int, lots: int, liquidity: str) -> None:
        instrument = self.market.instrument(order.symbol)
        fee = self.portfolio.on_fill(order.owner, instrument, order.side, price, lots)
        order.filled += lots
        leaves = order.leaves
        self.fills.append((self.clock.now, order.order_id, order.symbol, order.side, price, lots,
                           liquidity, fee, order.arrival_mid))  # fmt: skip
        if len(self.fills) > MAX_FILLS and self.error is None:
            self.error = f"more than {MAX_FILLS} fills: the run is stopped"
        if leaves:
            order.state = "PARTIALLY_FILLED"
        else:
            order.state = "FILLED"
            self._unrest(order)
            del self.live[order.order_id]
        self._publish(ev.OrderPartiallyFilled if leaves else ev.OrderFilled, order.order_id,
                      order.owner, order.symbol, price, lots, order.filled, leaves)  # fmt: skip

    # ---- what the replayed market does to resting orders ------------------------------------

    # ---- what the replayed market tells (replay.Listener; a TradingEngine's events adapted) --

    def _listen_to_engine(self, market: TradingEngine) -> None:
        """A TradingEngine market (CSV, FIX data) speaks in events: adapt them to the calls,
        keeping the side and price of every feed order the engine accepted."""
        bus = market.bus
        bus.subscribe(self._engine_add, (ev.OrderAccepted,))
        bus.subscribe(self._engine_cut, (ev.OrderCancelled, ev.OrderReplaced))
        bus.subscribe(self._engine_trade, (ev.Trade,))
        bus.subscribe(self._engine_top, (ev.TopOfBook,))

    def _engine_add(self, event: ev.OrderAccepted) -> None:
        if event.price is not None:
            self._feed_orders[event.order_id] = (event.side, event.price)
        self._last_feed_id = event.order_id

    def _engine_cut(self, event: ev.OrderCancelled | ev.OrderReplaced) -> None:
        known = self._feed_orders.get(event.order_id)
        if known is None:
            return
        if type(event) is ev.OrderCancelled:
            del self._feed_orders[event.order_id]
            qty = event.cancelled_qty
        else:
            qty = event.old_qty - event.new_qty  # type: ignore[union-attr]
        self.market_cut(event.symbol, event.order_id, known[0], known[1], qty)

    def _engine_trade(self, event: ev.Trade) -> None:
        buy_id, sell_id, aggressor = event.buy_order_id, event.sell_order_id, event.aggressor_side
        side = price = 0
        if buy_id is not None or sell_id is not None:
            if aggressor == BUY or (aggressor == 0 and buy_id is None):
                maker = sell_id
            else:
                maker = buy_id
            known = self._feed_orders.get(maker)  # type: ignore[arg-type]
            if known is not None:
                side, price = known
                if maker not in self.market.live:
                    del self._feed_orders[maker]  # type: ignore[arg-type]
        self.market_trade(event.symbol, event.price, event.qty, buy_id, sell_id, aggressor,
                          side, price, event)  # fmt: skip

    def _engine_top(self, event: ev.TopOfBook) -> None:
        l1 = (event.bid_price, event.bid_qty, event.ask_price, event.ask_qty)
        self.market_top(event.symbol, l1)

    def market_cut(self, symbol: str, order_id: int, side: int, price: int, qty: int) -> None:
        resting = self._resting.get(symbol)
        if not resting:
            return
        for order in resting:
            if order.side == side and order.price == price and order_id <= order.boundary:
                order.ahead = max(0, order.ahead - qty)

    def market_trade(self, symbol: str, price: int, qty: int, buy_id: int | None,
                     sell_id: int | None, aggressor: int, maker_side: int, maker_price: int,
                     event: ev.Trade | None = None) -> None:  # fmt: skip
        now = self.clock.now
        if self.wants_trades:
            if event is None:
                event = ev.Trade(self.bus.next_seq(), now, symbol, price, qty, buy_id, sell_id,
                                 None, None, aggressor)  # fmt: skip
            self._relay(event)
        else:
            later = self._later
            later.append((now + self._md_latency, now, symbol, None))
            if len(later) > MAX_DEFERRED:
                self._catch_up()
        is_print = buy_id is None and sell_id is None
        waiting = self._waiting.get(symbol)
        if waiting and is_print:
            for order in list(waiting):
                self._fill(order, price, order.leaves, "taker")
        resting = self._resting.get(symbol)
        if not resting:
            return
        if is_print:
            self._print(resting, price, qty)
            return
        if not maker_side:  # a resting order the venue never saw entered
            return
        if aggressor == BUY or (aggressor == 0 and buy_id is None):
            maker = sell_id
        else:
            maker = buy_id
        left = qty
        for order in list(resting):
            if not left or order.side != maker_side:
                continue
            if order.price == maker_price:
                if maker <= order.boundary:  # type: ignore[operator]
                    order.ahead = max(0, order.ahead - qty)
                    continue
                take = min(left, order.leaves)
            elif (maker_price - order.price) * maker_side < 0:  # swept through our price
                take = min(left, order.leaves)
            else:
                continue
            left -= take
            self._fill(order, order.price, take, "maker")  # type: ignore[arg-type]

    def market_top(self, symbol: str, l1: tuple) -> None:
        now = self.clock.now
        if self.wants_book:
            self._relay(ev.TopOfBook(self.bus.next_seq(), now, symbol, *l1))
        else:  # (inlined: the idle backtest's commonest call)
            later = self._later
            later.append((now + self._md_latency, now, symbol, l1))
            if len(later) > MAX_DEFERRED:  # bounded: keep only what is not yet delivered
                self._catch_up()

    def _print(self, resting: list[SimOrder], price: int, qty: int) -> None:
        left = qty
        for order in list(resting):
            if not left:
                return
            if order.price == price:  # the print trades the queue ahead of us first
                used = min(order.ahead, left)
                order.ahead -= used
                left -= used
            elif (price - order.price) * order.side > 0:  # type: ignore[operator]
                continue
            take = min(left, order.leaves)
            if take:
                left -= take
                self._fill(order, order.price, take, "maker")  # type: ignore[arg-type]

    def _relay(self, event: ev.Event) -> None:
        """Deliver a market event to the strategy after the market-data latency: one clock
        callback per event, as any other (ties with the strategy's own callbacks keep their
        order). The events wait in `_relayed`: made in time order with one latency, they are
        delivered in the order they were relayed, so each callback takes the first."""
        self._relayed.append(event)
        self.clock.call_at(event.ts_ns + self._md_latency, self._deliver)

    def _deliver(self) -> None:
        event = self._relayed.popleft()
        later = self._later
        if later and later[0][0] < self.clock.now:
            self._catch_up()
        if event.ts_ns > self._last_md_ts:
            self._last_md_ts = event.ts_ns
        if type(event) is ev.TopOfBook:
            self._l1[event.symbol] = (event.bid_price, event.bid_qty, event.ask_price,
                                      event.ask_qty)  # fmt: skip
        self.bus.publish(event)

    def _catch_up(self) -> None:
        """Market events no callback of the strategy hears are not scheduled one by one: what
        they change for it (the top `ctx.top` shows, the time of the last tick) takes effect
        here, for those whose delivery time is before now (at the same ns a callback sees the
        state before them). They are in delivery order: the due ones are found by bisection,
        and only the latest of them counts (per symbol for the top), found from the end."""
        later = self._later
        now = self.clock.now
        if not later or later[0][0] >= now:
            return
        due = bisect_left(later, (now,))  # (now,) sorts before every entry delivered at now
        ts = later[due - 1][1]  # exchange times never go back: the last is the latest
        if ts > self._last_md_ts:
            self._last_md_ts = ts
        symbols = len(self.market.books)
        seen: set[str] = set()
        tops = self._l1
        for i in range(due - 1, -1, -1):
            _, _, symbol, l1 = later[i]
            if l1 is not None and symbol not in seen:
                tops[symbol] = l1
                seen.add(symbol)
                if len(seen) == symbols:
                    break
        del later[:due]


# ---- one run ------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    strategy: str
    data_name: str
    code_hash: str  # sha256 of strategy source + config text
    data_hash: str
    model: FillModel
    fills: list[Fill]
    samples: list[tuple[int, Decimal, int]]  # (ts, net P&L, lots) every SAMPLE_NS of activity
    events: int  # market-data messages replayed
    feed_errors: list[str]
    strategy_error: str | None
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    position: dict[str, int]
    orders_sent: int
    lots_sent: int
    tick_to_order_ns: list[int]
    end_ns: int
    tick_values: dict[str, str] = field(default_factory=dict)  # money of 1 tick x 1 lot
    marks: list[str] = field(default_factory=list)  # per sample: the mark of the first symbol
    log: list[tuple[int, str]] = field(default_factory=list)

    @property
    def net(self) -> Decimal:
        return self.realized + self.unrealized - self.fees

    def fills_csv(self) -> str:
        lines = ["ts_ns,order_id,symbol,side,price_ticks,lots,liquidity,fee,arrival_mid_ticks"]
        for ts, oid, symbol, side, price, lots, liq, fee, mid in self.fills:
            side_name = "BUY" if side == BUY else "SELL"
            lines.append(f"{ts},{oid},{symbol},{side_name},{price},{lots},{liq},{fee},"
                         f"{'' if mid is None else mid}")  # fmt: skip
        return "\n".join(lines) + "\n"

    def summary(self) -> dict[str, object]:
        return {
            "strategy": self.strategy, "data": self.data_name, "code_hash": self.code_hash,
            "data_hash": self.data_hash, "events": self.events, "fills": len(self.fills),
            "orders": self.orders_sent, "realized": str(self.realized),
            "unrealized": str(self.unrealized), "fees": str(self.fees), "net": str(self.net),
            "position": self.position, "feed_errors": len(self.feed_errors),
            "strategy_error": self.strategy_error, "end_ns": self.end_ns,
            "lots_sent": self.lots_sent, "tick_values": self.tick_values,
            "tick_to_order_ns": percentiles(self.tick_to_order_ns),
            "order_latency_ns": self.model.order_latency_ns,
            "md_latency_ns": self.model.md_latency_ns,
        }  # fmt: skip

    def summary_json(self) -> str:
        return json.dumps(self.summary(), sort_keys=True)

    def run_files(self) -> dict[str, str]:
        """The run as the text files `tk report` reads (name -> content): the one place their
        layout is written, for the host's --out and for a run written to the OS's disk."""
        samples = ["ts_ns,net,position_lots,mark_ticks"] + [
            f"{t},{n},{p},{m}" for (t, n, p), m in zip(self.samples, self.marks, strict=True)
        ]
        latency = ["tick_to_order_ns", *map(str, self.tick_to_order_ns)]
        return {"fills.csv": self.fills_csv(), "samples.csv": "\n".join(samples) + "\n",
                "summary.json": self.summary_json() + "\n",
                "latency.csv": "\n".join(latency) + "\n"}  # fmt: skip

    def one_line(self) -> str:
        state = "ok" if self.strategy_error is None else "STOPPED"
        return (f"{state} {self.strategy} on {self.data_name}: {self.events} events, "
                f"{len(self.fills)} fills, net {self.net:.2f} (realized {self.realized:.2f}, "
                f"unrealized {self.unrealized:.2f}, fees {self.fees:.2f}) "
                f"hash {self.code_hash[:12]}")  # fmt: skip


def percentiles(values: list[int]) -> dict[str, int]:
    """p50/p90/p99/max by the nearest-rank method (exact integers: no interpolation)."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {f"p{q}": ordered[max(0, -(-q * len(ordered) // 100) - 1)] for q in (50, 90, 99)}
    out["max"] = ordered[-1]
    return out


def content_hash(*parts: bytes) -> str:
    """sha256 over length-prefixed parts: code and config can never blur into each other."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


BAR_HEADER = b"ts_ns,symbol,open,high,low,close,volume"


def bars_to_prints(data: bytes) -> bytes:
    """CSV bars as CSV trade ticks: open at ts_ns, close at ts_ns + 1 (see the fill model).
    A row the bar parser refuses is a FeedError naming it (up to three): a bar file is small
    and a gap in it would shift every later signal."""
    errors: list = []
    out = [b"ts_ns,symbol,price,qty"]
    for _, ts, symbol, values, _ in csvticks.parse(data, errors):
        open_, _, _, close, volume = values
        out.append(f"{ts},{symbol},{open_},{volume}".encode())
        out.append(f"{ts + 1},{symbol},{close},{volume}".encode())
    if errors:
        raise FeedError("; ".join(str(e) for e in errors[:3]))
    return b"\n".join(out) + b"\n"


def open_market(
    name: str, data: bytes, clock: VirtualScheduler, instruments: list[Instrument] | None
) -> tuple[TradingEngine | ItchMarket, Feed | ItchMarket]:
    """The replayed market and its paced feed. ITCH (.itch) and LOBSTER (a name ending in
    _message_N.csv or .lobster: converted to ITCH first, with `symbol` taken from the file
    name) go into replay.ItchMarket, its own feed; CSV (.csv, bars as prints) and FIX (.fix)
    into a TradingEngine through feed.open_feed. Its listener is set by SimVenue."""
    lower = name.lower()
    if lower.endswith(".lobster") or "_message_" in lower:
        symbol = name.rsplit("/", 1)[-1].split("_", 1)[0].split(".", 1)[0][:8].upper() or "LOBSTER"
        errors: list = []
        converted = lobster.to_itch(lobster.read(data, errors), symbol)
        market = ItchMarket(name + ".itch", converted, Listener(), instruments, FEED_BATCH)
        market.errors.extend(str(e) for e in errors)
        return market, market
    if lower.endswith(".itch"):
        market = ItchMarket(name, data, Listener(), instruments, FEED_BATCH)
        return market, market
    engine = TradingEngine(clock)
    for instrument in instruments or ():
        if instrument.symbol not in engine.instruments:
            engine.add_instrument(instrument)
    if lower.endswith(".csv") and data[:40].lower().replace(b" ", b"").startswith(BAR_HEADER):
        data = bars_to_prints(data)
    feed = open_feed(engine, name, data, paced=True)
    feed.batch = FEED_BATCH
    return engine, feed


def run_backtest(
    strategy: Strategy,
    data_name: str,
    data: bytes,
    model: FillModel | None = None,
    limits: RiskLimits | None = None,
    code_hash: str = "",
    instruments: list[Instrument] | None = None,
    progress: Callable[[int], None] | None = None,
    on_stopped: Callable[[str, BaseException | None], None] | None = None,
) -> BacktestResult:
    """Replay `data` and run `strategy` against it; everything in virtual time."""
    model = model or FillModel()
    limits = limits or RiskLimits()
    clock = VirtualScheduler()
    market, feed = open_market(data_name, data, clock, instruments)
    venue = SimVenue(market, clock, model, limits)
    kind = type(strategy)  # market events only a callback it overrides hears are not scheduled
    venue.wants_book = kind.on_book is not Strategy.on_book
    venue.wants_trades = kind.on_trade is not Strategy.on_trade
    host = StrategyHost(strategy, venue, clock.call_at, on_stopped=on_stopped)  # type: ignore[arg-type]
    samples: list[tuple[int, Decimal, int]] = []
    marks: list[str] = []  # ticks, for the report's price plot
    marked = strategy.symbols[0] if strategy.symbols else ""
    owner = host.owner

    def net_now() -> tuple[Decimal, Decimal, Decimal]:
        realized = unrealized = fees = Decimal(0)
        for _, pos in venue.portfolio.positions(owner):
            realized += pos.realized_money()
            unrealized += pos.unrealized_money(market.mark_ticks(pos.instrument.symbol))
            fees += pos.fees
        return realized, unrealized, fees

    def sample() -> None:
        r, u, f = net_now()
        lots = sum(pos.qty for _, pos in venue.portfolio.positions(owner))
        samples.append((clock.now, r + u - f, lots))
        mark = market.mark_ticks(marked) if marked in market.books else None
        marks.append("" if mark is None else str(Decimal(mark.numerator) / mark.denominator))
        if progress is not None:
            progress(feed.applied + sum(feed.skipped.values()))
        if venue.error is not None and host.running:
            host.stop(venue.error)
        if not feed.done:  # a quiet stretch (a night between daily bars) takes no samples
            clock.call_at(max(clock.now + SAMPLE_NS, next_feed[0]), sample)

    next_feed = [0]  # when the feed next has a message

    def tick() -> None:
        if isinstance(feed, ItchMarket):
            deadline = feed.run(clock)
            if deadline is None:
                host.stop()
            else:
                next_feed[0] = deadline
                clock.call_at(deadline, tick)
            return
        step, quiet_until = feed.step, clock.quiet_until
        while True:
            deadline = step(clock.now)
            if deadline is None:  # the data is done: the strategy stops (its timers end)
                host.stop()
                return
            next_feed[0] = deadline
            if not quiet_until(deadline):  # something else is due first (or at the same ns)
                clock.call_at(deadline, tick)
                return
            clock.now = deadline  # nothing else is due before: no trip through the heap

    def first() -> None:
        host.start()
        clock.call_at(clock.now + SAMPLE_NS, sample)  # before the replay: it pauses for it
        tick()

    # paced replay anchors the first message at the clock's start
    clock.call_at(0, first)
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
    try:
        clock.run()
    finally:
        gc.set_threshold(*thresholds)
    sample()
    realized, unrealized, fees = net_now()
    position = {pos.instrument.symbol: pos.qty for _, pos in venue.portfolio.positions(owner)}
    return BacktestResult(
        strategy=owner, data_name=data_name.rsplit("/", 1)[-1], code_hash=code_hash,
        data_hash=hashlib.sha256(data).hexdigest(), model=model, fills=venue.fills,
        samples=samples, events=feed.applied + sum(feed.skipped.values()),
        feed_errors=list(feed.errors), strategy_error=host.error, realized=realized,
        unrealized=unrealized, fees=fees, position=position, orders_sent=venue.orders_sent,
        lots_sent=venue.lots_sent, tick_to_order_ns=venue.tick_to_order_ns, end_ns=clock.now,
        log=list(host.ctx.log_lines),
        tick_values={i.symbol: str(i.tick_value) for i in market.instruments}, marks=marks,
    )  # fmt: skip
