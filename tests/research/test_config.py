"""Strategy configurations: each kind of mistake is one clear line; the content hash follows
the code and the configuration; the three sample strategies trade on a synthetic session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.config import (
    ConfigError,
    configure,
    parse_config,
    parse_override,
    strategy_class,
)
from tradekernel.research import config
from tradekernel.research.synthetic import SessionSpec, generate

SAMPLES = Path(strategies.__file__).parent
MM = SAMPLES / "market_maker.py"
SCHEMA = config.load_strategy_class(MM)[0].PARAMS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[instruments]\nsymbols = []", "[instruments] symbols: must be a list"),
        ("[params]\nsize = 1", "[instruments] symbols"),
        (
            '[instruments]\nsymbols = ["A"]\n[params]\nsize = "big"',
            "[params] size: must be an integer",
        ),
        (
            '[instruments]\nsymbols = ["A"]\n[params]\nspread = 1',
            "[params] spread: unknown parameter",
        ),
        (
            '[instruments]\nsymbols = ["A"]\n[params]\nsize = true',
            "[params] size: must be an integer",
        ),
        (
            '[instruments]\nsymbols = ["A"]\n[risk]\nmax_order_lots = 0',
            "[risk] max_order_lots: must be an integer >= 1",
        ),
        (
            '[instruments]\nsymbols = ["A"]\n[fill]\nfee_bps = -1',
            "[fill] fee_bps: must be a number >= 0",
        ),
        ('[instruments]\nsymbols = ["A"]\n[fill]\nlatency = 1', "[fill] latency: unknown"),
        ('[instruments]\nsymbols = ["A"]\n[bogus]', "unknown table [bogus]"),
        ("[instruments\n", "not valid TOML"),
        ("x = " + "[" * 3000 + "]" * 3000, "not valid TOML"),  # past the reader's recursion
        ("x = " + "1" * 5000, "not valid TOML"),  # past Python's int digit limit
    ],
)
def test_mistakes_are_one_line_naming_where(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mm.toml", SCHEMA)
    assert message in str(caught.value)
    assert str(caught.value).startswith("mm.toml: ") and "\n" not in str(caught.value)


def test_decimals_are_exact_and_defaults_fill_in() -> None:
    parsed = parse_config('[instruments]\nsymbols = ["A"]\n[params]\nhalf_spread = 0.1',
                                 "x", SCHEMA)  # fmt: skip
    assert str(parsed.params["half_spread"]) == "0.1"
    assert parsed.params["size"] == 100


def test_bad_strategy_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    with pytest.raises(ConfigError, match="broken.py:1: syntax error"):
        config.load_strategy_class(broken)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines 0 Strategy subclasses"):
        config.load_strategy_class(empty)
    raising = tmp_path / "raising.py"
    raising.write_text("raise RuntimeError('no')\n")
    with pytest.raises(ConfigError, match="import raised RuntimeError: no"):
        config.load_strategy_class(raising)


def test_hash_follows_code_and_config(tmp_path: Path) -> None:
    for name in ("market_maker.py", "market_maker.toml"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    copy = tmp_path / "market_maker.py"
    base = config.load(copy)[2]
    assert base == config.load(MM)[2]
    toml = tmp_path / "market_maker.toml"
    toml.write_text(toml.read_text().replace("size = 100", "size = 200"))
    changed_config = config.load(copy)[2]
    copy.write_text(copy.read_text() + "\n# a comment\n")
    changed_code = config.load(copy)[2]
    assert len({base, changed_config, changed_code}) == 3


SESSION, _ = generate(SessionSpec(seed=5, events=20000))


@pytest.mark.parametrize("name", ["market_maker", "momentum", "imbalance"])
def test_samples_trade_and_record_their_hash(name: str) -> None:
    strategy, cfg, digest = config.load(SAMPLES / f"{name}.py")
    result = run_backtest(strategy, "s.itch", SESSION, cfg.fill, cfg.risk, digest)
    assert result.strategy_error is None and result.feed_errors == []
    assert len(result.fills) >= 4
    assert result.summary()["code_hash"] == digest
    assert max(abs(lots) for _, _, lots in result.samples) <= cfg.risk.max_position_lots


def test_outside_values_that_break_the_toml_reader_are_config_errors() -> None:
    assert parse_override("x=" + "[" * 3000) == ("x", "[" * 3000)  # kept as text
    assert parse_override("x=" + "1" * 5000) == ("x", "1" * 5000)
    with pytest.raises(ConfigError, match="PARAMS must map names to"):
        strategy_class(b"from tradekernel.kernel.trading.strategy import Strategy\n"
                       b"class S(Strategy):\n    PARAMS = {'a': int}\n", "s.py")  # fmt: skip
    cls = strategy_class(b"from tradekernel.kernel.trading.strategy import Strategy\n"
                         b"class S(Strategy):\n    def __init__(self):\n        1 / 0\n",
                         "s.py")  # fmt: skip
    with pytest.raises(ConfigError, match="__init__ raised ZeroDivisionError"):
        configure(cls, b"", b'[instruments]\nsymbols = ["A"]\n', "s.toml")
