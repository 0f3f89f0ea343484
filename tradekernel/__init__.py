"""TradeKernel: a PC emulated in Python and the trading OS that runs on it."""

__version__ = "0.1.0"
