"""An order-book imbalance taker on ITCH depth: when (bid size - ask size) / (bid + ask size)
at the touch passes +threshold it buys at the ask (IOC), past -threshold it sells at the bid,
at most once per `cooldown_ns`, within +-max_position; it flattens when the sign reverses."""

from decimal import Decimal

from tradekernel.kernel.trading.strategy import Context, Strategy


class Imbalance(Strategy):
    name = "imbalance"
    PARAMS = {
        "threshold": (Decimal, Decimal("0.6")),
        "size": (int, 100),
        "max_position": (int, 500),
        "cooldown_ns": (int, 2_000_000),
    }

    def on_start(self, ctx: Context) -> None:
        self.next_ns = 0

    def on_book(self, ctx: Context, top) -> None:
        if top.bid_price is None or top.ask_price is None or ctx.now_ns < self.next_ns:
            return
        p = self.params
        imbalance = Decimal(top.bid_qty - top.ask_qty) / (top.bid_qty + top.ask_qty)
        held = ctx.position(top.symbol)
        if imbalance >= p["threshold"] and held + p["size"] <= p["max_position"]:
            ctx.buy(
                top.symbol, p["size"] - min(held, 0), ctx.price(top.symbol, top.ask_price), "ioc"
            )
        elif imbalance <= -p["threshold"] and held - p["size"] >= -p["max_position"]:
            ctx.sell(
                top.symbol, p["size"] + max(held, 0), ctx.price(top.symbol, top.bid_price), "ioc"
            )
        else:
            return
        self.next_ns = ctx.now_ns + p["cooldown_ns"]
