"""Ring-3 strategies in backtests, in the booted OS (deterministic clock): the shipped C momentum
taker /bin/mdtaker, unchanged from live trading, runs as the strategy of `backtest` on a
replayed ITCH session (kernel/trading/program.py). Its fills, P&L and latencies are the same on
two runs and in two machines; they equal those of a Python strategy with its rule, once the
Python twin's orders are delayed by the program's own measured compute time; its tick-to-order
latencies are the data latency plus its compute time (not zero, not skipped) and are written
with the run; a copy that segfaults, and one that loops, stop the backtest with one line,
what ran until then is kept, and the OS goes on; a configuration file gives the program its
arguments, fill model and instruments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc
from tests.system.test_trading import booted
from tradekernel.research.report import report
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=3000, seed=3))
MD_LATENCY = 20_000  # the default fill model's
EVENTS = 3157  # messages in SESSION
# the rule of images/programs/mdtaker.c, as a Python strategy
TWIN = b"""from tradekernel.kernel.trading.book import BUY, SELL
from tradekernel.kernel.trading.strategy import Strategy

WINDOW, LOTS, MAX_POSITION = 20, 100, 300


class MdTwin(Strategy):
    def on_start(self, ctx):
        self.mids = [0] * WINDOW
        self.seen = 0
        self.pending = False
        self.position = 0
        self.sides = {}

    def on_book(self, ctx, top):
        if top.bid_price is None or top.ask_price is None:
            return
        self.mids[self.seen % WINDOW] = top.bid_price + top.ask_price
        self.seen += 1
        if self.seen <= WINDOW or self.pending:
            return
        move = self.mids[(self.seen - 1) % WINDOW] - self.mids[self.seen % WINDOW]
        spread2 = 2 * (top.ask_price - top.bid_price)
        side = BUY if move >= spread2 else SELL if move <= -spread2 else 0
        if not side or (self.position + side * LOTS) * side > MAX_POSITION:
            return
        price = top.ask_price if side == BUY else top.bid_price
        oid = ctx.submit(top.symbol, side, ctx.qty(top.symbol, LOTS),
                         ctx.price(top.symbol, price), "ioc")
        self.sides[oid] = side
        self.pending = True
        self.seen = 0

    def on_fill(self, ctx, event):
        self.position += self.sides[event.order_id] * event.fill_qty
        if not event.leaves_qty:
            self.pending = False

    def on_cancelled(self, ctx, event):
        self.pending = False

    def on_rejected(self, ctx, event):
        self.pending = False
