"""Trading engine figures: matching throughput and latency, ITCH and FIX parsing rates.

Order mix: 60% passive adds (limit orders that rest), 30% cancels of a random live order, 10%
aggressive limit orders crossing the spread (IOC). The stream is generated once against a
scratch book (so every cancel names a live order) and replayed on a fresh one for timing.
Latency: each order timed alone with perf_counter_ns, minus the measured cost of the timer
pair itself (reported), and also as batch averages of 1,000 orders for comparison.

Run: /tmp/venv/bin/python bench/bench_trading.py [--orders N] [--profile]

Also reported: the bare book with Python's cyclic garbage collector off during the timed loop,
because a book of ~200k linked resting orders makes the collector's passes a third of the cost;
whether the kernel freezes or tunes the collector is the integrator's decision.
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


def run_book(ops: list[tuple]) -> float:
    book = OrderBook("X")
    submit, cancel = book.submit, book.cancel
    start = time.perf_counter_ns()
    for op in ops:
        kind = op[0]
        if kind == "cancel":
            cancel(op[1])
        elif kind == "add":
            submit(op[1], "maker", op[2], op[3], op[4], GTC)
        else:
            submit(op[1], "taker", op[2], op[3], op[4], IOC)
    return (time.perf_counter_ns() - start) / 1e9


def book_latencies(ops: list[tuple]) -> tuple[list[int], list[float], int]:
    book = OrderBook("X")
    submit, cancel = book.submit, book.cancel
    clock = time.perf_counter_ns
    overhead = statistics.median(-(clock() - clock()) for _ in range(20_000))
    singles: list[int] = []
    batches: list[float] = []
    batch_start = clock()
    for n, op in enumerate(ops, start=1):
        kind = op[0]
        t0 = clock()
        if kind == "cancel":
            cancel(op[1])
        elif kind == "add":
            submit(op[1], "maker", op[2], op[3], op[4], GTC)
        else:
            submit(op[1], "taker", op[2], op[3], op[4], IOC)
        singles.append(clock() - t0 - overhead)
        if n % 1000 == 0:
            now = clock()
            batches.append((now - batch_start) / 1000)
            batch_start = now
    return singles, batches, int(overhead)


def run_engine(ops: list[tuple]) -> float:
    engine = TradingEngine(lambda: 0)
    ids: dict[int, int] = {}
    start = time.perf_counter_ns()
    for op in ops:
        kind = op[0]
        if kind == "cancel":
            engine.cancel(ids[op[1]])
        else:
            tif = GTC if kind == "add" else IOC
            order = engine.submit("maker" if kind == "add" else "taker", "AAPL", op[2], op[4],
                                  op[3], tif)  # fmt: skip
            ids[op[1]] = order.order_id
    return (time.perf_counter_ns() - start) / 1e9


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()

    ops = make_stream(args.orders)
    counts = {k: sum(1 for op in ops if op[0] == k) for k in ("add", "cancel", "cross")}
    mix = ", ".join(f"{k} {100 * v / len(ops):.0f}%" for k, v in counts.items())
    print(f"order stream: {len(ops):,} orders ({mix})")

    seconds = min(run_book(ops) for _ in range(3))
    print(f"bare book:     {len(ops) / seconds:>12,.0f} orders/s  ({seconds:.2f} s, best of 3)")
    gc.disable()
    seconds_nogc = min(run_book(ops) for _ in range(3))
    gc.enable()
    print(
        f"bare book, cyclic GC off while timing: {len(ops) / seconds_nogc:,.0f} orders/s "
        "(resting orders are linked nodes; the collector rescans them as the book grows)"
    )
    singles, batches, overhead = book_latencies(ops)
    print(
        f"  latency per order: median {statistics.median(singles):.0f} ns, "
        f"p99 {pct(singles, 0.99):.0f} ns (timed one by one, timer pair {overhead} ns removed)"
    )
    print(
        f"  latency per order in batches of 1000: median {statistics.median(batches):.0f} ns, "
        f"p99 {pct(batches, 0.99):.0f} ns"
    )

    oms_ops = ops[: min(len(ops), 200_000)]
    seconds = run_engine(oms_ops)
    print(
        f"full OMS path: {len(oms_ops) / seconds:>12,.0f} orders/s  "
        f"({len(oms_ops):,} orders: validation, risk, state machine, log, events, portfolio)"
    )

    data = itch_data(1_000_000)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        count = 0
        for _msg in itch.iter_raw(data):
            count += 1
        best = min(best, (time.perf_counter_ns() - start) / 1e9)
    print(f"ITCH raw parse: {count / best:>11,.0f} msgs/s  ({count:,} framed messages, 10 types)")
    start = time.perf_counter_ns()
    decoded = sum(1 for _ in itch.iter_messages(data))
    secs = (time.perf_counter_ns() - start) / 1e9
    print(f"ITCH decoded:   {decoded / secs:>11,.0f} msgs/s  (named tuples)")

    fix_bytes = fix_data(50_000)
    start = time.perf_counter_ns()
    parsed = sum(1 for _ in fix.parse_stream(fix_bytes))
    secs = (time.perf_counter_ns() - start) / 1e9
    print(f"FIX parse:      {parsed / secs:>11,.0f} msgs/s  (exec reports + 10-level snapshots)")

    if args.profile:
        for label, func, arg in (
            ("bare book", run_book, ops[:300_000]),
            ("OMS path", run_engine, oms_ops[:50_000]),
        ):
            profiler = cProfile.Profile()
            profiler.runcall(func, arg)
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(8)
            print(f"--- profile: {label} (top 8 by own time) ---")
            lines = stream.getvalue().splitlines()
            start_line = next(i for i, x in enumerate(lines) if "ncalls" in x)
            print("\n".join(lines[start_line : start_line + 9]))


if __name__ == "__main__":
    main()
