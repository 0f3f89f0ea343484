"""Replay of a market-data file into the engine's books, on the machine clock.

A Feed walks (timestamp, message) pairs from a parser and applies each message to the engine.
`step(now_ns)` applies whatever is due and returns the virtual-time deadline of the next message
(paced mode: message timestamps are replayed relative to the first one, anchored at the first
step), or None when the file is done. Unpaced, each step applies up to `batch` messages and asks
to run again at once, so a long file never blocks the kernel for long.

Mapping: ITCH adds/executions/cancels/deletes/replaces act on orders of owner "itch" (or
"itch:MPID"), stock locate -> symbol through R messages, trades (P) and crosses (Q, when
shares > 0) are prints; the informational ITCH types (system events, trading actions, Reg SHO,
participant positions, MWCB, IPO, LULD, operational halts, NOII, RPII, DLCR) and broken trades
(which would unwind volume the books do not attribute) are skipped and counted by type in
`skipped`; FIX 35=D/F are orders and cancels of
the SenderCompID, 35=W/X keep one order per price level for owner "fix:SENDER"; CSV quotes keep
one bid and one ask for owner "csv", ticks and bars are prints. Every parse error (with its
offset) and every message that could not apply (with its byte offset or line, and why) is kept
in `errors`; replay goes on with the next message. Numbers are bounded by `parse_decimal`
before use, so a 1e100 in a file is one rejected message, paced or not.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from decimal import Decimal

from . import csvticks, fix, itch
from .book import BUY, FOK, GTC, IOC, POST, SELL
from .engine import EngineError, OrderState, TradingEngine
from .instruments import Instrument, InstrumentError


class FeedError(ValueError):
    """The file cannot be replayed at all (unknown format)."""


class Feed:
    def __init__(
        self,
        name: str,
        messages: Iterator[tuple[int | None, str, object]],
        apply: Callable[[object], str | None],
        errors: list,
        paced: bool,
        batch: int = 10_000,
    ) -> None:
        self.name = name
        self.paced = paced
        self.batch = batch
        self.errors = errors
        self.applied = 0
        self.skipped: dict[str, int] = {}  # what the replay skipped by its meaning, by kind
        self._messages = messages
        self._apply = apply
        self._pending: tuple[int | None, str, object] | None = None
        self._origin: tuple[int, int] | None = None  # (first message ts, clock at first step)
        self._last_deadline = 0
        self.done = False

    def _deadline(self, ts: int | None, now_ns: int) -> int:
        if not self.paced:
            return now_ns
        if ts is None:
            return self._last_deadline
        if self._origin is None:
            self._origin = (ts, now_ns)
        first_ts, start = self._origin
        self._last_deadline = max(self._last_deadline, start + ts - first_ts)
        return self._last_deadline

    def step(self, now_ns: int) -> int | None:
        """Apply the messages due at `now_ns`; the next deadline, or None when finished."""
        budget = self.batch
        while budget:
            if self._pending is None:
                try:
                    self._pending = next(self._messages)
                except StopIteration:
                    self.done = True
                    return None
            ts, where, msg = self._pending
            deadline = self._deadline(ts, now_ns)
            if deadline > now_ns:
                return deadline
            self._pending = None
            try:
                skipped = self._apply(msg)
                if skipped is None:
                    self.applied += 1
                else:
                    self.skipped[skipped] = self.skipped.get(skipped, 0) + 1
            except (EngineError, InstrumentError, ValueError) as err:
                self.errors.append(f"{self.name}: {where}: {err}")
            except KeyError as err:  # a missing field or unknown reference: say it plainly
                detail = err.args[0] if err.args else err
                if isinstance(detail, int):
                    detail = f"missing tag {detail}"
                self.errors.append(f"{self.name}: {where}: {detail}")
            budget -= 1
        return now_ns

    def schedule(
        self, call_at: Callable[[int, Callable[[], None]], object], now_ns: Callable[[], int]
    ) -> None:
        """Paced replay on a clock: step now and at each deadline `step` returns (the machine
        clock's timer in the kernel, a virtual scheduler in a backtest)."""

        def tick() -> None:
            deadline = self.step(now_ns())
            if deadline is not None:
                call_at(deadline, tick)

        tick()

    def run(self, now_ns: int) -> None:
        """Everything, as fast as possible (unpaced use)."""
        while self.step(now_ns) is not None:
            pass


# ---- ITCH ------------------------------------------------------------------------------------

# types that carry no order-book change, by the name the feed summary counts them under
ITCH_SKIPPED = {
    b"S": "system event", b"H": "trading action", b"Y": "Reg SHO", b"L": "participant",
    b"V": "MWCB decline", b"W": "MWCB status", b"K": "IPO quoting", b"J": "LULD collar",
    b"h": "operational halt", b"B": "broken trade", b"I": "NOII", b"N": "RPII", b"O": "DLCR",
}  # fmt: skip


class ItchReplay:
    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self.symbols: dict[int, str] = {}
        self.orders: dict[int, int] = {}  # ITCH order reference -> engine order id

    def messages(self, data: bytes, errors: list) -> Iterator[tuple[int | None, str, object]]:
        for offset, raw in itch.iter_framed(data, errors):
            yield (raw[3] << 32) | raw[4], f"offset {offset}", raw

    def _symbol(self, raw: tuple) -> str:
        symbol = self.symbols.get(raw[1])
        if symbol is None:
            raise KeyError(f"stock locate {raw[1]} has no R (stock directory) message")
        return symbol

    def _ticks(self, symbol: str, price4: int) -> int:
        return self.engine.instrument(symbol).price_to_ticks(Decimal(price4).scaleb(-4))

    def _order(self, ref: int) -> int:
        order_id = self.orders.get(ref)
        if order_id is None:
            raise KeyError(f"unknown order reference {ref}")
        return order_id

    def apply(self, raw: tuple) -> str | None:
        """Apply one message; the kind's name when its meaning is to skip it (see above)."""
        kind = raw[0]
        engine = self.engine
        if kind == b"A" or kind == b"F":
            symbol = self._symbol(raw)
            owner = "itch:" + raw[10].decode("ascii", "replace").strip() if kind == b"F" else "itch"
            side = BUY if raw[6] == b"B" else SELL
            lots = engine.instrument(symbol).qty_to_lots(raw[7])
            order = engine.submit(
                owner, symbol, side, lots, self._ticks(symbol, raw[9]), GTC, check_risk=False
            )
            if order.state is OrderState.REJECTED:
                raise EngineError(f"add {raw[5]}: {order.reason}")
            if order.is_live:
                self.orders[raw[5]] = order.order_id
        elif kind == b"E" or kind == b"C":
            order_id = self._order(raw[5])
            symbol = self.engine.live[order_id].symbol if order_id in engine.live else None
            if symbol is None:
                raise EngineError(f"order reference {raw[5]} is no longer live")
            price = self._ticks(symbol, raw[9]) if kind == b"C" else None
            engine.execute_external(order_id, engine.instrument(symbol).qty_to_lots(raw[6]), price)
        elif kind == b"X":
            order_id = self._order(raw[5])
            order = engine.live.get(order_id)
            if order is None:
                raise EngineError(f"order reference {raw[5]} is no longer live")
            engine.reduce(order_id, engine.instrument(order.symbol).qty_to_lots(raw[6]))
        elif kind == b"D":
            order_id = self._order(raw[5])
            del self.orders[raw[5]]
            if order_id not in engine.live:
                raise EngineError(f"delete of order reference {raw[5]}, which is no longer live")
            engine.cancel(order_id, reason="feed delete")
        elif kind == b"U":
            order = engine.live.get(self.orders.pop(raw[5], -1))
            if order is None:
                raise EngineError(f"replace of unknown or finished order reference {raw[5]}")
            engine.cancel(order.order_id, reason="feed replace")
            lots = engine.instrument(order.symbol).qty_to_lots(raw[7])
            new = engine.submit(
                order.owner, order.symbol, order.side, lots, self._ticks(order.symbol, raw[8]),
                GTC, check_risk=False,
            )  # fmt: skip
            if new.is_live:
                self.orders[raw[6]] = new.order_id
        elif kind == b"P":
            symbol = self._symbol(raw)
            lots = engine.instrument(symbol).qty_to_lots(raw[7])
            engine.record_trade(symbol, self._ticks(symbol, raw[9]), lots)
        elif kind == b"Q":
            if not raw[5]:  # a cross with no shares is informational (the spec says so)
                return "empty cross"
            symbol = self._symbol(raw)
            lots = engine.instrument(symbol).qty_to_lots(raw[5])
            engine.record_trade(symbol, self._ticks(symbol, raw[7]), lots)
        elif kind == b"R":
            symbol = raw[5].decode("ascii", "replace").strip()
            self.symbols[raw[1]] = symbol
            if symbol not in engine.instruments:
                # ITCH's own precision; the band is what a Price(4) field can hold
                engine.add_instrument(
                    Instrument(symbol, Decimal("0.0001"), Decimal(1), Decimal("0.0001"),
                               Decimal("429496.7295"))
                )  # fmt: skip
        else:
            return ITCH_SKIPPED[kind]
        return None


# ---- FIX ---------------------------------------------------------------------------------------

_FIX_TIF = {"0": GTC, "1": GTC, "3": IOC, "4": FOK}


def _fix_ns(text: str) -> int:
    """FIX UTCTimestamp -> ns since 1970 (millisecond or finer fraction)."""
    base, _, frac = text.partition(".")
    stamp = datetime.datetime.strptime(base, "%Y%m%d-%H:%M:%S")
    seconds = int((stamp - datetime.datetime(1970, 1, 1)).total_seconds())
    return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac.isdigit() else 0)


