"""The shell's trading commands: `def cmd_xxx(desk, args, out) -> exit status` and COMMANDS.

The shell owns the console and the disk; this module only needs a TextSink to write coloured
text (VGA colour numbers 0-15) and a Desk carrying the engine plus what the shell supplies:
`read_file(path) -> bytes` for `feed`, and `call_at(deadline_ns, callback)` (the machine
clock's timer) for paced feeds. Orders belong to owner "shell" unless `-o OWNER` is given;
"all", "default" and "(default)" are not owner names: listings take `-o all` (or `all`) for
every owner, and `risk set default ...` / `stp default ...` change the firm-wide settings.
Money is printed to the precision of the instruments' tick value (cents at least), in
right-aligned columns. Exit status: 0 done, 1 the request failed (rejected, unknown order),
2 bad arguments (the usage line is printed).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from .book import BUY, FOK, GTC, IOC, POST, SELL, STP_MODES
from .csvticks import FORMATS
from .engine import SIDE_NAMES, TIF_NAMES, EngineError, Order, OrderState, TradingEngine
from .feed import Feed, FeedError, open_feed
from .fix import order_avg_px
from .instruments import _EXACT, Instrument, InstrumentError
from .risk import FOLLOW_DEFAULT, RULE_NAMES, parse_rule_value

# VGA text colours
BLACK, GREEN, RED, GREY, DARK_GREY, LIGHT_GREEN, LIGHT_RED = 0, 2, 4, 7, 8, 10, 12
CYAN, YELLOW, WHITE = 11, 14, 15
ASK_COLOUR, BID_COLOUR, SPREAD_COLOUR, ERROR_COLOUR = LIGHT_RED, LIGHT_GREEN, YELLOW, LIGHT_RED

SHELL_OWNER = "shell"
SCREEN_COLUMNS = 80  # the VGA text console: output lines are kept within it
ALL_OWNERS = "all"  # in listings: every owner
DEFAULT_NAMES = ("default", "(default)")  # in `risk`/`stp`: the firm-wide settings
RESERVED_OWNERS = frozenset({ALL_OWNERS, *DEFAULT_NAMES})
MIN_MONEY_PLACES = 2  # money is shown to cents at least


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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _take_owner(args: list[str], listing: bool = False) -> tuple[str, list[str]]:
    """Strip `-o OWNER` / `--owner OWNER` from args; default owner 'shell'. A listing may name
    "all"; no command takes another reserved name as an owner."""
    rest: list[str] = []
    owner = SHELL_OWNER
    i = 0
    while i < len(args):
        if args[i] in ("-o", "--owner"):
            if i + 1 >= len(args) or not args[i + 1]:
                raise UsageError("-o needs an owner name")
            owner = args[i + 1]
            if owner in RESERVED_OWNERS and not (listing and owner == ALL_OWNERS):
                raise UsageError(f"owner name {owner!r} is reserved")
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
        sides = (("no bids", bids), ("no asks", asks))
        missing = ", ".join(name for name, side in sides if not side)
        out.write(f"  --- {missing} ---\n", SPREAD_COLOUR)
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
    if len(args) < 2:
        return _usage(out, usage, "expected a symbol and a quantity")
    symbol, qty_text, *rest = args
    symbol = symbol.upper()
    engine = desk.engine
    price_text = None
    tif_word = None
    for word in rest:
        if word.startswith("@"):
            if price_text is not None:
                return _usage(out, usage, f"two prices (@{price_text} and {word})")
            price_text = word[1:]
        elif word.lower() in _TIF_WORDS:
            if tif_word is not None:
                return _usage(out, usage, f"{tif_word} and {word.lower()} conflict: choose one")
            tif_word = word.lower()
        else:
            return _usage(out, usage, f"unexpected {word!r}")
    tif = None if tif_word is None else _TIF_WORDS[tif_word]
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
    log = engine.transitions
    before = log[-1][0] if log else 0
    order = engine.submit(owner, symbol, side, lots, price, tif)
    status = _report_order(engine, order, out)
    for oid in _stp_cancelled_since(engine, before, order.order_id):
        out.write(f"  own order #{oid} cancelled (self-trade prevention)\n", YELLOW)
    return status


def _stp_cancelled_since(engine: TradingEngine, seq: int, incoming: int) -> list[int]:
    """Resting orders STP cancelled after transition `seq` (while `incoming` matched)."""
    found = []
    for entry_seq, _, oid, _, state, note in reversed(engine.transitions):
        if entry_seq <= seq:
            break
        if state == "CANCELLED" and note == "self-trade prevention" and oid != incoming:
            found.append(oid)
    return found[::-1]


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
    """`-o OWNER` (default: the shell's owner), or `all` / `-o all` (None: every owner), for the
    listing commands."""
    owner, rest = _take_owner(args, listing=True)
    if rest not in ([], [ALL_OWNERS]):
        raise UsageError(f"unexpected {' '.join(rest)!r}")
    return None if rest == [ALL_OWNERS] or owner == ALL_OWNERS else owner


def cmd_orders(desk: Desk, args: list[str], out: TextSink) -> int:
    try:
        scope = _owner_scope(args)
    except UsageError as err:
        return _usage(out, COMMANDS["orders"][1].partition(": ")[0], str(err))
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
        return _usage(out, COMMANDS["pos"][1].partition(": ")[0], str(err))
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
        return _usage(out, COMMANDS["pnl"][1].partition(": ")[0], str(err))
    engine = desk.engine
    rows = engine.pnl(scope)
    if not rows:
        out.write("no fills\n", GREY)
        return 0
    instruments = [pos.instrument for _, pos in engine.portfolio.positions(scope)]
    places = max(MIN_MONEY_PLACES, *(_money_places(i) for i in instruments))
    table: list[tuple[str, list[Decimal]]] = []
    total = [Decimal(0)] * 4
    for name, (realized, unrealized, fees) in sorted(rows.items()):
        values = [realized, unrealized, fees, realized + unrealized - fees]
        table.append((name, values))
        total = [_EXACT.add(t, v) for t, v in zip(total, values, strict=True)]
    if len(rows) > 1:
        table.append(("TOTAL", total))
    cells = [(name, [_money(v, places) for v in values]) for name, values in table]
    heads = ["REALIZED", "UNREALIZED", "FEES", "NET"]
    name_width = max(len("OWNER"), *(len(name) for name, _ in cells))
    widths = [max(len(h), *(len(c[1][i]) for c in cells)) for i, h in enumerate(heads)]
    header = " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True))
    out.write(f"{'OWNER':<{name_width}} {header}\n", WHITE)
    for (name, texts), (_, values) in zip(cells, table, strict=True):
        net = values[3]
        colour = LIGHT_GREEN if net > 0 else LIGHT_RED if net < 0 else GREY
        line = " ".join(f"{t:>{w}}" for t, w in zip(texts, widths, strict=True))
        out.write(f"{name:<{name_width}} {line}\n", colour)
    return 0


def _money_places(instrument: Instrument) -> int:
    """Decimal places of one tick on one lot: the finest step money moves by."""
    exponent = instrument.tick_value.normalize(_EXACT).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _money(value: Decimal, places: int) -> str:
    """Fixed-point text with `places` decimals (half-even); never exponent notation."""
    if value.is_finite() and value.adjusted() + places < _EXACT.prec:
        value = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN, _EXACT)
    if value == 0:
        value = value.copy_abs()  # no "-0.00"
    return f"{value:f}"


def cmd_risk(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = COMMANDS["risk"][1].partition(": ")[0]
    risk = desk.engine.risk
    if args and args[0] == "set":
        if len(args) != 4:
            return _usage(out, usage, "risk set needs OWNER RULE VALUE")
        _, owner, rule, text = args
        firm_wide = owner in DEFAULT_NAMES
        if owner == ALL_OWNERS:
            return _usage(out, usage, "owner name 'all' is reserved; 'default' sets the defaults")
        try:
            value = parse_rule_value(rule, text)
            if firm_wide and value == FOLLOW_DEFAULT:
                raise InstrumentError("the defaults have no default: give a value or off")
        except InstrumentError as err:
            return _bad_value(out, str(err))
        if firm_wide:
            risk.set_default(rule, value)  # type: ignore[arg-type]
            shown = "off" if value is None else value
            out.write(f"default (firm-wide): {rule} = {shown}\n")
            return 0
        risk.set_limit(owner, rule, value)
        shown = risk.limits(owner)
        now = getattr(shown, rule)
        note = " (the default)" if value == FOLLOW_DEFAULT else ""
        out.write(f"{owner}: {rule} = {'off' if now is None else now}{note}\n")
        return 0
    if len(args) > 1:
        return _usage(out, usage)
    owners = args or ["default", *risk.owners()]
    for owner in owners:
        firm_wide = owner in DEFAULT_NAMES
        limits = risk.defaults if firm_wide else risk.limits(owner)
        own = {} if firm_wide else risk.own_rules(owner)
        killed = " KILLED" if not firm_wide and risk.is_killed(owner) else ""
        title = "default (firm-wide)" if firm_wide else owner
        out.write(f"{title}{killed}\n", LIGHT_RED if killed else WHITE)
        for rule in RULE_NAMES:
            value = getattr(limits, rule)
            mark = "  (own)" if rule in own else ""
            out.write(f"  {rule:<20} {'off' if value is None else value}{mark}\n")
    return 0


_STP_NAMES = {mode: name for name, mode in STP_MODES.items()}


def cmd_stp(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = COMMANDS["stp"][1].partition(": ")[0]
    engine = desk.engine
    if not args:
        out.write(f"default: {_STP_NAMES[engine.stp_mode]}\n", WHITE)
        for owner, mode in sorted(engine.stp_modes.items()):
            out.write(f"{owner}: {_STP_NAMES[mode]}\n")
        return 0
    if len(args) != 2:
        return _usage(out, usage, "expected an owner (or default) and a mode")
    owner, word = args
    firm_wide = owner in DEFAULT_NAMES
    if owner == ALL_OWNERS:
        return _usage(out, usage, "owner name 'all' is reserved; 'default' sets the default")
    if word == "default" and not firm_wide:
        engine.set_stp_mode(owner, None)
        out.write(f"{owner}: {_STP_NAMES[engine.stp_mode]} (the default)\n")
        return 0
    mode = STP_MODES.get(word)
    if mode is None:
        return _usage(out, usage, f"unknown mode {word!r} (modes: {', '.join(STP_MODES)})")
    engine.set_stp_mode(None if firm_wide else owner, mode)
    out.write(f"{'default (firm-wide)' if firm_wide else owner}: {word}\n")
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
    out.write(f"kill switch ON for {owner}: {_plural(cancelled, 'order')} cancelled, new orders "
              "blocked\n", LIGHT_RED)  # fmt: skip
    return 0


def cmd_feed(desk: Desk, args: list[str], out: TextSink) -> int:
    usage = COMMANDS["feed"][1].partition(": ")[0]
    paced = "--pace" in args
    rest = [a for a in args if a != "--pace"]
    if len(rest) != 1 or rest[0].startswith("-"):
        _usage(out, usage, "expected one file")
        out.write(DETAILS["feed"] + "\n", GREY)
        return 2
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
    feed.schedule(desk.call_at, engine.now_ns)
    out.write(f"feed {path}: paced replay started ({feed.applied} applied so far)\n", CYAN)
    return 0


def _feed_summary(feed: Feed, out: TextSink) -> None:
    applied, errors = _plural(feed.applied, "message"), _plural(len(feed.errors), "error")
    out.write(f"feed {feed.name}: {applied} applied, {errors}\n",
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

# "USAGE: description": the kernel registers each with the shell, split at the first ": "
COMMANDS: dict[str, tuple[Handler, str]] = {
    "instruments": (cmd_instruments, "instruments: tick, lot, multiplier and price band of each"),
    "book": (cmd_book, "book SYM [LEVELS]: depth ladder, asks over bids"),
    "buy": (cmd_buy, "buy SYM QTY [@PRICE] [ioc|fok|post] [-o OWNER]: an order; no price = market"),
    "sell": (cmd_sell, "sell SYM QTY [@PRICE] [ioc|fok|post] [-o OWNER]: the same, selling"),
    "cancel": (cmd_cancel, "cancel ID [-o OWNER]: cancel a live order"),
    "replace": (cmd_replace, "replace ID [@PRICE] [QTY] [-o OWNER]: new price and/or total qty"),
    "orders": (cmd_orders, "orders [-o OWNER | all]: open orders"),
    "trades": (cmd_trades, "trades [N]: the last N trades"),
    "pos": (cmd_pos, "pos [-o OWNER | all]: positions and average cost"),
    "pnl": (cmd_pnl, "pnl [-o OWNER | all]: realized, unrealized, fees, net"),
    "risk": (cmd_risk, "risk [OWNER] | risk set OWNER|default RULE VALUE|off: pre-trade limits"),
    "stp": (cmd_stp, "stp [OWNER|default MODE]: self-trade prevention mode, firm-wide or by owner"),
    "kill-switch": (cmd_kill_switch, "kill-switch OWNER [off]: cancel all and block / release"),
    "feed": (cmd_feed, "feed FILE [--pace]: replay market data (.itch, .fix or .csv)"),
}


# Longer help, a few lines each, for `help CMD` (and printed by the command on a usage error)
def _para(text: str) -> str:
    return textwrap.fill(text, SCREEN_COLUMNS - 2)


DETAILS: dict[str, str] = {
    "feed": _para(
        "The extension picks the format: .itch NASDAQ TotalView-ITCH 5.0 (2-byte length "
        "framing), .fix FIX 4.4 tag=value (SOH or | between fields), .csv with one of these "
        "header lines (ticks, quotes, bars):"
    )
    + "".join(f"\n  {','.join(columns)}" for columns in FORMATS.values())
    + "\n"
    + _para(
        "ts_ns is in ns, prices and sizes are decimals. --pace replays at the messages' own "
        "times on the machine clock; without it the whole file is applied at once."
    ),
    "stp": _para(
        "Modes: cancel-resting (the default: the owner's resting order is cancelled and "
        "matching goes on against other owners), cancel-incoming (the rest of the incoming "
        "order is cancelled), cancel-both. 'stp OWNER default' follows the firm-wide mode."
    ),
    "risk": _para(
        "Rules: " + ", ".join(RULE_NAMES) + ". 'risk set default RULE VALUE' changes the "
        "firm-wide value for every owner without its own; 'risk set OWNER RULE default' makes "
        "an owner follow it again."
    ),
}
