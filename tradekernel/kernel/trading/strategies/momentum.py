"""A moving-average crossover taker: keeps the last `slow` trade prices; when the mean of
the last `fast` crosses above the slow mean it buys (to +size), below it sells (to -size),
with market orders."""

from collections import deque
from decimal import Decimal

from tradekernel.kernel.trading.strategy import Context, Strategy


class Momentum(Strategy):
    name = "momentum"
    PARAMS = {"fast": (int, 20), "slow": (int, 100), "size": (int, 100)}

    def on_start(self, ctx: Context) -> None:
        if not 0 < self.params["fast"] < self.params["slow"]:
            raise ValueError("fast must be positive and below slow")
        self.prices: deque[int] = deque(maxlen=self.params["slow"])
        self.sign = 0  # of fast - slow at the last trade

    def on_trade(self, ctx: Context, trade) -> None:
        prices = self.prices
        prices.append(trade.price)
        p = self.params
        if len(prices) < p["slow"]:
            return
        fast = Decimal(sum(list(prices)[-p["fast"] :])) / p["fast"]
        slow = Decimal(sum(prices)) / p["slow"]
        sign = (fast > slow) - (fast < slow)
        if sign and sign != self.sign:
            self.sign = sign
            target = sign * p["size"]
            held = ctx.position(trade.symbol)
            if target != held and not ctx.open_orders():
                if target > held:
                    ctx.buy(trade.symbol, target - held)
                else:
                    ctx.sell(trade.symbol, held - target)
