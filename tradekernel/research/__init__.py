"""Host-side research tools for the trading stack (issue 19 groundwork): the strategy API, a
deterministic synthetic market-data generator and a LOBSTER reader. They run the kernel's own
trading engine (tradekernel.kernel.trading) in this process and need no kernel change; the shell
and kernel integration (strategies on the disk, `backtest`, `tk backtest`) builds on them."""
