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
`host.error` keeps one line saying which callback raised what, `on_stopped` (the kernel's log)
hears it, and the engine, the feed and other strategies go on. CPU time: every delivery runs
under a CpuWatchdog with a budget of `budget_ns` of this thread's CPU time per event (a batch
of n events may use n budgets); a callback that passes it (a loop that never ends) gets
StrategyOverrun raised inside it by the watchdog thread and the strategy is stopped. The
budget is generous (a healthy callback uses microseconds), so it never decides the fate of a
well-behaved run: outputs stay deterministic. Reading a thread's CPU clock is a system call,
dearer than a healthy on_book: a delivery is watched without one (the watchdog thread takes
the start when it first sees the batch armed), and only one batch in CPU_SAMPLE_EVERY is
timed on the watched thread. `cpu_ns` is therefore the CPU time a strategy used as sampled
that way (exact for on_start, on_stop and timers, an unbiased estimate for deliveries).

Latency: every order a strategy submits records tick-to-order in `latencies`: the engine's
time at the submit less the time stamp of the latest market event (top or trade) delivered
to it, in virtual ns, the figure a backtest reports (live, it includes the wait between the
event and its delivery from the scheduler).
"""

from __future__ import annotations

import ctypes
import gc
import heapq
import threading
import time
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
EVENT_BUDGET_NS = 250_000_000  # CPU time a strategy may use per event it is handed (250 ms)
WATCHDOG_POLL_S = 0.01  # how often the watchdog thread looks at an armed budget
CPU_SAMPLE_EVERY = 16  # one delivery batch in this many is timed for `cpu_ns` (two clock reads)
LATENCY_SAMPLES = 10_000  # tick-to-order samples a host keeps (the latest)

Scheduler = Callable[[int, Callable[[], None]], object]
_TIFS = {"gtc": GTC, "ioc": IOC, "fok": FOK, "post": POST}


class StrategyError(Exception):
    """A request a strategy made that cannot be carried out (bad value, unknown order)."""


class StrategyOverrun(BaseException):
    """Raised inside a strategy callback that passed its CPU budget (a BaseException: a
    strategy's own `except Exception` does not swallow it)."""


def _raise_in(thread_id: int, kind: type[BaseException] | None) -> None:
    """Schedule `kind` to be raised in that thread at its next bytecode boundary (None takes
    back one still pending): CPython's PyThreadState_SetAsyncExc."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(kind) if kind else None
    )


def describe_error(err: BaseException) -> str:
    """`Type: message` of an exception strategy code raised, even when its own __str__ raises
    (strategy code defines it: the message must not raise again past the boundary)."""
    try:
        return f"{type(err).__name__}: {err}"
    except Exception:  # noqa: BLE001 - its __str__ is strategy code too
        return f"{type(err).__name__}: (its message raised)"


class CpuWatchdog:
    """Bounds the CPU time of work run on one thread. `run(work, budget_ns)` arms a deadline on
    that thread's CPU clock; a daemon thread polling every WATCHDOG_POLL_S raises
    StrategyOverrun inside the work once the deadline has passed (again at every poll while
    the work goes on, should it swallow one). The garbage collector's time on that thread is
    not counted. Cost on the watched path: two clock reads and two attribute stores per run;
    with `timed=False` no clock read at all: the poller starts counting when it first sees the
    run armed, so work is stopped after at most its budget plus one poll of CPU time."""

    _by_thread: dict[int, CpuWatchdog] = {}
    _created = threading.Lock()

    @classmethod
    def for_this_thread(cls) -> CpuWatchdog:
        ident = threading.get_ident()
        with cls._created:
            dog = cls._by_thread.get(ident)
            if dog is None:
                dog = cls._by_thread[ident] = cls(ident)
        return dog

    def __init__(self, thread_id: int) -> None:
        self._thread_id = thread_id
        self._clock = time.pthread_getcpuclockid(thread_id)
        self._lock = threading.Lock()
        self._armed: tuple[int, int, int, int] | None = None  # token, start, GC ns, budget
        self._token = 0
        self._fired = 0  # the token of the last run the watchdog raised into
        self._poller: threading.Thread | None = None
        # CPU time the cyclic garbage collector took on this thread (it is not the strategy's:
        # a full collection of a large heap can take longer than a budget), and when the one
        # under way began
        self._gc_ns = 0
        self._gc_began: int | None = None
        gc.callbacks.append(self._on_gc)

    @property
    def busy(self) -> bool:
        """Work runs under it now. Its budget is counted on the thread's CPU clock, so that work
        must not switch this thread to other work (a greenlet) meanwhile: the time away would
        be charged to it, and the StrategyOverrun meant for it raised in the other work."""
        return self._armed is not None

    def _on_gc(self, phase: str, _info: dict) -> None:
        if threading.get_ident() != self._thread_id:
            return
        now = time.clock_gettime_ns(self._clock)
        if phase == "start":
            self._gc_began = now
        elif self._gc_began is not None:
            self._gc_ns += now - self._gc_began
            self._gc_began = None

    def _used(self, since: int, gc_before: int) -> int:
        """CPU ns of this thread since `since`, less the collector's time in between."""
        now = time.clock_gettime_ns(self._clock)
        began = self._gc_began
        in_gc = now - began if began is not None else 0
        return now - since - (self._gc_ns - gc_before) - in_gc

    def run(self, work: Callable[[], None], budget_ns: int, timed: bool = True) -> int:
        """Run `work`; the CPU ns it used (0 untimed). StrategyOverrun if it passed `budget_ns`."""
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="tk-strategy-watchdog",
                                            daemon=True)  # fmt: skip
            self._poller.start()
        self._token += 1
        token = self._token
        start = time.clock_gettime_ns(self._clock) if timed else None
        gc_before = self._gc_ns
        self._armed = (token, start, gc_before, budget_ns)
        try:
            work()
        finally:
            self._armed = None
            with self._lock:  # the poller is not between its check and its raise
                fired = self._fired == token
            if fired:
                _raise_in(self._thread_id, None)
        if fired:  # the work swallowed the exception and then returned
            raise StrategyOverrun
        return 0 if start is None else self._used(start, gc_before)

    def _poll(self) -> None:
        seen: tuple[int, int, int] = (0, 0, 0)  # an untimed run first seen: token, start, GC ns
        while True:
            time.sleep(WATCHDOG_POLL_S)
            armed = self._armed
            if armed is None:
                continue
            token, start, gc_before, budget = armed
            if start is None:  # untimed: count from the first poll that saw it
                if seen[0] != token:
                    seen = (token, time.clock_gettime_ns(self._clock), self._gc_ns)
                    continue
                start, gc_before = seen[1], seen[2]
            if self._used(start, gc_before) < budget:
                continue
            with self._lock:
                if self._armed is armed:
                    self._fired = armed[0]
                    _raise_in(self._thread_id, StrategyOverrun)


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

    @property
    def host(self) -> StrategyHost:
        """The host running this strategy: for adapters that bridge another interface to this
        API (trading/program.py: a ring-3 program's /dev/market session); a strategy acts
        through the Context."""
        return self._host

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
        self._host.order_sent()
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
        self,
        strategy: Strategy,
        engine: TradingEngine,
        call_at: Scheduler,
        owner: str = "",
        budget_ns: int = EVENT_BUDGET_NS,
        on_stopped: Callable[[str, BaseException | None], None] | None = None,
    ) -> None:
        self.strategy = strategy
        self.engine = engine
        self.call_at = call_at
        self.owner = owner or strategy.name
        self.ctx = Context(self)
        self.running = False
        self.error: str | None = None
        self.events_delivered = 0
        self.cpu_ns = 0  # CPU time its callbacks used
        self.budget_ns = budget_ns
        self.on_stopped = on_stopped  # told (message, exception) when a callback stops it
        self._watchdog = CpuWatchdog.for_this_thread()
        self._queue: deque[ev.Event] = deque()
        self._drain_scheduled = False
        self._drains = 0  # batches delivered: one in CPU_SAMPLE_EVERY is timed
        self._timers = 0
        self._unsubscribe: list[Callable[[], None]] = []
        self._symbols = frozenset(strategy.symbols)
        # tick-to-order: virtual ns from the latest market event delivered to each order sent
        self.latencies: deque[int] = deque(maxlen=LATENCY_SAMPLES)
        self._last_md_ns: int | None = None

    def order_sent(self) -> None:
        if self._last_md_ns is not None:
            self.latencies.append(self.engine.now_ns() - self._last_md_ns)

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
        if not self.running:
            queue.clear()
            return
        weight = CPU_SAMPLE_EVERY if self._drains % CPU_SAMPLE_EVERY == 0 else 0
        self._drains += 1
        self._guarded("on_book", self._deliver, len(queue), weight)

    def _deliver(self) -> None:
        queue = self._queue
        strategy, ctx = self.strategy, self.ctx
        on_book, on_trade = strategy.on_book, strategy.on_trade
        while queue and self.running:
            event = queue.popleft()
            self.events_delivered += 1
            kind = type(event)
            self._current = kind
            if kind is ev.TopOfBook:
                self._last_md_ns = event.ts_ns
                on_book(ctx, event)
            elif kind is ev.Trade:
                self._last_md_ns = event.ts_ns
                on_trade(ctx, event)
            elif kind is ev.OrderAccepted:
                strategy.on_accepted(ctx, event)
            elif kind is ev.OrderRejected:
                strategy.on_rejected(ctx, event)
            elif kind is ev.OrderCancelled:
                strategy.on_cancelled(ctx, event)
            else:
                strategy.on_fill(ctx, event)
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
        method = getattr(self.strategy, callback)
        self._guarded(callback, lambda: method(self.ctx, *args), 1, 1)

    _NAMES = {ev.TopOfBook: "on_book", ev.Trade: "on_trade", ev.OrderAccepted: "on_accepted",
              ev.OrderRejected: "on_rejected", ev.OrderCancelled: "on_cancelled"}  # fmt: skip

    def _guarded(self, callback: str, work: Callable[[], None], events: int, weight: int) -> None:
        """Run strategy code inside the containment boundary and the CPU budget. Its CPU time
        counts `weight` times in `cpu_ns` (a sampled batch stands for those not timed); with
        weight 0 it is not timed on this thread."""
        self._current: object = callback
        try:
            used = self._watchdog.run(work, self.budget_ns * max(events, 1), weight > 0)
            self.cpu_ns += used * weight
            return
        except StrategyOverrun as err:
            problem: BaseException = err
            text = f"used more than {self.budget_ns // 1_000_000} ms of CPU for one event"
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a strategy's containment
            problem = err
            text = f"raised {describe_error(err)}"
        current = self._current
        name = current if isinstance(current, str) else self._NAMES.get(current, "on_fill")
        message = f"{self.owner}: {name} {text}"
        if self.running and callback != "on_stop":
            self.stop(message)
        elif self.error is None:
            self.error = message
        if self.on_stopped is not None:
            self.on_stopped(message, problem)


class VirtualScheduler:
    """A clock and `call_at` for backtests: callbacks run in deadline order (ties in the order
    they were scheduled), and the clock jumps to each deadline. Deterministic by design."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now = start_ns
        self.heap: list[tuple[int, int, Callable[[], None]]] = []  # read-only outside
        self._seq = count()

    def __call__(self) -> int:
        return self.now

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> None:
        heapq.heappush(self.heap, (max(deadline_ns, self.now), next(self._seq), callback))

    def quiet_until(self, deadline_ns: int) -> bool:
        """True if no callback is due at or before `deadline_ns`."""
        heap = self.heap
        return not heap or heap[0][0] > deadline_ns

    def run(self, until_ns: int | None = None) -> None:
        """Run callbacks until none is left (or the next is after `until_ns`)."""
        heap = self.heap
        while heap and (until_ns is None or heap[0][0] <= until_ns):
            deadline, _, callback = heapq.heappop(heap)
            self.now = deadline
            callback()
