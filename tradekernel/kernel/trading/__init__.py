"""The trading engine as kernel services: instruments, books, order management, risk, portfolio,
market-data parsers (FIX 4.4, ITCH 5.0, CSV, LOBSTER), feed replay, the shell's trading commands,
the strategy API (strategy.py), the backtest fill model (backtest.py) and the sample strategies.

Pure Python with clean edges: time comes in as `now_ns()` callables, configuration as TOML text,
files as a `read_file` callable, and shell output through a `TextSink`.

Imports: nothing outside kernel/trading (trading is a service over plain data); main.py and the
shell's trading and strategy commands wire it in.
"""
