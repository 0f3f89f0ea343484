"""The backtest fill model on hand-made LOBSTER days (each rule of kernel/trading/backtest.py's
docstring: latency, queue position, partial fills, sweeps, fees) and determinism on a
synthetic ITCH session, twice in this process and once in another."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from tradekernel.kernel.trading.backtest import FillModel, RiskLimits, run_backtest
from tradekernel.kernel.trading.strategy import Context, Strategy
from tradekernel.research.synthetic import SessionSpec, generate

ROOT = Path(__file__).resolve().parents[2]
T0 = 34200  # 09:30:00
OPEN = T0 * 10**9  # the LOBSTER file starts its clock at midnight: fills are at exchange ns


def day(*rows: str) -> bytes:
    return "\n".join(rows).encode() + b"\n"


def at(us: int) -> str:
    """LOBSTER time `us` microseconds after the open."""
    return f"{T0}.{us * 1000:09d}"


class OneShot(Strategy):
    """On the first top of book it sees, sends one order (side, qty, price or None)."""

    name = "oneshot"
    symbols = ("ZZ",)

    def __init__(self, side: int, qty: int, price: str | None, tif: str = "gtc") -> None:
        self.order = (side, qty, price, tif)
        self.sent = False

    def on_book(self, ctx: Context, top) -> None:
        if not self.sent:
            self.sent = True
            side, qty, price, tif = self.order
            ctx.submit("ZZ", side, qty, price, tif)


BOOK = (  # a bid of 100 at 100.00 (order 1) and asks of 100 at 101.00 and 102.00
    f"{at(0)},1,1,100,1000000,1",
    f"{at(0)},1,2,100,1010000,-1",
    f"{at(0)},1,3,100,1020000,-1",
)
LATER = f"{at(1000)},1,9,100,900000,1"  # an order far away: the session goes on for 1 ms


def fills(result) -> list[tuple]:
    return [(ts, side, price, lots, liq) for ts, _, _, side, price, lots, liq, *_ in result.fills]


def test_passive_order_waits_for_the_volume_ahead_of_it():
    data = day(
        *BOOK,
        f"{at(1000)},4,1,60,1000000,1",  # 60 of order 1 (ahead of us) trade: nothing for us
        f"{at(2000)},4,1,40,1000000,1",  # the rest of order 1: the queue ahead is empty
        f"{at(3000)},1,4,100,1000000,1",  # order 4 joins behind us
        f"{at(4000)},4,4,30,1000000,1",  # an execution of order 4: it would have met us first
    )
    result = run_backtest(OneShot(1, 100, "100"), "ZZ_message_1.csv", data)
    assert result.feed_errors == []
    assert fills(result) == [(OPEN + 4_000_000, 1, 1000000, 30, "maker")]
    assert result.position == {"ZZ": 30}


def test_cancels_ahead_count_like_executions_and_a_sweep_through_fills_us():
    data = day(
        *BOOK,
        f"{at(1000)},2,1,50,1000000,1",  # partial cancel ahead of us: 50 left ahead
        f"{at(2000)},3,1,50,1000000,1",  # delete of the rest: nothing ahead
        f"{at(3000)},1,5,100,999900,1",  # a bid below ours
        f"{at(4000)},4,5,100,999900,1",  # it trades: the seller swept through our 100.00
    )
    result = run_backtest(OneShot(1, 100, "100"), "ZZ_message_1.csv", data)
    assert fills(result) == [(OPEN + 4_000_000, 1, 1000000, 100, "maker")]


def test_order_latency_decides_whether_liquidity_is_still_there():
    # the ask at 101 is deleted 60 us after the open: a market buy sent at 20 us (market-data
    # latency) arrives at 70 us with 50 us of order latency (too late), at 25 us with 5 us
    data = day(*BOOK, f"{at(60)},3,2,100,1010000,-1")
    slow = run_backtest(OneShot(1, 100, None), "ZZ_message_1.csv", data)
    assert fills(slow) == [(OPEN + 70_000, 1, 1020000, 100, "taker")]
    fast = run_backtest(OneShot(1, 100, None), "ZZ_message_1.csv", data,
                        FillModel(order_latency_ns=5_000))  # fmt: skip
    assert fills(fast) == [(OPEN + 25_000, 1, 1010000, 100, "taker")]
    assert fast.tick_to_order_ns == [20_000]


def test_sweep_partial_fill_and_fees():
    model = FillModel(fee_bps=Decimal(1), fee_per_lot=Decimal("0.01"))
    result = run_backtest(OneShot(1, 150, None), "ZZ_message_1.csv", day(*BOOK, LATER), model)
    taken = [(OPEN + 70_000, 1, 1010000, 100, "taker"), (OPEN + 70_000, 1, 1020000, 50, "taker")]
    assert fills(result) == taken
    # 1 bp of 10100 + 5100, plus 150 lots x 0.01
    assert result.fees == Decimal("1.01") + Decimal("0.51") + Decimal("1.50")


def test_ioc_limit_takes_what_crosses_and_fok_kills():
    ioc = run_backtest(OneShot(1, 150, "101", "ioc"), "ZZ_message_1.csv", day(*BOOK, LATER))
    assert fills(ioc) == [(OPEN + 70_000, 1, 1010000, 100, "taker")]
    fok = run_backtest(OneShot(1, 150, "101", "fok"), "ZZ_message_1.csv", day(*BOOK, LATER))
    assert fills(fok) == []


def test_risk_limit_rejects_with_the_reason():
    class Recorder(OneShot):
        def on_rejected(self, ctx: Context, event) -> None:
            ctx.log(event.reason)

    result = run_backtest(Recorder(1, 150, None), "ZZ_message_1.csv", day(*BOOK, LATER),
                          limits=RiskLimits(max_order_lots=100))  # fmt: skip
    assert result.fills == []
    assert "exceeds max_order_qty 100" in result.log[0][1]


class Quoter(Strategy):
    """Joins both sides of the touch and re-quotes every 2 ms: many fills of every kind."""

    name = "quoter"
    symbols = ("SYNTH",)

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(2_000_000, "requote")

    def on_timer(self, ctx: Context, name: str) -> None:
        for order in ctx.open_orders():
            ctx.cancel(order.order_id)
        bid, _, ask, _ = ctx.top("SYNTH")
        if bid is not None and ask is not None:
            ctx.buy("SYNTH", 100, bid)
            ctx.sell("SYNTH", 100, ask)
        ctx.set_timer(2_000_000, name)


SESSION, _ = generate(SessionSpec(seed=7, events=4000))


def digest() -> str:
    result = run_backtest(Quoter(), "s.itch", SESSION)
    return hashlib.sha256((result.fills_csv() + result.summary_json()).encode()).hexdigest()


def test_same_inputs_same_bytes_twice_and_in_another_process():
    result = run_backtest(Quoter(), "s.itch", SESSION)
    assert len(result.fills) > 3 and result.feed_errors == []
    here = digest()
    assert here == digest()
    code = "from tests.research.test_backtest import digest; print(digest())"
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=True)  # fmt: skip
    assert other.stdout.strip() == here


def test_prints_trade_the_queue_ahead_then_us_and_through_prints_fill_us():
    data = day(
        *BOOK,
        f"{at(1000)},5,0,60,1000000,1",  # hidden executions (ITCH P prints): 60 of the 100 ahead
        f"{at(2000)},5,0,70,1000000,1",  # the last 40 ahead, then 30 of ours
        f"{at(3000)},5,0,500,999900,1",  # through our price: the other 70
    )
    result = run_backtest(OneShot(1, 100, "100"), "ZZ_message_1.csv", data)
    assert fills(result) == [
        (OPEN + 2_000_000, 1, 1000000, 30, "maker"),
        (OPEN + 3_000_000, 1, 1000000, 70, "maker"),
    ]


def test_a_strategy_with_no_callbacks_is_sampled_every_virtual_second() -> None:
    """The equity curve of a quiet strategy (no market callbacks, no timers) has a point per
    virtual second of data, as a busy one's: the replay pauses for the sampler."""

    class Quiet(Strategy):
        name = "quiet"

    data, _ = generate(SessionSpec(events=20_000, seed=1))
    result = run_backtest(Quiet(), "s.itch", data)
    seconds = result.end_ns // 1_000_000_000
    assert seconds >= 5
    assert [ts for ts, _, _ in result.samples[:seconds]] == [
        (i + 1) * 1_000_000_000 for i in range(seconds)
    ]
