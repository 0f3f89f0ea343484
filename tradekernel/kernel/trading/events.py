"""Engine events: what happened to orders and books, each with a sequence number and virtual ns.

Listeners subscribe to the EventBus, for all events or for some types. The bus numbers events
itself (`next_seq`), so the sequence is gap-free across every event type.

Events are plain slotted objects (not frozen: a frozen dataclass pays a setattr call per field
on construction); listeners must treat them as read-only. The engine builds an event only while
`EventBus.active` is true, i.e. someone listens, so an engine nobody watches pays nothing; and
it looks at a book for DepthChanged/TopOfBook only while `book_active` is (someone listens to
all events or to one of those two), so an audit log of order events alone does not pay for
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    seq: int
    ts_ns: int


@dataclass(slots=True)
class _OrderTerms(Event):
    """The fields of an order as entered (never published itself: the bus matches exact types)."""

    order_id: int
    owner: str
    client_id: str
    symbol: str
    side: int
    price: int | None
    qty: int
    tif: int


@dataclass(slots=True)
class OrderSubmitted(_OrderTerms):
    """An order as it was asked for, before validation and risk (then accepted or rejected)."""


@dataclass(slots=True)
class OrderAccepted(_OrderTerms):
    """The order passed validation and risk and is live."""


@dataclass(slots=True)
class OrderRejected(Event):
    order_id: int
    owner: str
    client_id: str
    symbol: str
    reason: str


@dataclass(slots=True)
class OrderPartiallyFilled(Event):
    order_id: int
    owner: str
    symbol: str
    fill_price: int
    fill_qty: int
    filled_qty: int
    leaves_qty: int


@dataclass(slots=True)
class OrderFilled(Event):
    order_id: int
    owner: str
    symbol: str
    fill_price: int
    fill_qty: int
    filled_qty: int
    leaves_qty: int


@dataclass(slots=True)
class OrderCancelled(Event):
    order_id: int
    owner: str
    symbol: str
    cancelled_qty: int
    reason: str


@dataclass(slots=True)
class OrderReplaced(Event):
    order_id: int
    owner: str
    symbol: str
    old_price: int | None
    new_price: int | None
    old_qty: int
    new_qty: int
    kept_priority: bool


@dataclass(slots=True)
class Trade(Event):
    symbol: str
    price: int
    qty: int
    buy_order_id: int | None  # None: the other side was outside this engine (a feed's print)
    sell_order_id: int | None
    buyer: str | None
    seller: str | None
    aggressor_side: int  # BUY or SELL; 0 if unknown


@dataclass(slots=True)
class TopOfBook(Event):
    symbol: str
    bid_price: int | None
    bid_qty: int
    ask_price: int | None
    ask_qty: int


@dataclass(slots=True)
class DepthChanged(Event):
    symbol: str
    version: int


Listener = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._seq = 0
        self._all: list[Listener] = []
        self._by_type: dict[type[Event], list[Listener]] = {}
        self.active = False  # any listener at all; kept in step by subscribe/unsubscribe
        self.book_active = False  # a listener of DepthChanged or TopOfBook (or of everything)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def has_listeners(self) -> bool:
        return self.active

    def _update_active(self) -> None:
        self.active = bool(self._all) or any(self._by_type.values())
        typed = self._by_type
        self.book_active = bool(self._all or typed.get(DepthChanged) or typed.get(TopOfBook))

    def subscribe(
        self, listener: Listener, types: tuple[type[Event], ...] | None = None
    ) -> Callable[[], None]:
        """Register a listener (for every event, or only `types`); returns an unsubscribe."""
        targets = [self._all] if types is None else [self._by_type.setdefault(t, []) for t in types]
        for target in targets:
            target.append(listener)
        self._update_active()

        def unsubscribe() -> None:
            for target in targets:
                if listener in target:
                    target.remove(listener)
            self._update_active()

        return unsubscribe

    def publish(self, event: Event) -> None:
        for listener in self._all:
            listener(event)
        typed = self._by_type.get(type(event))
        if typed:
            for listener in typed:
                listener(event)
