"""Instruments and the exact conversions between decimal text and integer ticks/lots.

Inside the engine a price is an int number of ticks and a quantity an int number of lots.
Decimal text is turned into ints only here, exactly: a value that is not a whole number of
ticks or lots is an error, never rounded. TOML is read with floats parsed as Decimal, so
`tick_size = 0.01` never passes through binary floating point.

Config format (/etc/instruments.toml):

    [instruments.AAPL]
    tick_size = 0.01
    lot_size = 1
    price_band = [1, 10000]     # lowest and highest accepted limit price
    multiplier = 1              # money per (price unit x quantity unit); e.g. 50 for ES

Every number from outside (config, feed, command) is bounded before any arithmetic: at most
MAX_TEXT_CHARS characters of text, below 10**MAX_MAGNITUDE_EXP in size and with at most
MAX_PLACES decimal places. So a tick or lot count is below 10**(MAX_MAGNITUDE_EXP + MAX_PLACES),
every product the engine forms stays inside _EXACT's precision, and no decimal exception can
come out of a conversion: bad values are InstrumentError (a ValueError) with what and where.
A config is bounded too (MAX_CONFIG_BYTES, MAX_INSTRUMENTS, nesting), and any failure of the
TOML reader becomes an InstrumentError, so the kernel can always fall back to the defaults.
"""

from __future__ import annotations

import decimal
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal

# Bounds on numbers from outside (see the module docstring) and on a config file.
MAX_TEXT_CHARS = 40  # characters of one number's text
MAX_MAGNITUDE_EXP = 15  # |value| < 10**15: prices, quantities, multipliers, risk limits
MAX_PLACES = 12  # decimal places: tick and lot sizes down to 1e-12
MAX_CONFIG_BYTES = 64 * 1024  # an instruments.toml larger than this is refused unread
MAX_INSTRUMENTS = 512  # instruments in one config (each gets a book)

# (10**27)**2 (a tick count times a lot count) fits in 60 digits with room for sums
_EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero])


class InstrumentError(ValueError):
    """Bad instrument config, unknown symbol, or a value that is not a tick/lot multiple."""


def _shown(text: object) -> str:
    """A value for an error message, cut short: a 5000-digit number is not echoed whole."""
    shown = repr(text) if isinstance(text, str) else str(text)
    return shown if len(shown) <= MAX_TEXT_CHARS else shown[: MAX_TEXT_CHARS - 3] + "..."


def parse_decimal(text: str | int | Decimal, what: str) -> Decimal:
    """Decimal from text or int within the bounds above, rejecting floats, NaN and infinities."""
    if isinstance(text, float):
        raise InstrumentError(f"{what}: binary float {text!r} is not accepted; use text")
    if isinstance(text, bool) or not isinstance(text, str | int | Decimal):
        raise InstrumentError(f"{what}: {_shown(text)} is not a number")
    if isinstance(text, Decimal):
        value = text
    else:
        if isinstance(text, int):
            if abs(text) >= 10**MAX_MAGNITUDE_EXP:  # checked before str(): no 5000-digit text
                raise InstrumentError(f"{what}: {_shown(text)} is too large")
            text = str(text)
        body = text.strip()
        if len(body) > MAX_TEXT_CHARS:
            raise InstrumentError(f"{what}: {_shown(body)} is too long for a number")
        try:
            value = Decimal(body)
        except decimal.InvalidOperation:
            raise InstrumentError(f"{what}: {_shown(body)} is not a decimal number") from None
    if not value.is_finite():
        raise InstrumentError(f"{what}: {_shown(text)} is not a finite number")
    if value and value.adjusted() >= MAX_MAGNITUDE_EXP:
        raise InstrumentError(f"{what}: {_shown(text)} is too large (limit 1e{MAX_MAGNITUDE_EXP})")
    if value.as_tuple().exponent < -MAX_PLACES and value != value.quantize(
        Decimal(1).scaleb(-MAX_PLACES), context=_EXACT
    ):
        raise InstrumentError(f"{what}: {_shown(text)} has more than {MAX_PLACES} decimal places")
    return value


def plain(value: Decimal) -> Decimal:
    """Trailing zeros dropped without exponent notation: 100.500 -> 100.5, 1E+2 -> 100."""
    value = value.normalize(_EXACT)
    if value.as_tuple().exponent > 0 and value.adjusted() < _EXACT.prec:
        value = value.quantize(Decimal(1), context=_EXACT)
    return value


