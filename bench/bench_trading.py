"""Trading engine figures: matching throughput and latency, full OMS path, ITCH and FIX rates.

Order mix: 60% passive adds (limit orders that rest), 30% cancels of a random live order, 10%
aggressive limit orders crossing the spread (IOC). The stream is generated once against a
scratch book (so every cancel names a live order) and replayed on a fresh book for timing.

Each throughput figure is run 3 times (ITCH raw 5 times) and the median is printed with the
spread, as wall-clock rate and as rate per CPU second of this process (process_time): on a
shared machine the second is the steadier one. Latency per order: batches of 100 orders timed
with perf_counter_ns, minus the measured cost of one timer pair, divided by 100 (median and p99
over batches), and each order timed alone for comparison. The cyclic garbage collector stays
on for every figure except the one labelled "GC off".

Run: /tmp/venv/bin/python bench/bench_trading.py [--orders N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import random
import statistics
import time

from tradekernel.kernel.trading import fix, itch
from tradekernel.kernel.trading.book import BUY, GTC, IOC, SELL, OrderBook
from tradekernel.kernel.trading.engine import TradingEngine

MID = 10_000


def make_stream(count: int, seed: int = 1) -> list[tuple]:
    """('add'|'cross', oid, side, price, qty) or ('cancel', oid) ops; every cancel is live."""
    rng = random.Random(seed)
    live: list[int] = []
    where: dict[int, int] = {}

    def drop(oid: int) -> None:
        i = where.pop(oid)
        last = live.pop()
        if last != oid:
            live[i] = last
            where[last] = i

    def on_fill(maker, _owner, _taker, _price, _qty, maker_left, _taker_left):
        if maker_left == 0:
            drop(maker)

    scratch = OrderBook("X", on_fill=on_fill)
    ops: list[tuple] = []
    next_id = 1
    for _ in range(count):
        roll = rng.random()
        if roll < 0.3 and live:
            oid = live[rng.randrange(len(live))]
            drop(oid)
            scratch.cancel(oid)
            ops.append(("cancel", oid))
            continue
        side = BUY if rng.random() < 0.5 else SELL
        qty = rng.randint(1, 10)
        oid = next_id
        next_id += 1
        if roll < 0.4:  # aggressive: cross up to 3 ticks through the touch
            best = scratch.best_ask() if side == BUY else scratch.best_bid()
            ref = best[0] if best else MID
            price = ref + side * rng.randint(0, 3)
            ops.append(("cross", oid, side, price, qty))
            scratch.submit(oid, "taker", side, price, qty, IOC)
        else:
            opposite = scratch.best_ask() if side == BUY else scratch.best_bid()
            edge = opposite[0] - side if opposite else MID - side
            price = edge - side * rng.randint(0, 20)
            ops.append(("add", oid, side, price, qty))
            if scratch.submit(oid, "maker", side, price, qty, GTC):
                where[oid] = len(live)
                live.append(oid)
    return ops


Timing = tuple[float, float]
"""(wall seconds, CPU seconds of this process)"""


def timed(func, *args) -> Timing:
    """Run once and time it. The previous run's garbage is collected first, outside the timing
    (an engine and its books reference each other, so only the cyclic collector frees them)."""
    gc.collect()
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    func(*args)
    return (time.perf_counter_ns() - wall) / 1e9, (time.process_time_ns() - cpu) / 1e9


def replay_book(ops: list[tuple], book: OrderBook) -> None:
    submit, cancel = book.submit, book.cancel
    for op in ops:
        kind = op[0]
        if kind == "cancel":
            cancel(op[1])
        elif kind == "add":
            submit(op[1], "maker", op[2], op[3], op[4], GTC)
        else:
            submit(op[1], "taker", op[2], op[3], op[4], IOC)


def run_book(ops: list[tuple]) -> Timing:
    book = OrderBook("X")
    return timed(replay_book, ops, book)


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    return int(statistics.median(-(clock() - clock()) for _ in range(50_000)))


def book_latencies(ops: list[tuple], batch: int, overhead: int) -> tuple[list[float], list[int]]:
    """Per-order ns: averages over batches of `batch` orders, and each order timed alone."""
    book = OrderBook("X")
    submit, cancel = book.submit, book.cancel
    clock = time.perf_counter_ns
    batches: list[float] = []
    for i in range(0, len(ops) - batch + 1, batch):
        chunk = ops[i : i + batch]
        t0 = clock()
        for op in chunk:
            kind = op[0]
            if kind == "cancel":
                cancel(op[1])
            elif kind == "add":
                submit(op[1], "maker", op[2], op[3], op[4], GTC)
            else:
                submit(op[1], "taker", op[2], op[3], op[4], IOC)
        batches.append((clock() - t0 - overhead) / batch)
    book = OrderBook("X")
    submit, cancel = book.submit, book.cancel
    singles: list[int] = []
    for op in ops:
        kind = op[0]
        t0 = clock()
        if kind == "cancel":
            cancel(op[1])
        elif kind == "add":
            submit(op[1], "maker", op[2], op[3], op[4], GTC)
        else:
            submit(op[1], "taker", op[2], op[3], op[4], IOC)
        singles.append(clock() - t0 - overhead)
    return batches, singles


def replay_engine(ops: list[tuple], engine: TradingEngine) -> None:
    ids: dict[int, int] = {}
    submit, cancel = engine.submit, engine.cancel
    for op in ops:
        kind = op[0]
        if kind == "cancel":
            cancel(ids[op[1]])
        elif kind == "add":
            ids[op[1]] = submit("maker", "AAPL", op[2], op[4], op[3], GTC).order_id
        else:
            ids[op[1]] = submit("taker", "AAPL", op[2], op[4], op[3], IOC).order_id


def run_engine(ops: list[tuple], listen: bool = False) -> Timing:
    engine = TradingEngine(lambda: 0)
    if listen:
        heard = [0]

        def count_event(_event: object) -> None:
            heard[0] += 1

        engine.bus.subscribe(count_event)
    return timed(replay_engine, ops, engine)


def itch_data(count: int) -> bytes:
    rng = random.Random(2)
    out = []
    kinds = [b"A", b"A", b"A", b"E", b"X", b"D", b"U", b"P", b"F", b"C"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        head = (kind, 1, 0, 0, i)
        ref = rng.randrange(1 << 40)
        if kind == b"A":
            raw = (*head, ref, b"B", 100, b"AAPL    ", 1_895_000)
        elif kind == b"F":
            raw = (*head, ref, b"S", 100, b"AAPL    ", 1_895_100, b"GSCO")
        elif kind == b"E":
            raw = (*head, ref, 10, i)
        elif kind == b"C":
            raw = (*head, ref, 10, i, b"Y", 1_895_000)
        elif kind == b"X":
            raw = (*head, ref, 5)
        elif kind == b"D":
            raw = (*head, ref)
        elif kind == b"U":
            raw = (*head, ref, ref + 1, 50, 1_895_200)
        else:
            raw = (*head, ref, b"B", 10, b"AAPL    ", 1_895_000, i)
        out.append(itch.frame(itch.encode(raw)))
    return b"".join(out)


def fix_data(count: int) -> bytes:
    engine = TradingEngine(lambda: 0)
    writer = fix.FixWriter("TK", "CLIENT", lambda: 123_456_789)
    aapl = engine.instrument("AAPL")
    order = engine.submit("s", "AAPL", BUY, 100, 18950)
    msgs = [writer.execution_report(order, aapl, fix.EXEC_NEW) for _ in range(count // 2)]
    bids = [(18950 - i, 100 + i, 1) for i in range(5)]
    asks = [(18951 + i, 100 + i, 1) for i in range(5)]
    msgs += [writer.market_data_snapshot(aapl, bids, asks) for _ in range(count - len(msgs))]
    return b"".join(msgs)


def pct(values: list, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rates(count: int, timings: list[Timing]) -> str:
    """Median (min..max) of count/seconds, wall clock and CPU."""
    walls = sorted(count / w for w, _ in timings)
    cpus = sorted(count / c for _, c in timings)
    return (
        f"{statistics.median(walls):>11,.0f}/s wall ({walls[0]:,.0f}..{walls[-1]:,.0f}), "
        f"{statistics.median(cpus):,.0f}/s CPU ({cpus[0]:,.0f}..{cpus[-1]:,.0f})"
    )


def count_raw(data: bytes) -> None:
    for _msg in itch.iter_raw(data):
        pass


def count_decoded(data: bytes) -> None:
    for _msg in itch.iter_messages(data):
        pass


def count_fix(data: bytes) -> None:
    for _msg in fix.parse_stream(data):
        pass


def profile(label: str, func, *args) -> None:
    gc.collect()
    profiler = cProfile.Profile()
    profiler.runcall(func, *args)
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(8)
    print(f"--- where the time goes: {label} (top 8 by own time, under cProfile) ---")
    lines = stream.getvalue().splitlines()
    start_line = next(i for i, x in enumerate(lines) if "ncalls" in x)
    print("\n".join(lines[start_line : start_line + 9]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()

    ops = make_stream(args.orders)
    counts = {k: sum(1 for op in ops if op[0] == k) for k in ("add", "cancel", "cross")}
    mix = ", ".join(f"{k} {100 * v / len(ops):.0f}%" for k, v in counts.items())
    book = OrderBook("X")
    replay_book(ops, book)
    print(f"order stream: {len(ops):,} orders ({mix}); book ends with {len(book):,} resting")
    print("figures: median of 3 runs (min..max); wall clock and per CPU second of this process")

    print(f"bare book:       {rates(len(ops), [run_book(ops) for _ in range(3)])}")
    gc.disable()
    try:
        nogc = [run_book(ops) for _ in range(3)]
    finally:
        gc.enable()
    print(f"  same, GC off:  {rates(len(ops), nogc)}")
    overhead = timer_overhead()
    batch = 100
    batches, singles = book_latencies(ops, batch, overhead)
    print(
        f"  latency per order, batches of {batch}: median {statistics.median(batches):.0f} ns, "
        f"p99 {pct(batches, 0.99):.0f} ns (timer pair {overhead} ns subtracted per batch)"
    )
    print(
        f"  latency per order, timed alone:  median {statistics.median(singles):.0f} ns, "
        f"p99 {pct(singles, 0.99):.0f} ns (timer pair {overhead} ns subtracted per order)"
    )

    oms_ops = ops[: min(len(ops), 200_000)]
    print(
        f"full OMS path:   {rates(len(oms_ops), [run_engine(oms_ops) for _ in range(3)])}\n"
        f"  ({len(oms_ops):,} orders: validation, risk gate, state machine + log, live/finished "
        "books, portfolio; no event listener, so no event objects)"
    )
    listened = [run_engine(oms_ops, listen=True) for _ in range(3)]
    print(f"  same, one listener on every event: {rates(len(oms_ops), listened)}")

    data = itch_data(1_000_000)
    print(f"ITCH raw parse:  {rates(1_000_000, [timed(count_raw, data) for _ in range(5)])}")
    print("  (1,000,000 framed messages of 10 types; median of 5 runs (min..max))")
    print(f"ITCH decoded:    {rates(1_000_000, [timed(count_decoded, data) for _ in range(3)])}")

    fix_bytes = fix_data(50_000)
    fix_runs = [timed(count_fix, fix_bytes) for _ in range(3)]
    print(f"FIX parse:       {rates(50_000, fix_runs)}  (exec reports + 10-level snapshots)")

    if args.profile:
        profile("bare book", replay_book, ops[:300_000], OrderBook("X"))
        profile("full OMS path", replay_engine, oms_ops[:50_000], TradingEngine(lambda: 0))
        profile("ITCH raw", count_raw, itch_data(200_000))
        profile("FIX", count_fix, fix_data(10_000))


if __name__ == "__main__":
    main()