"""
TWIN_TOML = b'[instruments]\nsymbols = ["SYNTH"]\n'
FILES = {"/data/s.itch": SESSION, "/strategies/mdtwin.py": TWIN,
         "/strategies/mdtwin.toml": TWIN_TOML}  # fmt: skip
RUN = "backtest /bin/mdtaker /data/s.itch --out /runs/{} -- SYNTH 0"


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> BootedPc:
    return booted(tmp_path_factory.mktemp("ring3bt"), FILES)


def run_files(tk: BootedPc, folder: str) -> dict[str, str]:
    fs = tk.pc.kernel.fs
    return {name: fs.read_file(f"{folder}/{name}").decode()
            for name in ("fills.csv", "summary.json", "latency.csv", "samples.csv")}  # fmt: skip


def fills(csv: str) -> list[list[str]]:
    return [row.split(",") for row in csv.splitlines()[1:]]


def test_mdtaker_backtests_the_same_twice_and_in_another_machine(
        machine: BootedPc, tmp_path: Path) -> None:  # fmt: skip
    first = machine.output(RUN.format("a"), 60 * SECOND)
    machine.run_to_stop(370_000_037)  # the next run starts at another phase of the clock
    second = machine.output(RUN.format("b"), 60 * SECOND)
    assert first == second, (first, second)
    summary = [line for line in first if line.startswith("backtest mdtaker on s.itch: ok")]
    assert summary, first
    mine = [line for line in first if line.startswith("mdtaker: events")]
    program_fills = int(re.search(r"fills (\d+)", mine[0])[1])  # type: ignore[index]
    assert program_fills > 5 and f"fills {program_fills} (sha256" in "\n".join(first)
    a, b = run_files(machine, "/runs/a"), run_files(machine, "/runs/b")
    assert a == b
    other = booted(tmp_path, FILES)
    assert other.output(RUN.format("c"), 60 * SECOND) == first
    assert run_files(other, "/runs/c") == a


def test_its_latency_is_its_compute_time_and_its_fills_are_its_python_twins(
        machine: BootedPc, tmp_path: Path) -> None:  # fmt: skip
    ring3 = run_files(machine, "/runs/a") if machine.pc.kernel.fs.exists("/runs/a") else None
    if ring3 is None:
        machine.output(RUN.format("a"), 60 * SECOND)
        ring3 = run_files(machine, "/runs/a")
    latencies = [int(v) for v in ring3["latency.csv"].split()[1:]]
    compute = [v - MD_LATENCY for v in latencies]
    # the program's own instructions between the event and its order: some, and not much
    assert latencies and all(100 < c < 20_000 for c in compute), latencies
    for name, text in ring3.items():  # the run as `tk backtest` collects it from the disk
        (tmp_path / name).write_text(text)
    shown = report(tmp_path)  # `tk report`
    p50 = sorted(latencies)[(len(latencies) + 1) // 2 - 1]
    assert re.search(rf"tick-to-order ns .*\bp50 {p50}\b", shown), shown
    shown = machine.output("backtest mdtwin /data/s.itch --out /runs/twin", 60 * SECOND)
    assert "tick-to-order ns: p50 20000" in "\n".join(shown), shown  # Python takes no time
    twin = run_files(machine, "/runs/twin")
    program, python = fills(ring3["fills.csv"]), fills(twin["fills.csv"])
    # the same trades (order, side, price, size), each later by the compute time of one of
    # the program's answers
    assert [row[1:6] for row in program] == [row[1:6] for row in python], (program, python)
    pairs = zip(program, python, strict=True)
    assert all(int(mine[0]) - int(its[0]) in compute for mine, its in pairs)


def test_a_segfaulting_or_looping_program_stops_the_backtest_and_the_os_goes_on(
        machine: BootedPc) -> None:  # fmt: skip
    machine.expected_failures = ("segmentation fault",)
    crashed = machine.output(
        "backtest /bin/mdtaker /data/s.itch --out /runs/crash -- SYNTH 400 crash", 60 * SECOND)
    text = "\n".join(crashed)
    assert "segmentation fault at 0x00000000" in text, text
    stopped = [line for line in crashed if line.strip().startswith("stopped:")]
    assert len(stopped) == 1 and re.fullmatch(
        r"stopped: mdtaker\[\d+\] died: segmentation fault", stopped[0].strip()), crashed
    assert "backtest mdtaker on s.itch: STOPPED" in text
    summary = run_files(machine, "/runs/crash")["summary.json"]  # what ran is kept
    assert '"strategy_error": "mdtaker[' in summary
    looped = machine.output("backtest /bin/mdtaker /data/s.itch --param silence_limit_ms=5 "
                            "-- SYNTH 300 loop", 60 * SECOND)  # fmt: skip
    stopped = [line.strip() for line in looped if line.strip().startswith("stopped:")]
    assert len(stopped) == 1 and re.fullmatch(
        r"stopped: mdtaker\[\d+\] used more than 5 ms of CPU without reading /dev/market: "
        r"killed", stopped[0]), looped  # fmt: skip
    # a program that never opens /dev/market, one that exits with an error: figures all the same
    hello = machine.output("backtest /bin/hello /data/s.itch")
    assert hello[:2] == ["hello, world", f"backtest hello on s.itch: ok, {EVENTS} events, hash "
                         + hello[1].rsplit(" ", 1)[-1]], hello  # fmt: skip
    usage = machine.output("backtest /bin/mdtaker /data/s.itch")
    assert re.fullmatch(r"stopped: mdtaker\[\d+\] exited with status 2", usage[-1].strip()), usage
    assert machine.output("echo still here") == ["still here"]
    assert "ok" in machine.output(RUN.format("after"), 60 * SECOND)[-4]


def test_a_programs_configuration_gives_its_arguments_fill_model_and_instruments(
        machine: BootedPc) -> None:  # fmt: skip
    fs = machine.pc.kernel.fs
    fs.write_file("/data/fast.toml", b'[instruments]\nsymbols = ["SYNTH"]\n[params]\n'
                  b'args = "SYNTH 0"\n[fill]\nmd_latency_ns = 5000\n')  # fmt: skip
    fs.write_file("/data/deaf.toml", b'[instruments]\nsymbols = ["OTHER"]\n[params]\n'
                  b'args = "SYNTH 0"\n')  # fmt: skip
    fast = "\n".join(machine.output("backtest /bin/mdtaker /data/s.itch --config "
                                    "/data/fast.toml", 60 * SECOND))  # fmt: skip
    p50 = re.search(r"tick-to-order ns: p50 (\d+)", fast)
    assert p50 and 5_100 < int(p50[1]) < 6_000, fast  # its compute on top of 5 us
    # configured for another instrument, it hears nothing of SYNTH: no orders
    deaf = machine.output("backtest /bin/mdtaker /data/s.itch --config /data/deaf.toml",
                          60 * SECOND)  # fmt: skip
    assert re.match(r"mdtaker: events 1 orders 0 fills 0", deaf[0]), deaf
