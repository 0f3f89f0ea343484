"""replay.ItchMarket (the backtest's market) against the desk's path, TradingEngine fed by
feed.ItchReplay: on synthetic sessions, and on sessions with messages cut or corrupted, both
give the same trades (ids, sides, prices, sizes), the same sequence of tops of book, the same
books at the end and the same errors."""

from __future__ import annotations

import random

import pytest

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.engine import TradingEngine
from tradekernel.kernel.trading.feed import open_feed
from tradekernel.kernel.trading.replay import ItchMarket, Listener
from tradekernel.research.synthetic import SessionSpec, generate


class Recorder(Listener):
    def __init__(self) -> None:
        self.trades: list[tuple] = []
        self.tops: list[tuple] = []

    def market_trade(self, symbol, price, qty, buy_id, sell_id, aggressor, *_) -> None:  # noqa: ANN001
        self.trades.append((symbol, price, qty, buy_id, sell_id, aggressor))

    def market_top(self, symbol: str, l1: tuple) -> None:
        self.tops.append((symbol, *l1))


def through_the_engine(data: bytes) -> tuple[list, list, dict, list[str]]:
    engine = TradingEngine(lambda: 0)
    trades: list[tuple] = []
    tops: list[tuple] = []
    engine.bus.subscribe(lambda t: trades.append((t.symbol, t.price, t.qty, t.buy_order_id,
                                                  t.sell_order_id, t.aggressor_side)),
                         (ev.Trade,))  # fmt: skip
    engine.bus.subscribe(lambda t: tops.append((t.symbol, t.bid_price, t.bid_qty, t.ask_price,
                                                t.ask_qty)), (ev.TopOfBook,))  # fmt: skip
    feed = open_feed(engine, "s.itch", data, paced=False)
    feed.run(0)
    books = {s: b.depth(1000) for s, b in engine.books.items() if len(b)}
    return trades, tops, books, [str(e).replace("s.itch: ", "") for e in feed.errors]


def through_the_replay(data: bytes) -> tuple[list, list, dict, list[str]]:
    recorder = Recorder()
    market = ItchMarket("s.itch", data, recorder)
    now = 0
    while (deadline := market.step(now)) is not None:
        now = deadline
    books = {s: b.depth(1000) for s, b in market.books.items() if len(b)}
    return (recorder.trades, recorder.tops, books,
            [str(e).replace("s.itch: ", "") for e in market.errors])  # fmt: skip


def damaged(data: bytes, seed: int) -> bytes:
    """Cut a few messages out and corrupt a few bytes (the framing stays whole)."""
    rng = random.Random(seed)
    frames, offset = [], 0
    while offset < len(data):
        size = 2 + int.from_bytes(data[offset : offset + 2], "big")
        frames.append(bytearray(data[offset : offset + size]))
        offset += size
    for _ in range(20):
        del frames[rng.randrange(1, len(frames))]
    for _ in range(20):
        frame = frames[rng.randrange(1, len(frames))]
        frame[rng.randrange(3, len(frame))] = rng.randrange(256)
    return b"".join(bytes(f) for f in frames)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_same_market_as_the_engine(seed: int) -> None:
    data, _ = generate(SessionSpec(events=20_000, seed=seed))
    engine = through_the_engine(data)
    replay = through_the_replay(data)
    assert len(engine[0]) > 500 and len(engine[1]) > 1000 and engine[2]
    assert replay == engine


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_the_same_errors_on_damaged_data(seed: int) -> None:
    data = damaged(generate(SessionSpec(events=5_000, seed=seed))[0], seed)
    engine = through_the_engine(data)
    assert engine[3]  # the damage was seen
    assert through_the_replay(data) == engine


@pytest.mark.parametrize("cut", [1, 2, 3, 7, -1])
def test_a_truncated_file_gives_the_engine_s_errors(cut: int) -> None:
    """The replay frames messages itself: a file cut inside a length prefix or a message body
    ends with the same one-line error as the desk's parser, and the books up to it match."""
    data, _ = generate(SessionSpec(events=2_000, seed=6))
    data = data[:-cut] if cut > 0 else data + b"\x00"  # -1: one byte of a length prefix
    engine = through_the_engine(data)
    assert engine[3]
    assert through_the_replay(data) == engine


