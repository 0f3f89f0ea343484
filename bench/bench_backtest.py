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
"In the OS": the `ours` rows run the kernel's own modules (kernel/trading: the books, the
replay, the fill model, the strategy host) imported into this process, with no machine around
them. The row `ours idle (booted)` is the same idle backtest as `tk backtest` runs it: the
machine booted in deterministic mode (research/booted.py), the data and the strategy on its
FAT disk, the shell's `backtest` typed at its prompt; it is timed between the first and the
last progress line the shell prints on the serial console (so boot, the disk read and the
strategy load are out; the replay inside the machine, its console writes and the emulator
around the kernel are in), and its event count is checked against the in-process run.

Each figure is the run with the least CPU time of --repeat runs, as wall-clock events/s and as
events per CPU second of this process (process_time): on a shared machine the second is the
steadier one, and the targets are judged on it. The host's load average is printed. Last, a
sweep (tk sweep) of --sweep imbalance backtests on 1, 2 and N processes: runs per second.

nautilus_trader (not a dependency of the project: install it in a venv of its own, e.g.
`python3 -m venv /tmp/nt && /tmp/nt/bin/pip install nautilus_trader`) races with
--nautilus-python /tmp/nt/bin/python: bench/nautilus_side.py gets the same session as L3 book
deltas (one per message that changes a resting order: the same book rebuilt, checked by its
top at the end) and replays them through a BacktestEngine whose venue keeps an L3 book, with a
strategy subscribed to nothing (idle) and one with an empty on_order_book_deltas (on_book).

Run: .venv/bin/python bench/bench_backtest.py [--events N] [--repeat R] [--sweep P] [--profile]
     [--nautilus-python PYTHON] [--no-booted]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import backtrader as bt

from tradekernel.kernel.trading import itch, strategies
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.replay import ItchMarket, Listener
from tradekernel.kernel.trading.strategy import Strategy
from tradekernel.research.booted import run_in_machine
from tradekernel.research.config import load
from tradekernel.research.sweep import parse_grid, sweep
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


def ours(name: str, strategy: Strategy, blob: bytes, **config: object) -> tuple[float, float, int]:
    start, cpu = time.perf_counter(), time.process_time()
    result = run_backtest(strategy, "bench.itch", blob, **config)  # type: ignore[arg-type]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.strategy_error is None and not result.feed_errors, (name, result.one_line())
    return elapsed, cpu, result.events


IDLE_FILES = {  # the idle strategy on the booted machine's disk
    "/strategies/idle.py": b'"""Does nothing: the replay alone."""\n\n'
    b"from tradekernel.kernel.trading.strategy import Strategy\n\n\n"
    b'class Idle(Strategy):\n    name = "idle"\n',
    "/strategies/idle.toml": b'[instruments]\nsymbols = ["SYNTH"]\n',
}


def booted(blob: bytes, events: int) -> tuple[int, float, float]:
    """The idle backtest inside the booted machine: (events, wall s, CPU s) between the
    shell's first and last progress line."""
    marks: list[tuple[int, float, float]] = []

    def progress(done: int) -> None:
        marks.append((done, time.perf_counter(), time.process_time()))

    ran = run_in_machine("backtest idle /data/bench.itch", {"/data/bench.itch": blob, **IDLE_FILES},
                         progress)  # fmt: skip
    if ran.error is not None or len(marks) < 2:
        raise SystemExit(f"the booted backtest failed: {ran.error or ran.lines}")
    if f"ok, {events} events" not in ran.lines[0]:
        raise SystemExit(f"the booted backtest differs from the in-process one: {ran.lines[0]}")
    (first, wall0, cpu0), (last, wall1, cpu1) = marks[0], marks[-1]
    return last - first, wall1 - wall0, cpu1 - cpu0


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


NAUTILUS_DELTA = struct.Struct("<BBIIQQ")  # as bench/nautilus_side.py reads it
ADD, UPDATE, DELETE = 1, 2, 3


