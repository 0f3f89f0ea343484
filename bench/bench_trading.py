"""Trading engine figures: matching throughput and latency, full OMS path, ITCH and FIX rates.

Two order streams, each generated once against a scratch book (so every cancel names a live
order) and replayed on a fresh book for timing:

- steady state (the primary figure): a book of RESTING orders is built first (untimed), then
  every order is a crossing IOC with probability 10% (1-10 lots, 0-3 ticks through the touch);
  otherwise a cancel of a uniformly random live order with probability L / (L + 1.2 RESTING),
  L the resting count (every resting order has the same small chance of being cancelled per
  message, as in queue models of the book), else a passive add (1-10 lots, 1-100 ticks behind
  the opposite touch). Adds then balance cancels and fills: about 49% add, 41% cancel, 10%
  cross, the book holds about 20,000 orders over about 200 price levels for the whole run.
- growing book: 60% passive add (0-20 ticks behind the touch), 30% cancel of a random live
  order, 10% crossing IOC, from an empty book. Adds outrun cancels and fills, so the book grows
  without bound (about 205,000 orders at 4,000-8,000 per level after 1,000,000 orders) and
  cancels hit random memory: a worst case, kept so nothing is hidden.

Each throughput figure is the median of several runs (steady state 5, ITCH raw 5, others 3) with the
spread, as wall-clock rate and as rate per CPU second of this process (process_time): on a shared
machine the second is the steadier one. The verdict against a target uses the wall-clock median;
when that is over 10% below the CPU-second rate the process waited for a CPU, and the verdict line
says so (a busy host, not a slower engine). Latency per order: batches of 100 orders timed with
perf_counter_ns, minus the measured cost of one timer pair, divided by 100 (median and p99 over
batches), and each order timed alone for comparison, and per kind of order (where the time goes in
the mix). The cyclic garbage collector stays on for every figure except the one labelled "GC off".
The host's load average is printed at start and end (the machine may be shared).

Run: .venv/bin/python bench/bench_trading.py [--orders N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import statistics
import time

from tradekernel.kernel.trading import fix, itch
from tradekernel.kernel.trading.book import BUY, GTC, IOC, SELL, OrderBook
from tradekernel.kernel.trading.engine import TradingEngine

MID = 10_000
RESTING = 20_000  # steady-state book size
CANCEL_HAZARD = 1.2 * RESTING  # P(cancel) = L / (L + this): keeps L near RESTING
STEADY_BAND = 100  # steady-state adds go 1..STEADY_BAND ticks behind the opposite touch
BOOK_TARGET = 1_000_000  # orders/s, bare book
OMS_TARGET = 200_000  # orders/s, full OMS path
ITCH_TARGET = 2_000_000  # messages/s, ITCH raw parse


class StreamMaker:
    """Builds an order stream against a scratch book, tracking live orders so that each cancel
    names one (a maker fully filled by a cross leaves the live set through the fill callback)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.live: list[int] = []
        self.where: dict[int, int] = {}  # order id -> index in live
        self.book = OrderBook("X", on_fill=self._on_fill)
        self.ops: list[tuple] = []  # ('add'|'cross', oid, side, price, qty) or ('cancel', oid)
        self.next_id = 1
        self.resting_seen: list[int] = []  # resting count after each order

    def _drop(self, oid: int) -> None:
        i = self.where.pop(oid)
        last = self.live.pop()
        if last != oid:
            self.live[i] = last
            self.where[last] = i

    def _on_fill(self, maker, _owner, _taker, _price, _qty, maker_left, _taker_left) -> None:
        if maker_left == 0:
            self._drop(maker)

    def _take_id(self) -> int:
        oid = self.next_id
        self.next_id += 1
        return oid

    def random_side(self) -> int:
        return BUY if self.rng.random() < 0.5 else SELL

    def opposite_touch(self, side: int) -> int:
        best = self.book.best_ask() if side == BUY else self.book.best_bid()
        return best[0] if best else MID

    def add(self, side: int, price: int) -> None:
        oid = self._take_id()
        qty = self.rng.randint(1, 10)
        self.ops.append(("add", oid, side, price, qty))
        if self.book.submit(oid, "maker", side, price, qty, GTC):
            self.where[oid] = len(self.live)
            self.live.append(oid)

    def cross(self) -> None:
        """An IOC 0-3 ticks through the opposite touch."""
        side = self.random_side()
        price = self.opposite_touch(side) + side * self.rng.randint(0, 3)
        oid = self._take_id()
        qty = self.rng.randint(1, 10)
        self.ops.append(("cross", oid, side, price, qty))
        self.book.submit(oid, "taker", side, price, qty, IOC)

    def cancel_random(self) -> None:
        oid = self.live[self.rng.randrange(len(self.live))]
        self._drop(oid)
        self.book.cancel(oid)
        self.ops.append(("cancel", oid))


