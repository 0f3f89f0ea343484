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
wrong. Floats in the TOML are read as exact decimals. `configure` returns the configured
strategy and the content hash of the strategy source and the configuration text
(backtest.content_hash), which every result records. Files come in as bytes: the kernel reads
them from its disk, the host's `tk backtest` from the host's (research/config.py).
"""

from __future__ import annotations

import ast
import tomllib
import types
from dataclasses import dataclass
from decimal import Decimal

from .backtest import FillModel, RiskLimits, content_hash
from .strategy import CpuWatchdog, Strategy, StrategyOverrun, describe_error

MAX_FILE_BYTES = 1 << 20  # a strategy or configuration file larger than this is refused
MAX_SYMBOLS = 64
LOAD_BUDGET_NS = 2_000_000_000  # CPU time a strategy file's import may use
_KINDS = {int: "an integer", Decimal: "a number", str: "a string", bool: "true or false"}
_RISK = ("max_order_lots", "max_position_lots", "max_orders_per_s")
_FILL_INTS = ("order_latency_ns", "md_latency_ns", "max_sweep_levels")
_FILL_DECIMALS = ("fee_bps", "fee_per_lot")
_CATCH_ALL = ("BaseException", "StrategyOverrun")


class ConfigError(ValueError):
    """One line: which file, where in it, what is wrong."""


@dataclass(frozen=True)
class StrategyConfig:
    symbols: tuple[str, ...]
    params: dict[str, object]
    risk: RiskLimits
    fill: FillModel


def strategy_class(source: bytes, origin: str) -> type[Strategy]:
    """The one Strategy subclass that `source` (a strategy file's bytes) defines, executed in
    a module namespace of its own. `origin` names the file in every message."""
    if len(source) > MAX_FILE_BYTES:
        raise ConfigError(f"{origin}: {len(source)} bytes, more than {MAX_FILE_BYTES}")
    name = "tk_strategy_" + origin.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    module = types.ModuleType(name)
    module.__file__ = origin
    try:
        tree = ast.parse(source, origin)
        _refuse_catch_all(tree, origin)
        code = compile(tree, origin, "exec")
        # under the CPU watchdog: a module-level loop that never ends must not hang the shell
        CpuWatchdog.for_this_thread().run(lambda: exec(code, module.__dict__), LOAD_BUDGET_NS)  # noqa: S102
    except StrategyOverrun:
        raise ConfigError(f"{origin}: its import used more than {LOAD_BUDGET_NS // 1_000_000} "
                          "ms of CPU") from None  # fmt: skip
    except SyntaxError as err:
        raise ConfigError(f"{origin}:{err.lineno}: syntax error: {err.msg}") from None
    except ConfigError:
        raise
    except (Exception, SystemExit) as err:  # noqa: BLE001 - a strategy file's import
        raise ConfigError(f"{origin}: import raised {describe_error(err)}") from None
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Strategy) and value is not Strategy
        and value.__module__ == name
    ]  # fmt: skip
    if len(found) != 1:
        raise ConfigError(f"{origin}: defines {len(found)} Strategy subclasses, expected exactly 1")
    schema = getattr(found[0], "PARAMS", {})
    if not isinstance(schema, dict) or not all(
        isinstance(name, str) and isinstance(spec, tuple) and len(spec) == 2
        and any(spec[0] is kind for kind in _KINDS)
        for name, spec in schema.items()
    ):  # fmt: skip
        raise ConfigError(f"{origin}: PARAMS must map names to (kind, default), kind one of "
                          "int, Decimal, str, bool")  # fmt: skip
    return found[0]


def _refuse_catch_all(tree: ast.Module, origin: str) -> None:
    """A strategy may not catch everything: a bare `except:` or one naming BaseException
    would also catch the watchdog's StrategyOverrun (strategy.py) and keep a runaway loop
    alive. `except Exception` is fine: the watchdog's shot is not an Exception."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.ExceptHandler):
            continue
        kinds = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        for kind in kinds:
            if kind is None or (isinstance(kind, ast.Name | ast.Attribute) and
                                ast.unparse(kind).split(".")[-1] in _CATCH_ALL):  # fmt: skip
                what = "a bare except" if kind is None else f"except {ast.unparse(kind)}"
                raise ConfigError(f"{origin}:{node.lineno}: {what} would catch the CPU "
                                  "watchdog's stop; catch Exception instead")  # fmt: skip


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


def parse_config(text: str, origin: str, params_schema: dict[str, tuple[type, object]],
                 overrides: dict[str, object] | None = None) -> StrategyConfig:  # fmt: skip
    """Validate a configuration; `overrides` replace or add [params] entries (checked alike)."""
    try:
        doc = tomllib.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError) as err:  # a TOMLDecodeError, an int past Python's
        # digit limit, arrays nested a thousand deep
        raise ConfigError(f"{origin}: not valid TOML: {str(err)[:80]}") from None
    if overrides:
        params_table = doc.setdefault("params", {})
        if isinstance(params_table, dict):
            params_table.update(overrides)
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


def configure(
    cls: type[Strategy],
    source: bytes,
    config_text: bytes,
    origin: str,
    overrides: dict[str, object] | None = None,
) -> tuple[Strategy, StrategyConfig, str]:
    """A configured instance of `cls`, its configuration, and the hash of code + configuration
    (+ the overrides, in a canonical form): what every result records."""
    try:
        decoded = config_text.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{origin}: not UTF-8 text") from None
    config = parse_config(decoded, origin, getattr(cls, "PARAMS", {}), overrides)
    made: list[Strategy] = []
    try:  # its __init__ is strategy code: contained and under the watchdog as its import
        CpuWatchdog.for_this_thread().run(lambda: made.append(cls()), LOAD_BUDGET_NS)
    except StrategyOverrun:
        raise ConfigError(f"{origin}: the strategy's __init__ used more than "
                          f"{LOAD_BUDGET_NS // 1_000_000} ms of CPU") from None  # fmt: skip
    except (Exception, SystemExit) as err:  # noqa: BLE001
        raise ConfigError(f"{origin}: the strategy's __init__ raised {describe_error(err)}"
                          ) from None  # fmt: skip
    strategy = made[0]
    strategy.symbols = config.symbols
    strategy.params = dict(config.params)  # type: ignore[attr-defined]
    extra = "".join(f"{k}={overrides[k]!r}\n" for k in sorted(overrides or {})).encode()
    parts = (source, config_text, extra) if extra else (source, config_text)
    return strategy, config, content_hash(*parts)


def parse_override(text: str) -> tuple[str, object]:
    """`name=value` from a command line: the value as a TOML value (1, 0.5, true, "x"),
    or as a string when it is not one."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--param {text!r}: expected NAME=VALUE")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}", parse_float=Decimal)["v"]
    except (ValueError, RecursionError):  # not TOML (or past its digit or nesting limits)
        parsed = value
    return name.strip(), parsed
