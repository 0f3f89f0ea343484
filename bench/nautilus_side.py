"""nautilus_trader's side of bench/bench_backtest.py, run by a Python that has nautilus_trader
installed (it is not a dependency of TradeKernel; the bench runs this file with
--nautilus-python). It imports nothing of TradeKernel.

Input: a file of L3 order book deltas made by the bench from the same ITCH session our backtest
replays (struct DELTA per record: action 1 add, 2 update, 3 delete; side 1 buy, 2 sell; price in
cents; size in shares; order id; ts in ns). Each becomes an OrderBookDelta (built before the
clock starts) fed to a BacktestEngine whose simulated venue keeps an L3 (MBO) book, with:
idle (a strategy that subscribes to nothing: the venue's book is rebuilt, nothing is delivered)
and on_book (a strategy subscribed to the book deltas whose callback does nothing).
Output: one line per run, "name events wall_s cpu_s" (best CPU time of --repeat runs).

Run: PYTHON bench/nautilus_side.py DELTAS_FILE [--repeat R]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BookOrder, OrderBookDelta
from nautilus_trader.model.enums import AccountType, BookAction, BookType, OmsType, OrderSide
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

DELTA = struct.Struct("<BBIIQQ")  # action, side, price (cents), size, order id, ts ns
ACTIONS = {1: BookAction.ADD, 2: BookAction.UPDATE, 3: BookAction.DELETE}
SIDES = {1: OrderSide.BUY, 2: OrderSide.SELL}
F_LAST = 128  # the record flag "last delta of an event": the book is published after it


class Idle(Strategy):
    pass


class OnBookConfig(StrategyConfig, frozen=True):
    instrument_id: str


class OnBook(Strategy):
    def __init__(self, config: OnBookConfig) -> None:
        super().__init__(config)
        self.instrument = None

    def on_start(self) -> None:
        from nautilus_trader.model.identifiers import InstrumentId

        self.subscribe_order_book_deltas(InstrumentId.from_str(self.config.instrument_id),
                                         book_type=BookType.L3_MBO)  # fmt: skip

    def on_order_book_deltas(self, deltas) -> None:  # noqa: ANN001
        pass


def deltas_of(blob: bytes, instrument) -> list:  # noqa: ANN001
    out = []
    iid = instrument.id
    for seq, (action, side, cents, size, oid, ts) in enumerate(DELTA.iter_unpack(blob)):
        order = BookOrder(SIDES[side], Price(cents / 100, 2), Quantity(size, 0), oid)
        out.append(OrderBookDelta(iid, ACTIONS[action], order, F_LAST, seq, ts, ts))
    return out


def run(strategy_kind: str, deltas: list, instrument) -> tuple[float, float]:  # noqa: ANN001
    quiet = LoggingConfig(bypass_logging=True)
    engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"), logging=quiet))
    engine.add_venue(Venue("XNAS"), OmsType.NETTING, AccountType.CASH,
                     [Money(1_000_000, USD)], base_currency=USD,
                     book_type=BookType.L3_MBO)  # fmt: skip
    engine.add_instrument(instrument)
    engine.add_data(deltas)
    if strategy_kind == "idle":
        engine.add_strategy(Idle())
    else:
        engine.add_strategy(OnBook(OnBookConfig(instrument_id=str(instrument.id))))
    start, cpu = time.perf_counter(), time.process_time()
    engine.run()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert engine.iteration == len(deltas), (engine.iteration, len(deltas))
    book = engine.cache.order_book(instrument.id)  # kept by the data engine when subscribed
    if book is not None:
        print(f"# {strategy_kind}: book after the run: bid {book.best_bid_price()} ask "
              f"{book.best_ask_price()}, {book.update_count} updates", file=sys.stderr)
    engine.dispose()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("deltas")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with open(args.deltas, "rb") as f:
        blob = f.read()
    instrument = TestInstrumentProvider.equity(symbol="SYNTH", venue="XNAS")
    deltas = deltas_of(blob, instrument)
    for kind in ("idle", "on_book"):
        elapsed, cpu = min((run(kind, deltas, instrument) for _ in range(args.repeat)),
                           key=lambda r: r[1])  # fmt: skip
        print(f"{kind} {len(deltas)} {elapsed:.4f} {cpu:.4f}", flush=True)


if __name__ == "__main__":
    main()
