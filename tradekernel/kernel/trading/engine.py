"""The order management system: validation, risk, books, portfolio and events in one place.

Contract: every order has an explicit lifecycle (OrderState, TRANSITIONS); an illegal transition
raises IllegalTransition, and every transition is appended to `transitions` with a sequence
number and virtual timestamp. `submit` never raises for a bad order: it returns the order in
state REJECTED with the reason (also published as OrderRejected). `cancel`/`replace` raise
EngineError for requests that cannot apply (unknown order, wrong owner, finished order, risk).
Orders entered by a feed (`check_risk=False`) bypass risk but otherwise behave like any other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from itertools import count

from . import events as ev
from .book import BUY, FOK, GTC, IOC, POST, SELL, STP_CANCEL_RESTING, STP_MODES, OrderBook
from .instruments import Instrument, InstrumentError, InstrumentTable
from .portfolio import FeeSchedule, Portfolio
from .risk import RiskEngine, RiskLimits

TIF_NAMES = {GTC: "GTC", IOC: "IOC", FOK: "FOK", POST: "POST"}
SIDE_NAMES = {BUY: "BUY", SELL: "SELL"}


class OrderState(Enum):
    # members are singletons: identity hashing keeps set/dict lookups in C (Enum's own __hash__
    # is a Python function, a measurable cost on every state change)
    __hash__ = object.__hash__

    NEW = "NEW"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    REPLACED = "REPLACED"  # live, after a successful cancel/replace


_LIVE_NEXT = frozenset(
    {
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
        OrderState.CANCELLED,
        OrderState.REPLACED,
    }
)
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.NEW: frozenset({OrderState.ACCEPTED, OrderState.REJECTED}),
    OrderState.ACCEPTED: _LIVE_NEXT,
    OrderState.PARTIALLY_FILLED: _LIVE_NEXT,
    OrderState.REPLACED: _LIVE_NEXT,
    OrderState.FILLED: frozenset(),
    OrderState.CANCELLED: frozenset(),
    OrderState.REJECTED: frozenset(),
}
LIVE_STATES = frozenset({OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.REPLACED})
_STATE_NAME = {state: state.value for state in OrderState}  # .value is a Python-level property


class IllegalTransition(RuntimeError):
    """A state change the order lifecycle does not allow (a bug in the caller)."""


class EngineError(Exception):
    """A cancel/replace/kill request that cannot be carried out; the message says why."""


class Order:
    __slots__ = (
        "order_id",
        "owner",
        "client_id",
        "symbol",
        "side",
        "price",
        "qty",
        "filled",
        "notional",
        "tif",
        "state",
        "created_ns",
        "updated_ns",
        "reason",
    )

    def __init__(
        self,
        order_id: int,
        owner: str,
        client_id: str,
        symbol: str,
        side: int,
        price: int | None,
        qty: int,
        tif: int,
        now: int,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.client_id = client_id
        self.symbol = symbol
        self.side = side
        self.price = price  # None for a market order
        self.qty = qty  # total order quantity (FIX OrderQty), lots
        self.filled = 0
        self.notional = 0  # sum of fill price x qty, tick-lots (for the average price)
        self.tif = tif
        self.state = OrderState.NEW
        self.created_ns = now
        self.updated_ns = now
        self.reason = ""

    @property
    def leaves(self) -> int:
        return self.qty - self.filled if self.state in LIVE_STATES else 0

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES


class TradingEngine:
    def __init__(
        self,
        now_ns: Callable[[], int],
        instruments: InstrumentTable | None = None,
        risk_defaults: RiskLimits | None = None,
        fees: FeeSchedule | None = None,
        stp_mode: int = STP_CANCEL_RESTING,
        log_capacity: int = 100_000,
        history_capacity: int = 10_000,
    ) -> None:
        self.now_ns = now_ns
        self.instruments = instruments or InstrumentTable.from_toml(None)
        self.bus = ev.EventBus()
        self.risk = RiskEngine(now_ns, risk_defaults)
        self.portfolio = Portfolio(fees)
        self.stp_mode = stp_mode  # firm-wide self-trade prevention mode (book.STP_*)
        self.stp_modes: dict[str, int] = {}  # per-owner modes, one dict shared by every book
        self.books: dict[str, OrderBook] = {}
        self._venues: dict[str, tuple[Instrument, OrderBook]] = {}  # symbol -> both, one lookup
        for instrument in self.instruments:
            self._make_book(instrument)
        self.live: dict[int, Order] = {}
        self.finished: deque[Order] = deque(maxlen=history_capacity)
        self._owner_live: dict[str, dict[int, Order]] = {}
        self._client_ids: dict[tuple[str, str], Order] = {}
        self._next_id = 1
        # (seq, ts_ns, order_id, from_state, to_state, note)
        self.transitions: deque[tuple[int, int, int, str, str, str]] = deque(maxlen=log_capacity)
        self._transition_seq = count(1)
        self._l1: dict[str, tuple] = {}
        self._versions: dict[str, int] = {}
        self.trades: deque[ev.Trade] = deque(maxlen=history_capacity)

    # ---- set-up ------------------------------------------------------------------------------

    def _make_book(self, instrument: Instrument) -> OrderBook:
        book = OrderBook(instrument.symbol, self.stp_mode, self._on_fill, self._on_stp_cancel)
        book.stp_modes = self.stp_modes
        self.books[instrument.symbol] = book
        self._venues[instrument.symbol] = (instrument, book)
        return book

    def set_stp_mode(self, owner: str | None, mode: int | None) -> None:
        """Self-trade prevention mode for `owner` (None: the firm-wide default) in every book;
        mode None drops an owner's own mode, so the default applies again."""
        if mode is not None and mode not in STP_MODES.values():
            raise EngineError(f"unknown self-trade prevention mode {mode!r}")
        if owner is None:
            if mode is None:
                raise EngineError("the firm-wide self-trade prevention mode cannot be dropped")
            self.stp_mode = mode
            for book in self.books.values():
                book.stp_mode = mode
        elif mode is None:
            self.stp_modes.pop(owner, None)
        else:
            self.stp_modes[owner] = mode

    def add_instrument(self, instrument: Instrument) -> OrderBook:
        self.instruments.add(instrument)
        return self._make_book(instrument)

    # ---- lifecycle bookkeeping ---------------------------------------------------------------

    def _transition(self, order: Order, new: OrderState, note: str = "") -> None:
        old = order.state
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(
                f"order {order.order_id}: {old.value} -> {new.value} is not allowed"
            )
        now = self.now_ns()
        self.transitions.append(
            (next(self._transition_seq), now, order.order_id, _STATE_NAME[old], _STATE_NAME[new],
             note)
        )  # fmt: skip
        order.state = new
        order.updated_ns = now
        if new not in LIVE_STATES:
            order_id = order.order_id
            if self.live.pop(order_id, None) is not None:
                del self._owner_live[order.owner][order_id]
                self.finished.append(order)

    def _publish(self, event_type: type[ev.Event], *fields: object) -> None:
        """Build and deliver an event; callers test `self.bus.active` first, so nobody pays for
        events nobody listens to (the hot paths test it before gathering the fields)."""
        if self.bus.active:
            self.bus.publish(event_type(self.bus.next_seq(), self.now_ns(), *fields))

    def _reject(self, order: Order, reason: str) -> Order:
        order.reason = reason
        self._transition(order, OrderState.REJECTED, reason)
        self.finished.append(order)
        if self.bus.active:
            self._publish(
                ev.OrderRejected, order.order_id, order.owner, order.client_id, order.symbol,
                reason,
            )  # fmt: skip
        return order

    # ---- order entry -------------------------------------------------------------------------

    def submit(
        self,
        owner: str,
        symbol: str,
        side: int,
        qty: int,
        price: int | None = None,
        tif: int = GTC,
        client_id: str | None = None,
        check_risk: bool = True,
    ) -> Order:
        """Validate, risk-check and enter an order (price None = market). Never raises for a bad
        order: the returned order is REJECTED with a reason instead."""
        order_id = self._next_id
        self._next_id += 1
        now = self.now_ns()
        order = Order(
            order_id, owner, client_id or str(order_id), symbol, side, price, qty, tif, now
        )
        log = self.transitions
        log.append((next(self._transition_seq), now, order_id, "", "NEW", ""))
        if self.bus.active:
            self._publish(ev.OrderSubmitted, order_id, owner, order.client_id, symbol, side, price,
                          qty, tif)  # fmt: skip
        venue = self._venues.get(symbol)
        if venue is None:
            return self._reject(order, f"unknown symbol {symbol!r}")
        instrument, book = venue
        reason = self._validate(order, instrument, book)
        risk_checked = check_risk and self.risk.needs_check(owner)
        if reason is None and risk_checked:
            reason = self._risk_check(order, instrument, book, price, qty, new_order=True)
        if reason is not None:
            return self._reject(order, reason)
        if client_id is not None:
            self._client_ids[(owner, client_id)] = order
        if risk_checked:
            self.risk.record_order(owner)
        # NEW -> ACCEPTED, always legal for an order made just above (the hot path skips the
        # generic _transition call; every later change goes through it)
        log.append((next(self._transition_seq), now, order_id, "NEW", "ACCEPTED", ""))
        order.state = OrderState.ACCEPTED
        self.live[order_id] = order
        owner_live = self._owner_live.get(owner)
        if owner_live is None:
            owner_live = self._owner_live[owner] = {}
        owner_live[order_id] = order
        if self.bus.active:
            self._publish(
                ev.OrderAccepted, order_id, owner, order.client_id, symbol, side, price, qty, tif
            )
        rested = book.submit(order_id, owner, side, price, qty, tif)
        if order.state in LIVE_STATES and order.qty - order.filled > rested:
            stp = book.stp_killed == order_id
            self._cancel_remainder(order, order.qty - order.filled, stp)
        self._book_events(book)
        return order

    def _validate(self, order: Order, instrument: Instrument, book: OrderBook) -> str | None:
        if order.side not in SIDE_NAMES:
            return f"bad side {order.side}"
        if order.tif not in TIF_NAMES:
            return f"bad time in force {order.tif}"
        if not isinstance(order.qty, int) or order.qty <= 0:
            return f"quantity must be a positive number of lots, got {order.qty}"
        if self._client_ids and (order.owner, order.client_id) in self._client_ids:
            return f"duplicate client order id {order.client_id!r} for {order.owner}"
        price = order.price
        if price is None:
            if order.tif in (GTC, POST):
                return "a market order must be IOC or FOK"
            return None
        if not isinstance(price, int):
            return f"price must be an integer number of ticks, got {price!r}"
        if not instrument.band_low_ticks <= price <= instrument.band_high_ticks:
            return (
                f"price {instrument.format_price(price)} outside band "
                f"{instrument.band_low}..{instrument.band_high}"
            )
        if order.tif == POST:
            return self._post_only_cross(order.side, price, book, instrument)
        return None

    @staticmethod
    def _post_only_cross(
        side: int, price: int, book: OrderBook, instrument: Instrument
    ) -> str | None:
        opposite = book.best_ask() if side == BUY else book.best_bid()
        if opposite is not None and (price >= opposite[0] if side == BUY else price <= opposite[0]):
            name = "ask" if side == BUY else "bid"
            return f"post-only would cross best {name} {instrument.format_price(opposite[0])}"
        return None

    def _risk_check(
        self,
        order: Order,
        instrument: Instrument,
        book: OrderBook,
        price: int | None,
        qty: int,
        new_order: bool,
        extra_qty: int | None = None,
    ) -> str | None:
        owner = order.owner
        if price is None:  # a market order's notional is judged at the far touch
            far = book.best_ask() if order.side == BUY else book.best_bid()
            notional_price = far[0] if far else None
        else:
            notional_price = price
        reference_x2 = 2 * book.last_price if book.last_price is not None else book.mid_x2()

        def position_after() -> int:
            open_same_side = sum(
                o.qty - o.filled
                for o in self._owner_live.get(owner, {}).values()
                if o.symbol == order.symbol and o.side == order.side and o is not order
            )
            added = qty if extra_qty is None else extra_qty
            position = self.portfolio.position_qty(owner, order.symbol)
            return position + order.side * (open_same_side + added)

        return self.risk.check(
            owner,
            order.side,
            notional_price,
            qty,
            instrument.tick_value,
            reference_x2 if price is not None else None,
            len(self._owner_live.get(owner, ())),
            position_after,
            new_order=new_order,
        )

    def _cancel_remainder(self, order: Order, leaves: int, stp: bool) -> None:
        if stp:  # whatever its type, the order stopped where it met its owner's own
            reason = "self-trade prevention"
        elif order.tif == FOK:
            reason = "FOK could not fill in full"
        elif order.tif == IOC:
            reason = "IOC remainder" if order.price is not None else "market order remainder"
        else:
            reason = "self-trade prevention"
        self._cancelled(order, leaves, reason)

    def _cancelled(self, order: Order, qty: int, reason: str) -> None:
        order.reason = reason
        self._transition(order, OrderState.CANCELLED, reason)
        if self.bus.active:
            self._publish(ev.OrderCancelled, order.order_id, order.owner, order.symbol, qty, reason)

    # ---- book callbacks ----------------------------------------------------------------------

    def _on_fill(
        self,
        maker_id: int,
        maker_owner: str,
        taker_id: int,
        price: int,
        qty: int,
        maker_left: int,
        taker_left: int,
    ) -> None:
        maker = self.live[maker_id]
        taker = self.live[taker_id]
        instrument = self._venues[maker.symbol][0]
        self._fill(maker, instrument, price, qty, book_position=True)
        self._fill(taker, instrument, price, qty, book_position=True)
        buy, sell = (taker, maker) if taker.side == BUY else (maker, taker)
        self._trade(maker.symbol, price, qty, buy.order_id, sell.order_id, buy.owner,
                    sell.owner, taker.side)  # fmt: skip

    def _fill(
        self, order: Order, instrument: Instrument, price: int, qty: int, book_position: bool
    ) -> None:
        order.filled += qty
        order.notional += price * qty
        leaves = order.qty - order.filled
        if book_position:
            self.portfolio.on_fill(order.owner, instrument, order.side, price, qty)
        self._transition(order, OrderState.PARTIALLY_FILLED if leaves else OrderState.FILLED)
        if self.bus.active:
            self._publish(
                ev.OrderPartiallyFilled if leaves else ev.OrderFilled, order.order_id,
                order.owner, order.symbol, price, qty, order.filled, leaves,
            )  # fmt: skip

    def _trade(self, symbol, price, qty, buy_id, sell_id, buyer, seller, aggressor) -> None:
        trade = ev.Trade(
            self.bus.next_seq(), self.now_ns(), symbol, price, qty, buy_id, sell_id, buyer,
            seller, aggressor,
        )  # fmt: skip
        self.trades.append(trade)
        if self.bus.active:
            self.bus.publish(trade)

    def _on_stp_cancel(self, order_id: int, owner: str, qty: int) -> None:
        self._cancelled(self.live[order_id], qty, "self-trade prevention")

    def _book_events(self, book: OrderBook) -> None:
        """DepthChanged/TopOfBook if the book changed since the last look (only while someone
        listens to them; a new listener gets the current top on the next change)."""
        if not self.bus.book_active:
            if self._versions:  # forget what was last published: a later listener gets it
                self._versions.clear()
                self._l1.clear()
            return
        symbol = book.symbol
        if self._versions.get(symbol) != book.version:
            self._versions[symbol] = book.version
            self._publish(ev.DepthChanged, symbol, book.version)
            l1 = book.l1()
            if self._l1.get(symbol) != l1:
                self._l1[symbol] = l1
                self._publish(ev.TopOfBook, symbol, *l1)

    # ---- changes to live orders --------------------------------------------------------------

    def _live_order(self, order_id: int, owner: str | None) -> Order:
        order = self.live.get(order_id)
        if order is None:
            raise EngineError(f"order {order_id} is not live")
        if owner is not None and order.owner != owner:
            raise EngineError(f"order {order_id} belongs to {order.owner}, not {owner}")
        return order

    def cancel(self, order_id: int, owner: str | None = None, reason: str = "requested") -> int:
        """Cancel a live order; returns the quantity cancelled."""
        order = self._live_order(order_id, owner)
        book = self.books[order.symbol]
        qty = book.cancel(order_id)
        self._cancelled(order, qty, reason)
        self._book_events(book)
        return qty

    def replace(
        self,
        order_id: int,
        price: int | None = None,
        qty: int | None = None,
        owner: str | None = None,
        check_risk: bool = True,
    ) -> Order:
        """Change a resting order's price and/or total quantity (FIX OrderQty: includes what
        has filled). A smaller size at the same price keeps time priority; anything else
        re-enters at the back of the new level and may trade."""
        order = self._live_order(order_id, owner)
        instrument = self.instruments[order.symbol]
        book = self.books[order.symbol]
        new_price = order.price if price is None else price
        new_qty = order.qty if qty is None else qty
        if not isinstance(new_qty, int) or not isinstance(new_price, int):
            raise EngineError("replace needs integer ticks and lots")
        new_leaves = new_qty - order.filled
        if new_leaves <= 0:
            raise EngineError(
                f"new quantity {new_qty} must exceed the {order.filled} lots already filled"
            )
        if not instrument.band_low_ticks <= new_price <= instrument.band_high_ticks:
            raise EngineError(
                f"price {instrument.format_price(new_price)} outside band "
                f"{instrument.band_low}..{instrument.band_high}"
            )
        old_leaves = order.qty - order.filled
        if order.tif == POST:
            reason = self._post_only_cross(order.side, new_price, book, instrument)
            if reason:
                raise EngineError(reason)
        if check_risk:
            reason = self._risk_check(
                order, instrument, book, new_price, new_leaves, new_order=False,
                extra_qty=max(0, new_leaves - old_leaves),
            )  # fmt: skip
            if reason:
                raise EngineError(reason)
            self.risk.record_order(order.owner)
        kept = new_price == order.price and new_leaves <= old_leaves
        old_price, old_qty = order.price, order.qty
        order.price, order.qty = new_price, new_qty
        self._transition(order, OrderState.REPLACED)
        self._publish(
            ev.OrderReplaced, order_id, order.owner, order.symbol, old_price, new_price, old_qty,
            new_qty, kept,
        )  # fmt: skip
        rested = book.amend(order_id, new_price, new_leaves, POST if order.tif == POST else GTC)
        leaves = order.qty - order.filled
        if order.state in LIVE_STATES and leaves > rested:
            self._cancelled(order, leaves - rested, "self-trade prevention")
        self._book_events(book)
        return order

    def kill_switch(self, owner: str) -> int:
        """Block `owner` from new orders and cancel all its live orders; returns how many."""
        self.risk.kill(owner)
        cancelled = 0
        for order_id in list(self._owner_live.get(owner, {})):
            self.cancel(order_id, reason="kill switch")
            cancelled += 1
        return cancelled

    # ---- feed entry points (market activity from outside this engine) -------------------------

    def execute_external(self, order_id: int, qty: int, price: int | None = None) -> None:
        """A resting order traded with someone outside the engine (ITCH E/C): reduce it and
        publish its fill and the trade. No position is booked: the other side is not ours."""
        order = self._live_order(order_id, None)
        book = self.books[order.symbol]
        if qty <= 0 or qty > order.qty - order.filled:
            raise EngineError(f"cannot execute {qty} of order {order_id}")
        fill_price = order.price if price is None else price
        book.reduce(order_id, qty)
        book.record_trade(fill_price, qty)
        self._fill(order, self.instruments[order.symbol], fill_price, qty, book_position=False)
        buy_id, sell_id = (order_id, None) if order.side == BUY else (None, order_id)
        buyer, seller = (order.owner, None) if order.side == BUY else (None, order.owner)
        self._trade(order.symbol, fill_price, qty, buy_id, sell_id, buyer, seller, 0)
        self._book_events(book)

    def reduce(self, order_id: int, qty: int, reason: str = "partial cancel") -> None:
        """Take `qty` off a resting order keeping its priority (ITCH X)."""
        order = self._live_order(order_id, None)
        leaves = order.qty - order.filled
        if qty <= 0 or qty > leaves:
            raise EngineError(f"cannot reduce order {order_id} of {leaves} lots by {qty}")
        if qty == leaves:
            self.cancel(order_id, reason=reason)
            return
        book = self.books[order.symbol]
        book.reduce(order_id, qty)
        order.qty -= qty
        self._transition(order, OrderState.REPLACED, reason)
        self._publish(
            ev.OrderReplaced, order_id, order.owner, order.symbol, order.price, order.price,
            order.qty + qty, order.qty, True,
        )  # fmt: skip
        self._book_events(book)

    def record_trade(self, symbol: str, price: int, qty: int) -> None:
        """A print from a feed with no resting order of ours involved (ITCH P, CSV ticks)."""
        book = self.books.get(symbol)
        if book is None:
            raise EngineError(f"unknown symbol {symbol!r}")
        book.record_trade(price, qty)
        self._trade(symbol, price, qty, None, None, None, None, 0)

    # ---- queries -----------------------------------------------------------------------------

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def book(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            raise InstrumentError(f"unknown symbol {symbol!r}")
        return book

    @property
    def next_order_id(self) -> int:
        """The id the next `submit` gives its order (accepted or rejected)."""
        return self._next_id

    def by_client_id(self, owner: str, client_id: str) -> Order | None:
        return self._client_ids.get((owner, client_id))

    def open_orders(self, owner: str | None = None) -> list[Order]:
        source = self.live if owner is None else self._owner_live.get(owner, {})
        return sorted(source.values(), key=lambda o: o.order_id)

    def mark_ticks(self, symbol: str) -> Fraction | None:
        """Mark price for unrealized P&L: last trade, else mid, else None."""
        book = self.books[symbol]
        if book.last_price is not None:
            return Fraction(book.last_price)
        mid_x2 = book.mid_x2()
        return None if mid_x2 is None else Fraction(mid_x2, 2)

    def pnl(self, owner: str | None = None) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        """owner -> (realized, unrealized, fees) in money; net = realized + unrealized - fees."""
        totals: dict[str, list[Decimal]] = {}
        for pos_owner, pos in self.portfolio.positions(owner):
            row = totals.setdefault(pos_owner, [Decimal(0), Decimal(0), Decimal(0)])
            row[0] += pos.realized_money()
            row[1] += pos.unrealized_money(self.mark_ticks(pos.instrument.symbol))
            row[2] += pos.fees
        return {k: (v[0], v[1], v[2]) for k, v in totals.items()}
