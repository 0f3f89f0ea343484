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
