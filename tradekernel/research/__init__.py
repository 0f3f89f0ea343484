"""Host-side research tools for the trading stack: `tk backtest` (boots the PC in deterministic
mode and runs the OS's `backtest` on the files put on its disk, booted.py; --host runs the
kernel's backtest code in this process), `tk data generate|lobster` (a seeded synthetic ITCH
generator, LOBSTER conversion), `tk report` (text tables and HTML from a run's files; the raw
rows also as Parquet, parquet.py, from the files the machine's run wrote) and `tk sweep`
(parameter grids, one booted machine per point, in local processes or on a Dask cluster). The
strategy API, the fill model, the configurations and the sample strategies live in the kernel
(tradekernel.kernel.trading), which the OS's `strategy` and `backtest` commands run too."""