def growing_stream(count: int, seed: int = 1) -> list[tuple]:
    """60% passive add, 30% cancel, 10% cross from an empty book (see the module docstring)."""
    maker = StreamMaker(seed)
    rng = maker.rng
    for _ in range(count):
        roll = rng.random()
        if roll < 0.3 and maker.live:
            maker.cancel_random()
        elif roll < 0.4:
            maker.cross()
        else:
            side = maker.random_side()
            maker.add(side, maker.opposite_touch(side) - side * rng.randint(1, 21))
    return maker.ops


def steady_stream(count: int, seed: int = 1) -> tuple[list[tuple], list[tuple], list[int]]:
    """(prefill, timed orders, resting count after each timed order) of the steady state."""
    maker = StreamMaker(seed)
    rng = maker.rng
    for i in range(RESTING):
        side = BUY if i % 2 else SELL
        maker.add(side, MID - side * rng.randint(1, STEADY_BAND))
    prefill = len(maker.ops)
    live = maker.live
    resting = []
    for _ in range(count):
        if rng.random() < 0.1:
            maker.cross()
        elif rng.random() * (len(live) + CANCEL_HAZARD) < len(live):
            maker.cancel_random()
        else:
            side = maker.random_side()
            maker.add(side, maker.opposite_touch(side) - side * rng.randint(1, STEADY_BAND))
        resting.append(len(live))
    return maker.ops[:prefill], maker.ops[prefill:], resting


Timing = tuple[float, float]
"""(wall seconds, CPU seconds of this process)"""


def timed(func, *args) -> Timing:
    """Run once and time it. The previous run's garbage is collected first, outside the timing
    (an engine and its books reference each other, so only the cyclic collector frees them)."""
    gc.collect()
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    func(*args)
    return (time.perf_counter_ns() - wall) / 1e9, (time.process_time_ns() - cpu) / 1e9


BookCall = tuple[int, str | None, int, int, int, int]
"""(oid, owner, side, price, qty, tif) for submit; owner None: cancel oid"""


def book_calls(ops: list[tuple]) -> list[BookCall]:
    """The book's arguments of each order, decoded before the clock starts, so the timed loop
    only unpacks a tuple and calls submit or cancel."""
    calls: list[BookCall] = []
    for op in ops:
        kind = op[0]
        if kind == "cancel":
            calls.append((op[1], None, 0, 0, 0, 0))
        else:
            owner, tif = ("maker", GTC) if kind == "add" else ("taker", IOC)
            calls.append((op[1], owner, op[2], op[3], op[4], tif))
    return calls


def replay_book(calls: list[BookCall], book: OrderBook) -> None:
    submit, cancel = book.submit, book.cancel
    for oid, owner, side, price, qty, tif in calls:
        if owner is None:
            cancel(oid)
        else:
            submit(oid, owner, side, price, qty, tif)


def run_book(prefill: list[BookCall], ops: list[BookCall]) -> Timing:
    """Time `ops` on a fresh book that already holds `prefill` (replayed untimed)."""
    book = OrderBook("X")
    replay_book(prefill, book)
    return timed(replay_book, ops, book)


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    return int(statistics.median(-(clock() - clock()) for _ in range(50_000)))


def book_latencies(
    prefill: list[BookCall], ops: list[BookCall], batch: int, overhead: int
) -> tuple[list[float], list[int]]:
    """Per-order ns: averages over batches of `batch` orders, and each order timed alone."""
    book = OrderBook("X")
    replay_book(prefill, book)
    clock = time.perf_counter_ns
    batches: list[float] = []
    for i in range(0, len(ops) - batch + 1, batch):
        chunk = ops[i : i + batch]
        t0 = clock()
        replay_book(chunk, book)
        batches.append((clock() - t0 - overhead) / batch)
    book = OrderBook("X")
    replay_book(prefill, book)
    submit, cancel = book.submit, book.cancel
    singles: list[int] = []
    for oid, owner, side, price, qty, tif in ops:
        t0 = clock()
        if owner is None:
            cancel(oid)
        else:
            submit(oid, owner, side, price, qty, tif)
        singles.append(clock() - t0 - overhead)
    return batches, singles


