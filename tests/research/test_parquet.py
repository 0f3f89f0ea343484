"""`tk backtest --out` writes the run's rows as Parquet beside the CSV: pandas reads both and
finds the same numbers, digit for digit (money as exact decimals), and the same run gives the
same Parquet bytes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from tradekernel.research.cli import backtest
from tradekernel.research.synthetic import SessionSpec, generate

EXACT = {"fee": Decimal, "arrival_mid_ticks": Decimal, "net": Decimal, "mark_ticks": Decimal}


def test_parquet_holds_the_csv_rows_for_pandas(tmp_path: Path) -> None:
    data = tmp_path / "s.itch"
    data.write_bytes(generate(SessionSpec(events=6_000, seed=8))[0])
    config = tmp_path / "mm.toml"  # fees, so the money columns are not all zero
    config.write_text("[instruments]\nsymbols = ['SYNTH']\n[fill]\nfee_bps = 0.35\n"
                      "fee_per_lot = 0.0013\n")  # fmt: skip
    for run in ("a", "b"):
        ran = CliRunner().invoke(backtest, ["market_maker", str(data), "--host", "--quiet",
                                            "--config", str(config), "--out",
                                            str(tmp_path / run)])  # fmt: skip
        assert ran.exit_code == 0, ran.output
    out = tmp_path / "a"
    for name in ("fills", "samples", "latency"):
        table = pd.read_parquet(out / f"{name}.parquet")
        csv = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        assert list(table.columns) == list(csv.columns)
        assert len(table) == len(csv) > 0, name
        for column in table.columns:
            if column in EXACT:
                assert all(v is None or isinstance(v, Decimal) for v in table[column])
                got = ["" if v is None else v for v in table[column]]
                assert got == [Decimal(v) if v else "" for v in csv[column]], column
            else:
                assert [str(v) for v in table[column]] == list(csv[column]), column
        again = tmp_path / "b" / f"{name}.parquet"
        assert (out / f"{name}.parquet").read_bytes() == again.read_bytes()
    fees = pd.read_parquet(out / "fills.parquet")["fee"]
    assert sum(fees) > 0
