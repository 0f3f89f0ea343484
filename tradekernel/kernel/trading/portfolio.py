"""Positions, average cost, realized/unrealized P&L and fees, per owner and in total.

Integer arithmetic: quantities are int lots, prices int ticks; the open cost basis and realized
P&L are ints in units of 1/COST_SCALE tick-lot. Average-cost method: closing part of a position
takes its share of the cost, cost x closed / held, which need not be whole; it is exact whenever
it is a multiple of 1e-9 tick-lot and otherwise rounded half-even to one (at most 0.5e-9 tick-lot
per closing fill). An exact Fraction basis would be simpler to state but its denominator grows
with every partial close, so an owner trading all day would slow every fill to bignum speed.
Money is Decimal: tick-lots x the instrument's tick value. Fees per fill are bps of notional plus
a fixed amount per lot, both Decimal.
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


_NO_FEE = Decimal(0)
COST_SCALE = 10**9  # cost basis and realized P&L are ints of 1e-9 tick-lot


def _div_half_even(num: int, den: int) -> int:
    """num / den (den > 0) rounded half-even to an int."""
    quotient, remainder = divmod(num, den)
    twice = 2 * remainder
    if twice > den or (twice == den and quotient & 1):
        quotient += 1
    return quotient


class Position:
    __slots__ = ("instrument", "qty", "cost", "realized", "fees", "bought", "sold")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.qty = 0  # signed lots
        self.cost = 0  # signed, 1/COST_SCALE tick-lots of the open position
        self.realized = 0  # 1/COST_SCALE tick-lots
        self.fees = Decimal(0)
        self.bought = 0
        self.sold = 0

    def apply(self, side: int, price: int, qty: int) -> None:
        """Book one fill (average cost; see the module docstring for the rounding)."""
        if side > 0:
            self.bought += qty
        else:
            self.sold += qty
        held = self.qty
        if held == 0 or (held > 0) == (side > 0):
            self.qty = held + side * qty
            self.cost += side * qty * price * COST_SCALE
            return
        size = held if held > 0 else -held
        closing = qty if qty < size else size
        signed_closing = closing if held > 0 else -closing
        share = _div_half_even(self.cost * closing, size)  # signed like cost
        self.realized += signed_closing * price * COST_SCALE - share
        self.cost -= share
        self.qty = held - signed_closing
        rest = qty - closing
        if rest:
            self.qty = side * rest
            self.cost = self.qty * price * COST_SCALE
        elif self.qty == 0:
            self.cost = 0

    def avg_price(self) -> Decimal | None:
        """Average entry price (decimal price units, rounded to 8 places for display)."""
        if self.qty == 0:
            return None
        avg_ticks = Fraction(self.cost, self.qty * COST_SCALE)
        value = Decimal(avg_ticks.numerator) / Decimal(avg_ticks.denominator)
        return plain((value * self.instrument.tick_size).quantize(Decimal("1e-8")))

    def realized_money(self) -> Decimal:
        return _money(Fraction(self.realized, COST_SCALE), self.instrument)

    def unrealized_money(self, mark_ticks: Fraction | None) -> Decimal:
        if self.qty == 0 or mark_ticks is None:
            return Decimal(0)
        return _money(self.qty * mark_ticks - Fraction(self.cost, COST_SCALE), self.instrument)


_MONEY_PLACES = 12  # an inexact money amount is rounded here (display rounds further)


def _money(tick_lots: Fraction, instrument: Instrument) -> Decimal:
    """Exact when the result has a finite decimal expansion; else rounded at 1e-12."""
    scaled = tick_lots * Fraction(instrument.tick_value)
    exact = _EXACT.divide(Decimal(scaled.numerator), Decimal(scaled.denominator))
    if _only_2_and_5(scaled.denominator):
        return plain(exact)
    if exact.adjusted() + _MONEY_PLACES >= _EXACT.prec:  # too large for 12 places: as is
        return exact
    return exact.quantize(Decimal(1).scaleb(-_MONEY_PLACES), context=_EXACT)


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
        """Book a fill; returns the fee charged (no Decimal work when the owner pays none)."""
        key = (owner, instrument.symbol)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = Position(instrument)
        pos.apply(side, price, qty)
        schedule = self.fees.get(owner, self.default_fees)
        if not (schedule.bps or schedule.per_lot):
            return _NO_FEE
        notional = _EXACT.multiply(Decimal(price * qty), instrument.tick_value)
        fee = schedule.fee(notional, qty)
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