def latency_by_kind(calls: list[BookCall], singles: list[int]) -> str:
    """Where the time goes in the mix: per kind of order timed alone, its median and p99 ns and
    its share of all the orders' summed time."""
    groups: dict[str, list[int]] = {"add": [], "cancel": [], "cross": []}
    for call, ns in zip(calls, singles, strict=True):
        groups["cancel" if call[1] is None else "cross" if call[5] == IOC else "add"].append(ns)
    total = sum(singles)
    return ", ".join(
        f"{kind} median {statistics.median(ns):.0f} ns, p99 {pct(ns, 0.99):.0f} ns, "
        f"{100 * sum(ns) / total:.0f}% of the time"
        for kind, ns in groups.items()
    )


def eat_deep_level(depth: int) -> float:
    """ns per IOC when `depth` one-lot orders at one price are taken one by one from the head:
    the book keeps this O(sqrt(depth)) (see book._Level), so 100 times deeper costs about 2x."""
    book = OrderBook("X")
    for oid in range(depth):
        book.submit(oid, "maker", SELL, MID, 1)
    submit = book.submit
    start = time.perf_counter_ns()
    for oid in range(depth, 2 * depth):
        submit(oid, "taker", BUY, MID, 1, IOC)
    return (time.perf_counter_ns() - start) / depth


def replay_engine(ops: list[tuple], engine: TradingEngine, ids: dict[int, int]) -> None:
    """Replay through the OMS; `ids` maps stream order ids to the engine's."""
    submit, cancel = engine.submit, engine.cancel
    for op in ops:
        kind = op[0]
        if kind == "cancel":
            cancel(ids[op[1]])
        elif kind == "add":
            ids[op[1]] = submit("maker", "AAPL", op[2], op[4], op[3], GTC).order_id
        else:
            ids[op[1]] = submit("taker", "AAPL", op[2], op[4], op[3], IOC).order_id


def run_engine(prefill: list[tuple], ops: list[tuple], listen: bool = False) -> Timing:
    engine = TradingEngine(lambda: 0)
    if listen:
        heard = [0]

        def count_event(_event: object) -> None:
            heard[0] += 1

        engine.bus.subscribe(count_event)
    ids: dict[int, int] = {}
    replay_engine(prefill, engine, ids)
    return timed(replay_engine, ops, engine, ids)


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


def median_rate(count: int, timings: list[Timing]) -> float:
    """Median wall-clock rate."""
    return statistics.median(count / w for w, _ in timings)


def rates(count: int, timings: list[Timing]) -> str:
    """Median (min..max) of count/seconds, wall clock and CPU."""
    walls = sorted(count / w for w, _ in timings)
    cpus = sorted(count / c for _, c in timings)
    return (
        f"{statistics.median(walls):>11,.0f}/s wall ({walls[0]:,.0f}..{walls[-1]:,.0f}), "
        f"{statistics.median(cpus):,.0f}/s CPU ({cpus[0]:,.0f}..{cpus[-1]:,.0f})"
    )


