"""Positions, average cost, realized/unrealized P&L and fees, per owner and in total.

Exact arithmetic: quantities are int lots, prices int ticks; the open cost basis is a Fraction
of tick-lots (average-cost method: closing part of a position takes its share of the cost, which
need not be a whole number of ticks). Money is Decimal: tick-lots x the instrument's tick value.
Fees per fill are bps of notional plus a fixed amount per lot, both Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from .instruments import _EXACT, Instrument, plain


@dataclass(slots=True)
class FeeSchedule:
    bps: Decimal = Decimal(0)  # of notional, per fill
    per_lot: Decimal = Decimal(0)  # money per lot filled

    def fee(self, notional: Decimal, lots: int) -> Decimal:
        return _EXACT.add(
            _EXACT.divide(_EXACT.multiply(notional, self.bps), Decimal(10000)),
            _EXACT.multiply(self.per_lot, Decimal(lots)),
        )


class Position:
    __slots__ = ("instrument", "qty", "cost", "realized", "fees", "bought", "sold")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.qty = 0  # signed lots
        self.cost = Fraction(0)  # signed tick-lots of the open position
        self.realized = Fraction(0)  # tick-lots
        self.fees = Decimal(0)
        self.bought = 0
        self.sold = 0

    def apply(self, side: int, price: int, qty: int) -> None:
        delta = side * qty
        if side > 0:
            self.bought += qty
        else:
            self.sold += qty
        if self.qty == 0 or (self.qty > 0) == (delta > 0):
            self.qty += delta
            self.cost += delta * price
            return
        direction = 1 if self.qty > 0 else -1
        closing = min(qty, abs(self.qty))
        avg = self.cost / self.qty
        self.realized += closing * direction * (price - avg)
        self.cost -= direction * closing * avg
        self.qty -= direction * closing
        rest = qty - closing
        if rest:
            self.qty = side * rest
            self.cost = Fraction(self.qty * price)
        elif self.qty == 0:
            self.cost = Fraction(0)

    def avg_price(self) -> Decimal | None:
        """Average entry price (decimal price units, rounded to 8 places for display)."""
        if self.qty == 0:
            return None
        avg_ticks = self.cost / self.qty
        value = Decimal(avg_ticks.numerator) / Decimal(avg_ticks.denominator)
        return plain((value * self.instrument.tick_size).quantize(Decimal("1e-8")))

    def realized_money(self) -> Decimal:
        return _money(self.realized, self.instrument)

    def unrealized_money(self, mark_ticks: Fraction | None) -> Decimal:
        if self.qty == 0 or mark_ticks is None:
            return Decimal(0)
        return _money(self.qty * mark_ticks - self.cost, self.instrument)


def _money(tick_lots: Fraction, instrument: Instrument) -> Decimal:
    """Exact when the result has a finite decimal expansion; else rounded at 1e-12."""
    scaled = tick_lots * Fraction(instrument.tick_value)
    exact = _EXACT.divide(Decimal(scaled.numerator), Decimal(scaled.denominator))
    if _only_2_and_5(scaled.denominator):
        return plain(exact)
    return exact.quantize(Decimal("1e-12"))


def _only_2_and_5(n: int) -> bool:
    for p in (2, 5):
        while n % p == 0:
            n //= p
    return n == 1


class Portfolio:
    def __init__(self, default_fees: FeeSchedule | None = None) -> None:
        self.default_fees = default_fees or FeeSchedule()
        self.fees: dict[str, FeeSchedule] = {}
        self._positions: dict[tuple[str, str], Position] = {}

    def fee_schedule(self, owner: str) -> FeeSchedule:
        return self.fees.get(owner, self.default_fees)

    def position(self, owner: str, instrument: Instrument) -> Position:
        key = (owner, instrument.symbol)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = Position(instrument)
        return pos

    def position_qty(self, owner: str, symbol: str) -> int:
        pos = self._positions.get((owner, symbol))
        return pos.qty if pos else 0

    def on_fill(
        self, owner: str, instrument: Instrument, side: int, price: int, qty: int
    ) -> Decimal:
        """Book a fill; returns the fee charged."""
        pos = self.position(owner, instrument)
        pos.apply(side, price, qty)
        notional = _EXACT.multiply(Decimal(price * qty), instrument.tick_value)
        fee = self.fee_schedule(owner).fee(notional, qty)
        pos.fees += fee
        return fee

    def positions(self, owner: str | None = None) -> list[tuple[str, Position]]:
        """(owner, position) pairs, sorted, optionally for one owner."""
        return [
            (key[0], pos)
            for key, pos in sorted(self._positions.items())
            if owner is None or key[0] == owner
        ]

    def owners(self) -> list[str]:
        return sorted({key[0] for key in self._positions})
