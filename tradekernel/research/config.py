"""Strategy files and their TOML configurations: load, validate, hash.

A strategy file is a Python module defining exactly one Strategy subclass. Its `PARAMS`
class attribute declares the parameters it accepts: name -> (kind, default), kind one of
int, Decimal, str, bool. A configuration file has four tables, all optional but [instruments]:

    [instruments]  symbols = ["SYNTH"]            what the strategy trades and listens to
    [params]       name = value                   checked against PARAMS (unknown, wrong kind)
    [risk]         max_order_lots, max_position_lots, max_orders_per_s   (positive ints)
    [fill]         order_latency_ns, md_latency_ns (ints >= 0), fee_bps, fee_per_lot
                   (decimals >= 0), max_sweep_levels (positive int): backtest.FillModel

Every problem is a ConfigError of one line naming the file, the table and key, and what is
wrong. Floats in the TOML are read as exact decimals. `load` returns the configured strategy
and the content hash of the strategy source and the configuration text (backtest.content_hash),
which every result records.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tradekernel.kernel.trading.backtest import FillModel, RiskLimits, content_hash
from tradekernel.kernel.trading.strategy import Strategy

MAX_FILE_BYTES = 1 << 20  # a strategy or configuration file larger than this is refused
MAX_SYMBOLS = 64
_KINDS = {int: "an integer", Decimal: "a number", str: "a string", bool: "true or false"}
_RISK = ("max_order_lots", "max_position_lots", "max_orders_per_s")
_FILL_INTS = ("order_latency_ns", "md_latency_ns", "max_sweep_levels")
_FILL_DECIMALS = ("fee_bps", "fee_per_lot")


class ConfigError(ValueError):
    """One line: which file, where in it, what is wrong."""


@dataclass(frozen=True)
class StrategyConfig:
    symbols: tuple[str, ...]
    params: dict[str, object]
    risk: RiskLimits
    fill: FillModel


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {size} bytes, more than {MAX_FILE_BYTES}")
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None


def load_strategy_class(path: Path) -> tuple[type[Strategy], bytes]:
    """The one Strategy subclass a file defines, and the file's bytes."""
    source = _read(path)
    name = f"tk_strategy_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno}: syntax error: {err.msg}") from None
    except Exception as err:  # noqa: BLE001 - a strategy file's import is outside code
        raise ConfigError(f"{path}: import raised {type(err).__name__}: {err}") from None
    sys.modules.pop(name, None)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Strategy) and value is not Strategy
        and value.__module__ == name
    ]  # fmt: skip
    if len(found) != 1:
        raise ConfigError(f"{path}: defines {len(found)} Strategy subclasses, expected exactly 1")
    return found[0], source


def _kind_ok(kind: type, value: object) -> bool:
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is Decimal:
        return isinstance(value, (int, Decimal))
    return isinstance(value, kind)


def _int(where: str, table: dict, key: str, low: int) -> int | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where} {key}: must be an integer >= {low}, got {value!r}")
    return value


def parse_config(text: str, origin: str, params_schema: dict[str, tuple[type, object]]
                 ) -> StrategyConfig:  # fmt: skip
    try:
        doc = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{origin}: not valid TOML: {err}") from None
    for table in doc:
        if table not in ("instruments", "params", "risk", "fill", "strategy"):
            raise ConfigError(f"{origin}: unknown table [{table}] (expected instruments, "
                              "params, risk, fill)")  # fmt: skip
        if not isinstance(doc[table], dict):
            raise ConfigError(f"{origin}: {table} must be a table [{table}]")
    symbols = doc.get("instruments", {}).get("symbols")
    if (not isinstance(symbols, list) or not symbols or len(symbols) > MAX_SYMBOLS
            or not all(isinstance(s, str) and s for s in symbols)):  # fmt: skip
        raise ConfigError(f"{origin}: [instruments] symbols: must be a list of 1-{MAX_SYMBOLS} "
                          f"symbol strings, got {symbols!r}")  # fmt: skip
    params = {name: default for name, (_, default) in params_schema.items()}
    for key, value in doc.get("params", {}).items():
        if key not in params_schema:
            known = ", ".join(sorted(params_schema)) or "none"
            raise ConfigError(f"{origin}: [params] {key}: unknown parameter (known: {known})")
        kind = params_schema[key][0]
        if not _kind_ok(kind, value):
            raise ConfigError(f"{origin}: [params] {key}: must be {_KINDS[kind]}, got {value!r}")
        params[key] = Decimal(value) if kind is Decimal else value
    risk_table = doc.get("risk", {})
    fill_table = doc.get("fill", {})
    for table, name, known in (
        (risk_table, "risk", _RISK), (fill_table, "fill", _FILL_INTS + _FILL_DECIMALS),
    ):  # fmt: skip
        for key in table:
            if key not in known:
                raise ConfigError(f"{origin}: [{name}] {key}: unknown (known: {', '.join(known)})")
    risk = {k: v for k in _RISK if (v := _int(f"{origin}: [risk]", risk_table, k, 1)) is not None}
    fill: dict[str, object] = {}
    for key in _FILL_INTS:
        value = _int(f"{origin}: [fill]", fill_table, key, 1 if key == "max_sweep_levels" else 0)
        if value is not None:
            fill[key] = value
    for key in _FILL_DECIMALS:
        if key in fill_table:
            value = fill_table[key]
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value < 0:
                raise ConfigError(f"{origin}: [fill] {key}: must be a number >= 0, got {value!r}")
            fill[key] = Decimal(value)
    return StrategyConfig(tuple(symbols), params, RiskLimits(**risk), FillModel(**fill))  # type: ignore[arg-type]


def load(strategy_path: Path, config_path: Path | None = None
         ) -> tuple[Strategy, StrategyConfig, str]:  # fmt: skip
    """A configured strategy instance, its configuration, and the hash of code + config.
    Without `config_path`, the .toml beside the strategy file is used."""
    cls, source = load_strategy_class(strategy_path)
    config_path = config_path or strategy_path.with_suffix(".toml")
    text = _read(config_path)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{config_path}: not UTF-8 text") from None
    config = parse_config(decoded, str(config_path), getattr(cls, "PARAMS", {}))
    strategy = cls()
    strategy.symbols = config.symbols
    strategy.params = dict(config.params)  # type: ignore[attr-defined]
    return strategy, config, content_hash(source, text)
