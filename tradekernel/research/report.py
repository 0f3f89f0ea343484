"""Performance report of a backtest run, as text tables, from the run's files.

Input is what `tk backtest --out DIR` writes (fills.csv, samples.csv, summary.json), so a
report can always be made again from a run. Definitions (the sample period is SAMPLE_NS of
virtual time, one second):

- P&L: realised, unrealised (marked at the last trade, else the mid) and fees, in money, as
  the run's Portfolio booked them; net = realised + unrealised - fees.
- Returns are the changes of net P&L per sample period (money, no capital base). Sharpe =
  mean / standard deviation of those changes; Sortino = mean / downside deviation (root mean
  square of the negative changes); both per period, not annualised.
- Max drawdown: the largest fall of net P&L from a running peak, in money; its duration is
  virtual ns from that peak until net P&L is back at the peak (or the end of the run).
- Turnover: traded notional (price x lots x tick value summed over fills).
- Hit ratio: of the fills that closed (part of) a position, the share with positive realised
  P&L (average-cost basis, as the Portfolio books it).
- Fill ratio: filled lots / lots sent.
- Slippage: lot-weighted mean of side x (fill price - mid the strategy saw when it sent the
  order), in ticks; positive is worse than arrival.
- Inventory: mean and max of |position| over the samples.
- Latency: tick-to-order (exchange time of the last market event the strategy had seen to its
  order) percentiles, and the model's order-entry latency on top of it: tick-to-venue.
"""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from tradekernel.kernel.trading.book import BUY


class ReportError(ValueError):
    """A run directory that is missing a file or holds a malformed one."""


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as err:
        raise ReportError(f"{path}: cannot read: {err.strerror}") from None


def load_run(run: Path) -> tuple[dict, list[dict[str, str]], list[tuple[int, Decimal, int]]]:
    try:
        summary = json.loads((run / "summary.json").read_text())
    except OSError as err:
        raise ReportError(f"{run / 'summary.json'}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{run / 'summary.json'}: not JSON: {err}") from None
    fills = _read_csv(run / "fills.csv")
    try:
        samples = [(int(r["ts_ns"]), Decimal(r["net"]), int(r["position_lots"]))
                   for r in _read_csv(run / "samples.csv")]  # fmt: skip
    except (KeyError, ValueError, ArithmeticError) as err:
        raise ReportError(f"{run / 'samples.csv'}: malformed: {err}") from None
    return summary, fills, samples


