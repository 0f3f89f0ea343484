"""The trading desk's commands in the shell: each entry of trading/commands.py's COMMANDS
becomes a shell command that runs against one Desk.

Imports: shell and trading. (main.py imports this module only once the banner is on screen:
the trading stack is the largest import of the boot.)
"""

from __future__ import annotations

from tradekernel.kernel.shell.shell import Shell
from tradekernel.kernel.trading.commands import COMMANDS, Desk


def register_trading_commands(shell: Shell, desk: Desk) -> None:
    for name, (handler, text) in COMMANDS.items():
        usage, _, description = text.partition(": ")
        shell.register(
            name,
            lambda args, out, handler=handler: handler(desk, args, out),
            usage,
            description or usage,
        )
