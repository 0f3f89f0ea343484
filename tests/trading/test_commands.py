"""Each shell command on a sample through a recording TextSink, bad arguments included; feeds."""

from __future__ import annotations

from decimal import Decimal

import simplefix

from tradekernel.kernel.trading import commands, itch
from tradekernel.kernel.trading.commands import COMMANDS, Desk
from tradekernel.kernel.trading.engine import TradingEngine


class RecordingSink:
    def __init__(self) -> None:
        self.parts: list[tuple[str, int | None, int | None]] = []

    def write(self, text: str, fg: int | None = None, bg: int | None = None) -> None:
        self.parts.append((text, fg, bg))

    @property
    def text(self) -> str:
        return "".join(p[0] for p in self.parts)

    def colour_of(self, fragment: str) -> int | None:
        return next(fg for text, fg, _ in self.parts if fragment in text)


class Clock:
    def __init__(self) -> None:
        self.t = 0
        self.timers: list[tuple[int, object]] = []

    def __call__(self) -> int:
        return self.t

    def call_at(self, deadline, callback):
        self.timers.append((deadline, callback))

    def run(self) -> None:
        while self.timers:
            self.timers.sort(key=lambda t: t[0])
            deadline, callback = self.timers.pop(0)
            self.t = max(self.t, deadline)
            callback()


