"""The shell's trading commands: `def cmd_xxx(desk, args, out) -> exit status` and COMMANDS.

The shell owns the console and the disk; this module only needs a TextSink to write coloured
text (VGA colour numbers 0-15) and a Desk carrying the engine plus what the shell supplies:
`read_file(path) -> bytes` for `feed`, and `call_at(deadline_ns, callback)` (the machine
clock's timer) for paced feeds. Orders belong to owner "shell" unless `-o OWNER` is given.
Exit status: 0 done, 1 the request failed (rejected, unknown order), 2 bad arguments (the
usage line is printed).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from .book import BUY, FOK, GTC, IOC, POST, SELL
from .engine import SIDE_NAMES, TIF_NAMES, EngineError, Order, OrderState, TradingEngine
from .feed import Feed, FeedError, open_feed
from .fix import order_avg_px
from .instruments import InstrumentError
from .risk import RULE_NAMES, parse_rule_value

# VGA text colours
BLACK, GREEN, RED, GREY, DARK_GREY, LIGHT_GREEN, LIGHT_RED = 0, 2, 4, 7, 8, 10, 12
CYAN, YELLOW, WHITE = 11, 14, 15
ASK_COLOUR, BID_COLOUR, SPREAD_COLOUR, ERROR_COLOUR = LIGHT_RED, LIGHT_GREEN, YELLOW, LIGHT_RED

SHELL_OWNER = "shell"
SCREEN_COLUMNS = 80  # the VGA text console: output lines are kept within it


class TextSink(Protocol):
    def write(self, text: str, fg: int | None = None, bg: int | None = None) -> None: ...


@dataclass
class Desk:
    engine: TradingEngine
    read_file: Callable[[str], bytes] | None = None
    call_at: Callable[[int, Callable[[], None]], object] | None = None
    feeds: list[Feed] = field(default_factory=list)


class UsageError(Exception):
    pass


def _usage(out: TextSink, line: str, problem: str = "") -> int:
    if problem:
        out.write(f"error: {problem}\n", ERROR_COLOUR)
    out.write(f"usage: {line}\n")
    return 2


def _bad_value(out: TextSink, message: str) -> int:
    """A number or word the command cannot use: one line (the value is the problem, not the
    command's shape), exit status 2."""
    out.write(f"error: {message}\n", ERROR_COLOUR)
    return 2


def _fail(out: TextSink, message: str) -> int:
    out.write(f"error: {message}\n", ERROR_COLOUR)
    return 1


def _take_owner(args: list[str]) -> tuple[str, list[str]]:
    """Strip `-o OWNER` / `--owner OWNER` from args; default owner 'shell'."""
    rest: list[str] = []
    owner = SHELL_OWNER
    i = 0
    while i < len(args):
        if args[i] in ("-o", "--owner"):
            if i + 1 >= len(args) or not args[i + 1]:
                raise UsageError("-o needs an owner name")
            owner = args[i + 1]
            i += 2
            continue
        rest.append(args[i])
        i += 1
    return owner, rest


def _order_id(text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"order id must be a number, got {text!r}")
    return int(text)


def _describe(engine: TradingEngine, order: Order) -> str:
    instrument = engine.instrument(order.symbol)
    price = "MKT" if order.price is None else instrument.format_price(order.price)
    return (
        f"#{order.order_id} {order.owner} {SIDE_NAMES[order.side].lower()} "
        f"{instrument.format_qty(order.qty)} {order.symbol} @ {price} {TIF_NAMES[order.tif]}"
    )


# ---- commands ----------------------------------------------------------------------------------


def cmd_instruments(desk: Desk, args: list[str], out: TextSink) -> int:
    if args:
        return _usage(out, "instruments", "no arguments expected")
    out.write(f"{'SYMBOL':<8} {'TICK':>8} {'LOT':>8} {'MULT':>5}  BAND\n", WHITE)
    for i in desk.engine.instruments:
        out.write(
            f"{i.symbol:<8} {i.tick_size!s:>8} {i.lot_size!s:>8} {i.multiplier!s:>5}  "
            f"{i.band_low}..{i.band_high}\n"
        )
    return 0


def cmd_book(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = "book SYM [levels]"
    if not 1 <= len(args) <= 2:
        return _usage(out, usage, "expected a symbol")
    if len(args) == 2 and not (args[1].isdigit() and 0 < int(args[1]) <= 50):
        return _usage(out, usage, "levels must be 1..50")
    engine = desk.engine
    symbol = args[0].upper()
    if symbol not in engine.instruments:
        return _fail(out, f"unknown symbol {symbol}")
    instrument = engine.instrument(symbol)
    book = engine.book(symbol)
    bids, asks = book.depth(int(args[1]) if len(args) == 2 else 5)
    out.write(f"{symbol}  {'PRICE':>12} {'SIZE':>12} {'ORDERS':>6}\n", WHITE)
    for price, qty, count in reversed(asks):
        line = f"  ask {instrument.format_price(price):>12} {instrument.format_qty(qty):>12}"
        out.write(f"{line} {count:>6}\n", ASK_COLOUR)
    if bids and asks:
        spread = instrument.ticks_to_price(asks[0][0] - bids[0][0])
        out.write(f"  --- spread {spread} ---\n", SPREAD_COLOUR)
    else:
        out.write(f"  --- {'no bids' if not bids else 'no asks'} ---\n", SPREAD_COLOUR)
    for price, qty, count in bids:
        line = f"  bid {instrument.format_price(price):>12} {instrument.format_qty(qty):>12}"
        out.write(f"{line} {count:>6}\n", BID_COLOUR)
    last = instrument.format_price(book.last_price)
    out.write(f"last {last}  volume {instrument.format_qty(book.volume)}\n", GREY)
    return 0


_TIF_WORDS = {"ioc": IOC, "fok": FOK, "post": POST, "gtc": GTC}


def _order_command(desk: Desk, args: list[str], out: TextSink, side: int) -> int:
    name = "buy" if side == BUY else "sell"
    usage = f"{name} SYM QTY [@PRICE] [ioc|fok|post] [-o OWNER]"
    try:
        owner, args = _take_owner(args)
    except UsageError as err:
        return _usage(out, usage, str(err))
    if not 2 <= len(args) <= 4:
        return _usage(out, usage, "expected a symbol and a quantity")
    symbol, qty_text, *rest = args
    symbol = symbol.upper()
    engine = desk.engine
    price_text = None
    tif = None
    for word in rest:
        if word.startswith("@") and price_text is None:
            price_text = word[1:]
        elif word.lower() in _TIF_WORDS and tif is None:
            tif = _TIF_WORDS[word.lower()]
        else:
            return _usage(out, usage, f"unexpected {word!r}")
    if symbol not in engine.instruments:
        return _fail(out, f"unknown symbol {symbol}")
    instrument = engine.instrument(symbol)
    try:
        lots = instrument.qty_to_lots(qty_text)
        price = None if price_text is None else instrument.price_to_ticks(price_text)
    except InstrumentError as err:
        return _bad_value(out, str(err))
    if tif is None:
        tif = GTC if price is not None else IOC
    order = engine.submit(owner, symbol, side, lots, price, tif)
    return _report_order(engine, order, out)


def _report_order(engine: TradingEngine, order: Order, out: TextSink) -> int:
    instrument = engine.instrument(order.symbol) if order.symbol in engine.instruments else None
    if order.state is OrderState.REJECTED:
        return _fail(out, f"order #{order.order_id} rejected: {order.reason}")
    out.write(_describe(engine, order) + "\n")
    if order.filled and instrument:
        avg = order_avg_px(order, instrument)
        out.write(f"  filled {instrument.format_qty(order.filled)} avg {avg}\n", LIGHT_GREEN)
    colour = YELLOW if order.state is OrderState.CANCELLED else CYAN
    note = f" ({order.reason})" if order.state is OrderState.CANCELLED else ""
    leaves = f", {instrument.format_qty(order.leaves)} open" if order.is_live and instrument else ""
    out.write(f"  {order.state.value}{leaves}{note}\n", colour)
    return 0


def cmd_buy(desk: Desk, args: list[str], out: TextSink) -> int:
    return _order_command(desk, args, out, BUY)


def cmd_sell(desk: Desk, args: list[str], out: TextSink) -> int:
    return _order_command(desk, args, out, SELL)


def cmd_cancel(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = "cancel ID [-o OWNER]"
    try:
        owner, args = _take_owner(args)
        if len(args) != 1:
            raise UsageError("expected one order id")
        order_id = _order_id(args[0])
    except UsageError as err:
        return _usage(out, usage, str(err))
    try:
        qty = desk.engine.cancel(order_id, owner=owner)
    except EngineError as err:
        return _fail(out, str(err))
    out.write(f"cancelled #{order_id} ({qty} lots)\n", YELLOW)
    return 0


def cmd_replace(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = "replace ID [@PRICE] [QTY] [-o OWNER]   (QTY = new total order quantity)"
    try:
        owner, args = _take_owner(args)
        if not 2 <= len(args) <= 3:
            raise UsageError("expected an order id and a new price and/or quantity")
        order_id = _order_id(args[0])
    except UsageError as err:
        return _usage(out, usage, str(err))
    engine = desk.engine
    order = engine.live.get(order_id)
    if order is None:
        return _fail(out, f"order {order_id} is not live")
    instrument = engine.instrument(order.symbol)
    price = qty = None
    try:
        for word in args[1:]:
            if word.startswith("@") and price is None:
                price = instrument.price_to_ticks(word[1:])
            elif qty is None and not word.startswith("@"):
                qty = instrument.qty_to_lots(word)
            else:
                raise UsageError(f"unexpected {word!r}")
    except UsageError as err:
        return _usage(out, usage, str(err))
    except InstrumentError as err:
        return _bad_value(out, str(err))
    try:
        engine.replace(order_id, price, qty, owner=owner)
    except EngineError as err:
        return _fail(out, str(err))
    return _report_order(engine, order, out)


def _owner_scope(args: list[str]) -> str | None:
    """`-o OWNER` (default: the shell's owner) or `all` (None) for the listing commands."""
    owner, rest = _take_owner(args)
    if rest not in ([], ["all"]):
        raise UsageError(f"unexpected {' '.join(rest)!r}")
    return None if rest == ["all"] else owner


def cmd_orders(desk: Desk, args: list[str], out: TextSink) -> int:
    try:
        scope = _owner_scope(args)
    except UsageError as err:
        return _usage(out, "orders [-o OWNER | all]", str(err))
    engine = desk.engine
    orders = engine.open_orders(scope)
    if not orders:
        out.write("no open orders\n", GREY)
        return 0
    out.write(f"{'ID':>6} {'OWNER':<10} {'SYM':<7} SIDE {'QTY':>10} {'FILLED':>10} "
              f"{'PRICE':>10} TIF  STATE\n", WHITE)  # fmt: skip
    for o in orders:
        i = engine.instrument(o.symbol)
        out.write(
            f"{o.order_id:>6} {o.owner:<10} {o.symbol:<7} {SIDE_NAMES[o.side]:<4} "
            f"{i.format_qty(o.qty):>10} {i.format_qty(o.filled):>10} "
            f"{i.format_price(o.price):>10} {TIF_NAMES[o.tif]:<4} {o.state.value}\n",
            BID_COLOUR if o.side == BUY else ASK_COLOUR,
        )
    return 0


def cmd_trades(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = "trades [N]"
    if len(args) > 1 or (args and not args[0].isdigit()):
        return _usage(out, usage, "N must be a number")
    count = int(args[0]) if args else 20
    engine = desk.engine
    trades = list(engine.trades)[-count:] if count else []
    if not trades:
        out.write("no trades\n", GREY)
        return 0
    out.write(f"{'TIME (s)':>14} {'SYM':<7} {'QTY':>10} {'PRICE':>10}  BUYER/SELLER\n", WHITE)
    for t in trades:
        i = engine.instrument(t.symbol)
        seconds = Decimal(t.ts_ns).scaleb(-9)
        out.write(
            f"{seconds:>14.6f} {t.symbol:<7} {i.format_qty(t.qty):>10} "
            f"{i.format_price(t.price):>10}  {t.buyer or '-'}/{t.seller or '-'}\n"
        )
    return 0


def cmd_pos(desk: Desk, args: list[str], out: TextSink) -> int:
    try:
        scope = _owner_scope(args)
    except UsageError as err:
        return _usage(out, "pos [-o OWNER | all]", str(err))
    positions = desk.engine.portfolio.positions(scope)
    if not positions:
        out.write("no positions\n", GREY)
        return 0
    out.write(f"{'OWNER':<10} {'SYM':<7} {'QTY':>10} {'AVG PRICE':>14}\n", WHITE)
    for pos_owner, pos in positions:
        avg = pos.avg_price()
        qty = pos.instrument.format_qty(pos.qty)
        colour = BID_COLOUR if pos.qty > 0 else ASK_COLOUR if pos.qty < 0 else GREY
        out.write(f"{pos_owner:<10} {pos.instrument.symbol:<7} {qty:>10} {avg or '-'!s:>14}\n",
                  colour)  # fmt: skip
    return 0


def cmd_pnl(desk: Desk, args: list[str], out: TextSink) -> int:
    try:
        scope = _owner_scope(args)
    except UsageError as err:
        return _usage(out, "pnl [-o OWNER | all]", str(err))
    rows = desk.engine.pnl(scope)
    if not rows:
        out.write("no fills\n", GREY)
        return 0
    out.write(f"{'OWNER':<10} {'REALIZED':>14} {'UNREALIZED':>14} {'FEES':>12} {'NET':>14}\n",
              WHITE)  # fmt: skip
    total = [Decimal(0)] * 3
    for name, (realized, unrealized, fees) in sorted(rows.items()):
        _pnl_line(out, name, realized, unrealized, fees)
        total = [total[0] + realized, total[1] + unrealized, total[2] + fees]
    if len(rows) > 1:
        _pnl_line(out, "TOTAL", *total)
    return 0


def _pnl_line(out: TextSink, name: str, realized, unrealized, fees) -> None:
    net = realized + unrealized - fees
    colour = LIGHT_GREEN if net > 0 else LIGHT_RED if net < 0 else GREY
    out.write(f"{name:<10} {realized:>14} {unrealized:>14} {fees:>12} {net:>14}\n", colour)


def cmd_risk(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = f"risk [OWNER] | risk set OWNER RULE VALUE|off   (rules: {', '.join(RULE_NAMES)})"
    risk = desk.engine.risk
    if args and args[0] == "set":
        if len(args) != 4:
            return _usage(out, usage, "risk set needs OWNER RULE VALUE")
        _, owner, rule, text = args
        try:
            value = parse_rule_value(rule, text)
        except InstrumentError as err:
            return _usage(out, usage, str(err))
        risk.set_limit(owner, rule, value)
        out.write(f"{owner}: {rule} = {'off' if value is None else value}\n")
        return 0
    if len(args) > 1:
        return _usage(out, usage)
    owners = args or ["(default)", *risk.owners()]
    for owner in owners:
        limits = risk.defaults if owner == "(default)" else risk.limits(owner)
        killed = " KILLED" if owner != "(default)" and risk.is_killed(owner) else ""
        out.write(f"{owner}{killed}\n", LIGHT_RED if killed else WHITE)
        for rule in RULE_NAMES:
            value = getattr(limits, rule)
            out.write(f"  {rule:<20} {'off' if value is None else value}\n")
    return 0


def cmd_kill_switch(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = "kill-switch OWNER [off]"
    if not 1 <= len(args) <= 2 or (len(args) == 2 and args[1] != "off"):
        return _usage(out, usage, "expected an owner")
    owner = args[0]
    if len(args) == 2:
        desk.engine.risk.release(owner)
        out.write(f"kill switch released for {owner}\n", YELLOW)
        return 0
    cancelled = desk.engine.kill_switch(owner)
    out.write(f"kill switch ON for {owner}: {cancelled} orders cancelled, new orders blocked\n",
              LIGHT_RED)  # fmt: skip
    return 0


def cmd_feed(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = "feed FILE [--pace]   (FILE .itch, .fix or .csv)"
    paced = "--pace" in args
    rest = [a for a in args if a != "--pace"]
    if len(rest) != 1 or rest[0].startswith("-"):
        return _usage(out, usage, "expected one file")
    path = rest[0]
    if desk.read_file is None:
        return _fail(out, "no file system available to read feeds")
    if paced and desk.call_at is None:
        return _fail(out, "paced replay needs the machine clock, which this shell lacks")
    try:
        data = desk.read_file(path)
    except (OSError, KeyError, ValueError) as err:
        return _fail(out, f"cannot read {path}: {err}")
    engine = desk.engine
    try:
        feed = open_feed(engine, path, data, paced)
    except FeedError as err:
        return _fail(out, str(err))
    if not paced:
        feed.run(engine.now_ns())
        _feed_summary(feed, out)
        return 0 if not feed.errors else 1
    desk.feeds.append(feed)
    call_at = desk.call_at

    def tick() -> None:
        deadline = feed.step(engine.now_ns())
        if deadline is not None:
            call_at(deadline, tick)

    tick()
    out.write(f"feed {path}: paced replay started ({feed.applied} applied so far)\n", CYAN)
    return 0


def _feed_summary(feed: Feed, out: TextSink) -> None:
    out.write(f"feed {feed.name}: {feed.applied} messages applied, {len(feed.errors)} errors\n",
              CYAN if not feed.errors else YELLOW)  # fmt: skip
    if feed.skipped:
        # entries are wrapped whole: a no-break space holds each name to its count
        counts = ", ".join(f"{kind} {n}".replace(" ", "\xa0") for kind, n in
                           sorted(feed.skipped.items()))  # fmt: skip
        head = "skipped (no book change): "
        for line in textwrap.wrap(counts, SCREEN_COLUMNS - 2, initial_indent=head,
                                  subsequent_indent="  "):  # fmt: skip
            out.write(f"  {line}\n".replace("\xa0", " "), GREY)
    for err in feed.errors[:5]:
        out.write(f"  {err}\n", ERROR_COLOUR)
    if len(feed.errors) > 5:
        out.write(f"  ... {len(feed.errors) - 5} more\n", ERROR_COLOUR)


Handler = Callable[[Desk, list[str], TextSink], int]

COMMANDS: dict[str, tuple[Handler, str]] = {
    "instruments": (cmd_instruments, "list instruments: tick, lot, multiplier, price band"),
    "book": (cmd_book, "book SYM [levels]: depth ladder, asks over bids"),
    "buy": (cmd_buy, "buy SYM QTY [@PRICE] [ioc|fok|post] [-o OWNER]; no price = market"),
    "sell": (cmd_sell, "sell SYM QTY [@PRICE] [ioc|fok|post] [-o OWNER]; no price = market"),
    "cancel": (cmd_cancel, "cancel ID: cancel a live order"),
    "replace": (cmd_replace, "replace ID [@PRICE] [QTY]: new price and/or total quantity"),
    "orders": (cmd_orders, "orders [-o OWNER | all]: open orders"),
    "trades": (cmd_trades, "trades [N]: the last N trades"),
    "pos": (cmd_pos, "pos [-o OWNER | all]: positions and average cost"),
    "pnl": (cmd_pnl, "pnl [-o OWNER | all]: realized, unrealized, fees, net"),
    "risk": (cmd_risk, "risk [OWNER] | risk set OWNER RULE VALUE: pre-trade limits"),
    "kill-switch": (cmd_kill_switch, "kill-switch OWNER [off]: cancel all and block / release"),
    "feed": (cmd_feed, "feed FILE [--pace]: replay ITCH/FIX/CSV market data"),
}