def _whole_multiple(value: Decimal, step: Decimal, what: str, step_name: str) -> int:
    quotient, remainder = _EXACT.divmod(value, step)
    if remainder != 0:
        raise InstrumentError(f"{what} {value} is not a multiple of {step_name} {step}")
    return int(quotient)


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    band_low: Decimal
    band_high: Decimal
    multiplier: Decimal = Decimal(1)
    band_low_ticks: int = field(init=False)
    band_high_ticks: int = field(init=False)
    # money for one tick on one lot: ticks x lots x tick_value is money, exactly
    tick_value: Decimal = field(init=False)

    def __post_init__(self) -> None:
        if not self.symbol or not self.symbol.isprintable() or " " in self.symbol:
            raise InstrumentError(f"bad symbol {self.symbol!r}")
        for name in ("tick_size", "lot_size", "multiplier"):
            if getattr(self, name) <= 0:
                raise InstrumentError(f"{self.symbol}: {name} must be positive")
        low = _whole_multiple(self.band_low, self.tick_size, "band low", "tick")
        high = _whole_multiple(self.band_high, self.tick_size, "band high", "tick")
        if not 0 < low <= high:
            raise InstrumentError(f"{self.symbol}: price band {self.band_low}..{self.band_high}")
        object.__setattr__(self, "band_low_ticks", low)
        object.__setattr__(self, "band_high_ticks", high)
        value = _EXACT.multiply(_EXACT.multiply(self.tick_size, self.lot_size), self.multiplier)
        object.__setattr__(self, "tick_value", value)

    def price_to_ticks(self, text: str | int | Decimal) -> int:
        return _whole_multiple(parse_decimal(text, "price"), self.tick_size, "price", "tick")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return _EXACT.multiply(Decimal(ticks), self.tick_size)

    def qty_to_lots(self, text: str | int | Decimal) -> int:
        return _whole_multiple(parse_decimal(text, "quantity"), self.lot_size, "quantity", "lot")

    def lots_to_qty(self, lots: int) -> Decimal:
        return _EXACT.multiply(Decimal(lots), self.lot_size)

    def format_price(self, ticks: int | None) -> str:
        return "-" if ticks is None else str(self.ticks_to_price(ticks))

    def format_qty(self, lots: int) -> str:
        return str(self.lots_to_qty(lots))


DEFAULT_INSTRUMENTS_TOML = """
[instruments.AAPL]
tick_size = 0.01
lot_size = 1
price_band = [1, 10000]

[instruments.MSFT]
tick_size = 0.01
lot_size = 1
price_band = [1, 10000]

[instruments.ESZ6]
tick_size = 0.25
lot_size = 1
price_band = [1000, 20000]
multiplier = 50

[instruments.BTCUSD]
tick_size = 0.5
lot_size = 0.0001
price_band = [1000, 1000000]
"""


class InstrumentTable:
    """Symbol -> Instrument, loaded from TOML text."""

    def __init__(self, instruments: list[Instrument] | None = None) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        for instrument in instruments or []:
            self.add(instrument)

    @classmethod
    def from_toml(cls, text: str | None) -> InstrumentTable:
        """Parse config text; None or empty text gives the built-in defaults. Any bad text
        raises InstrumentError only, after bounded work (see the module docstring)."""
        if text is None or not text.strip():
            text = DEFAULT_INSTRUMENTS_TOML
        if len(text) > MAX_CONFIG_BYTES:
            raise InstrumentError(
                f"instruments config: {len(text)} characters (limit {MAX_CONFIG_BYTES})"
            )
        try:
            doc = tomllib.loads(text, parse_float=_toml_float)
        except tomllib.TOMLDecodeError as err:
            raise InstrumentError(f"instruments config: {err}") from None
        except RecursionError:
            raise InstrumentError("instruments config: values nested too deeply") from None
        except (ValueError, ArithmeticError) as err:  # e.g. an int over Python's digit limit
            raise InstrumentError(f"instruments config: bad value: {_shown(str(err))}") from None
        section = doc.get("instruments")
        if not isinstance(section, dict) or not section:
            raise InstrumentError("instruments config: no [instruments.SYMBOL] tables")
        if len(section) > MAX_INSTRUMENTS:
            raise InstrumentError(
                f"instruments config: {len(section)} instruments (limit {MAX_INSTRUMENTS})"
            )
        table = cls()
        for symbol, spec in section.items():
            symbol = _shown(symbol) if len(symbol) > MAX_TEXT_CHARS else symbol
            if not isinstance(spec, dict):
                raise InstrumentError(f"instruments.{symbol}: expected a table")
            unknown = set(spec) - {"tick_size", "lot_size", "price_band", "multiplier"}
            if unknown:
                raise InstrumentError(f"instruments.{symbol}: unknown keys {sorted(unknown)}")
            band = spec.get("price_band")
            if not isinstance(band, list) or len(band) != 2:
                raise InstrumentError(f"instruments.{symbol}: price_band must be [low, high]")
            try:
                table.add(
                    Instrument(
                        symbol=symbol,
                        tick_size=parse_decimal(spec.get("tick_size", ""), f"{symbol} tick_size"),
                        lot_size=parse_decimal(spec.get("lot_size", 1), f"{symbol} lot_size"),
                        band_low=parse_decimal(band[0], f"{symbol} price_band"),
                        band_high=parse_decimal(band[1], f"{symbol} price_band"),
                        multiplier=parse_decimal(spec.get("multiplier", 1), f"{symbol} multiplier"),
                    )
                )
            except InstrumentError as err:
                raise InstrumentError(f"instruments.{symbol}: {err}") from None
        return table

    def add(self, instrument: Instrument) -> None:
        if instrument.symbol in self._by_symbol:
            raise InstrumentError(f"duplicate instrument {instrument.symbol}")
        self._by_symbol[instrument.symbol] = instrument

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def __getitem__(self, symbol: str) -> Instrument:
        instrument = self._by_symbol.get(symbol)
        if instrument is None:
            raise InstrumentError(f"unknown symbol {symbol!r}")
        return instrument

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._by_symbol

    def __iter__(self):
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)


def _toml_float(text: str) -> Decimal | str:
    """TOML floats as Decimal; over-long text stays text, for parse_decimal to refuse by name
    (Decimal('1e999999') is cheap, but its division is not)."""
    return text if len(text) > MAX_TEXT_CHARS else Decimal(text)
