"""The sample market maker trades on synthetic sessions from `tk data generate`'s generator:
it once re-entered both quotes every 5 ms, two ticks behind the touch, so it sat at the back
of every queue and made no fill at all on seed 1. Now it keeps a quote whose price holds
(keeping its place in the queue), joins the touch when flat, and on three seeds it fills on
both sides, keeps its inventory within its limit, and loses or makes at most a few ticks per
share traded (net = realized + unrealized - fees)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.book import BUY, SELL
from tradekernel.research.config import load
from tradekernel.research.synthetic import SessionSpec, generate

SAMPLE = Path(strategies.__file__).with_name("market_maker.py")
MAX_LOSS_PER_SHARE = Decimal("0.03")  # three ticks of $0.01 per share traded


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_sample_market_maker_fills_on_synthetic_sessions(seed: int) -> None:
    data, _ = generate(SessionSpec(events=20_000, seed=seed))
    strategy, cfg, digest = load(SAMPLE)
    result = run_backtest(strategy, "s.itch", data, cfg.fill, cfg.risk, digest)
    assert result.strategy_error is None and result.feed_errors == []
    sides = {fill[3] for fill in result.fills}
    assert len(result.fills) >= 50 and sides == {BUY, SELL}, result.one_line()
    assert {fill[6] for fill in result.fills} == {"maker"}  # it never crosses the spread
    shares = sum(fill[5] for fill in result.fills)
    assert abs(result.position.get("SYNTH", 0)) <= strategy.params["max_inventory"]
    assert result.net == result.realized + result.unrealized - result.fees
    assert abs(result.net) <= MAX_LOSS_PER_SHARE * shares, result.one_line()