def test_a_backtest_restores_the_collector_settings() -> None:
    """run_backtest raises the collector's young threshold for the run only, even when the
    strategy raises."""
    import gc

    from tradekernel.kernel.trading.backtest import GC_YOUNG_THRESHOLD, run_backtest
    from tradekernel.kernel.trading.strategy import Strategy

    seen = []

    class Raises(Strategy):
        name = "raises"

        def on_book(self, ctx, top) -> None:  # noqa: ANN001
            seen.append(gc.get_threshold()[0])
            raise RuntimeError("boom")

    data, _ = generate(SessionSpec(events=2_000, seed=7))
    before = gc.get_threshold()
    result = run_backtest(Raises(), "s.itch", data)
    assert result.strategy_error and "boom" in result.strategy_error
    assert seen == [max(before[0], GC_YOUNG_THRESHOLD)]
    assert gc.get_threshold() == before


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: f.__setitem__(2, ord("z")),  # a type byte ITCH does not define
        lambda f: f.__setitem__(2, ord("D") if f[2] != ord("D") else ord("A")),  # wrong size
        lambda f: f.__setitem__(slice(0, 2), b"\x00\x00"),  # a zero-length message
        lambda f: f.__setitem__(1, f[1] + 1),  # a length one byte too long
    ],
)
def test_bad_framing_mid_stream_gives_the_engine_s_errors(damage) -> None:  # noqa: ANN001
    """The replay frames a message with one unpack from its length prefix; a prefix that does
    not fit its type, an unknown type, a zero length: the same errors and the same market
    after them as the desk's parser."""
    data, _ = generate(SessionSpec(events=3_000, seed=8))
    frames, offset = [], 0
    while offset < len(data):
        size = 2 + int.from_bytes(data[offset : offset + 2], "big")
        frames.append(bytearray(data[offset : offset + size]))
        offset += size
    for at in (40, 700, 1500):
        damage(frames[at])
    data = b"".join(bytes(f) for f in frames)
    engine = through_the_engine(data)
    assert engine[3]
    assert through_the_replay(data) == engine


def two_symbols(first: bytes, second: bytes) -> bytes:
    """Two one-symbol sessions as one feed: the second's stock locate made 2 and its order
    references moved past the first's, the messages merged in timestamp order."""
    frames = []
    for locate, data in ((None, first), (2, second)):
        offset = 0
        while offset < len(data):
            size = 2 + int.from_bytes(data[offset : offset + 2], "big")
            frame = bytearray(data[offset : offset + size])
            if locate is not None:
                frame[3:5] = locate.to_bytes(2, "big")
                for at in (
                    (13, 21) if frame[2:3] == b"U" else (13,) if frame[2:3] in b"AFECXD" else ()
                ):
                    ref = int.from_bytes(frame[at : at + 8], "big") + (1 << 40)
                    frame[at : at + 8] = ref.to_bytes(8, "big")
            frames.append((int.from_bytes(frame[7:13], "big"), len(frames), bytes(frame)))
            offset += size
    return b"".join(frame for _, _, frame in sorted(frames))


def test_deferred_market_events_show_what_a_listening_strategy_heard() -> None:
    """A strategy with no on_book does not get the tops scheduled one by one: the venue keeps
    them and applies, when the strategy looks, those delivered strictly before now (the latest
    per symbol). What it sees at each look must be the last top an on_book strategy was
    handed before that ns, on a feed of two symbols; and its orders, fills and tick-to-order
    latencies must be those of the same strategy with (empty) market callbacks."""
    from tradekernel.kernel.trading.backtest import run_backtest
    from tradekernel.kernel.trading.strategy import Strategy

    data = two_symbols(generate(SessionSpec(symbol="AAA", events=4_000, seed=9))[0],
                       generate(SessionSpec(symbol="BBB", events=4_000, seed=10))[0])  # fmt: skip
    heard: list[tuple[int, str, tuple]] = []
    looks: list[tuple[int, str, tuple]] = []

    class Listens(Strategy):
        name = "listens"

        def on_book(self, ctx, top) -> None:  # noqa: ANN001
            heard.append((ctx.now_ns, top.symbol, ctx.top(top.symbol)))

    class Looks(Strategy):
        """Looks every 0.3 ms, and trades on what it sees (buys at the ask when flat)."""

        name = "looks"
        symbols = ("AAA", "BBB")

        def on_start(self, ctx) -> None:  # noqa: ANN001
            ctx.set_timer(300_000, "look")

        def on_timer(self, ctx, name: str) -> None:  # noqa: ANN001
            for symbol in self.symbols:
                top = ctx.top(symbol)
                looks.append((ctx.now_ns, symbol, top))
                if top[2] is not None and ctx.position(symbol) == 0 and len(looks) % 7 == 0:
                    ctx.buy(symbol, 100, top[2])
                elif ctx.position(symbol) and len(looks) % 5 == 0 and top[0] is not None:
                    ctx.sell(symbol, 100, top[0])
            ctx.set_timer(300_000, name)

    class LooksAndListens(Looks):
        def on_book(self, ctx, top) -> None:  # noqa: ANN001
            pass

        def on_trade(self, ctx, trade) -> None:  # noqa: ANN001
            pass

    assert run_backtest(Listens(), "s.itch", data).feed_errors == []
    deferred = run_backtest(Looks(), "s.itch", data)
    seen_deferred, looks[:] = list(looks), []
    relayed = run_backtest(LooksAndListens(), "s.itch", data)
    assert seen_deferred == looks
    assert len(deferred.fills) > 20
    assert deferred.fills_csv() == relayed.fills_csv()
    assert deferred.tick_to_order_ns == relayed.tick_to_order_ns
    assert deferred.summary_json() == relayed.summary_json()
    checked = set()
    for now, symbol, top in seen_deferred:
        before = [t for when, s, t in heard if s == symbol and when < now]
        if before:
            assert top == before[-1], (now, symbol)
            checked.add(symbol)
    assert checked == {"AAA", "BBB"}


