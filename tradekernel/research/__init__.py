"""Host-side research tools for the trading stack: `tk backtest` (host files in, the kernel's
backtest code run in this process), `tk data generate|lobster` (a seeded synthetic ITCH
generator, LOBSTER conversion), `tk report` (text tables from a run's files) and `tk sweep`
(parameter grids in local processes). The strategy API, the fill model, the configurations
and the sample strategies live in the kernel (tradekernel.kernel.trading), which the OS's
`strategy` and `backtest` commands run too."""
