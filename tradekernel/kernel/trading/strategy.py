"""The strategy API: event callbacks and actions, the same object model in backtest and live.

A strategy subclasses Strategy and overrides the callbacks it needs:

    on_start(ctx)             once, before any event       on_stop(ctx)        once, at the end
    on_book(ctx, top)         a TopOfBook of its symbols   on_trade(ctx, t)    a Trade of them
    on_accepted(ctx, e)       its order entered the book   on_rejected(ctx, e) refused (reason)
    on_fill(ctx, e)           its order (partly) filled    on_cancelled(ctx, e)
    on_timer(ctx, name)       a timer it set fired

Events are the engine's own (tradekernel.kernel.trading.events): prices in ticks and sizes in
lots; `ctx.price(symbol, ticks)` / `ctx.qty(symbol, lots)` give decimals. A strategy acts only
through its Context: `buy`/`sell`/`submit` (decimal text or Decimal, converted exactly by the
instrument; None price = market), `cancel`, `replace`, `set_timer`, `position`, `open_orders`,
`top`, `state` (a dict it owns) and `log`. Its orders carry its name as owner, so per-owner
risk limits, self-trade prevention and the kill switch apply to it as to anyone.

A StrategyHost binds one strategy to a TradingEngine and a scheduler `call_at(deadline_ns,
callback)`. That pair is the only thing that differs between a backtest (a VirtualScheduler
driving a paced Feed) and live trading (the machine clock's timer), so the same strategy code
runs unchanged in both. Callbacks never run inside the matching engine: the host queues the
events it receives and delivers them from a callback it schedules at the current time, after
the engine call that caused them has returned (so a strategy may trade from any callback).

Against a replayed order-by-order feed the strategy's orders share the book with the feed's:
a feed order that crosses one of them trades with it, and the feed then reports its later
messages about that order as errors. Keeping the two apart (queue position, latency, the fill
model of a backtest) is the backtest engine's part, built on this API.

Containment: a callback that raises stops that strategy only: its live orders are cancelled,
`host.error` keeps one line saying which callback raised what, and the engine, the feed and
other strategies go on.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from itertools import count

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.book import BUY, FOK, GTC, IOC, POST, SELL
from tradekernel.kernel.trading.engine import EngineError, Order, TradingEngine
from tradekernel.kernel.trading.instruments import InstrumentError

MAX_LOG_LINES = 10_000  # a strategy's log keeps its latest lines
MAX_TIMERS = 1_000  # pending timers per strategy

Scheduler = Callable[[int, Callable[[], None]], object]
_TIFS = {"gtc": GTC, "ioc": IOC, "fok": FOK, "post": POST}


class StrategyError(Exception):
    """A request a strategy made that cannot be carried out (bad value, unknown order)."""


class Strategy:
    """Base class: every callback does nothing. `symbols` limits book and trade events."""

    name = "strategy"
    symbols: tuple[str, ...] = ()

    def on_start(self, ctx: Context) -> None: ...

    def on_stop(self, ctx: Context) -> None: ...

    def on_book(self, ctx: Context, top: ev.TopOfBook) -> None: ...

    def on_trade(self, ctx: Context, trade: ev.Trade) -> None: ...

    def on_accepted(self, ctx: Context, event: ev.OrderAccepted) -> None: ...

    def on_rejected(self, ctx: Context, event: ev.OrderRejected) -> None: ...

    def on_fill(self, ctx: Context, event: ev.OrderPartiallyFilled | ev.OrderFilled) -> None: ...

    def on_cancelled(self, ctx: Context, event: ev.OrderCancelled) -> None: ...

    def on_timer(self, ctx: Context, name: str) -> None: ...


class Context:
    """What a strategy may do and see; one per StrategyHost."""

    def __init__(self, host: StrategyHost) -> None:
        self._host = host
        self.state: dict[str, object] = {}
        self.log_lines: deque[tuple[int, str]] = deque(maxlen=MAX_LOG_LINES)

    @property
    def now_ns(self) -> int:
        return self._host.engine.now_ns()

    @property
    def owner(self) -> str:
        return self._host.owner

    # ---- actions ----------------------------------------------------------------------------

    def submit(
        self, symbol: str, side: int, qty: object, price: object = None, tif: str = "gtc"
    ) -> int:
        """Enter an order; returns its id. A refusal by validation or risk arrives as
        on_rejected; a value that is not a number of ticks or lots raises StrategyError."""
        engine = self._host.engine
        if side not in (BUY, SELL):
            raise StrategyError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        if tif not in _TIFS:
            raise StrategyError(f"time in force {tif!r} is not one of {', '.join(_TIFS)}")
        try:
            instrument = engine.instrument(symbol)
            lots = instrument.qty_to_lots(qty)  # type: ignore[arg-type]
            ticks = None if price is None else instrument.price_to_ticks(price)  # type: ignore[arg-type]
        except InstrumentError as err:
            raise StrategyError(str(err)) from None
        tif_code = _TIFS[tif] if price is not None or tif in ("ioc", "fok") else IOC
        return engine.submit(self.owner, symbol, side, lots, ticks, tif_code).order_id

    def buy(self, symbol: str, qty: object, price: object = None, tif: str = "gtc") -> int:
        return self.submit(symbol, BUY, qty, price, tif)

    def sell(self, symbol: str, qty: object, price: object = None, tif: str = "gtc") -> int:
        return self.submit(symbol, SELL, qty, price, tif)

    def cancel(self, order_id: int) -> None:
        try:
            self._host.engine.cancel(order_id, owner=self.owner)
        except EngineError as err:
            raise StrategyError(str(err)) from None

    def replace(self, order_id: int, price: object = None, qty: object = None) -> None:
        engine = self._host.engine
        order = engine.live.get(order_id)
        if order is None or order.owner != self.owner:
            raise StrategyError(f"order {order_id} is not a live order of {self.owner}")
        instrument = engine.instrument(order.symbol)
        try:
            ticks = None if price is None else instrument.price_to_ticks(price)  # type: ignore[arg-type]
            lots = None if qty is None else instrument.qty_to_lots(qty)  # type: ignore[arg-type]
            engine.replace(order_id, ticks, lots, owner=self.owner)
        except (InstrumentError, EngineError) as err:
            raise StrategyError(str(err)) from None

    def set_timer(self, delay_ns: int, name: str) -> None:
        """on_timer(ctx, name) after `delay_ns` of the engine's clock."""
        if not isinstance(delay_ns, int) or delay_ns < 0:
            raise StrategyError(f"timer delay must be a non-negative int of ns, got {delay_ns!r}")
        self._host.add_timer(self.now_ns + delay_ns, name)

    def log(self, text: str) -> None:
        self.log_lines.append((self.now_ns, str(text)))

    # ---- views ------------------------------------------------------------------------------

    def position(self, symbol: str) -> Decimal:
        engine = self._host.engine
        lots = engine.portfolio.position_qty(self.owner, symbol)
        return engine.instrument(symbol).lots_to_qty(lots)

    def open_orders(self) -> list[Order]:
        return self._host.engine.open_orders(self.owner)

    def top(self, symbol: str) -> tuple[Decimal | None, Decimal, Decimal | None, Decimal]:
        """(bid, bid size, ask, ask size) in decimals; a missing side is (None, 0)."""
        engine = self._host.engine
        instrument = engine.instrument(symbol)
        bid, bid_lots, ask, ask_lots = engine.book(symbol).l1()
        return (
            None if bid is None else instrument.ticks_to_price(bid),
            instrument.lots_to_qty(bid_lots),
            None if ask is None else instrument.ticks_to_price(ask),
            instrument.lots_to_qty(ask_lots),
        )

    def price(self, symbol: str, ticks: int) -> Decimal:
        return self._host.engine.instrument(symbol).ticks_to_price(ticks)

    def qty(self, symbol: str, lots: int) -> Decimal:
        return self._host.engine.instrument(symbol).lots_to_qty(lots)


