"""One instrument's limit order book: price-time priority matching in integer ticks and lots.

Contract: prices are ints in ticks, quantities ints in lots, order ids ints unique in the book.
`submit` matches an incoming order against the opposite side and rests what the order type
allows; it returns the quantity left resting. Each execution is reported through `on_fill`
(after the book is updated, so a listener sees a consistent book) and each self-trade-prevention
cancel of a resting order through `on_cancel`. Whatever of the incoming quantity was neither
filled nor rested was cancelled (IOC/market remainder, FOK kill, post-only cross, STP).

Structures, chosen for speed and for the garbage collector: a resting order is a *slot*, an
index into parallel lists (order id, owner, level), and a dict maps order id -> slot. Freed slots
are reused, so a busy book allocates no object per order and holds no reference cycle: the cyclic
collector has nothing to chase however deep the book gets. Each price level is a dict slot ->
open quantity whose insertion order is the time priority (O(1) append, O(1) cancel anywhere, a
quantity change in place keeps the order's place, head O(sqrt(orders at the level)) at worst,
see `_Level`), with the level's price, side and total quantity as attributes. Per side a dict
price -> level and a sorted list of keys (bisect insert, O(levels) removal) whose last element is
the best price (O(1) best). Keys are `price` for bids and `-price` for asks, so both sides keep
their best at the end.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable

BUY = 1
SELL = -1

# Time in force / order type flags understood by the book.
GTC = 0  # limit order: match, then rest the remainder
IOC = 1  # immediate or cancel: match, cancel the remainder (a market order is IOC with no price)
FOK = 2  # fill or kill: match in full right now, or do nothing
POST = 3  # post-only: rest without matching; do nothing if it would cross

# Self-trade prevention (STP): what happens when an incoming order would trade with a resting
# order of the same owner. Trades already made with other owners stand in every mode, and no
# mode ever lets an owner trade with itself. The modes are those venues offer (CME's "cancel
# resting"/"cancel aggressing", Nasdaq's "cancel oldest"/"cancel newest"/"cancel both"):
STP_CANCEL_RESTING = 0  # cancel the owner's resting order; keep matching against other owners
STP_CANCEL_INCOMING = 1  # cancel the rest of the incoming order; the resting order stays
STP_CANCEL_BOTH = 2  # cancel the owner's resting order and the rest of the incoming order
STP_MODES = {"cancel-resting": STP_CANCEL_RESTING, "cancel-incoming": STP_CANCEL_INCOMING,
             "cancel-both": STP_CANCEL_BOTH}  # fmt: skip

_NO_LIMIT_KEY = -(1 << 62)  # a market order crosses every level

Depth = list[tuple[int, int, int]]
"""best-first (price, qty, order count) levels of one side"""

FillCallback = Callable[[int, str, int, int, int, int, int], None]
"""on_fill(maker_id, maker_owner, taker_id, price, qty, maker_left, taker_left)"""
CancelCallback = Callable[[int, str, int], None]
"""on_cancel(order_id, owner, cancelled_qty) for a resting order removed by STP"""


class BookError(Exception):
    """A request the book cannot honour (unknown or duplicate id, bad quantity)."""


class _Level(dict[int, int]):
    """One price: slot -> open quantity in time priority (insertion order), and the total.
    Holds ints only. Being the dict itself saves an attribute load on every add and cancel.

    A dict finds its first key by stepping over the holes that deletions left before it, until
    an insert makes it rebuild its table. So `eaten` counts heads taken by fills since the last
    rebuild, and `_match` rebuilds the level once eaten**2 exceeds 64 * len + 4096. Eating a
    deep level then costs O(sqrt(len)) per fill (steps over holes plus rebuilds), not O(len)
    (quadratic to eat the level). Holes that cancels leave before the head go with the next
    rebuild, so a burst of head cancels adds O(sqrt(len)) per cancel, amortized. The factor 64
    weighs a step over a hole (a few ns) against copying an entry in a rebuild (tens of ns).
    (An OrderedDict has an O(1) head, but cost 9% more instructions per order and more cache
    misses on the bench's mix.)"""

    __slots__ = ("price", "side", "qty", "eaten")

    price: int
    side: int
    qty: int
    eaten: int


def _rebuild(level: _Level) -> int:
    """Rebuild a level's table in place (same order), dropping the holes; returns 0."""
    entries = level.copy()  # a plain dict: copying it needs no tuple per entry
    level.clear()
    level.update(entries)
    return 0


def _ignore_fill(*_args: object) -> None:
    return None


class OrderBook:
    __slots__ = (
        "symbol",
        "stp_mode",
        "stp_modes",
        "on_fill",
        "on_cancel",
        "_slot_of",
        "_oid",
        "_owner",
        "_level",
        "_free",
        "_levels",
        "_keys",
        "_buy_side",
        "_sell_side",
        "last_price",
        "last_qty",
        "volume",
        "trade_count",
        "version",
        "stp_killed",
    )

    def __init__(
        self,
        symbol: str,
        stp_mode: int = STP_CANCEL_RESTING,
        on_fill: FillCallback | None = None,
        on_cancel: CancelCallback | None = None,
    ) -> None:
        self.symbol = symbol
        self.stp_mode = stp_mode
        self.stp_modes: dict[str, int] = {}  # per-owner override of stp_mode
        self.on_fill: FillCallback = on_fill or _ignore_fill
        self.on_cancel: CancelCallback = on_cancel or _ignore_fill
        self._slot_of: dict[int, int] = {}  # order id -> slot of a resting order
        # per slot (parallel lists; a free slot keeps stale values, read only once reused)
        self._oid: list[int] = []
        self._owner: list[str] = []
        self._level: list[_Level | None] = []  # the level holding the slot's open quantity
        self._free: list[int] = []  # slots to reuse
        # index 0 = bids (BUY), index 1 = asks (SELL)
        self._levels: tuple[dict[int, _Level], dict[int, _Level]] = ({}, {})
        self._keys: tuple[list[int], list[int]] = ([], [])
        bids, asks = self._levels
        bid_keys, ask_keys = self._keys
        # (own levels, own keys, opposite levels, opposite keys) of an incoming order, per side
        self._buy_side = (bids, bid_keys, asks, ask_keys)
        self._sell_side = (asks, ask_keys, bids, bid_keys)
        self.last_price: int | None = None
        self.last_qty = 0
        self.volume = 0
        self.trade_count = 0
        self.version = 0  # bumped on every change of the resting orders
        self.stp_killed = 0  # id of the last incoming order whose rest STP cancelled

    # ---- order entry -------------------------------------------------------------------------

    def submit(
        self, oid: int, owner: str, side: int, price: int | None, qty: int, tif: int = GTC
    ) -> int:
        """Match an incoming order and rest what its type allows; returns the resting quantity.
        The resting path is written out here (not in a helper): it is the commonest order."""
        slot_of = self._slot_of
        if oid in slot_of:
            raise BookError(f"duplicate order id {oid}")
        if qty <= 0:
            raise BookError(f"quantity must be positive, got {qty}")
        if side == BUY:
            levels, keys, opp_levels, opp_keys = self._buy_side
        elif side == SELL:
            levels, keys, opp_levels, opp_keys = self._sell_side
        else:
            raise BookError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        if price is None:
            if tif == GTC or tif == POST:
                raise BookError("a market order cannot rest; use IOC or FOK")
            limit_key = _NO_LIMIT_KEY
        elif side == BUY:  # the opposite side's key of this price (a test, not a multiply)
            limit_key = -price
        else:
            limit_key = price
        if opp_keys and opp_keys[-1] >= limit_key:
            if tif == POST:
                return 0
            if (
                tif == FOK
                and self._fillable(owner, side, opp_levels, opp_keys, limit_key, qty) < qty
            ):
                return 0
            qty = self._match(oid, owner, side, opp_levels, opp_keys, limit_key, qty)
            if qty <= 0:  # filled, or STP cancelled the incoming order (-1)
                return 0
        if tif and (tif == IOC or tif == FOK):  # GTC (0) pays one test
            return 0
        level = levels.get(price)  # type: ignore[arg-type]
        if level is None:  # get, not try/except KeyError: a raise costs ten gets
            # set up here rather than in an __init__: levels come and go at the touch
            level = levels[price] = _Level()  # type: ignore[index]
            level.price = price  # type: ignore[assignment]
            level.side = side
            level.qty = 0
            level.eaten = 0
            insort(keys, -limit_key)
        try:
            slot = self._free.pop()
        except IndexError:
            self._grow()
            slot = self._free.pop()
        self._oid[slot] = oid
        self._owner[slot] = owner
        self._level[slot] = level
        level[slot] = qty
        level.qty += qty
        slot_of[oid] = slot
        self.version += 1
        return qty

    def _grow(self) -> None:
        """Add free slots in one go (doubling), so resting an order only stores into lists."""
        old = len(self._oid)
        extra = max(64, old)
        self._oid.extend([0] * extra)
        self._owner.extend([""] * extra)
        self._level.extend([None] * extra)
        self._free.extend(range(old + extra - 1, old - 1, -1))  # lowest slot popped first

    def _match(
        self,
        oid: int,
        owner: str,
        side: int,
        levels: dict[int, _Level],
        keys: list[int],
        limit_key: int,
        qty: int,
    ) -> int:
        """Trade `qty` of a `side` order against the opposite `levels` (best key last in `keys`);
        returns what is left, or -1 if STP killed the order.
        Matching always takes the head of the best level, so the next maker is re-read from the
        level after each callback (a listener that changes the book cannot leave us stale)."""
        sign = -side  # opposite price = key * sign
        slot_of = self._slot_of
        oids, owners, free = self._oid, self._owner, self._free
        on_fill = None if self.on_fill is _ignore_fill else self.on_fill  # no call for nobody
        self.version += 1
        while qty and keys:
            key = keys[-1]
            if key < limit_key:
                break
            level = levels[key * sign]
            price = level.price
            while qty:
                for slot in level:  # noqa: B007 - the head (cheaper than items())
                    break
                else:  # emptied (by a listener's cancel) and dropped
                    break
                maker_qty = level[slot]
                maker = oids[slot]
                maker_owner = owners[slot]
                if maker_owner == owner:
                    # looked up only here: most orders never meet their owner's
                    mode = self.stp_modes.get(owner, self.stp_mode)
                    if mode != STP_CANCEL_INCOMING:
                        self.on_cancel(maker, maker_owner, self.cancel(maker))
                    if mode != STP_CANCEL_RESTING:
                        self.stp_killed = oid
                        return -1
                    continue
                trade = maker_qty if maker_qty < qty else qty
                maker_qty -= trade
                qty -= trade
                level.qty -= trade
                if maker_qty:
                    level[slot] = maker_qty
                else:
                    del level[slot]
                    free.append(slot)
                    del slot_of[maker]
                    if not level:
                        del levels[price]
                        keys.pop()
                    else:
                        eaten = level.eaten + 1
                        if eaten * eaten > 64 * len(level) + 4096:
                            eaten = _rebuild(level)
                        level.eaten = eaten
                self.last_price = price
                self.last_qty = trade
                self.volume += trade
                self.trade_count += 1
                if on_fill is not None:
                    on_fill(maker, maker_owner, oid, price, trade, maker_qty, qty)
        return qty

    def _fillable(
        self,
        owner: str,
        side: int,
        levels: dict[int, _Level],
        keys: list[int],
        limit_key: int,
        qty: int,
    ) -> int:
        """How much of `qty` a `side` order of `owner` could fill now against the opposite
        `levels` (FOK), honouring STP; stops counting once `qty` is reached."""
        stp_mode = self.stp_modes.get(owner, self.stp_mode)
        owners = self._owner
        sign = -side
        total = 0
        for i in range(len(keys) - 1, -1, -1):
            key = keys[i]
            if key < limit_key:
                break
            for slot, open_qty in levels[key * sign].items():
                if owners[slot] == owner:
                    if stp_mode != STP_CANCEL_RESTING:
                        return total
                else:
                    total += open_qty
                    if total >= qty:
                        return total
        return total

    def _slot(self, oid: int) -> int:
        slot = self._slot_of.get(oid)
        if slot is None:
            raise BookError(f"unknown order id {oid}")
        return slot

    # ---- changes to resting orders -------------------------------------------------------------

    def cancel(self, oid: int) -> int:
        """Remove a resting order in O(1) (plus O(levels) if its level empties)."""
        try:
            slot = self._slot_of.pop(oid)
        except KeyError:
            raise BookError(f"unknown order id {oid}") from None
        level = self._level[slot]
        left = level.pop(slot)  # type: ignore[union-attr]
        level.qty -= left  # type: ignore[union-attr]
        self._free.append(slot)
        self.version += 1
        if not level:
            self._drop_level(level)  # type: ignore[arg-type]
        return left

    def _drop_level(self, level: _Level) -> None:
        idx = 0 if level.side == BUY else 1
        price = level.price
        del self._levels[idx][price]
        keys = self._keys[idx]
        key = price if idx == 0 else -price
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def reduce(self, oid: int, by_qty: int) -> int:
        """Take `by_qty` off a resting order keeping its priority; returns what is left."""
        slot = self._slot(oid)
        level = self._level[slot]
        open_qty = level[slot]  # type: ignore[index]
        if by_qty <= 0 or by_qty > open_qty:
            raise BookError(f"cannot reduce order {oid} of {open_qty} lots by {by_qty}")
        if by_qty == open_qty:
            self.cancel(oid)
            return 0
        level[slot] = open_qty - by_qty  # type: ignore[index]  # in place: keeps its priority
        level.qty -= by_qty  # type: ignore[union-attr]
        self.version += 1
        return open_qty - by_qty

    def amend(self, oid: int, price: int, qty: int, tif: int = GTC) -> int:
        """Change price and/or open quantity. Same price and smaller size keeps priority; a price
        change or a size increase re-enters the order at the back (and may trade). Returns the
        resting quantity."""
        slot = self._slot(oid)
        if qty <= 0:
            raise BookError(f"quantity must be positive, got {qty}")
        level = self._level[slot]
        open_qty = level[slot]  # type: ignore[index]
        if price == level.price and qty <= open_qty:  # type: ignore[union-attr]
            if qty < open_qty:
                self.reduce(oid, open_qty - qty)
            return qty
        owner, side = self._owner[slot], level.side  # type: ignore[union-attr]
        self.cancel(oid)
        return self.submit(oid, owner, side, price, qty, tif)

    def record_trade(self, price: int, qty: int) -> None:
        """A trade that happened elsewhere (a feed's print): sets last price and adds volume."""
        self.last_price = price
        self.last_qty = qty
        self.volume += qty
        self.trade_count += 1

    # ---- queries ------------------------------------------------------------------------------

    def __contains__(self, oid: int) -> bool:
        return oid in self._slot_of

    def __len__(self) -> int:
        return len(self._slot_of)

    def order(self, oid: int) -> tuple[str, int, int, int] | None:
        """(owner, side, price, open qty) of a resting order, or None."""
        slot = self._slot_of.get(oid)
        if slot is None:
            return None
        level = self._level[slot]
        return self._owner[slot], level.side, level.price, level[slot]  # type: ignore[union-attr,index]

    def best_bid(self) -> tuple[int, int] | None:
        keys = self._keys[0]
        if not keys:
            return None
        price = keys[-1]
        return price, self._levels[0][price].qty

    def best_ask(self) -> tuple[int, int] | None:
        keys = self._keys[1]
        if not keys:
            return None
        price = -keys[-1]
        return price, self._levels[1][price].qty

    def l1(self) -> tuple[int | None, int, int | None, int]:
        """(bid price, bid qty, ask price, ask qty); a missing side is (None, 0)."""
        bids, asks = self._keys
        bid_price = bids[-1] if bids else None
        ask_price = -asks[-1] if asks else None
        return (
            bid_price,
            self._levels[0][bid_price].qty if bids else 0,  # type: ignore[index]
            ask_price,
            self._levels[1][ask_price].qty if asks else 0,  # type: ignore[index]
        )

    def mid_x2(self) -> int | None:
        """Twice the mid price in ticks (an int, so the mid stays exact), or None."""
        bids, asks = self._keys
        if not bids or not asks:
            return None
        return bids[-1] - asks[-1]

    def depth(self, levels: int = 5) -> tuple[Depth, Depth]:
        """L2: best-first (price, qty, order count) for up to `levels` levels on each side."""
        result = []
        for idx in (0, 1):
            keys = self._keys[idx]
            book = self._levels[idx]
            sign = 1 if idx == 0 else -1
            side = []
            for key in keys[: -levels - 1 : -1] if levels > 0 else ():
                level = book[key * sign]
                side.append((level.price, level.qty, len(level)))
            result.append(side)
        return result[0], result[1]

    def level_orders(self, side: int, price: int) -> list[tuple[int, int]]:
        """(order id, open qty) at one level in time priority."""
        level = self._levels[0 if side == BUY else 1].get(price)
        if level is None:
            return []
        oids = self._oid
        return [(oids[slot], open_qty) for slot, open_qty in level.items()]

    def resting_orders(self, side: int) -> list[tuple[int, str, int, int]]:
        """Every resting order of a side in priority order: (id, owner, price, qty)."""
        idx = 0 if side == BUY else 1
        sign = 1 if idx == 0 else -1
        out = []
        for key in reversed(self._keys[idx]):
            level = self._levels[idx][key * sign]
            out.extend(
                (self._oid[slot], self._owner[slot], level.price, open_qty)
                for slot, open_qty in level.items()
            )
        return out

    def is_crossed(self) -> bool:
        bids, asks = self._keys
        return bool(bids and asks) and bids[-1] >= -asks[-1]