class FixReplay:
    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self.levels: dict[tuple[str, str, int, int], int] = {}  # owner,symbol,side,price -> id

    def messages(self, data: bytes, errors: list) -> Iterator[tuple[int | None, str, object]]:
        if fix.SOH not in data and b"|" in data:
            data = data.replace(b"|", fix.SOH)  # a human-readable log
        for msg in fix.parse_stream(data, errors):
            stamp = msg.get(fix.TRANSACT_TIME) or msg.get(fix.SENDING_TIME)
            try:
                ts = _fix_ns(stamp) if stamp else None
            except ValueError:
                errors.append(fix.FixError(msg.offset, f"bad timestamp {stamp!r}"))
                continue
            yield ts, f"offset {msg.offset}", msg

    def apply(self, msg: fix.FixMessage) -> None:
        engine = self.engine
        sender = msg.get(fix.SENDER, "fix")
        kind = msg.msg_type
        if kind == "D":
            symbol = msg[fix.SYMBOL]
            instrument = engine.instrument(symbol)
            side = BUY if msg[fix.SIDE] == "1" else SELL if msg[fix.SIDE] == "2" else 0
            price_text = msg.get(fix.PRICE)
            market = msg[fix.ORD_TYPE] == "1"
            tif = _FIX_TIF.get(msg.get(fix.TIME_IN_FORCE, "0"), -1)
            if "6" in (msg.get(fix.EXEC_INST) or "").split():
                tif = POST
            if market and tif == GTC:
                tif = IOC
            price = None if market or price_text is None else instrument.price_to_ticks(price_text)
            order = engine.submit(
                sender, symbol, side, instrument.qty_to_lots(msg[fix.ORDER_QTY]), price, tif,
                msg[fix.CL_ORD_ID],
            )  # fmt: skip
            if order.state is OrderState.REJECTED:
                raise EngineError(f"order {order.client_id} rejected: {order.reason}")
        elif kind == "F":
            order = engine.by_client_id(sender, msg[fix.ORIG_CL_ORD_ID])
            if order is None:
                raise EngineError(f"cancel: unknown ClOrdID {msg[fix.ORIG_CL_ORD_ID]}")
            engine.cancel(order.order_id, owner=sender)
        elif kind in ("W", "X"):
            owner = "fix:" + sender
            default_symbol = msg.get(fix.SYMBOL)
            if kind == "W":
                self._clear(owner, default_symbol or "")
            for entry in msg.groups[fix.NO_MD_ENTRIES]:
                symbol = entry.get(fix.SYMBOL, default_symbol)
                if symbol is None:
                    raise KeyError("market data entry without Symbol (55)")
                action = entry.get(fix.MD_UPDATE_ACTION, "0")
                self._md_entry(owner, symbol, action, entry)

    def _clear(self, owner: str, symbol: str) -> None:
        for key in [k for k in self.levels if k[0] == owner and k[1] == symbol]:
            order_id = self.levels.pop(key)
            if order_id in self.engine.live:
                self.engine.cancel(order_id, reason="feed snapshot")

    def _md_entry(self, owner: str, symbol: str, action: str, entry: dict[int, str]) -> None:
        engine = self.engine
        instrument = engine.instrument(symbol)
        kind = entry.get(fix.MD_ENTRY_TYPE)
        price = instrument.price_to_ticks(entry[fix.MD_ENTRY_PX])
        size = entry.get(fix.MD_ENTRY_SIZE, "0")
        lots = instrument.qty_to_lots(size)
        if kind == "2":
            engine.record_trade(symbol, price, lots)
            return
        if kind not in ("0", "1"):
            raise KeyError(f"MDEntryType {kind!r} not handled")
        side = BUY if kind == "0" else SELL
        key = (owner, symbol, side, price)
        existing = self.levels.pop(key, None)
        if existing is not None and existing in engine.live:
            if action == "1" and lots:
                engine.replace(existing, qty=engine.live[existing].filled + lots, check_risk=False)
                if engine.live.get(existing):
                    self.levels[key] = existing
                return
            engine.cancel(existing, reason="feed level update")
        if action == "2" or not lots:
            return
        order = engine.submit(owner, symbol, side, lots, price, GTC, check_risk=False)
        if order.is_live:
            self.levels[key] = order.order_id


