"""Market access for ring-3 strategies: the records of /dev/market and the session behind one
open of it (the C side is images/programs/lib/market.h, which documents the interface).

A `MarketPort` is one program's session with the TradingEngine. It turns the engine's events
into fixed-size binary records (EVENT, 96 bytes): every event of its own orders, and the tops
and trades of the instruments it subscribed to. It carries out fixed-size commands (COMMAND,
48 bytes): subscribe, unsubscribe, submit, cancel, replace. Its orders carry an owner name of
its own (`PROGRAM-PID`; `PROGRAM-PID.1`... for further opens by one process), so risk limits,
self-trade prevention, the kill switch and the audit log apply to it as to anyone; `close`
(the file's last descriptor going, a crash included) cancels its live orders.

Bounds: at most QUEUE_MAX events wait (past that new ones are dropped, counted in `lost`,
and the first record queued after the gap carries F_LOST); at most COMMANDS_PER_WRITE
commands are taken per write. Nothing from the program is trusted: every field is checked
before it reaches the engine, and a malformed command is refused with EINVAL (never an
exception).

Latency: each submit made after a market event was read records tick-to-order in virtual ns
(the submit's time less the time of the latest market event the program had read), the same
figure a backtest reports; `latencies` keeps the latest LATENCY_SAMPLES.

The port knows no files or processes: kernel/fs/recordfile.py makes it a file, and the
program is known only by the `name` and `pid` the caller hands to `bind`.

Backtests (trading/program.py): a session bound by a process that a ring-3 backtest runs
(its pid in `MarketPorts.claims`) trades in that backtest's simulated venue instead of the
live engine, under the backtest strategy's owner name, and is not listed among the live
sessions. The records and the checks are the same code; what differs is time: its reads
never sleep (the replay answers them, or says end of file with a read of 0 bytes once the
data is done, so `queue` is always true), and its writes are carried out at the program's
own time in the replay. A second session of the same program fails its writes with EBUSY and
reads end of file.
"""

from __future__ import annotations

import errno as E
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.book import BUY, FOK, GTC, IOC, POST, SELL
from tradekernel.kernel.trading.engine import EngineError, TradingEngine
from tradekernel.kernel.trading.strategy import LATENCY_SAMPLES

COMMAND = struct.Struct("<IIIi8sqqII")  # struct mkt_command
EVENT = struct.Struct("<IIQII8siIqqqq24s")  # struct mkt_event
QUEUE_MAX = 4096  # events waiting to be read (MKT_QUEUE_MAX)
COMMANDS_PER_WRITE = 256  # a longer write is taken in part (its return value says how much)
MARKET_DEVICE = (10 << 8) | 242  # /dev/market's device number (Linux's misc major 10)
INT64 = (-(1 << 63), (1 << 63) - 1)
U32 = 0xFFFF_FFFF  # order ids are 32-bit in the records (they wrap after 4e9 orders)

OP_SUBSCRIBE, OP_UNSUBSCRIBE, OP_SUBMIT, OP_CANCEL, OP_REPLACE = 1, 2, 3, 4, 5
TIF_MARKET = 4
_TIFS = (GTC, IOC, FOK, POST)  # the engine's codes are the header's
EV_TOP, EV_TRADE, EV_ACCEPTED, EV_REJECTED, EV_FILL, EV_CANCELLED, EV_REPLACED, EV_ERROR = range(
    1, 9
)
F_LOST, F_BID, F_ASK, F_MARKET = 1, 2, 4, 8
_OWN = (ev.OrderAccepted, ev.OrderRejected, ev.OrderPartiallyFilled, ev.OrderFilled,
        ev.OrderCancelled, ev.OrderReplaced)  # fmt: skip
_MARKET = (ev.TopOfBook, ev.Trade)


def _symbol(raw: bytes) -> str | None:
    """The NUL-padded symbol of a command, or None if it is not printable ASCII."""
    name = raw.rstrip(b"\0")
    if not name or b"\0" in name or not all(0x21 <= c < 0x7F for c in name):
        return None
    return name.decode("ascii")


def _text(value: str) -> bytes:
    return value.encode("ascii", "replace")[: EVENT.size - 72]


def _clamp(value: int | None) -> int:
    return 0 if value is None else max(INT64[0], min(INT64[1], value))


class Backtest(Protocol):
    """What a session bound in a backtest hands its work to (trading/program.py's
    ProgramBacktest)."""

    def attach(self, port: MarketPort) -> tuple[object, str] | None:
        """(the engine surface of its venue, the owner name), or None: a second session."""
        ...

    def read(self, port: MarketPort, count: int) -> bytes: ...

    def write(self, port: MarketPort, data: bytes) -> int: ...

    def closed(self, port: MarketPort) -> None: ...


class _Answered(deque):
    """A backtest session's queue: true even when empty, since a read never sleeps there
    (the replay answers it). The port counts it with len()."""

    def __bool__(self) -> bool:
        return True


