"""One instrument's limit order book: price-time priority matching in integer ticks and lots.

Contract: prices are ints in ticks, quantities ints in lots, order ids ints unique in the book.
`submit` matches an incoming order against the opposite side and rests what the order type
allows; it returns the quantity left resting. Each execution is reported through `on_fill`
(after the book is updated, so a listener sees a consistent book) and each self-trade-prevention
cancel of a resting order through `on_cancel`. Whatever of the incoming quantity was neither
filled nor rested was cancelled (IOC/market remainder, FOK kill, post-only cross, STP).

Structures, chosen for speed: a dict order id -> node (O(1) cancel); per side a dict price ->
level and a sorted list of keys (bisect insert, O(log levels) search) whose last element is the
best price (O(1) best); each level an intrusive doubly linked list of nodes (FIFO, O(1) unlink).
Keys are `price` for bids and `-price` for asks, so both sides keep their best at the end.
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

# Self-trade prevention: what happens when an incoming order meets a resting one of its owner.
STP_CANCEL_RESTING = 0
STP_CANCEL_INCOMING = 1

_NO_LIMIT_KEY = -(1 << 62)  # a market order crosses every level

Depth = list[tuple[int, int, int]]
"""best-first (price, qty, order count) levels of one side"""

FillCallback = Callable[[int, str, int, int, int, int, int], None]
"""on_fill(maker_id, maker_owner, taker_id, price, qty, maker_left, taker_left)"""
CancelCallback = Callable[[int, str, int], None]
"""on_cancel(order_id, owner, cancelled_qty) for a resting order removed by STP"""


class BookError(Exception):
    """A request the book cannot honour (unknown or duplicate id, bad quantity)."""


class _Node:
    __slots__ = ("oid", "owner", "side", "price", "qty", "prev", "next", "level")

    def __init__(self, oid: int, owner: str, side: int, price: int, qty: int, level: _Level):
        self.oid = oid
        self.owner = owner
        self.side = side
        self.price = price
        self.qty = qty
        self.prev: _Node | None = None
        self.next: _Node | None = None
        self.level = level


class _Level:
    __slots__ = ("price", "head", "tail", "qty", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: _Node | None = None
        self.tail: _Node | None = None
        self.qty = 0
        self.count = 0


def _ignore_fill(*_args: object) -> None:
    return None


class OrderBook:
    __slots__ = (
        "symbol",
        "stp_mode",
        "stp_modes",
        "on_fill",
        "on_cancel",
        "_orders",
        "_levels",
        "_keys",
        "last_price",
        "last_qty",
        "volume",
        "trade_count",
        "version",
    )

    def __init__(
        self,
        symbol: str,
        stp_mode: int = STP_CANCEL_INCOMING,
        on_fill: FillCallback | None = None,
        on_cancel: CancelCallback | None = None,
    ) -> None:
        self.symbol = symbol
        self.stp_mode = stp_mode
        self.stp_modes: dict[str, int] = {}  # per-owner override of stp_mode
        self.on_fill: FillCallback = on_fill or _ignore_fill
        self.on_cancel: CancelCallback = on_cancel or _ignore_fill
        self._orders: dict[int, _Node] = {}
        # index 0 = bids (BUY), index 1 = asks (SELL); see _side_index
        self._levels: tuple[dict[int, _Level], dict[int, _Level]] = ({}, {})
        self._keys: tuple[list[int], list[int]] = ([], [])
        self.last_price: int | None = None
        self.last_qty = 0
        self.volume = 0
        self.trade_count = 0
        self.version = 0  # bumped on every change of the resting orders

    # ---- order entry -------------------------------------------------------------------------

    def submit(
        self, oid: int, owner: str, side: int, price: int | None, qty: int, tif: int = GTC
    ) -> int:
        """Match an incoming order and rest what its type allows; returns the resting quantity."""
        orders = self._orders
        if oid in orders:
            raise BookError(f"duplicate order id {oid}")
        if qty <= 0:
            raise BookError(f"quantity must be positive, got {qty}")
        if side == BUY:
            opp = 1
            opp_sign = -1
        elif side == SELL:
            opp = 0
            opp_sign = 1
        else:
            raise BookError(f"side must be BUY (1) or SELL (-1), got {side}")
        if price is None:
            if tif == GTC or tif == POST:
                raise BookError("a market order cannot rest; use IOC or FOK")
            limit_key = _NO_LIMIT_KEY
        else:
            limit_key = opp_sign * price
        opp_keys = self._keys[opp]
        crosses = bool(opp_keys) and opp_keys[-1] >= limit_key
        if crosses:
            if tif == POST:
                return 0
            if tif == FOK and self._fillable(owner, opp, limit_key, qty) < qty:
                return 0
            qty = self._match(oid, owner, opp, opp_sign, limit_key, qty)
            if qty < 0:  # STP cancelled the incoming order
                return 0
        if qty == 0 or tif == IOC or tif == FOK:
            return 0
        self._rest(oid, owner, side, price, qty)  # type: ignore[arg-type]
        return qty

    def _match(
        self, oid: int, owner: str, opp: int, opp_sign: int, limit_key: int, qty: int
    ) -> int:
        """Trade `qty` against side `opp`; returns what is left, or -1 if STP killed the order."""
        keys = self._keys[opp]
        levels = self._levels[opp]
        orders = self._orders
        on_fill = self.on_fill
        stp_mode = self.stp_modes.get(owner, self.stp_mode) if self.stp_modes else self.stp_mode
        self.version += 1
        while qty and keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = key * opp_sign
            level = levels[price]
            node = level.head
            while node is not None and qty:
                nxt = node.next
                if node.owner == owner:
                    if stp_mode == STP_CANCEL_INCOMING:
                        return -1
                    left = node.qty
                    self._unlink(node, level)
                    del orders[node.oid]
                    if level.count == 0:
                        del levels[price]
                        keys.pop()
                    self.on_cancel(node.oid, node.owner, left)
                    node = nxt
                    continue
                node_qty = node.qty
                trade = node_qty if node_qty < qty else qty
                node_qty -= trade
                node.qty = node_qty
                level.qty -= trade
                qty -= trade
                if node_qty == 0:
                    # unlink the head in place (matching always consumes from the head)
                    level.head = nxt
                    if nxt is None:
                        level.tail = None
                    else:
                        nxt.prev = None
                    level.count -= 1
                    del orders[node.oid]
                    if level.count == 0:
                        del levels[price]
                        keys.pop()
                self.last_price = price
                self.last_qty = trade
                self.volume += trade
                self.trade_count += 1
                on_fill(node.oid, node.owner, oid, price, trade, node_qty, qty)
                node = nxt
        return qty

    def _fillable(self, owner: str, opp: int, limit_key: int, qty: int) -> int:
        """How much of `qty` an order of `owner` could fill now (FOK), honouring STP."""
        stp_mode = self.stp_modes.get(owner, self.stp_mode)
        keys = self._keys[opp]
        levels = self._levels[opp]
        sign = -1 if opp == 1 else 1
        total = 0
        for i in range(len(keys) - 1, -1, -1):
            key = keys[i]
            if key < limit_key:
                break
            node = levels[key * sign].head
            while node is not None:
                if node.owner == owner:
                    if stp_mode == STP_CANCEL_INCOMING:
                        return total
                else:
                    total += node.qty
                    if total >= qty:
                        return total
                node = node.next
        return total

    def _rest(self, oid: int, owner: str, side: int, price: int, qty: int) -> None:
        idx = 0 if side == BUY else 1
        levels = self._levels[idx]
        level = levels.get(price)
        if level is None:
            level = levels[price] = _Level(price)
            insort(self._keys[idx], price if side == BUY else -price)
        node = _Node(oid, owner, side, price, qty, level)
        tail = level.tail
        if tail is None:
            level.head = node
        else:
            tail.next = node
            node.prev = tail
        level.tail = node
        level.qty += qty
        level.count += 1
        self._orders[oid] = node
        self.version += 1

    def _unlink(self, node: _Node, level: _Level) -> None:
        prev = node.prev
        nxt = node.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        level.qty -= node.qty
        level.count -= 1

    def _drop_level_if_empty(self, level: _Level, side: int) -> None:
        if level.count:
            return
        idx = 0 if side == BUY else 1
        price = level.price
        del self._levels[idx][price]
        keys = self._keys[idx]
        key = price if side == BUY else -price
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    # ---- changes to resting orders -------------------------------------------------------------

    def cancel(self, oid: int) -> int:
        """Remove a resting order in O(1) (plus O(log levels) if its level empties)."""
        node = self._orders.pop(oid, None)
        if node is None:
            raise BookError(f"unknown order id {oid}")
        level = node.level
        left = node.qty
        self._unlink(node, level)
        self._drop_level_if_empty(level, node.side)
        self.version += 1
        return left

    def reduce(self, oid: int, by_qty: int) -> int:
        """Take `by_qty` off a resting order keeping its priority; returns what is left."""
        node = self._orders.get(oid)
        if node is None:
            raise BookError(f"unknown order id {oid}")
        if by_qty <= 0 or by_qty > node.qty:
            raise BookError(f"cannot reduce order {oid} of {node.qty} lots by {by_qty}")
        if by_qty == node.qty:
            self.cancel(oid)
            return 0
        node.qty -= by_qty
        node.level.qty -= by_qty
        self.version += 1
        return node.qty

    def amend(self, oid: int, price: int, qty: int, tif: int = GTC) -> int:
        """Change price and/or open quantity. Same price and smaller size keeps priority; a price
        change or a size increase re-enters the order at the back (and may trade). Returns the
        resting quantity."""
        node = self._orders.get(oid)
        if node is None:
            raise BookError(f"unknown order id {oid}")
        if qty <= 0:
            raise BookError(f"quantity must be positive, got {qty}")
        if price == node.price and qty <= node.qty:
            if qty < node.qty:
                self.reduce(oid, node.qty - qty)
            return qty
        owner, side = node.owner, node.side
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
        return oid in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def order(self, oid: int) -> tuple[str, int, int, int] | None:
        """(owner, side, price, open qty) of a resting order, or None."""
        node = self._orders.get(oid)
        if node is None:
            return None
        return node.owner, node.side, node.price, node.qty

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
        bid = self.best_bid() or (None, 0)
        ask = self.best_ask() or (None, 0)
        return bid[0], bid[1], ask[0], ask[1]

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
                side.append((level.price, level.qty, level.count))
            result.append(side)
        return result[0], result[1]

    def level_orders(self, side: int, price: int) -> list[tuple[int, int]]:
        """(order id, open qty) at one level in time priority."""
        level = self._levels[0 if side == BUY else 1].get(price)
        out = []
        node = level.head if level else None
        while node is not None:
            out.append((node.oid, node.qty))
            node = node.next
        return out

    def resting_orders(self, side: int) -> list[tuple[int, str, int, int]]:
        """Every resting order of a side in priority order: (id, owner, price, qty)."""
        idx = 0 if side == BUY else 1
        sign = 1 if idx == 0 else -1
        out = []
        for key in reversed(self._keys[idx]):
            node = self._levels[idx][key * sign].head
            while node is not None:
                out.append((node.oid, node.owner, node.price, node.qty))
                node = node.next
        return out

    def is_crossed(self) -> bool:
        bids, asks = self._keys
        return bool(bids and asks) and bids[-1] >= -asks[-1]
