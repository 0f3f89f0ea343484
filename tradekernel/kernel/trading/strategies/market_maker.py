"""A market maker with inventory skew: every `requote_ns` it works out a bid and an ask around
the mid, shifted against its inventory (long: both lower, to sell more and buy less), never
better than the touch, and stops quoting the side that would take it past `max_inventory`.

A quote whose price has not changed is left where it is: a passive order fills only once the
volume queued ahead of it at its price has traded or gone, so cancelling and re-entering it
every few milliseconds would keep it at the back of the queue for ever (the first version of
this sample did that, and made no fills at all on some synthetic sessions). The default
`half_spread` of half a tick joins the touch when the inventory is flat; skew moves a quote
back a tick once the inventory makes it worth it."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tradekernel.kernel.trading.book import BUY, SELL
from tradekernel.kernel.trading.strategy import Context, Strategy


class MarketMaker(Strategy):
    name = "market_maker"
    PARAMS = {
        "half_spread": (Decimal, Decimal("0.005")),  # price from the reservation price
        "quote_tick": (Decimal, Decimal("0.01")),  # quotes are rounded away to this grid
        "size": (int, 100),  # shares per quote
        "skew_per_share": (Decimal, Decimal("0.00002")),  # price shift per share held
        "max_inventory": (int, 1000),
        "requote_ns": (int, 5_000_000),
    }

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(self.params["requote_ns"], "quote")

    def on_timer(self, ctx: Context, name: str) -> None:
        p = self.params
        ctx.set_timer(p["requote_ns"], name)
        symbol = self.symbols[0]
        bid, _, ask, _ = ctx.top(symbol)
        wanted: dict[int, Decimal | None] = {BUY: None, SELL: None}
        if bid is not None and ask is not None:
            held = ctx.position(symbol)
            reservation = (bid + ask) / 2 - p["skew_per_share"] * held
            tick = p["quote_tick"]
            my_bid = ((reservation - p["half_spread"]) / tick).to_integral_value(ROUND_FLOOR)
            my_ask = ((reservation + p["half_spread"]) / tick).to_integral_value(ROUND_CEILING)
            if held + p["size"] <= p["max_inventory"]:
                wanted[BUY] = min(my_bid * tick, bid)
            if held - p["size"] >= -p["max_inventory"]:
                wanted[SELL] = max(my_ask * tick, ask)
        for order in ctx.open_orders():  # keep a quote at its price (and its queue place)
            if wanted[order.side] is not None and ctx.price(symbol, order.price) == wanted[
                    order.side]:  # fmt: skip
                wanted[order.side] = None
            else:
                ctx.cancel(order.order_id)
        for side, price in wanted.items():
            if price is not None:
                ctx.submit(symbol, side, p["size"], price)