def metrics(summary: dict, fills: list[dict[str, str]], samples: list[tuple[int, Decimal, int]]
            ) -> dict[str, object]:  # fmt: skip
    """Every figure of the report, keyed by name (see the module docstring)."""
    tick_values = {k: Decimal(v) for k, v in summary.get("tick_values", {}).items()}
    turnover = Decimal(0)
    filled = 0
    slip_num = Decimal(0)
    slip_lots = 0
    positions: dict[str, tuple[int, Fraction]] = {}  # symbol -> (lots, cost in ticks)
    closing = wins = 0
    for row in fills:
        side = BUY if row["side"] == "BUY" else -1
        price, lots, symbol = int(row["price_ticks"]), int(row["lots"]), row["symbol"]
        filled += lots
        turnover += price * lots * tick_values.get(symbol, Decimal(1))
        if row["arrival_mid_ticks"]:
            slip_num += side * (price - Decimal(row["arrival_mid_ticks"])) * lots
            slip_lots += lots
        held, cost = positions.get(symbol, (0, Fraction(0)))
        if held and (held > 0) != (side > 0):
            closed = min(lots, abs(held))
            avg = cost / held
            realized = (price - avg) * closed * (1 if held > 0 else -1)
            closing += 1
            wins += realized > 0
            held_after = held + side * closed
            cost = avg * held_after
            rest = lots - closed
            held = held_after + side * rest
            cost += side * rest * price
        else:
            held += side * lots
            cost += side * lots * price
        positions[symbol] = (held, cost)
    nets = [net for _, net, _ in samples]
    changes = [float(b - a) for a, b in zip(nets, nets[1:], strict=False)]
    mean = sum(changes) / len(changes) if changes else 0.0
    var = sum((c - mean) ** 2 for c in changes) / (len(changes) - 1) if len(changes) > 1 else 0.0
    down = math.sqrt(sum(c * c for c in changes if c < 0) / len(changes)) if changes else 0.0
    peak = peak_ts = None
    max_dd = Decimal(0)
    dd_duration = 0
    dd_start = None
    for ts, net, _ in samples:
        if peak is None or net >= peak:
            if dd_start is not None:
                dd_duration = max(dd_duration, ts - dd_start)
                dd_start = None
            peak, peak_ts = net, ts
        else:
            if dd_start is None:
                dd_start = peak_ts
            if peak - net > max_dd:
                max_dd = peak - net
    if dd_start is not None and samples:
        dd_duration = max(dd_duration, samples[-1][0] - dd_start)
    inventory = [abs(lots) for _, _, lots in samples]
    lots_sent = int(summary.get("lots_sent", 0))
    latency = summary.get("tick_to_order_ns", {})
    order_latency = int(summary.get("order_latency_ns", 0))
    return {
        "realized": Decimal(summary["realized"]), "unrealized": Decimal(summary["unrealized"]),
        "fees": Decimal(summary["fees"]), "net": Decimal(summary["net"]),
        "periods": len(changes), "mean_change": mean,
        "sharpe": mean / math.sqrt(var) if var > 0 else 0.0,
        "sortino": mean / down if down > 0 else 0.0,
        "max_drawdown": max_dd, "drawdown_ns": dd_duration, "turnover": turnover,
        "fills": len(fills), "closing_fills": closing,
        "hit_ratio": wins / closing if closing else 0.0,
        "fill_ratio": filled / lots_sent if lots_sent else 0.0,
        "slippage_ticks": slip_num / slip_lots if slip_lots else Decimal(0),
        "inventory_mean": sum(inventory) / len(inventory) if inventory else 0.0,
        "inventory_max": max(inventory, default=0),
        "tick_to_order_ns": latency,
        "tick_to_venue_ns": {k: v + order_latency for k, v in latency.items()},
    }  # fmt: skip


def _table(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return lines + [""]


def render(summary: dict, figures: dict[str, object]) -> str:
    f = figures
    latency_rows = [
        (name, "  ".join(f"{k} {v}" for k, v in f[key].items()) or "no orders")  # type: ignore[attr-defined]
        for name, key in (("tick-to-order ns", "tick_to_order_ns"),
                          ("tick-to-venue ns", "tick_to_venue_ns"))
    ]  # fmt: skip
    lines = [f"{summary['strategy']} on {summary['data']}  code+config {summary['code_hash']}",
             f"data sha256 {summary['data_hash']}  events {summary['events']}", ""]  # fmt: skip
    lines += _table("P&L (money)", [
        ("realised", f"{f['realized']:.2f}"), ("unrealised", f"{f['unrealized']:.2f}"),
        ("fees", f"{f['fees']:.2f}"), ("net", f"{f['net']:.2f}"),
    ])  # fmt: skip
    lines += _table("Returns (per 1 s of virtual time)", [
        ("periods", str(f["periods"])), ("mean change", f"{f['mean_change']:.4f}"),
        ("Sharpe", f"{f['sharpe']:.4f}"), ("Sortino", f"{f['sortino']:.4f}"),
        ("max drawdown", f"{f['max_drawdown']:.2f}"),
        ("drawdown duration", f"{f['drawdown_ns'] / 1e9:.3f} s"),
    ])  # fmt: skip
    lines += _table("Trading", [
        ("fills", str(f["fills"])), ("turnover", f"{f['turnover']:.2f}"),
        ("hit ratio", f"{f['hit_ratio']:.4f} of {f['closing_fills']} closing fills"),
        ("fill ratio", f"{f['fill_ratio']:.4f}"),
        ("slippage vs arrival", f"{f['slippage_ticks']:.4f} ticks"),
        ("inventory |mean| / max", f"{f['inventory_mean']:.1f} / {f['inventory_max']} lots"),
    ])  # fmt: skip
    lines += _table("Latency (virtual ns)", latency_rows)
    return "\n".join(lines)


def report(run: Path) -> str:
    summary, fills, samples = load_run(run)
    try:
        return render(summary, metrics(summary, fills, samples))
    except (KeyError, ValueError, ArithmeticError) as err:
        raise ReportError(f"{run}: malformed run files: {err}") from None