def make_desk(files: dict[str, bytes] | None = None) -> tuple[Desk, Clock]:
    clock = Clock()
    files = files or {}

    def read_file(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    return Desk(TradingEngine(clock), read_file, clock.call_at), clock


def run(desk: Desk, line: str) -> tuple[int, RecordingSink]:
    name, *args = line.split()
    sink = RecordingSink()
    return COMMANDS[name][0](desk, args, sink), sink


def test_every_command_has_a_handler_and_help():
    for name, (handler, help_line) in COMMANDS.items():
        assert callable(handler) and help_line
        sink = RecordingSink()
        status = handler(make_desk()[0], ["--bogus", "x", "y", "z", "w"], sink)
        assert status == 2 and "usage: " in sink.text, name


def test_instruments_lists_defaults():
    status, sink = run(make_desk()[0], "instruments")
    assert status == 0 and "ESZ6" in sink.text and "0.25" in sink.text
    assert run(make_desk()[0], "instruments x")[0] == 2


def test_book_ladder_colours_and_spread():
    desk, _ = make_desk()
    run(desk, "buy AAPL 100 @189.50 -o mm")
    run(desk, "sell AAPL 200 @189.53 -o mm")
    run(desk, "sell AAPL 50 @189.60 -o mm")
    status, sink = run(desk, "book AAPL")
    assert status == 0
    lines = sink.text.splitlines()
    assert lines.index(next(x for x in lines if "189.60" in x)) < lines.index(
        next(x for x in lines if "189.53" in x)
    ) < lines.index(next(x for x in lines if "spread" in x)) < lines.index(
        next(x for x in lines if "189.50" in x)
    )  # fmt: skip
    assert "spread 0.03" in sink.text
    assert sink.colour_of("189.53") == commands.ASK_COLOUR
    assert sink.colour_of("189.50") == commands.BID_COLOUR
    assert run(desk, "book NOPE")[0] == 1
    assert run(desk, "book AAPL zero")[0] == 2
    assert run(desk, "book")[0] == 2


def test_buy_sell_market_and_tifs():
    desk, _ = make_desk()
    run(desk, "sell AAPL 10 @100.00 -o mm")
    status, sink = run(desk, "buy AAPL 4")
    assert status == 0 and "filled 4 avg 100" in sink.text and "FILLED" in sink.text
    status, sink = run(desk, "buy AAPL 10 @100.00 ioc")
    assert status == 0 and "CANCELLED" in sink.text and "IOC remainder" in sink.text
    status, sink = run(desk, "sell AAPL 5 @99.00 post")
    assert status == 0 and "ACCEPTED" in sink.text
    status, sink = run(desk, "buy AAPL 1 @99.00 post")
    assert status == 1 and "post-only would cross" in sink.text


def test_order_command_bad_arguments():
    desk, _ = make_desk()
    for line in ["buy", "buy AAPL", "sell AAPL 1 @1 gtd", "buy AAPL 1 -o"]:
        status, sink = run(desk, line)
        assert status == 2 and "usage: " in sink.text, line
    for line in ["buy AAPL 1 @1.001", "buy AAPL x"]:  # a bad value: one line, no usage
        status, sink = run(desk, line)
        assert status == 2 and sink.text.startswith("error: ") and sink.text.count("\n") == 1
    status, sink = run(desk, "buy NOPE 1")
    assert status == 1 and "unknown symbol" in sink.text
    status, sink = run(desk, "buy AAPL 1 @0.50")
    assert status == 1 and "outside band" in sink.text


def test_cancel_replace_orders():
    desk, _ = make_desk()
    run(desk, "buy AAPL 10 @100.00")
    status, sink = run(desk, "orders")
    assert status == 0 and "shell" in sink.text and "100.00" in sink.text
    status, sink = run(desk, "replace 1 @100.05 6")
    assert status == 0 and "REPLACED" in sink.text
    assert desk.engine.book("AAPL").best_bid() == (10005, 6)
    assert run(desk, "cancel 1 -o someone")[0] == 1
    status, sink = run(desk, "cancel 1")
    assert status == 0 and "cancelled #1" in sink.text
    assert run(desk, "cancel 1")[0] == 1
    assert run(desk, "cancel abc")[0] == 2
    assert run(desk, "replace 1")[0] == 2
    assert run(desk, "replace 99 @1")[0] == 1
    assert "no open orders" in run(desk, "orders")[1].text


def test_trades_pos_pnl():
    desk, clock = make_desk()
    run(desk, "sell MSFT 10 @400.00 -o mm")
    clock.t = 1_500_000_000
    run(desk, "buy MSFT 10 @400.00")
    run(desk, "buy MSFT 5 @401.00 -o mm")
    run(desk, "sell MSFT 5 @401.00")
    status, sink = run(desk, "trades")
    assert status == 0 and "1.500000" in sink.text and "shell/mm" in sink.text
    status, sink = run(desk, "pos")
    assert status == 0 and "MSFT" in sink.text and " 5 " in sink.text
    status, sink = run(desk, "pnl all")
    assert status == 0 and "TOTAL" in sink.text and "5" in sink.text
    shell_line = next(x for x in sink.text.splitlines() if x.startswith("shell"))
    assert [Decimal(x) for x in shell_line.split()[1:]] == [5, 5, 0, 10]
    assert run(desk, "trades x")[0] == 2
    assert run(desk, "pnl what")[0] == 2


def test_risk_show_set_and_enforce():
    desk, _ = make_desk()
    status, sink = run(desk, "risk set shell max_order_qty 400")
    assert status == 0
    status, sink = run(desk, "buy AAPL 401 @100")
    assert status == 1 and "risk: max_order_qty 401 > limit 400" in sink.text
    status, sink = run(desk, "risk shell")
    assert "max_order_qty        400" in sink.text
    assert run(desk, "risk set shell bogus 1")[0] == 2
    assert run(desk, "risk set shell max_order_qty 1.5")[0] == 2
    assert run(desk, "risk set shell collar_pct 2.5")[0] == 0


def test_kill_switch_command():
    desk, _ = make_desk()
    run(desk, "buy AAPL 1 @100 -o algo")
    status, sink = run(desk, "kill-switch algo")
    assert status == 0 and "1 order cancelled" in sink.text
    assert run(desk, "buy AAPL 1 @100 -o algo")[0] == 1
    assert run(desk, "kill-switch algo off")[0] == 0
    assert run(desk, "buy AAPL 1 @100 -o algo")[0] == 0
    assert run(desk, "kill-switch")[0] == 2


# ---- feeds ---------------------------------------------------------------------------------


def itch_file() -> bytes:
    msgs = [
        (b"R", 1, 0, 0, 1, b"AAPL    ", b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N", b"N",
         b"1", b"N", 0, b"N"),
        (b"A", 1, 0, 0, 1_000, 1, b"B", 100, b"AAPL    ", 1_895_000),
        (b"A", 1, 0, 0, 2_000, 2, b"S", 200, b"AAPL    ", 1_895_300),
        (b"E", 1, 0, 0, 3_000, 1, 40, 77),
        (b"X", 1, 0, 0, 4_000, 2, 50),
        (b"U", 1, 0, 0, 5_000, 2, 3, 100, 1_895_200),
        (b"P", 1, 0, 0, 6_000, 0, b"B", 10, b"AAPL    ", 1_895_100, 78),
        (b"D", 1, 0, 0, 7_000, 99),
    ]  # fmt: skip
    return b"".join(itch.frame(itch.encode(m)) for m in msgs) + b"\x00\x05Z1234"


def test_feed_itch_unpaced_builds_book():
    desk, _ = make_desk({"/data/day.itch": itch_file()})
    status, sink = run(desk, "feed /data/day.itch")
    assert status == 1  # the unknown Z message and the delete of an unknown ref are reported
    assert "7 messages applied, 2 errors" in sink.text
    book = desk.engine.book("AAPL")
    assert book.l1() == (18950, 60, 18952, 100)
    assert book.last_price == 18951 and book.volume == 50


def test_feed_itch_paced_follows_message_time():
    desk, clock = make_desk({"day.itch": itch_file()})
    clock.t = 1_000_000
    status, sink = run(desk, "feed day.itch --pace")
    assert status == 0 and "paced replay started" in sink.text
    deadlines = [d for d, _ in clock.timers]
    assert deadlines == [1_000_000 + 999]  # the second message is 999 ns after the first
    clock.run()
    assert desk.feeds[0].done and clock.t == 1_000_000 + 6_999
    assert desk.engine.book("AAPL").l1() == (18950, 60, 18952, 100)


def test_feed_shell_order_trades_against_itch_liquidity():
    desk, _ = make_desk({"d.itch": itch_file()})
    run(desk, "feed d.itch")
    status, sink = run(desk, "buy AAPL 30")
    assert status == 0 and "filled 30 avg 189.52" in sink.text
    assert desk.engine.portfolio.position_qty("itch", "AAPL") == -30


def test_feed_fix_orders_and_market_data():
    out = b""
    for seq, (msg_type, pairs) in enumerate(
        [
            (
                "W",
                [
                    (55, "MSFT"),
                    (268, 2),
                    (269, 0),
                    (270, "410.10"),
                    (271, 300),
                    (269, 1),
                    (270, "410.12"),
                    (271, 200),
                ],
            ),
            ("D", [(11, "c1"), (55, "MSFT"), (54, 1), (38, 50), (40, 2), (44, "410.12"), (59, 3)]),
            ("X", [(268, 1), (279, 2), (269, 0), (55, "MSFT"), (270, "410.10"), (271, 0)]),
        ],  # fmt: skip
        start=1,
    ):
        m = simplefix.FixMessage()
        for tag, value in [(8, "FIX.4.4"), (35, msg_type), (49, "ALGO"), (56, "TK"), (34, seq),
                           (52, f"20240102-09:30:0{seq}.000"), *pairs]:  # fmt: skip
            m.append_pair(tag, value)
        out += m.encode()
    desk, _ = make_desk({"s.fix": out + b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01"})
    status, sink = run(desk, "feed s.fix")
    assert "3 messages applied, 1 error\n" in sink.text and status == 1
    engine = desk.engine
    assert engine.portfolio.position_qty("ALGO", "MSFT") == 50
    assert engine.book("MSFT").l1() == (None, 0, 41012, 150)


def test_feed_csv_quotes_and_errors():
    data = (
        b"ts_ns,symbol,bid,bid_qty,ask,ask_qty\n"
        b"100,ESZ6,5000.00,10,5000.25,12\n"
        b"200,ESZ6,5000.25,3,5000.50,4\n"
        b"300,ESZ6,bad,1,1,1\n"
    )
    desk, _ = make_desk({"q.csv": data})
    status, sink = run(desk, "feed q.csv")
    assert "2 messages applied, 1 error\n" in sink.text and "line 4" in sink.text
    assert desk.engine.book("ESZ6").l1() == (20001, 3, 20002, 4)


def test_feed_bad_arguments_and_files():
    desk, _ = make_desk({"x.txt": b""})
    assert run(desk, "feed")[0] == 2
    status, sink = run(desk, "feed missing.itch")
    assert status == 1 and "cannot read" in sink.text
    status, sink = run(desk, "feed x.txt")
    assert status == 1 and "unknown feed format" in sink.text
    no_clock = Desk(desk.engine, desk.read_file, None)
    status, sink = run(no_clock, "feed x.txt --pace")
    assert status == 1 and "clock" in sink.text