@pytest.mark.parametrize(
    "cuts",
    [
        ("3,1,100,1000000,1",),  # the order ahead of ours deleted (D)
        ("2,1,60,1000000,1", "4,1,40,1000000,1"),  # cut by 60 (X), the rest executed (E)
    ],
)
def test_cuts_ahead_of_a_resting_strategy_order_reach_its_queue(cuts: tuple[str, ...]) -> None:
    """The market tells a cut only where the listener has orders resting: a strategy's order
    resting behind a replayed one must still hear it go, so a hidden execution at its price
    (a print: it trades the queue ahead first) then fills it."""
    from tradekernel.kernel.trading.backtest import run_backtest
    from tradekernel.kernel.trading.strategy import Strategy

    class BuysOnce(Strategy):
        name = "buys"
        symbols = ("ZZ",)
        sent = False

        def on_book(self, ctx, top) -> None:  # noqa: ANN001
            if not self.sent:
                self.sent = True
                ctx.buy("ZZ", 100, "100")  # behind the replayed bid of 100 at 100.00

    rows = ["34200.000000000,1,1,100,1000000,1", "34200.000000000,1,2,100,1010000,-1"]
    rows += [f"34200.00{i + 1}000000,{cut}" for i, cut in enumerate(cuts)]
    rows.append("34200.005000000,5,0,50,1000000,1")  # a hidden buy executes 50 at 100.00
    result = run_backtest(BuysOnce(), "ZZ_message_1.csv", "\n".join(rows).encode() + b"\n")
    assert result.feed_errors == []
    assert [(price, lots, liq) for _, _, _, _, price, lots, liq, *_ in result.fills] == [
        (1000000, 50, "maker")
    ]


def test_every_itch_type_and_replaces_as_the_engine() -> None:
    """The session of every ITCH type (test_itch_all_types), then replaces the hot loop shares
    with the adds: a replace to a new price, one to 0 shares (refused silently, as the
    engine does: the old order goes, nothing comes), one of a reference no longer live (an
    error), adds that cross (same owner: STP; an attributed one: a trade), executions and
    cancels of orders that are gone. The same trades, tops, books and errors as the engine."""
    from tests.trading.test_itch_all_types import STOCK, TS, msg, session_file
    from tests.trading.test_parsers import frame, u

    def add(ref: int, side: bytes, shares: int, price: int, mpid: bytes = b"") -> tuple:
        return ("F" if mpid else "A", u(ref, 8) + side + u(shares, 4) + STOCK + u(price, 4) + mpid)

    more = [
        add(10, b"B", 100, 10_0000),
        ("U", u(10, 8) + u(11, 8) + u(300, 4) + u(10_0100, 4)),  # to 300 @10.01
        ("U", u(11, 8) + u(12, 8) + u(0, 4) + u(10_0100, 4)),  # 0 shares: refused
        ("U", u(11, 8) + u(13, 8) + u(100, 4) + u(10_0100, 4)),  # 11 is gone: an error
        add(14, b"B", 200, 10_0000),
        add(15, b"S", 100, 9_9900),  # crosses the feed's own bid: STP cancels it, 15 rests
        add(16, b"B", 100, 10_0500, b"ABCD"),  # crosses 15 (another owner): a trade
        ("E", u(15, 8) + u(10, 4) + u(600, 8)),  # 15 is gone: an error
        ("X", u(14, 8) + u(10, 4)),  # 14 went by STP: an error
        add(17, b"S", 300, 10_0300),
        ("X", u(17, 8) + u(400, 4)),  # more than it has: an error
        ("C", u(17, 8) + u(100, 4) + u(601, 8) + b"Y" + u(10_0250, 4)),
        ("U", u(17, 8) + u(18, 8) + u(50, 4) + u(10_0200, 4)),  # to the top of the asks
        ("D", u(18, 8)),
        ("D", u(18, 8)),  # twice: an error
    ]
    data = session_file() + b"".join(
        frame(msg(kind, TS + 2 * 10**9 + i * 1000, body)) for i, (kind, body) in enumerate(more)
    )
    engine = through_the_engine(data)
    replay = through_the_replay(data)
    assert len(engine[3]) == 5 and len(engine[0]) >= 4
    assert replay == engine
