"""Strategy and configuration files on the host: read them (size bounded first) and hand the
bytes to the kernel's validation (kernel/trading/config.py), the one the OS's `strategy` and
`backtest` commands use too."""

from __future__ import annotations

from pathlib import Path

from tradekernel.kernel.trading.config import (
    MAX_FILE_BYTES,
    ConfigError,
    StrategyConfig,
    configure,
    strategy_class,
)
from tradekernel.kernel.trading.strategy import Strategy


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
    return strategy_class(source, str(path)), source


def load(
    strategy_path: Path, config_path: Path | None = None, overrides: dict[str, object] | None = None
) -> tuple[Strategy, StrategyConfig, str]:
    """A configured strategy instance, its configuration, and the hash of code + config.
    Without `config_path`, the .toml beside the strategy file is used."""
    cls, source = load_strategy_class(strategy_path)
    config_path = config_path or strategy_path.with_suffix(".toml")
    return configure(cls, source, _read(config_path), str(config_path), overrides)
