"""The replayed market of a backtest from ITCH 5.0 (and LOBSTER, converted to it): the messages
go straight into the kernel's bare order books (book.OrderBook), and what the backtest's fill
model needs to hear (an order added, cut or executed, a print, a new top of book) is told to
one listener by plain calls.

Why beside TradingEngine + feed.ItchReplay: the desk replays a feed through the whole OMS (an
Order object, validation, a state machine, risk, history and an event object for every
message), which a backtest of a million messages pays for and never reads. This module is the
same replay for a backtest at a fraction of the cost: the same books and matching code, the
same order ids (one counter, in message order), the same owners ("itch", "itch:MPID") and so
the same self-trade prevention on inconsistent data, the same validation (lot, tick, band) and
the same one-line errors naming the message's offset. tests/trading/test_replay.py checks that
both give the same books, trades and backtest results.

The market is also its own Feed for run_backtest: `step(now_ns)` applies the messages due (paced:
the first message's timestamp is anchored at the first step) and returns the next deadline, or
None at the end; `applied`, `skipped`, `errors`, `done` as feed.Feed has them.

Listener calls (a backtest's SimVenue): market_cut(symbol, order_id, side, price, qty) when a
resting order shrank or went (cancel, delete, the old order of a replace, STP) in a symbol
where the listener has orders resting (`Listener.resting`), market_trade(
symbol, price, qty, buy_id, sell_id, aggressor, maker_side, maker_price) for an execution (the
resting order's side and price; a print has no ids and maker_side 0), market_top(symbol, l1)
when the top of a book changed. `last_order_id` is the id of the latest order entered: every
id up to it was queued before anything entered later. Prices in ticks, quantities in lots.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from struct import Struct
from struct import error as StructError

from . import itch
from .book import BUY, GTC, SELL, BookError, OrderBook
from .feed import ITCH_SKIPPED
from .instruments import Instrument, InstrumentError, InstrumentTable
from .strategy import VirtualScheduler

ITCH_PRICE_SCALE = 10_000  # ITCH Price(4): 1/10,000 of a dollar
ITCH_BUY = ord("B")  # the side byte of a buy order
# the type bytes the replay's loop handles itself (the rest: a handler each)
ITCH_ADD, ITCH_ADD_ATTRIBUTED, ITCH_REPLACE, ITCH_DELETE = b"AFUD"
ITCH_EXECUTED, ITCH_EXECUTED_AT, ITCH_CANCEL = b"ECX"

# What the replay unpacks of each framed ITCH message, in one unpack from its length prefix on:
# the prefix, the common head as (locate, tracking and timestamp in one 64-bit int: the
# timestamp is its low 48 bits), then only the fields the books use (x: skipped bytes, never
# turned into objects). The layouts are itch.LAYOUTS with the rest skipped; each must be its
# kind's whole size (checked at start-up); the other kinds unpack the head only, and a type
# byte ITCH does not define the prefix only. A message is whole when its prefix is its kind's
# size (FRAMED_SIZE, -1 for an unknown type) and the data holds it (else the unpack raises).
HEAD, HEAD_SIZE = ">HxHQ", 13
TIMESTAMP_MASK = (1 << 48) - 1
FIELDS = {
    b"A": Struct(HEAD + "QBI8xI"),  # ref, side, shares, (stock), price
    b"F": Struct(HEAD + "QBI8xI4s"),  # ... + attribution (MPID)
    b"E": Struct(HEAD + "QI8x"),  # ref, executed shares, (match number)
    b"C": Struct(HEAD + "QI8xxI"),  # ref, shares, (match number, printable), execution price
    b"X": Struct(HEAD + "QI"),  # ref, cancelled shares
    b"D": Struct(HEAD + "Q"),  # ref
    b"U": Struct(HEAD + "QQII"),  # original ref, new ref, shares, price
    b"P": Struct(HEAD + "8xxI8xI8x"),  # (ref, side) shares, (stock) price, (match number)
    b"Q": Struct(HEAD + "Q8xI9x"),  # shares, (stock) price, (match number, cross type)
    b"R": Struct(HEAD + "8s20x"),  # stock, (the rest)
}
_UNPACK_FIELDS: list = [Struct(">H").unpack_from] * 256  # by type byte
FRAMED_SIZE: list[int] = [-1] * 256  # by type byte: what the length prefix must say
for _kind, _size in itch.SIZES.items():
    _layout = FIELDS.get(_kind) or Struct(f"{HEAD}{_size + 2 - HEAD_SIZE}x")
    if _layout.size != _size + 2:
        raise AssertionError(f"FIELDS[{_kind!r}] is {_layout.size - 2} bytes, ITCH says {_size}")
    _UNPACK_FIELDS[_kind[0]] = _layout.unpack_from
    FRAMED_SIZE[_kind[0]] = _size


def itch_instrument(symbol: str) -> Instrument:
    """An instrument the data names and the configuration does not: ITCH's own precision,
    and the band a Price(4) field can hold (as feed.ItchReplay makes it)."""
    return Instrument(symbol, Decimal("0.0001"), Decimal(1), Decimal("0.0001"),
                      Decimal("429496.7295"))  # fmt: skip


class _Everywhere:
    """A `resting` that holds every symbol: a plain listener hears every cut."""

    def __contains__(self, _symbol: object) -> bool:
        return True


class Listener:
    """What ItchMarket tells (no-ops; SimVenue implements them). `resting` is what the market
    reads before a cut: the symbols where the listener has orders resting (SimVenue keeps it
    a dict holding only those). A cut of any other symbol is not told: nothing can queue
    behind it, and a backtest whose strategy rests nothing pays no call per cancel."""

    resting: object = _Everywhere()

    def market_cut(self, symbol: str, order_id: int, side: int, price: int, qty: int) -> None: ...

    def market_trade(self, symbol: str, price: int, qty: int, buy_id: int | None,
                     sell_id: int | None, aggressor: int, maker_side: int, maker_price: int,
                     ) -> None: ...  # fmt: skip

    def market_top(self, symbol: str, l1: tuple) -> None: ...


class _Still:
    """A clock that never moves and has nothing due: `step` applies what is due now."""

    heap = ((0, 0, None),)  # "something is due at 0": never pass `now`

    def __init__(self, now_ns: int) -> None:
        self.now = now_ns


class _Venue:
    """One symbol as the replay keeps it: its book and the integer steps from ITCH units."""

    __slots__ = ("symbol", "instrument", "book", "tick4", "lot", "low", "high", "l1")

    def __init__(self, instrument: Instrument, book: OrderBook) -> None:
        self.symbol = instrument.symbol
        self.instrument = instrument
        self.book = book
        tick4 = instrument.tick_size * ITCH_PRICE_SCALE
        self.tick4 = int(tick4) if tick4 == int(tick4) else 0  # 0: not a whole ITCH step
        lot = instrument.lot_size
        self.lot = int(lot) if lot == int(lot) else 0
        self.low, self.high = instrument.band_low_ticks, instrument.band_high_ticks
        self.l1: tuple = (None, 0, None, 0)

    def ticks(self, price4: int) -> int:
        step = self.tick4
        if step and price4 % step == 0:
            return price4 // step
        return self.instrument.price_to_ticks(Decimal(price4).scaleb(-4))  # or its error

    def lots(self, shares: int) -> int:
        lot = self.lot
        if lot and shares % lot == 0:
            return shares // lot
        return self.instrument.qty_to_lots(shares)  # or its error


class ItchMarket:
    def __init__(
        self,
        name: str,
        data: bytes,
        listener: Listener,
        instruments: list[Instrument] | None = None,
        batch: int = 10_000,
    ) -> None:
        self.name = name
        self.listener = listener
        self.instruments = InstrumentTable.from_toml(None)
        for instrument in instruments or ():
            if instrument.symbol not in self.instruments:
                self.instruments.add(instrument)
        self.books: dict[str, OrderBook] = {}
        self._venues: dict[str, _Venue] = {}
        for instrument in self.instruments:
            self._add_book(instrument)
        self.live: dict[int, tuple[_Venue, int, int]] = {}  # order id -> (venue, side, price)
        self._refs: dict[int, int] = {}  # ITCH order reference -> order id
        self._locates: dict[int, _Venue] = {}
        self._next_id = 1
        self._incoming_side = BUY  # of the add being matched (for _crossed)
        self.errors: list = []
        self.applied = 0
        self.skipped: dict[str, int] = {}
        self.done = False
        self.batch = batch
        self._data = data
        self._off = 0  # of the next message's length prefix
        self._pending: tuple[int, int, tuple] | None = None  # (offset, kind, fields) not yet due
        self._shift: int | None = None  # paced deadline - ITCH timestamp (set by the first)
        self._last_deadline = 0
        self._handlers: list = [None] * 256
        # A F U D E C X: in run
        handlers = {b"P": self._on_print, b"Q": self._on_cross, b"R": self._on_directory}
        for kind in itch.SIZES:
            self._handlers[kind[0]] = handlers.get(kind) or (lambda _raw, k=kind: ITCH_SKIPPED[k])

    def _add_book(self, instrument: Instrument) -> _Venue:
        book = OrderBook(instrument.symbol)
        venue = _Venue(instrument, book)
        book.on_fill = lambda maker, _o, taker, price, qty, _ml, _tl: self._crossed(
            venue, maker, taker, price, qty)  # fmt: skip
        book.on_cancel = lambda oid, _owner, qty: self._gone(venue, oid, qty)
        self.books[instrument.symbol] = book
        self._venues[instrument.symbol] = venue
        return venue

    # ---- what SimVenue and run_backtest ask ---------------------------------------------------
    @property
    def last_order_id(self) -> int:
        return self._next_id - 1

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def book(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            raise InstrumentError(f"unknown symbol {symbol!r}")
        return book

    def add_instrument(self, instrument: Instrument) -> _Venue:
        self.instruments.add(instrument)
        return self._add_book(instrument)

    def mark_ticks(self, symbol: str) -> Fraction | None:
        """Last trade, else mid, else None (TradingEngine.mark_ticks)."""
        book = self.books[symbol]
        if book.last_price is not None:
            return Fraction(book.last_price)
        mid_x2 = book.mid_x2()
        return None if mid_x2 is None else Fraction(mid_x2, 2)

    # ---- the feed ------------------------------------------------------------------------------
    def step(self, now_ns: int) -> int | None:
        """Apply the messages due at `now_ns`; the next deadline, or None when finished."""
        return self.run(_Still(now_ns))

    def run(self, clock: VirtualScheduler) -> int | None:
        """Apply messages from `clock.now` on, moving the clock to each one's paced deadline
        while no callback of the clock is due before it (or at the same ns: those run first).
        Returns the deadline of the message that must wait for them, or None at the end.

        The replay's hot loop, written out in one function because a backtest spends most of
        its time here: one message costs its framing, one unpack of the fields the books need
        (FIELDS), the book operation of its kind (add, delete, execute and cancel are handled
        in line; the rare kinds by a handler), the listener's call, and only when it can have
        changed the top of the book, one look at the top. A cut of a symbol where the listener
        has no order resting (`listener.resting`) is not told at all."""
        heap = clock.heap
        now = clock.now
        data = self._data
        size = len(data)
        sizes = FRAMED_SIZE
        unpack = _UNPACK_FIELDS
        handlers = self._handlers
        errors = self.errors
        skipped_counts = self.skipped
        off = self._off
        last = self._last_deadline
        shift = self._shift
        refs, live, locates = self._refs, self.live, self._locates
        listener = self.listener
        resting = listener.resting
        cut, trade, told = listener.market_cut, listener.market_trade, listener.market_top
        applied = 0
        pending = self._pending
        self._pending = None
        try:
            while True:
                if pending is None:
                    start = off
                    try:
                        raw = unpack[kind := data[off + 2]](data, off)
                    except (IndexError, StructError):  # the end, or a message cut short
                        if off >= size:
                            self.done = True
                            return None
                        off = self._misframed(off)
                        continue
                    if raw[0] != sizes[kind]:
                        off = self._misframed(off)
                        continue
                    off += raw[0] + 2
                else:
                    start, kind, raw = pending
                    pending = None
                if shift is None:  # paced: the first message is due at the first step's now
                    shift = self._shift = now - (raw[2] & TIMESTAMP_MASK)
                deadline = (raw[2] & TIMESTAMP_MASK) + shift
                if deadline < last:
                    deadline = last
                if deadline > now:
                    if heap and heap[0][0] <= deadline:
                        self._pending = (start, kind, raw)
                        return deadline
                    clock.now = now = deadline
                last = deadline
                try:
                    if kind == ITCH_DELETE:
                        order_id = refs.pop(raw[3], None)
                        if order_id is None:
                            raise KeyError(f"unknown order reference {raw[3]}")
                        entry = live.pop(order_id, None)
                        if entry is None:
                            raise ValueError(f"delete of order reference {raw[3]}, which is no "
                                             "longer live")  # fmt: skip
                        venue, side, price = entry
                        qty = venue.book.cancel(order_id)
                        if venue.symbol in resting:
                            cut(venue.symbol, order_id, side, price, qty)
                        moved = price == venue.l1[1 - side]  # it was at the top (bid 0, ask 2)
                    elif kind == ITCH_ADD or kind == ITCH_ADD_ATTRIBUTED or kind == ITCH_REPLACE:
                        if kind == ITCH_REPLACE:  # the cancel half here, the add below
                            venue, owner, side = self._replaced(raw)
                            shares, price4, ref = raw[5], raw[6], raw[4]
                        else:
                            venue = locates.get(raw[1]) or self._venue(raw[1])
                            owner = (
                                "itch"
                                if kind == ITCH_ADD
                                else "itch:" + raw[7].decode("ascii", "replace").strip()
                            )
                            side = BUY if raw[4] == ITCH_BUY else SELL
                            shares, price4, ref = raw[5], raw[6], raw[3]
                        try:  # the engine's validation of a feed order, then the book
                            lot, step = venue.lot, venue.tick4
                            lots = shares // lot if lot and not shares % lot else venue.lots(shares)
                            price = (price4 // step if step and not price4 % step
                                     else venue.ticks(price4))  # fmt: skip
                            order_id = self._next_id
                            self._next_id = order_id + 1
                            if lots <= 0:
                                raise ValueError(f"add {raw[3]}: quantity must be a positive "
                                                 f"number of lots, got {lots}")  # fmt: skip
                            if not venue.low <= price <= venue.high:
                                raise ValueError(self._outside_band(venue, raw[3], price))
                            self._incoming_side = side
                            if venue.book.submit(order_id, owner, side, price, lots, GTC):
                                live[order_id] = (venue, side, price)
                                refs[ref] = order_id
                        except ValueError:  # a replace's add is refused silently (as the engine)
                            if kind != ITCH_REPLACE:
                                raise
                            applied += 1
                            continue
                        top = venue.l1  # behind the best price it changes neither side's top
                        if side == BUY:
                            moved = top[0] is None or price >= top[0]
                        else:
                            moved = top[2] is None or price <= top[2]
                    elif kind == ITCH_EXECUTED or kind == ITCH_EXECUTED_AT or kind == ITCH_CANCEL:
                        order_id = refs.get(raw[3])
                        if order_id is None:
                            raise KeyError(f"unknown order reference {raw[3]}")
                        entry = live.get(order_id)
                        if entry is None:
                            raise ValueError(f"order reference {raw[3]} is no longer live")
                        venue, side, price = entry
                        shares, lot, book = raw[4], venue.lot, venue.book
                        qty = shares // lot if lot and not shares % lot else venue.lots(shares)
                        if kind == ITCH_CANCEL:  # part of a resting order (keeps its priority)
                            if not book.reduce(order_id, qty):
                                del live[order_id]
                            if venue.symbol in resting:
                                cut(venue.symbol, order_id, side, price, qty)
                        else:
                            fill_price = price if kind == ITCH_EXECUTED else venue.ticks(raw[5])
                            try:
                                left = book.reduce(order_id, qty)
                            except BookError:
                                raise ValueError(f"cannot execute {qty} of order {order_id}"
                                                 ) from None  # fmt: skip
                            book.record_trade(fill_price, qty)
                            if not left:
                                del live[order_id]
                            if side == BUY:
                                trade(venue.symbol, fill_price, qty, order_id, None, 0, side,
                                      price)  # fmt: skip
                            else:
                                trade(venue.symbol, fill_price, qty, None, order_id, 0, side,
                                      price)  # fmt: skip
                        moved = price == venue.l1[1 - side]
                    else:
                        if (skipped := handlers[kind](raw)) is None:
                            applied += 1
                        else:
                            skipped_counts[skipped] = skipped_counts.get(skipped, 0) + 1
                        continue
                    if moved:  # one look at the top; the listener hears it if it changed
                        l1 = venue.book.l1()
                        if l1 != venue.l1:
                            venue.l1 = l1
                            told(venue.symbol, l1)
                    applied += 1
                except (InstrumentError, BookError, ValueError) as err:
                    errors.append(f"{self.name}: offset {start}: {err}")
                except KeyError as err:
                    errors.append(f"{self.name}: offset {start}: {err.args[0]}")
        finally:
            self.applied += applied
            self._off = off
            self._last_deadline = last

    # ---- one message (raw: the FIELDS of its kind) -------------------------------------------
    def _misframed(self, off: int) -> int:
        """The message framed at `off` is not a whole message of a known type: record why
        (itch.framing_error); where the stream goes on (its end if it cannot)."""
        data = self._data
        body = off + 2
        length = data[off] << 8 | data[off + 1] if body <= len(data) else 0
        if itch.framing_error(data, body, length, self.errors):
            return body + length
        return len(data)

    def _venue(self, locate: int) -> _Venue:
        venue = self._locates.get(locate)
        if venue is None:
            raise KeyError(f"stock locate {locate} has no R (stock directory) message")
        return venue

    def _replaced(self, raw: tuple) -> tuple[_Venue, str, int]:
        """U's first half: the old order leaves the book as a cancel would (told, then the top
        looked at, as the engine does); its venue, owner and side for the add that follows."""
        order_id = self._refs.pop(raw[3], -1)
        entry = self.live.pop(order_id, None)
        if entry is None:
            raise ValueError(f"replace of unknown or finished order reference {raw[3]}")
        venue, side, old_price = entry
        owner = venue.book.order(order_id)[0]  # type: ignore[index]
        qty = venue.book.cancel(order_id)
        if venue.symbol in self.listener.resting:
            self.listener.market_cut(venue.symbol, order_id, side, old_price, qty)
        self._touched(venue, side, old_price)
        return venue, owner, side

    def _on_print(self, raw: tuple) -> None:
        """P and Q: a trade with no resting order behind it (shares, price)."""
        venue = self._venue(raw[1])
        self._print(venue, venue.ticks(raw[4]), venue.lots(raw[3]))

    def _on_cross(self, raw: tuple) -> str | None:
        if not raw[3]:  # a cross with no shares is informational (the spec says so)
            return "empty cross"
        self._on_print(raw)
        return None

    def _on_directory(self, raw: tuple) -> None:
        symbol = raw[3].decode("ascii", "replace").strip()
        venue = self._venues.get(symbol)
        if venue is None:  # ITCH's own precision; the band a Price(4) field can hold
            venue = self.add_instrument(itch_instrument(symbol))
        self._locates[raw[1]] = venue

    @staticmethod
    def _outside_band(venue: _Venue, ref: int, price: int) -> str:
        instrument = venue.instrument
        return (f"add {ref}: price {instrument.format_price(price)} outside band "
                f"{instrument.band_low}..{instrument.band_high}")  # fmt: skip

    def _print(self, venue: _Venue, price: int, qty: int) -> None:
        venue.book.record_trade(price, qty)
        self.listener.market_trade(venue.symbol, price, qty, None, None, 0, 0, 0)

    def _crossed(self, venue: _Venue, maker: int, taker: int, price: int, qty: int) -> None:
        """An add that crossed the replayed book (inconsistent data) traded, as in the engine."""
        _, side, level = self.live[maker]
        if maker not in venue.book:
            del self.live[maker]
        if self._incoming_side == BUY:
            self.listener.market_trade(venue.symbol, price, qty, taker, maker, BUY, side, level)
        else:
            self.listener.market_trade(venue.symbol, price, qty, maker, taker, SELL, side, level)

    def _gone(self, venue: _Venue, order_id: int, qty: int) -> None:
        """Self-trade prevention cancelled a resting feed order."""
        _, side, price = self.live.pop(order_id)
        if venue.symbol in self.listener.resting:
            self.listener.market_cut(venue.symbol, order_id, side, price, qty)

    def _touched(self, venue: _Venue, side: int, price: int) -> None:
        """A resting order at `price` changed: the top changes only if it was at the top."""
        top = venue.l1
        if price == (top[0] if side == BUY else top[2]):
            self._top(venue)

    def _top(self, venue: _Venue) -> None:
        l1 = venue.book.l1()
        if l1 != venue.l1:
            venue.l1 = l1
            self.listener.market_top(venue.symbol, l1)
