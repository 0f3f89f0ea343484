"""`tk backtest` / `tk data` as a script sees them: exit codes, one-line summaries and errors,
files that replay, runs that repeat."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tradekernel.research.cli import backtest, data

RAISER = """
from tradekernel.kernel.trading.strategy import Strategy

class Raiser(Strategy):
    name = "raiser"
    def on_book(self, ctx, top):
        raise ZeroDivisionError("boom")
"""


def test_generate_then_backtest_twice_same_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    session = tmp_path / "s.itch"
    made = runner.invoke(data, ["generate", str(session), "--seed", "4", "--events", "5000"])
    assert made.exit_code == 0, made.output
    again = tmp_path / "t.itch"
    runner.invoke(data, ["generate", str(again), "--seed", "4", "--events", "5000"])
    assert session.read_bytes() == again.read_bytes()
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        ran = runner.invoke(backtest, ["momentum", str(session), "--out", str(out), "--quiet"])
        assert ran.exit_code == 0, ran.output
        assert ran.output.startswith("ok momentum on s.itch: ") and ran.output.count("\n") == 1
        runs.append((out / "fills.csv").read_bytes() + (out / "summary.json").read_bytes())
    assert runs[0] == runs[1]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["fills"] > 0 and len(summary["code_hash"]) == 64


def test_bad_inputs_exit_1_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    session = tmp_path / "s.itch"
    runner.invoke(data, ["generate", str(session), "--events", "500"])
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[instruments]\nsymbols = ['SYNTH']\n[params]\nfast = 'x'\n")
    for args, message in (
        (["nosuch", str(session)], "not a .py file nor a sample strategy"),
        (["momentum", str(tmp_path / "missing.itch")], "cannot read"),
        (["momentum", str(session), "--config", str(bad_config)], "[params] fast: must be"),
        (["momentum", str(tmp_path / "bad.toml")], "unknown feed format"),
    ):
        ran = CliRunner().invoke(backtest, [*args, "--quiet"])
        assert ran.exit_code == 1, (args, ran.output)
        assert message in ran.output and "Traceback" not in ran.output


def test_raising_strategy_exits_2_and_corrupt_data_exits_3(tmp_path: Path) -> None:
    runner = CliRunner()
    session = tmp_path / "s.itch"
    runner.invoke(data, ["generate", str(session), "--events", "2000"])
    raiser = tmp_path / "raiser.py"
    raiser.write_text(RAISER)
    (tmp_path / "raiser.toml").write_text("[instruments]\nsymbols = ['SYNTH']\n")
    ran = runner.invoke(backtest, [str(raiser), str(session), "--quiet"])
    assert ran.exit_code == 2
    assert "on_book raised ZeroDivisionError: boom" in ran.output
    corrupt = tmp_path / "c.itch"
    corrupt.write_bytes(session.read_bytes() + b"\x00\x03\x01\x02\x03")  # unknown type 0x01
    ran = runner.invoke(backtest, ["momentum", str(corrupt), "--quiet"])
    assert ran.exit_code == 3 and "data: " in ran.output, ran.output


def test_lobster_conversion(tmp_path: Path) -> None:
    source = tmp_path / "ZZ_2012-06-21_message_1.csv"
    source.write_text("34200.0,1,1,100,1000000,1\n34200.1,1,2,100,1010000,-1\nbad line\n")
    out = tmp_path / "zz.itch"
    ran = CliRunner().invoke(data, ["lobster", str(source), str(out), "--symbol", "ZZ"])
    assert ran.exit_code == 3 and "1 bad lines skipped" in ran.output
    assert out.stat().st_size > 0
