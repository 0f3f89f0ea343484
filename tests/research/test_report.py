"""Report figures on a run small enough to work out by hand, and `tk report` on a real run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from tradekernel.research.cli import backtest, data, report_command
from tradekernel.research.report import metrics, render

SUMMARY = {
    "strategy": "s", "data": "d", "code_hash": "h", "data_hash": "x", "events": 5,
    "realized": "10.00", "unrealized": "0", "fees": "0.50", "net": "9.50", "lots_sent": 400,
    "tick_values": {"ZZ": "0.01"}, "tick_to_order_ns": {"p50": 20000, "max": 30000},
    "order_latency_ns": 50000,
}  # fmt: skip
FILLS = [
    {"side": side, "price_ticks": price, "lots": "100", "symbol": "ZZ", "arrival_mid_ticks": mid}
    for side, price, mid in (("BUY", "1000", "999"), ("SELL", "1010", "1011"))
]
SAMPLES = [(i * 10**9, Decimal(n), 0) for i, n in enumerate((0, 10, 4, 12, 6))]


def test_figures_worked_by_hand() -> None:
    f = metrics(SUMMARY, FILLS, SAMPLES)
    assert f["max_drawdown"] == 6
    assert f["drawdown_ns"] == 2 * 10**9  # peak 10 at 1 s, back above it at 3 s
    assert f["turnover"] == Decimal("2010.00")
    assert f["hit_ratio"] == 1.0 and f["closing_fills"] == 1
    assert f["fill_ratio"] == 0.5
    assert f["slippage_ticks"] == 1  # bought 1 above the mid, sold 1 below it
    assert f["tick_to_venue_ns"] == {"p50": 70000, "max": 80000}
    assert abs(f["sharpe"] - 1.5 / (227 / 3) ** 0.5) < 1e-12  # changes 10, -6, 8, -6
    assert abs(f["sortino"] - 1.5 / (18.0**0.5)) < 1e-12
    text = render(SUMMARY, f)
    assert "max drawdown" in text and "p50 70000" in text


def test_tk_report_on_a_backtest_run(tmp_path: Path) -> None:
    runner = CliRunner()
    session = tmp_path / "s.itch"
    runner.invoke(data, ["generate", str(session), "--events", "5000"])
    run = tmp_path / "run"
    assert runner.invoke(backtest, ["imbalance", str(session), "--out", str(run), "--quiet"]
                         ).exit_code == 0  # fmt: skip
    shown = runner.invoke(report_command, [str(run)])
    assert shown.exit_code == 0, shown.output
    for title in ("P&L (money)", "Sharpe", "hit ratio", "tick-to-order ns"):
        assert title in shown.output
    (run / "samples.csv").write_text("ts_ns,net\n1,x\n")
    broken = runner.invoke(report_command, [str(run)])
    assert broken.exit_code == 1 and "samples.csv: malformed" in broken.output
