"""A backtest's raw results as Parquet (fills.parquet, samples.parquet, latency.parquet), beside
the CSV files of the same rows, for pandas and polars (`pandas.read_parquet(path)`).

Made from the run's files (BacktestResult.run_files: fills.csv, samples.csv, latency.csv), the
ones the machine wrote on its disk or a host run wrote, so Parquet and CSV hold the same rows
whichever ran it. Types keep the run exact: times, ids, ticks and lots are int64; money and
marks are decimal128 with the scale the values need (pandas reads them as decimal.Decimal), so
the Parquet and CSV files hold the same numbers, digit for digit; an empty cell (a mark or an
arrival mid that is not known) is null. Written with no wall-clock metadata, so the same run
gives the same bytes. A file that is missing or malformed is a ReportError naming it.

Uses pyarrow (imported when a run is written: `tk` starts without it).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .report import ReportError

DECIMAL_PRECISION = 38  # decimal128's widest
INT, TEXT, MONEY = "int64", "string", "decimal"
COLUMNS = {  # file -> (column, type), in the order run_files writes them
    "fills": (("ts_ns", INT), ("order_id", INT), ("symbol", TEXT), ("side", TEXT),
              ("price_ticks", INT), ("lots", INT), ("liquidity", TEXT), ("fee", MONEY),
              ("arrival_mid_ticks", MONEY)),
    "samples": (("ts_ns", INT), ("net", MONEY), ("position_lots", INT), ("mark_ticks", MONEY)),
    "latency": (("tick_to_order_ns", INT),),
}  # fmt: skip


def _decimals(values: list[Decimal | None]):  # noqa: ANN202 - a pyarrow array
    import pyarrow as pa

    scale = max((-v.as_tuple().exponent for v in values if v is not None), default=0)  # type: ignore[operator]
    scale = max(0, min(scale, DECIMAL_PRECISION - 10))  # ten integer digits at least
    return pa.array(values, type=pa.decimal128(DECIMAL_PRECISION, scale))


def _column(kind: str, cells: list[str]):  # noqa: ANN202 - a pyarrow array
    import pyarrow as pa

    if kind == INT:
        return pa.array([int(c) for c in cells], pa.int64())
    if kind == MONEY:
        return _decimals([Decimal(c) if c else None for c in cells])
    return pa.array(cells, pa.string())


def tables(files: dict[str, bytes]) -> dict[str, object]:
    """name -> pyarrow Table of the run's fills, samples and tick-to-order latencies, read from
    the CSV files of `files` (name -> bytes)."""
    import pyarrow as pa

    out: dict[str, object] = {}
    for name, columns in COLUMNS.items():
        where = f"{name}.csv"
        try:
            rows = list(csv.reader(io.StringIO(files[where].decode())))
            if rows[0] != [c for c, _ in columns]:
                raise ValueError(f"header {rows[0]!r}")
            cells = list(zip(*rows[1:], strict=True)) or [()] * len(columns)
            if len(cells) != len(columns):
                raise ValueError(f"{len(cells)} columns")
            arrays = {c: _column(kind, list(col))
                      for (c, kind), col in zip(columns, cells, strict=True)}  # fmt: skip
        except KeyError:
            raise ReportError(f"{where}: missing from the run") from None
        except (IndexError, ValueError, InvalidOperation, UnicodeDecodeError) as err:
            raise ReportError(f"{where}: malformed: {err}") from None
        out[name] = pa.table(arrays)
    return out


def write_tables(made: dict[str, object], out: Path) -> None:
    """`tables(...)` as NAME.parquet files in `out`."""
    import pyarrow.parquet as pq

    for name, table in made.items():
        pq.write_table(table, out / f"{name}.parquet")  # type: ignore[arg-type]
