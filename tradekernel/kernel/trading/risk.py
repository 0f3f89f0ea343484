"""Pre-trade risk per owner: limits checked before an order reaches the book.

Each rule accepts an order exactly at its limit and rejects it one unit past it; a rejection
names the rule and the numbers ("risk: max_order_qty 500 > limit 400"). A limit of None is off.
The order-rate throttle counts accepted orders and replaces in the last second of virtual time.
The kill switch blocks an owner until released (the engine also cancels the owner's orders).

Firm-wide defaults apply to every owner; an owner's own rules (`set_limit`) override single
rules and follow the defaults for the rest, so changing a default (`set_default`) changes it
for every owner that has not set that rule itself. Effective limits are immutable RiskLimits
rebuilt on each change, so the engine can ask once per owner whether any rule applies
(`needs_check`, cached) and skip the checks for owners with no limits and no kill switch: the
common case costs one dict lookup.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from decimal import Decimal

from .instruments import InstrumentError, parse_decimal

NS_PER_S = 1_000_000_000


@dataclass(slots=True, frozen=True)
class RiskLimits:
    max_order_qty: int | None = None  # lots per order
    max_order_notional: Decimal | None = None  # money per order (price x qty x multiplier)
    max_position: int | None = None  # |lots| per symbol, counting open orders on that side
    max_open_orders: int | None = None  # live orders across symbols
    collar_pct: Decimal | None = None  # % away from last trade (or mid) a limit may be
    collar_ticks: int | None = None  # the same collar in ticks
    max_orders_per_sec: int | None = None  # orders + replaces per second of virtual time


RULE_NAMES = tuple(f.name for f in fields(RiskLimits))
_DECIMAL_RULES = {"max_order_notional", "collar_pct"}


FOLLOW_DEFAULT = "default"  # `risk set OWNER RULE default`: drop the owner's own rule


def parse_rule_value(rule: str, text: str) -> int | Decimal | str | None:
    """Value for `risk set OWNER RULE VALUE`: an int or decimal, 'off' to switch the rule off,
    or 'default' (FOLLOW_DEFAULT) to follow the firm-wide value again."""
    if rule not in RULE_NAMES:
        raise InstrumentError(f"unknown risk rule {rule!r} (rules: {', '.join(RULE_NAMES)})")
    if text.lower() in ("off", "none"):
        return None
    if text.lower() == FOLLOW_DEFAULT:
        return FOLLOW_DEFAULT
    value = parse_decimal(text, rule)
    if value < 0:
        raise InstrumentError(f"{rule} must not be negative")
    if rule in _DECIMAL_RULES:
        return value
    if value != value.to_integral_value():
        raise InstrumentError(f"{rule} must be a whole number, got {text}")
    return int(value)


class RiskEngine:
    def __init__(self, now_ns: Callable[[], int], defaults: RiskLimits | None = None) -> None:
        self._now_ns = now_ns
        self._defaults = defaults or RiskLimits()
        self._limits: dict[str, RiskLimits] = {}  # effective limits of owners with rules
        self._own_rules: dict[str, dict[str, int | Decimal | None]] = {}
        self._killed: set[str] = set()
        self._recent: dict[str, deque[int]] = {}
        self._needs_check: dict[str, bool] = {}  # owner -> any rule or kill switch applies

    @property
    def defaults(self) -> RiskLimits:
        return self._defaults

    @defaults.setter
    def defaults(self, limits: RiskLimits) -> None:
        self._defaults = limits
        self._rebuild()

    def set_default(self, rule: str, value: int | Decimal | None) -> None:
        """Change one firm-wide rule (None: off) for every owner without its own."""
        if rule not in RULE_NAMES:
            raise InstrumentError(f"unknown risk rule {rule!r}")
        self.defaults = replace(self._defaults, **{rule: value})

    def _rebuild(self) -> None:
        self._limits = {
            owner: replace(self._defaults, **rules) for owner, rules in self._own_rules.items()
        }
        self._needs_check.clear()

    def needs_check(self, owner: str) -> bool:
        """Whether `check` can reject anything of `owner` (cached until limits change)."""
        cached = self._needs_check.get(owner)
        if cached is None:
            limits = self._limits.get(owner, self._defaults)
            cached = owner in self._killed or any(
                getattr(limits, rule) is not None for rule in RULE_NAMES
            )
            self._needs_check[owner] = cached
        return cached

    def limits(self, owner: str) -> RiskLimits:
        return self._limits.get(owner, self._defaults)

    def owners(self) -> list[str]:
        return sorted(self._limits)

    def set_limit(self, owner: str, rule: str, value: int | Decimal | str | None) -> None:
        """An owner's own rule (None: off for this owner whatever the default; FOLLOW_DEFAULT:
        drop the owner's own rule)."""
        if rule not in RULE_NAMES:
            raise InstrumentError(f"unknown risk rule {rule!r}")
        rules = self._own_rules.setdefault(owner, {})
        if value == FOLLOW_DEFAULT:
            rules.pop(rule, None)
        else:
            rules[rule] = value  # type: ignore[assignment]
        if rules:
            self._limits[owner] = replace(self._defaults, **rules)
        else:
            del self._own_rules[owner]
            self._limits.pop(owner, None)
        self._needs_check.pop(owner, None)

    def own_rules(self, owner: str) -> dict[str, int | Decimal | None]:
        return dict(self._own_rules.get(owner, {}))

    def kill(self, owner: str) -> None:
        self._killed.add(owner)
        self._needs_check.pop(owner, None)

    def release(self, owner: str) -> None:
        self._killed.discard(owner)
        self._needs_check.pop(owner, None)

    def is_killed(self, owner: str) -> bool:
        return owner in self._killed

    def record_order(self, owner: str) -> None:
        """Count an accepted order or replace against the rate throttle."""
        if self._limits.get(owner, self._defaults).max_orders_per_sec is None:
            return
        recent = self._recent.get(owner)
        if recent is None:
            recent = self._recent[owner] = deque()
        recent.append(self._now_ns())

    def check(
        self,
        owner: str,
        side: int,
        price: int | None,
        qty: int,
        tick_value: Decimal,
        reference_x2: int | None,
        open_orders: int,
        position_after: Callable[[], int],
        new_order: bool = True,
    ) -> str | None:
        """The first rule the order breaks, as a message, or None. `reference_x2` is twice the
        collar reference price in ticks (last trade or mid); `position_after` gives the worst-
        case position if this order and the owner's open orders on that side all fill."""
        if owner in self._killed:
            return f"risk: kill_switch active for {owner}"
        lim = self._limits.get(owner, self._defaults)
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return f"risk: max_order_qty {qty} > limit {lim.max_order_qty}"
        if lim.max_order_notional is not None and price is not None:
            notional = Decimal(price * qty) * tick_value
            if notional > lim.max_order_notional:
                return f"risk: max_order_notional {notional} > limit {lim.max_order_notional}"
        if lim.max_open_orders is not None and new_order and open_orders + 1 > lim.max_open_orders:
            return f"risk: max_open_orders {open_orders + 1} > limit {lim.max_open_orders}"
        if lim.max_position is not None:
            worst = abs(position_after())
            if worst > lim.max_position:
                return f"risk: max_position {worst} > limit {lim.max_position}"
        if price is not None and reference_x2 is not None:
            away_x2 = abs(2 * price - reference_x2)
            if lim.collar_ticks is not None and away_x2 > 2 * lim.collar_ticks:
                return (
                    f"risk: collar_ticks {Decimal(away_x2) / 2} ticks from reference "
                    f"> limit {lim.collar_ticks}"
                )
            if lim.collar_pct is not None and away_x2 * 100 > reference_x2 * lim.collar_pct:
                pct = Decimal(away_x2 * 100) / Decimal(reference_x2)
                return (
                    f"risk: collar_pct {pct.normalize():f}% from reference "
                    f"> limit {lim.collar_pct}%"
                )
        rate_limit = lim.max_orders_per_sec
        if rate_limit is not None:
            recent = self._recent.get(owner) or deque()
            horizon = self._now_ns() - NS_PER_S
            while recent and recent[0] <= horizon:
                recent.popleft()
            if len(recent) + 1 > rate_limit:
                return f"risk: max_orders_per_sec {len(recent) + 1} > limit {rate_limit}"
        return None
