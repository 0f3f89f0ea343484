"""Sample strategies, each a .py (one Strategy subclass) with its .toml configuration:
market_maker (inventory-skewed quotes), momentum (moving-average crossover taker) and
imbalance (order-book imbalance taker on ITCH depth). The OS ships them: the shell's
`strategy` and `backtest` commands and the host's `tk backtest` load them by name."""
