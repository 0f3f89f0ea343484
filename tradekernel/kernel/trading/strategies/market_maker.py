"""A market maker with inventory skew: quotes both sides around the mid every `requote_ns`,
shifting both quotes against its inventory (long: lower, to sell more and buy less), and
stops quoting the side that would take it past `max_inventory`."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tradekernel.kernel.trading.strategy import Context, Strategy


class MarketMaker(Strategy):
    name = "market_maker"
    PARAMS = {
        "half_spread": (Decimal, Decimal("0.02")),  # price from the reservation price
        "quote_tick": (Decimal, Decimal("0.01")),  # quotes are rounded away to this grid
        "size": (int, 100),  # shares per quote
        "skew_per_share": (Decimal, Decimal("0.0001")),  # price shift per share held
        "max_inventory": (int, 1000),
        "requote_ns": (int, 5_000_000),
    }

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(self.params["requote_ns"], "quote")

    def on_timer(self, ctx: Context, name: str) -> None:
        p = self.params
        ctx.set_timer(p["requote_ns"], name)
        for order in ctx.open_orders():
            ctx.cancel(order.order_id)
        symbol = self.symbols[0]
        bid, _, ask, _ = ctx.top(symbol)
        if bid is None or ask is None:
            return
        held = ctx.position(symbol)
        reservation = (bid + ask) / 2 - p["skew_per_share"] * held
        tick = p["quote_tick"]
        my_bid = ((reservation - p["half_spread"]) / tick).to_integral_value(ROUND_FLOOR) * tick
        my_ask = ((reservation + p["half_spread"]) / tick).to_integral_value(ROUND_CEILING) * tick
        if held + p["size"] <= p["max_inventory"]:
            ctx.buy(symbol, p["size"], min(my_bid, bid))
        if held - p["size"] >= -p["max_inventory"]:
            ctx.sell(symbol, p["size"], max(my_ask, ask))
