"""Deterministic synthetic trading sessions written as NASDAQ TotalView-ITCH 5.0 files.

`generate(spec)` returns the bytes of a framed ITCH file (2-byte length prefixes) for one
stock: the start-of-day system events and stock directory, then order flow, then the
end-of-day events. The same SessionSpec (its seed included) gives the same bytes on every run
and machine: all randomness comes from one `random.Random(seed)` and times are integer ns.

The flow has the shape of a real order book, after the zero-intelligence models of limit order
books (Smith, Farmer et al. 2003; Cont, Stoikov and Talreja 2010): events arrive as a Poisson
process (exponential gaps); an event is a limit order, a cancel or a marketable order. Limit
orders are placed k ticks behind the best opposite price with P(k) proportional to
(k + 1) ** -PLACEMENT_EXPONENT (most near the touch, a long tail); each resting order is equally
likely to be the one cancelled; sizes are round lots times a lognormal factor (many small
orders, a few large ones); marketable orders trade through the real price-time matching of
the kernel's OrderBook, and each fill against a resting order is written as an Order Executed
(E) message, as the exchange reports it. A side that runs empty is refilled first, so the
book always has two sides. Replayed with `feed`, the file rebuilds the generator's book.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tradekernel.kernel.trading import itch
from tradekernel.kernel.trading.book import BUY, GTC, IOC, SELL, OrderBook

PLACEMENT_EXPONENT = 1.5  # tail of the distance of new limit orders from the touch
MAX_PLACEMENT_TICKS = 100  # farthest a new limit order is placed behind the opposite touch
SIZE_SIGMA = 0.8  # lognormal spread of order sizes (in round lots)
MAX_EVENTS = 5_000_000  # bound on one session (about 180 MB of ITCH)
OPEN_NS = 34_200_000_000_000  # 09:30:00 in ns since midnight
LOCATE = 1  # the stock locate code the file uses


@dataclass(frozen=True)
class SessionSpec:
    symbol: str = "SYNTH"
    seed: int = 1
    events: int = 10_000  # order-flow events (adds + cancels + marketable orders)
    start_price: int = 100_0000  # Price(4): $100.0000
    tick: int = 100  # Price(4) units per tick: $0.01
    round_lot: int = 100
    rate_per_s: float = 2_000.0  # mean events per second
    p_cancel: float = 0.40  # of events, when orders rest
    p_market: float = 0.10
    initial_depth: int = 20  # orders per side placed before the open

    def check(self) -> None:
        if not 0 < self.events <= MAX_EVENTS:
            raise ValueError(f"events must be 1..{MAX_EVENTS}, got {self.events}")
        if not (1 <= len(self.symbol) <= 8 and self.symbol.isascii() and self.symbol.isalnum()):
            raise ValueError(f"symbol must be 1-8 ASCII letters or digits, got {self.symbol!r}")
        if not (0 < self.tick and 0 < self.start_price < 2**31 and self.round_lot > 0):
            raise ValueError("start_price, tick and round_lot must be positive (Price(4) units)")
        if not (0 <= self.p_cancel and 0 <= self.p_market and self.p_cancel + self.p_market < 1):
            raise ValueError("p_cancel + p_market must be below 1")
        if not 0 < self.rate_per_s <= 1e9:
            raise ValueError("rate_per_s must be in (0, 1e9]")


@dataclass
class SessionSummary:
    """What the generator did, for tests and reports: counts by kind and the final book."""

    adds: int = 0
    cancels: int = 0
    marketable: int = 0
    executions: int = 0
    traded_shares: int = 0
    l1: tuple = ()


class _Writer:
    def __init__(self, symbol: bytes) -> None:
        self.parts: list[bytes] = []
        self.symbol = symbol
        self.tracking = 0

    def put(self, kind: bytes, ts: int, *fields: object) -> None:
        self.tracking = (self.tracking + 1) & 0xFFFF
        raw = (kind, LOCATE, self.tracking, ts >> 32, ts & 0xFFFFFFFF, *fields)
        self.parts.append(itch.frame(itch.encode(raw)))


def generate(spec: SessionSpec) -> tuple[bytes, SessionSummary]:
    """The ITCH file of one synthetic session and a summary of it."""
    spec.check()
    rng = random.Random(spec.seed)
    stock = spec.symbol.ljust(8).encode("ascii")
    out = _Writer(stock)
    summary = SessionSummary()
    match = [0]
    now = [OPEN_NS - 1_000_000_000]

    def on_fill(
        maker: int, _owner: str, _taker: int, _price: int, qty: int, maker_left: int, _left: int
    ) -> None:
        match[0] += 1
        out.put(b"E", now[0], maker, qty, match[0])
        summary.executions += 1
        summary.traded_shares += qty
        if not maker_left:
            forget(maker)

    book = OrderBook(spec.symbol, on_fill=on_fill)
    live: list[int] = []  # resting order refs, for uniform cancels (swap-remove)
    where: dict[int, int] = {}  # ref -> index in live
    next_ref = [1]

    def size() -> int:
        lots = max(1, round(math.exp(rng.gauss(0.0, SIZE_SIGMA))))
        return lots * spec.round_lot

    def distance() -> int:
        # inverse transform of a discrete power law on 0..MAX_PLACEMENT_TICKS
        u = rng.random()
        k = int((1 - u) ** (-1 / (PLACEMENT_EXPONENT - 1))) - 1
        return min(k, MAX_PLACEMENT_TICKS)

    def reference(side: int) -> int:
        """The price a new `side` order is placed behind: the opposite touch, else the mid or
        the last trade, else the start price."""
        opposite = book.best_ask() if side == BUY else book.best_bid()
        if opposite is not None:
            return opposite[0] - side * spec.tick
        own = book.best_bid() if side == BUY else book.best_ask()
        if own is not None:
            return own[0]
        return book.last_price if book.last_price is not None else spec.start_price

    def add(side: int) -> None:
        price = reference(side) - side * distance() * spec.tick
        price = max(spec.tick, min(price, 2**32 - spec.tick))
        ref = next_ref[0]
        next_ref[0] += 1
        shares = size()
        out.put(b"A", now[0], ref, b"B" if side == BUY else b"S", shares, stock, price)
        book.submit(ref, "", side, price, shares, GTC)
        where[ref] = len(live)
        live.append(ref)
        summary.adds += 1

    def forget(ref: int) -> None:
        index = where.pop(ref)
        last = live.pop()
        if last != ref:
            live[index] = last
            where[last] = index

    def cancel() -> None:
        ref = live[rng.randrange(len(live))]
        left = book.order(ref)[3]  # type: ignore[index]
        if rng.random() < 0.2 and left > spec.round_lot:  # a partial cancel now and then
            cut = spec.round_lot * rng.randint(1, left // spec.round_lot - 1 or 1)
            if cut < left:
                book.reduce(ref, cut)
                out.put(b"X", now[0], ref, cut)
                summary.cancels += 1
                return
        book.cancel(ref)
        forget(ref)
        out.put(b"D", now[0], ref)
        summary.cancels += 1

    def marketable(side: int) -> None:
        summary.marketable += 1
        taker = -next_ref[0]  # never written: the exchange reports only the resting side
        next_ref[0] += 1
        book.submit(taker, "taker", side, None, size(), IOC)

    out.put(b"S", now[0], b"O")
    out.put(b"R", now[0], stock, b"Q", b"N", spec.round_lot, b"N", b"C", b"Z ", b"P", b"N",
            b"N", b"1", b"N", 0, b"N")  # fmt: skip
    out.put(b"S", now[0], b"S")
    for i in range(2 * spec.initial_depth):
        add(BUY if i % 2 == 0 else SELL)
    now[0] = OPEN_NS
    out.put(b"S", now[0], b"Q")
    gap_scale = 1e9 / spec.rate_per_s
    for _ in range(spec.events):
        now[0] += 1 + int(rng.expovariate(1.0) * gap_scale)
        side = BUY if rng.random() < 0.5 else SELL
        if book.best_bid() is None:
            add(BUY)
        elif book.best_ask() is None:
            add(SELL)
        else:
            draw = rng.random()
            if draw < spec.p_market:
                marketable(side)
            elif draw < spec.p_market + spec.p_cancel and live:
                cancel()
            else:
                add(side)
    now[0] += 1_000_000
    for code in (b"M", b"E", b"C"):
        out.put(b"S", now[0], code)
    summary.l1 = book.l1()
    return b"".join(out.parts), summary
