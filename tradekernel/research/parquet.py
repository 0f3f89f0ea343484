"""A backtest's raw results as Parquet (fills.parquet, samples.parquet, latency.parquet), beside
the CSV files of the same rows, for pandas and polars (`pandas.read_parquet(path)`).

Types keep the run exact: times, ids, ticks and lots are int64; money and marks are decimal128
with the scale the values need (pandas reads them as decimal.Decimal), so the Parquet and CSV
files hold the same numbers, digit for digit; a mark that is not known is null. Written with no
wall-clock metadata, so the same run gives the same bytes.

Uses pyarrow (imported when a run is written: `tk` starts without it).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tradekernel.kernel.trading.backtest import BacktestResult
from tradekernel.kernel.trading.book import BUY

DECIMAL_PRECISION = 38  # decimal128's widest


def _decimals(values: list[Decimal | None]):  # noqa: ANN202 - a pyarrow array
    import pyarrow as pa

    scale = max((-v.as_tuple().exponent for v in values if v is not None), default=0)  # type: ignore[operator]
    scale = max(0, min(scale, DECIMAL_PRECISION - 10))  # ten integer digits at least
    return pa.array(values, type=pa.decimal128(DECIMAL_PRECISION, scale))


def tables(result: BacktestResult) -> dict[str, object]:
    """name -> pyarrow Table of the run's fills, samples and tick-to-order latencies."""
    import pyarrow as pa

    fills = result.fills
    marks = [Decimal(m) if m else None for m in result.marks]
    return {
        "fills": pa.table({
            "ts_ns": pa.array([f[0] for f in fills], pa.int64()),
            "order_id": pa.array([f[1] for f in fills], pa.int64()),
            "symbol": pa.array([f[2] for f in fills], pa.string()),
            "side": pa.array(["BUY" if f[3] == BUY else "SELL" for f in fills], pa.string()),
            "price_ticks": pa.array([f[4] for f in fills], pa.int64()),
            "lots": pa.array([f[5] for f in fills], pa.int64()),
            "liquidity": pa.array([f[6] for f in fills], pa.string()),
            "fee": _decimals([f[7] for f in fills]),
            "arrival_mid_ticks": _decimals([f[8] for f in fills]),
        }),
        "samples": pa.table({
            "ts_ns": pa.array([s[0] for s in result.samples], pa.int64()),
            "net": _decimals([s[1] for s in result.samples]),
            "position_lots": pa.array([s[2] for s in result.samples], pa.int64()),
            "mark_ticks": _decimals(marks),
        }),
        "latency": pa.table({
            "tick_to_order_ns": pa.array(result.tick_to_order_ns, pa.int64()),
        }),
    }  # fmt: skip


def write_parquet(result: BacktestResult, out: Path) -> None:
    import pyarrow.parquet as pq

    for name, table in tables(result).items():
        pq.write_table(table, out / f"{name}.parquet")  # type: ignore[arg-type]
