"""Strategy and configuration files on the host: read them (size bounded first) and hand the
bytes to the kernel's validation (kernel/trading/config.py), the one the OS's `strategy` and
`backtest` commands use too."""

from __future__ import annotations

from pathlib import Path

from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.config import (
    MAX_FILE_BYTES,
    ConfigError,
    StrategyConfig,
    configure,
    strategy_class,
)
from tradekernel.kernel.trading.strategy import Strategy

SAMPLES = Path(strategies.__file__).parent  # the sample strategies the OS knows by name


def read_bounded(path: Path) -> bytes:
    """A strategy or configuration file's bytes; ConfigError if unreadable or too large."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {size} bytes, more than {MAX_FILE_BYTES}")
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None


def load_strategy_class(path: Path) -> tuple[type[Strategy], bytes]:
    """The one Strategy subclass a file defines, and the file's bytes."""
    source = read_bounded(path)
    return strategy_class(source, str(path)), source


def load(
    strategy_path: Path, config_path: Path | None = None, overrides: dict[str, object] | None = None
) -> tuple[Strategy, StrategyConfig, str]:
    """A configured strategy instance, its configuration, and the hash of code + config.
    Without `config_path`, the .toml beside the strategy file is used."""
    cls, source = load_strategy_class(strategy_path)
    config_path = config_path or strategy_path.with_suffix(".toml")
    return configure(cls, source, read_bounded(config_path), str(config_path), overrides)