def verdict(target: int, unit: str, label: str, count: int, timings: list[Timing]) -> str:
    """One line: the target, met or MISSED, and the wall-clock median it was judged on."""
    wall = median_rate(count, timings)
    cpu = statistics.median(count / c for _, c in timings)
    met = "met" if wall >= target else "MISSED"
    busy = (
        f"; host busy: wall {100 * (1 - wall / cpu):.0f}% below CPU, rerun on an idle host"
        if wall < 0.9 * cpu
        else ""
    )
    return (
        f"target >= {target:,} {unit}/s, {label}: {met} ({wall:,.0f}/s wall median; "
        f"{cpu:,.0f}/s per CPU second{busy})"
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def mix_of(ops: list[tuple]) -> str:
    counts = {k: sum(1 for op in ops if op[0] == k) for k in ("add", "cancel", "cross")}
    return ", ".join(f"{k} {100 * v / len(ops):.1f}%" for k, v in counts.items())


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
    print(f"host: {load_average()} (start)")

    prefill, ops, resting = steady_stream(args.orders)
    prefill_calls, calls = book_calls(prefill), book_calls(ops)
    book = OrderBook("X")
    replay_book(prefill_calls, book)
    replay_book(calls, book)
    levels = len(book.depth(1 << 30)[0]) + len(book.depth(1 << 30)[1])
    print(
        f"steady-state stream: {len(ops):,} orders ({mix_of(ops)}) after {len(prefill):,} "
        f"untimed adds; resting {min(resting):,}..{max(resting):,}, ends with {levels} levels"
    )
    grow = growing_stream(args.orders)
    grow_calls = book_calls(grow)
    book = OrderBook("X")
    replay_book(grow_calls, book)
    print(f"growing stream:      {len(grow):,} orders ({mix_of(grow)}); ends with {len(book):,}")
    print("figures: median (min..max) of runs; wall clock and per CPU second of this process")

    steady_runs = [run_book(prefill_calls, calls) for _ in range(5)]
    print(f"bare book, steady state:  {rates(len(ops), steady_runs)}  (5 runs)")
    gc.disable()
    try:
        nogc = [run_book(prefill_calls, calls) for _ in range(3)]
    finally:
        gc.enable()
    print(f"  same, GC off:           {rates(len(ops), nogc)}")
    grow_runs = [run_book([], grow_calls) for _ in range(3)]
    print(f"bare book, growing book:  {rates(len(grow), grow_runs)}")
    overhead = timer_overhead()
    batch = 100
    batches, singles = book_latencies(prefill_calls, calls, batch, overhead)
    print(
        f"  steady-state latency per order, batches of {batch}: median "
        f"{statistics.median(batches):.0f} ns, p99 {pct(batches, 0.99):.0f} ns "
        f"(timer pair {overhead} ns subtracted per batch)"
    )
    print(
        f"  steady-state latency per order, timed alone:  median {statistics.median(singles):.0f}"
        f" ns, p99 {pct(singles, 0.99):.0f} ns (timer pair {overhead} ns subtracted per order)"
    )
    print(f"  by kind, timed alone: {latency_by_kind(calls, singles)}")

    eaten = ", ".join(f"{depth:,} deep {eat_deep_level(depth):,.0f} ns" for depth in (400, 40_000))
    print(f"  one level eaten head-first by one-lot IOCs, per IOC: {eaten}")

    oms_ops = ops[: min(len(ops), 200_000)]
    oms_runs = [run_engine(prefill, oms_ops) for _ in range(3)]
    print(
        f"full OMS path, steady:    {rates(len(oms_ops), oms_runs)}\n"
        f"  ({len(oms_ops):,} orders: validation, risk gate, state machine + log, live/finished "
        "books, portfolio; no event listener, so no event objects)"
    )
    listened = [run_engine(prefill, oms_ops, listen=True) for _ in range(3)]
    print(f"  same, one listener on every event: {rates(len(oms_ops), listened)}")
    oms_grow = grow[: min(len(grow), 200_000)]
    oms_grow_runs = [run_engine([], oms_grow) for _ in range(3)]
    print(f"full OMS path, growing:   {rates(len(oms_grow), oms_grow_runs)}")

    data = itch_data(1_000_000)
    itch_runs = [timed(count_raw, data) for _ in range(5)]
    print(f"ITCH raw parse:  {rates(1_000_000, itch_runs)}")
    print("  (1,000,000 framed messages of 10 types; median of 5 runs (min..max))")
    print(f"ITCH decoded:    {rates(1_000_000, [timed(count_decoded, data) for _ in range(3)])}")

    fix_bytes = fix_data(50_000)
    fix_runs = [timed(count_fix, fix_bytes) for _ in range(3)]
    print(f"FIX parse:       {rates(50_000, fix_runs)}  (exec reports + 10-level snapshots)")

    print(f"host: {load_average()} (end)")
    print(verdict(BOOK_TARGET, "orders", "bare book, steady state", len(ops), steady_runs))
    print(verdict(BOOK_TARGET, "orders", "bare book, growing book", len(grow), grow_runs))
    print(verdict(OMS_TARGET, "orders", "full OMS path, steady state", len(oms_ops), oms_runs))
    print(verdict(ITCH_TARGET, "msgs", "ITCH raw parse", 1_000_000, itch_runs))

    if args.profile:
        profiled = OrderBook("X")
        replay_book(prefill_calls, profiled)
        profile("bare book, steady state", replay_book, calls[:300_000], profiled)
        engine = TradingEngine(lambda: 0)
        ids: dict[int, int] = {}
        replay_engine(prefill, engine, ids)
        profile("full OMS path, steady state", replay_engine, oms_ops[:50_000], engine, ids)
        profile("ITCH raw", count_raw, itch_data(200_000))
        profile("FIX", count_fix, fix_data(10_000))


if __name__ == "__main__":
    main()