# ---- CSV ---------------------------------------------------------------------------------------


class CsvReplay:
    OWNER = "csv"

    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self.quotes: dict[str, list[int]] = {}

    def messages(self, data: bytes, errors: list) -> Iterator[tuple[int | None, str, object]]:
        for row in csvticks.parse(data, errors):
            yield row[1], f"line {row[4]}", row

    def apply(self, row: tuple) -> None:
        kind, _, symbol, values, _ = row
        engine = self.engine
        instrument = engine.instrument(symbol)
        if kind == "tick":
            engine.record_trade(
                symbol, instrument.price_to_ticks(values[0]), instrument.qty_to_lots(values[1])
            )
        elif kind == "bar":
            engine.record_trade(
                symbol, instrument.price_to_ticks(values[3]), instrument.qty_to_lots(values[4])
            )
        else:
            for order_id in self.quotes.pop(symbol, []):
                if order_id in engine.live:
                    engine.cancel(order_id, reason="feed quote update")
            ids = []
            for side, price, qty in ((BUY, values[0], values[1]), (SELL, values[2], values[3])):
                lots = instrument.qty_to_lots(qty)
                if lots:
                    order = engine.submit(
                        self.OWNER, symbol, side, lots, instrument.price_to_ticks(price),
                        GTC, check_risk=False,
                    )  # fmt: skip
                    if order.is_live:
                        ids.append(order.order_id)
            self.quotes[symbol] = ids


REPLAYS = {".itch": ItchReplay, ".fix": FixReplay, ".csv": CsvReplay}


def open_feed(engine: TradingEngine, path: str, data: bytes, paced: bool) -> Feed:
    """A Feed for `data`, its format chosen by the file extension (.itch, .fix, .csv)."""
    extension = path[path.rfind(".") :].lower() if "." in path else ""
    replay_type = REPLAYS.get(extension)
    if replay_type is None:
        raise FeedError(f"{path}: unknown feed format (expected .itch, .fix or .csv)")
    replay = replay_type(engine)
    errors: list = []
    return Feed(path, replay.messages(data, errors), replay.apply, errors, paced)