class MarketPort:
    """One open of /dev/market (see the module docstring)."""

    def __init__(self, engine: TradingEngine, registry: list[MarketPort],
                 claims: dict[int, Backtest] | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.owner = ""  # set by `bind` at the program's first read or write
        self.pid = 0
        self.bound_ns = 0  # when the program first used it
        self.symbols: set[str] = set()
        self.queue: deque[bytes] = deque()
        self.lost = 0
        self.events = 0  # events handed to the program
        self.latencies: deque[int] = deque(maxlen=LATENCY_SAMPLES)
        self.notify: Callable[[], None] = lambda: None  # told when an event is queued
        self._lost_unsaid = False
        self._last_md_ns: int | None = None
        self._tags: dict[int, tuple[int, int]] = {}  # live order id -> (the program's tag, side)
        self._unsubscribe: list[Callable[[], None]] = []
        self._registry = registry  # the bound sessions (`strategy status` lists them)
        self._claims = claims if claims is not None else {}
        self.link: Backtest | None = None  # the backtest it trades in, if any

    def bind(self, name: str, pid: int) -> None:
        """Name the session after its program and start listening (once)."""
        if self.owner:
            return
        link = self._claims.get(pid)
        if link is not None:
            self._bind_backtest(link, pid)
            return
        base = self.owner = f"{name or 'program'}-{pid}"
        taken = {port.owner for port in self._registry}
        more = 0
        while self.owner in taken:  # another open by the same process: a name of its own
            more += 1
            self.owner = f"{base}.{more}"
        self.pid = pid
        self.bound_ns = self.engine.now_ns()
        bus = self.engine.bus
        self._unsubscribe = [bus.subscribe(self.on_own, _OWN),
                             bus.subscribe(self.on_market, _MARKET)]  # fmt: skip
        self._registry.append(self)

    def _bind_backtest(self, link: Backtest, pid: int) -> None:
        """Trade in `link`'s venue (the link forwards the venue's events to on_market/on_own)."""
        self.link = link
        self.pid = pid
        self.queue = _Answered()
        self.notify = lambda: None  # a read never sleeps here: nobody to wake
        attached = link.attach(self)
        if attached is None:
            self.owner = f"refused-{pid}"  # a second session of the program
            return
        view, self.owner = attached
        self.engine = view  # type: ignore[assignment]
        self.bound_ns = self.engine.now_ns()

    # ---- events -> records ----------------------------------------------------------------
    def _push(self, record: bytes) -> None:
        if len(self.queue) >= QUEUE_MAX:
            self.lost += 1
            self._lost_unsaid = True
            return
        if self._lost_unsaid:  # the first record in after a gap says so
            self._lost_unsaid = False
            flags = int.from_bytes(record[4:8], "little") | F_LOST
            record = record[:4] + flags.to_bytes(4, "little") + record[8:]
        self.queue.append(record)
        self.notify()

    def _record(self, kind: int, event: ev.Event, symbol: str, order_id: int = 0, tag: int = 0,
                side: int = 0, a: int | None = 0, b: int = 0, c: int | None = 0, d: int = 0,
                text: str = "", flags: int = 0) -> bytes:  # fmt: skip
        return EVENT.pack(kind, flags, event.ts_ns, order_id & U32, tag, symbol.encode()[:8], side,
                          0, _clamp(a), _clamp(b), _clamp(c), _clamp(d), _text(text))  # fmt: skip

    def on_market(self, event: ev.Event) -> None:
        if event.symbol not in self.symbols:  # type: ignore[attr-defined]
            return
        if type(event) is ev.TopOfBook:
            flags = (F_BID if event.bid_price is not None else 0) | (
                F_ASK if event.ask_price is not None else 0)
            self._push(self._record(EV_TOP, event, event.symbol, a=event.bid_price,
                                    b=event.bid_qty, c=event.ask_price, d=event.ask_qty,
                                    flags=flags))  # fmt: skip
        else:
            trade: ev.Trade = event  # type: ignore[assignment]
            self._push(self._record(EV_TRADE, trade, trade.symbol, side=trade.aggressor_side,
                                    a=trade.price, b=trade.qty))  # fmt: skip

    def on_own(self, event: ev.Event) -> None:
        if event.owner != self.owner:  # type: ignore[attr-defined]
            return
        oid: int = event.order_id  # type: ignore[attr-defined]
        symbol: str = event.symbol  # type: ignore[attr-defined]
        kind = type(event)
        tag, side = self._tags.get(oid, (0, 0))
        if kind is ev.OrderAccepted:
            flags = F_MARKET if event.price is None else 0  # type: ignore[attr-defined]
            fields = (EV_ACCEPTED, event.price, event.qty, 0, 0, "", flags)  # type: ignore[attr-defined]
        elif kind is ev.OrderRejected:
            fields = (EV_REJECTED, 0, 0, 0, 0, event.reason, 0)  # type: ignore[attr-defined]
        elif kind is ev.OrderCancelled:
            fields = (EV_CANCELLED, 0, event.cancelled_qty, 0, 0, event.reason, 0)  # type: ignore[attr-defined]
        elif kind is ev.OrderReplaced:
            fields = (EV_REPLACED, event.new_price, event.new_qty, 0, 0, "", 0)  # type: ignore[attr-defined]
        else:
            fill: ev.OrderFilled = event  # type: ignore[assignment]
            fields = (EV_FILL, fill.fill_price, fill.fill_qty, fill.filled_qty, fill.leaves_qty,
                      "", 0)  # fmt: skip
        kind_code, a, b, c, d, text, flags = fields
        if kind_code in (EV_REJECTED, EV_CANCELLED) or kind_code == EV_FILL and not d:
            self._tags.pop(oid, None)  # the order is finished
        record = self._record(kind_code, event, symbol, oid, tag, side, a, b, c, d, text, flags)
        self._push(record)

    def take(self, count: int) -> bytes:
        """Up to `count` queued records, oldest first (in a backtest: once the replay has
        made some, b"" at its end)."""
        if self.link is not None:
            return self.link.read(self, count)
        return self.take_records(count)

    def take_records(self, count: int) -> bytes:
        out = []
        while len(self.queue) and len(out) < count:
            record = self.queue.popleft()
            if record[0] in (EV_TOP, EV_TRADE):  # types are below 256: the low byte says
                self._last_md_ns = int.from_bytes(record[8:16], "little")
            out.append(record)
        self.events += len(out)
        return b"".join(out)

    # ---- commands -------------------------------------------------------------------------
    def handle(self, data: bytes) -> int:
        """Carry out whole commands; bytes taken, or -EINVAL if the first is malformed (a
        later malformed one ends the write after those before it). In a backtest they are
        carried out at the program's time in the replay."""
        if self.link is not None:
            return self.link.write(self, data)
        return self.handle_commands(data)

    def handle_commands(self, data: bytes) -> int:
        size = COMMAND.size
        if not data or len(data) % size:
            return -E.EINVAL
        taken = 0
        for offset in range(0, min(len(data), size * COMMANDS_PER_WRITE), size):
            if not self._command(*COMMAND.unpack_from(data, offset)):
                break
            taken += size
        return taken or -E.EINVAL

    def _command(self, op: int, order_id: int, tag: int, side: int, raw_symbol: bytes,
                 price: int, qty: int, tif: int, _reserved: int) -> bool:  # fmt: skip
        """Carry out one command; False if it is malformed."""
        engine = self.engine
        if op in (OP_SUBSCRIBE, OP_UNSUBSCRIBE, OP_SUBMIT):
            symbol = _symbol(raw_symbol)
            if symbol is None or symbol not in engine.books:
                return False
            if op == OP_SUBSCRIBE:
                if symbol not in self.symbols:
                    self.symbols.add(symbol)
                    self._push_top(symbol)
            elif op == OP_UNSUBSCRIBE:
                self.symbols.discard(symbol)
            else:
                return self._submit(symbol, side, price, qty, tif, tag)
            return True
        if op not in (OP_CANCEL, OP_REPLACE):
            return False
        try:
            if op == OP_CANCEL:
                engine.cancel(order_id, owner=self.owner)
            else:
                engine.replace(order_id, price or None, qty or None, owner=self.owner)
        except EngineError as err:
            self._push(EVENT.pack(EV_ERROR, 0, engine.now_ns(), order_id & U32, 0, b"", 0, 0,
                                  0, 0, 0, 0, _text(str(err))))  # fmt: skip
        return True

    def _submit(self, symbol: str, side: int, price: int, qty: int, tif: int, tag: int) -> bool:
        if side not in (BUY, SELL) or qty <= 0 or (tif not in _TIFS and tif != TIF_MARKET):
            return False
        engine = self.engine
        now = engine.now_ns()
        if self._last_md_ns is not None:
            self.latencies.append(now - self._last_md_ns)
        self._tags[engine.next_order_id] = (tag, side)  # its events come before submit returns
        if tif == TIF_MARKET:
            engine.submit(self.owner, symbol, side, qty, None, IOC)
        else:
            engine.submit(self.owner, symbol, side, qty, price, tif)
        return True

    def _push_top(self, symbol: str) -> None:
        bid, bid_qty, ask, ask_qty = self.engine.book(symbol).l1()
        flags = (F_BID if bid is not None else 0) | (F_ASK if ask is not None else 0)
        self._push(EVENT.pack(EV_TOP, flags, self.engine.now_ns(), 0, 0, symbol.encode()[:8], 0,
                              0, _clamp(bid), bid_qty, _clamp(ask), ask_qty, b""))  # fmt: skip

    def close(self) -> None:
        """The program let go (or died): stop listening, cancel its live orders (in a
        backtest: the backtest's strategy stops)."""
        if self.link is not None:
            self.link.closed(self)
            self.queue.clear()
            return
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self.owner:
            for order in self.engine.open_orders(self.owner):
                self.engine.cancel(order.order_id, reason=f"{self.owner} closed /dev/market")
        self.queue.clear()
        if self in self._registry:
            self._registry.remove(self)


class MarketPorts:
    """Makes sessions, and lists those a program has used (a `stat` of the node opens one
    that is never bound, and never listed)."""

    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self.bound: list[MarketPort] = []
        self.claims: dict[int, Backtest] = {}  # pid -> the backtest it runs in

    def open(self) -> MarketPort:
        return MarketPort(self.engine, self.bound, self.claims)
