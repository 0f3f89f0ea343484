"""The trading engine as kernel services: instruments, books, order management, risk, portfolio,
market-data parsers (FIX 4.4, ITCH 5.0, CSV), feed replay and the shell's trading commands.

Pure Python with clean edges: time comes in as `now_ns()` callables, configuration as TOML text,
files as a `read_file` callable, and shell output through a `TextSink`.
"""
