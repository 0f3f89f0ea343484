"""Backtest throughput: market-data events per second through our backtester, and backtrader's on
the same events in the same run.

Data: a synthetic ITCH 5.0 session (tradekernel.research.synthetic, seeded) of --events
messages. Ours replays it through the kernel's order books (kernel/trading/replay.py) and the
backtest fill model (kernel/trading/backtest.py) with:

- idle: a strategy with no callbacks (the books are rebuilt, nothing is delivered to it);
- on_book: a strategy whose on_book does nothing, handed every top-of-book change;
- market_maker: the sample market maker with its configuration (quotes every 5 ms, fills).

backtrader (1.9.78.123, the last release) gets the same session as one bar per replayed
message: the mid of the book after that message (from our replay, precomputed, untimed), so
it handles exactly as many events; its strategies: `next` doing nothing (the closest to idle
and on_book), and a moving-average crossover (the closest to our momentum sample, also run).
Each figure is the best of --repeat runs (wall clock, perf_counter); the host's load average
is printed, since the machine may be shared. nautilus_trader is not installed here (not a
dependency of the project): no figure for it.

Run: .venv/bin/python bench/bench_backtest.py [--events N] [--repeat R] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import time
from pathlib import Path

import backtrader as bt

from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.replay import ItchMarket, Listener
from tradekernel.kernel.trading.strategy import Strategy
from tradekernel.research.config import load
from tradekernel.research.synthetic import SessionSpec, generate

TARGET_EVENTS_PER_S = 500_000  # issue 19: replayed through the books with a trivial strategy
TARGET_RATIO = 5  # ... and at least 5x backtrader's events/s on the same data
SAMPLES = Path(strategies.__file__).parent


class Idle(Strategy):
    name = "idle"


class OnBook(Strategy):
    name = "on_book"

    def on_book(self, ctx, top) -> None:  # noqa: ANN001
        pass


def ours(name: str, strategy: Strategy, blob: bytes, **config: object) -> tuple[float, int]:
    start = time.perf_counter()
    result = run_backtest(strategy, "bench.itch", blob, **config)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    assert result.strategy_error is None and not result.feed_errors, (name, result.one_line())
    return elapsed, result.events


class _Mids(Listener):
    """Records the mid after every message (what backtrader is fed)."""

    def __init__(self) -> None:
        self.mid = 0

    def market_top(self, symbol: str, l1: tuple) -> None:
        bid, _, ask, _ = l1
        if bid is not None and ask is not None:
            self.mid = (bid + ask) / 2


def bars_for_backtrader(blob: bytes) -> list[float]:
    """One price per replayed message: the mid after it (messages at the same ns share one)."""
    listener = _Mids()
    market = ItchMarket("bench.itch", blob, listener)
    mids: list[float] = []
    now = 0
    while True:
        before = market.applied + sum(market.skipped.values())
        deadline = market.step(now)
        done = market.applied + sum(market.skipped.values())
        mids.extend([listener.mid / 10_000 or 100.0] * (done - before))
        if deadline is None:
            return mids
        now = deadline


def backtrader_run(mids: list[float], cross: bool) -> float:
    epoch = datetime.datetime(2020, 1, 1)
    step = datetime.timedelta(seconds=1)

    class Feed(bt.feed.DataBase):
        def start(self) -> None:
            super().start()
            self._i = 0

        def _load(self) -> bool:
            i = self._i
            if i >= len(mids):
                return False
            self._i = i + 1
            price = mids[i]
            lines = self.lines
            lines.datetime[0] = bt.date2num(epoch + step * i)
            lines.open[0] = lines.high[0] = lines.low[0] = lines.close[0] = price
            lines.volume[0] = 100
            lines.openinterest[0] = 0
            return True

    class Nothing(bt.Strategy):
        def next(self) -> None:
            pass

    class Cross(bt.Strategy):
        def __init__(self) -> None:
            self.cross = bt.indicators.CrossOver(bt.indicators.SMA(period=20),
                                                 bt.indicators.SMA(period=100))  # fmt: skip

        def next(self) -> None:
            if self.cross[0] > 0 and self.position.size <= 0:
                self.order_target_size(target=100)
            elif self.cross[0] < 0 and self.position.size >= 0:
                self.order_target_size(target=-100)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(Feed())
    cerebro.addstrategy(Cross if cross else Nothing)
    start = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - start


def best(runs: int, func, *args, **kwargs):  # noqa: ANN001, ANN201
    results = [func(*args, **kwargs) for _ in range(runs)]
    return min(results, key=lambda r: r[0] if isinstance(r, tuple) else r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile the idle run")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores)")
    blob, _ = generate(SessionSpec(events=args.events, seed=1))
    mm_strategy, mm_config, mm_hash = load(SAMPLES / "market_maker.py")
    mo_strategy, mo_config, _ = load(SAMPLES / "momentum.py")
    if args.profile:
        cProfile.runctx("run_backtest(Idle(), 'bench.itch', blob)", globals(), locals(),
                        "/tmp/bench_backtest.prof")  # fmt: skip
        pstats.Stats("/tmp/bench_backtest.prof").sort_stats("tottime").print_stats(20)
        return
    rows = []
    for name, make, config in (
        ("idle", Idle, {}),
        ("on_book", OnBook, {}),
        ("market_maker", lambda: load(SAMPLES / "market_maker.py")[0],
         {"model": mm_config.fill, "limits": mm_config.risk}),
        ("momentum", lambda: load(SAMPLES / "momentum.py")[0],
         {"model": mo_config.fill, "limits": mo_config.risk}),
    ):  # fmt: skip
        run = lambda n=name, m=make, c=config: ours(n, m(), blob, **c)  # noqa: E731
        elapsed, events = best(args.repeat, run)
        rows.append((f"ours {name}", events, elapsed))
    mids = bars_for_backtrader(blob)
    bt_idle = best(args.repeat, backtrader_run, mids, False)
    bt_cross = best(args.repeat, backtrader_run, mids, True)
    rows.append(("backtrader next() empty", len(mids), bt_idle))
    rows.append(("backtrader SMA crossover", len(mids), bt_cross))
    print(f"{'run':<28} {'events':>9} {'seconds':>8} {'events/s':>10}")
    rates = {}
    for name, events, elapsed in rows:
        rates[name] = events / elapsed
        print(f"{name:<28} {events:>9} {elapsed:>8.2f} {rates[name]:>10,.0f}")
    idle = rates["ours idle"]
    ratio = idle / rates["backtrader next() empty"]
    empty, cross = rates["backtrader next() empty"], rates["backtrader SMA crossover"]
    print(f"idle vs backtrader empty next(): {ratio:.1f}x; on_book: "
          f"{rates['ours on_book'] / empty:.1f}x; momentum vs SMA crossover: "
          f"{rates['ours momentum'] / cross:.1f}x")  # fmt: skip
    print(f"target >= {TARGET_EVENTS_PER_S:,} events/s (idle): "
          f"{'met' if idle >= TARGET_EVENTS_PER_S else 'NOT met'} ({idle:,.0f})")
    print(f"target >= {TARGET_RATIO}x backtrader: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
          f" ({ratio:.1f}x)")
    print(f"1M-event wall time (idle, extrapolated): {1e6 / idle:.1f} s")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