def deltas_for_nautilus(blob: bytes) -> bytes:
    """The session as L3 book deltas (nautilus_side.py's input): an add per A/F, an update
    (the size left) or a delete per execution/cancel, a delete per D, a delete and an add per
    U. One delta per message that changes a resting order, so it replays the same book."""
    orders: dict[int, list[int]] = {}  # ref -> [side, cents, shares]
    out = bytearray()

    def put(action: int, ref: int, ts: int) -> None:
        side, cents, shares = orders[ref]
        out.extend(NAUTILUS_DELTA.pack(action, side, cents, shares, ref, ts))

    for raw in itch.iter_raw(blob):
        kind, ts = raw[0], (raw[3] << 32) | raw[4]
        if kind in (b"A", b"F"):
            orders[raw[5]] = [1 if raw[6] == b"B" else 2, raw[9] // 100, raw[7]]
            put(ADD, raw[5], ts)
        elif kind in (b"E", b"C", b"X") and raw[5] in orders:
            orders[raw[5]][2] -= raw[6]
            if orders[raw[5]][2] > 0:
                put(UPDATE, raw[5], ts)
            else:
                put(DELETE, raw[5], ts)
                del orders[raw[5]]
        elif kind == b"D" and raw[5] in orders:
            put(DELETE, raw[5], ts)
            del orders[raw[5]]
        elif kind == b"U" and raw[5] in orders:
            side = orders[raw[5]][0]
            put(DELETE, raw[5], ts)
            del orders[raw[5]]
            orders[raw[6]] = [side, raw[8] // 100, raw[7]]
            put(ADD, raw[6], ts)
    return bytes(out)


def nautilus_rows(blob: bytes, python: str, repeat: int) -> list[tuple[str, int, float, float]]:
    """nautilus_trader's runs (idle, on_book) in its own interpreter, on the same session."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deltas.bin"
        path.write_bytes(deltas_for_nautilus(blob))
        done = subprocess.run([python, str(Path(__file__).with_name("nautilus_side.py")),
                               str(path), "--repeat", str(repeat)], capture_output=True,
                              text=True, timeout=3600)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"nautilus_side.py failed:\n{done.stderr[-2000:]}")
    rows = []
    for line in done.stdout.splitlines():
        name, events, wall, cpu = line.split()
        rows.append((f"nautilus {name}", int(events), float(wall), float(cpu)))
    return rows


def backtrader_run(mids: list[float], cross: bool) -> tuple[float, float]:
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
    start, cpu = time.perf_counter(), time.process_time()
    cerebro.run()
    return time.perf_counter() - start, time.process_time() - cpu


def best(runs: int, func, *args, **kwargs):  # noqa: ANN001, ANN201
    """The run with the least CPU time (the steadier figure on a shared host)."""
    return min((func(*args, **kwargs) for _ in range(runs)), key=lambda r: r[1])


def sweep_rates(blob: bytes, points: int) -> list[tuple[int, float]]:
    """(processes, runs per second) for `points` in-process backtests of the imbalance sample
    (`tk sweep --host`; bench_sweep.py times the default, a machine per point)."""
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "bench.itch"
        data.write_bytes(blob)
        grid = parse_grid([f"size={','.join(str(100 * (i + 1)) for i in range(points))}"])
        rates = []
        for jobs in sorted({1, 2, os.cpu_count() or 2}):
            start = time.perf_counter()
            sweep(SAMPLES / "imbalance.py", None, data, grid, jobs, host=True)
            rates.append((jobs, points / (time.perf_counter() - start)))
        return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile the idle run")
    parser.add_argument("--sweep", type=int, default=4, help="sweep points (0: no sweep)")
    parser.add_argument("--no-booted", action="store_true", help="skip the booted machine's run")
    parser.add_argument("--nautilus-python", metavar="PYTHON",
                        help="a Python with nautilus_trader installed: also race it")  # fmt: skip
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    blob, _ = generate(SessionSpec(events=args.events, seed=1))
    _, mm_config, _ = load(SAMPLES / "market_maker.py")
    _, mo_config, _ = load(SAMPLES / "momentum.py")
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
        elapsed, cpu, events = best(args.repeat, run)
        rows.append((f"ours {name}", events, elapsed, cpu))
        if name == "idle" and not args.no_booted:
            in_os = best(args.repeat, booted, blob, events)
            rows.append(("ours idle (booted)", in_os[0], in_os[1], in_os[2]))
    mids = bars_for_backtrader(blob)
    rows.append(("backtrader next() empty", len(mids), *best(args.repeat, backtrader_run, mids,
                                                              False)))  # fmt: skip
    rows.append(("backtrader SMA crossover", len(mids), *best(args.repeat, backtrader_run, mids,
                                                               True)))  # fmt: skip
    if args.nautilus_python:
        rows += nautilus_rows(blob, args.nautilus_python, args.repeat)
    print(f"{'run':<26} {'events':>8} {'wall s':>7} {'events/s':>10} {'CPU s':>7} "
          f"{'events/CPU s':>12}")  # fmt: skip
    rates = {}
    for name, events, elapsed, cpu in rows:
        rates[name] = events / cpu
        print(f"{name:<26} {events:>8} {elapsed:>7.2f} {events / elapsed:>10,.0f} {cpu:>7.2f} "
              f"{rates[name]:>12,.0f}")  # fmt: skip
    idle = rates["ours idle"]
    empty, cross = rates["backtrader next() empty"], rates["backtrader SMA crossover"]
    ratio = idle / empty
    print(f"per CPU second: idle vs backtrader empty next(): {ratio:.1f}x; on_book: "
          f"{rates['ours on_book'] / empty:.1f}x; momentum vs SMA crossover: "
          f"{rates['ours momentum'] / cross:.1f}x")  # fmt: skip
    print(f"target >= {TARGET_EVENTS_PER_S:,} events/s (idle, per CPU second): "
          f"{'met' if idle >= TARGET_EVENTS_PER_S else 'NOT met'} ({idle:,.0f})")
    if "ours idle (booted)" in rates:
        in_os = rates["ours idle (booted)"]
        verdict = "met" if in_os >= TARGET_EVENTS_PER_S else "NOT met"
        print(f"target >= {TARGET_EVENTS_PER_S:,} events/s in the booted machine (idle, per CPU "
              f"second): {verdict} ({in_os:,.0f})")  # fmt: skip
    print(f"target >= {TARGET_RATIO}x backtrader: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
          f" ({ratio:.1f}x)")
    if "nautilus idle" in rates:
        print(f"per CPU second: idle vs nautilus idle: {idle / rates['nautilus idle']:.1f}x; "
              f"on_book vs nautilus on_book: "
              f"{rates['ours on_book'] / rates['nautilus on_book']:.1f}x (nautilus counts "
              f"book deltas: one per message that changes a resting order)")  # fmt: skip
    print(f"1M-event backtest (idle), CPU time extrapolated: {1e6 / idle:.1f} s")
    if args.sweep:
        for jobs, per_s in sweep_rates(blob, args.sweep):
            print(f"sweep of {args.sweep} imbalance backtests on {jobs} process(es): "
                  f"{per_s:.2f} runs/s (wall, incl. process start)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