_OWN_EVENTS = (ev.OrderAccepted, ev.OrderRejected, ev.OrderPartiallyFilled, ev.OrderFilled,
               ev.OrderCancelled)  # fmt: skip
_MARKET_EVENTS = (ev.TopOfBook, ev.Trade)


class StrategyHost:
    """Runs one strategy against an engine, with `call_at` for its timers and deliveries."""

    def __init__(
        self, strategy: Strategy, engine: TradingEngine, call_at: Scheduler, owner: str = ""
    ) -> None:
        self.strategy = strategy
        self.engine = engine
        self.call_at = call_at
        self.owner = owner or strategy.name
        self.ctx = Context(self)
        self.running = False
        self.error: str | None = None
        self.events_delivered = 0
        self._queue: deque[ev.Event] = deque()
        self._drain_scheduled = False
        self._timers = 0
        self._unsubscribe: list[Callable[[], None]] = []
        self._symbols = frozenset(strategy.symbols)

    def start(self) -> None:
        bus = self.engine.bus
        self._unsubscribe = [
            bus.subscribe(self._on_own, _OWN_EVENTS),
            bus.subscribe(self._on_market, _MARKET_EVENTS),
        ]
        self.running = True
        self._call("on_start")

    def stop(self, reason: str = "") -> None:
        """Unsubscribe, cancel the strategy's live orders, call on_stop (once)."""
        if not self.running:
            return
        if reason:
            self.error = reason
        self._call("on_stop")
        self.running = False
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for order in self.engine.open_orders(self.owner):
            self.engine.cancel(order.order_id, reason=f"strategy {self.owner} stopped")

    # ---- event intake (inside engine calls: only queue) --------------------------------------

    def _on_own(self, event: ev.Event) -> None:
        if getattr(event, "owner", None) == self.owner:
            self._enqueue(event)

    def _on_market(self, event: ev.Event) -> None:
        if not self._symbols or event.symbol in self._symbols:  # type: ignore[attr-defined]
            self._enqueue(event)

    def _enqueue(self, event: ev.Event) -> None:
        self._queue.append(event)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.call_at(self.engine.now_ns(), self._drain)

    # ---- delivery (outside engine calls) ---------------------------------------------------

    def _drain(self) -> None:
        self._drain_scheduled = False
        queue = self._queue
        while queue and self.running:
            event = queue.popleft()
            self.events_delivered += 1
            kind = type(event)
            if kind is ev.TopOfBook:
                self._call("on_book", event)
            elif kind is ev.Trade:
                self._call("on_trade", event)
            elif kind is ev.OrderAccepted:
                self._call("on_accepted", event)
            elif kind is ev.OrderRejected:
                self._call("on_rejected", event)
            elif kind is ev.OrderCancelled:
                self._call("on_cancelled", event)
            else:
                self._call("on_fill", event)
        if not self.running:
            queue.clear()

    def add_timer(self, deadline_ns: int, name: str) -> None:
        if self._timers >= MAX_TIMERS:
            raise StrategyError(f"more than {MAX_TIMERS} pending timers")
        self._timers += 1

        def fire() -> None:
            self._timers -= 1
            if self.running:
                self._call("on_timer", name)

        self.call_at(deadline_ns, fire)

    def _call(self, callback: str, *args: object) -> None:
        try:
            getattr(self.strategy, callback)(self.ctx, *args)
        except Exception as err:  # noqa: BLE001 - the containment boundary of a strategy
            if self.running and callback != "on_stop":
                self.stop(f"{self.owner}: {callback} raised {type(err).__name__}: {err}")
            elif self.error is None:
                self.error = f"{self.owner}: {callback} raised {type(err).__name__}: {err}"


class VirtualScheduler:
    """A clock and `call_at` for backtests: callbacks run in deadline order (ties in the order
    they were scheduled), and the clock jumps to each deadline. Deterministic by design."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now = start_ns
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = count()

    def __call__(self) -> int:
        return self.now

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(deadline_ns, self.now), next(self._seq), callback))

    def run(self, until_ns: int | None = None) -> None:
        """Run callbacks until none is left (or the next is after `until_ns`)."""
        heap = self._heap
        while heap and (until_ns is None or heap[0][0] <= until_ns):
            deadline, _, callback = heapq.heappop(heap)
            self.now = deadline
            callback()
