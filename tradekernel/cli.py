"""The `tk` command line."""

from __future__ import annotations

import click

from tradekernel import __version__


@click.group()
@click.version_option(__version__, prog_name="tk")
def main() -> None:
    """TradeKernel: a PC emulated in Python and the trading OS that runs on it."""
