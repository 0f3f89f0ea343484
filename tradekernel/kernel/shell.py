"""The shell: reads lines from the tty, splits them with POSIX quoting, runs commands.

Commands live in one table (name -> handler, usage, one-line help) that `help` is generated
from; services add theirs with `register`. A handler gets the argument list and an output sink
and returns an exit status. A bad command line, an unknown command or a handler that raises
prints one clear line and the prompt comes back: the shell itself never dies.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from tradekernel import __version__
from tradekernel.kernel.console import Console
from tradekernel.kernel.tty import Tty

ERROR_ATTR = 0x0C  # light red


class UsageError(Exception):
    """Raised by a handler for bad arguments; the shell prints it with the usage line."""


class Output:
    """The sink commands write to: text with optional VGA colours (trading's TextSink)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str, fg: int | None = None, bg: int | None = None) -> None:
        if fg is None and bg is None:
            self._console.write(text)
            return
        base = self._console.attr
        attr = ((base & 0xF0) if bg is None else (bg << 4)) | (base & 0x0F if fg is None else fg)
        self._console.write(text, attr)

    def line(self, text: str = "", fg: int | None = None) -> None:
        self.write(text + "\n", fg)

    def error(self, text: str) -> None:
        self.write(text + "\n", ERROR_ATTR)


Handler = Callable[[list[str], Output], int]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    usage: str
    help: str


class Shell:
    def __init__(self, tty: Tty, console: Console, kernel) -> None:  # noqa: ANN001 - Kernel
        self.tty = tty
        self.console = console
        self.kernel = kernel
        self.out = Output(console)
        self.commands: dict[str, Command] = {}
        self.cwd = "/"
        tty.on_line = self._on_line
        tty.on_end_of_input = self._on_end_of_input
        for name, handler, usage, text in (
            ("help", self._help, "help [COMMAND]", "list the commands, or show one's usage"),
            ("clear", self._clear, "clear", "clear the screen"),
            ("echo", self._echo, "echo [TEXT...]", "print the arguments"),
            ("history", self._history, "history", "list the lines typed so far"),
            ("uptime", self._uptime, "uptime", "time since boot (virtual clock)"),
            ("date", self._date, "date", "date and time from the CMOS clock"),
            ("version", self._version, "version", "the TradeKernel version and machine"),
            ("reboot", self._reboot, "reboot", "restart the machine (8042 reset line)"),
            ("shutdown", self._shutdown, "shutdown", "power the machine off"),
        ):
            self.register(name, handler, usage, text)

    def register(self, name: str, handler: Handler, usage: str, help_text: str) -> None:
        if name in self.commands:
            raise ValueError(f"shell command {name!r} registered twice")
        self.commands[name] = Command(name, handler, usage, help_text)

    @property
    def prompt(self) -> str:
        return f"tk:{self.cwd}> "

    def start(self) -> None:
        self.tty.read_line(self.prompt)

    # ---- running a line -------------------------------------------------------------------
    def _on_line(self, line: str) -> None:
        self.kernel.defer(lambda: self._run_and_prompt(line))

    def _run_and_prompt(self, line: str) -> None:
        self.execute(line)
        if not self.kernel.stopping:
            self.tty.read_line(self.prompt)

    def execute(self, line: str) -> int:
        try:
            argv = shlex.split(line, comments=True)
        except ValueError as error:
            self.out.error(f"sh: {error}")
            return 2
        if not argv:
            return 0
        command = self.commands.get(argv[0])
        if command is None:
            self.out.error(f"sh: {argv[0]}: unknown command (type 'help' for the list)")
            return 127
        try:
            return command.handler(argv[1:], self.out)
        except UsageError as error:
            self.out.error(f"{command.name}: {error}")
            self.out.line(f"usage: {command.usage}")
            return 2
        except Exception as error:  # noqa: BLE001 - a broken command must not kill the shell
            self.out.error(f"{command.name}: internal error: {type(error).__name__}: {error}")
            self.kernel.platform.log(f"shell: {command.name} raised {error!r}")
            return 1

    def _on_end_of_input(self) -> None:
        self.out.line("(end of input: type 'shutdown' to power off)")
        self.kernel.defer(self.start)

    # ---- built-in commands --------------------------------------------------------------
    @staticmethod
    def _no_arguments(args: list[str]) -> None:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")

    def _help(self, args: list[str], out: Output) -> int:
        if args:
            command = self.commands.get(args[0])
            if command is None:
                raise UsageError(f"no command {args[0]!r}")
            out.line(f"usage: {command.usage}")
            out.line(f"  {command.help}")
            return 0
        width = max(len(name) for name in self.commands) + 2
        for name in sorted(self.commands):
            out.write(f"{name:<{width}}", 0x0F)
            out.line(self.commands[name].help)
        return 0

    def _clear(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        self.console.clear()
        return 0

    def _echo(self, args: list[str], out: Output) -> int:
        out.line(" ".join(args))
        return 0

    def _history(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        for number, line in enumerate(self.tty.history, 1):
            out.line(f"{number:4}  {line}")
        return 0

    def _uptime(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        ns = self.kernel.clock.uptime_ns()
        seconds, fraction = divmod(ns, 1_000_000_000)
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        out.line(f"up {hours}:{minutes:02}:{seconds:02}.{fraction // 1_000_000:03} ({ns} ns)")
        return 0

    def _date(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        out.line(self.kernel.clock.wall_time().strftime("%a %Y-%m-%d %H:%M:%S UTC"))
        return 0

    def _version(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        mib = self.kernel.platform.ram_bytes // (1024 * 1024)
        out.line(f"TradeKernel {__version__} on the TradeKernel PC (i386, {mib} MiB)")
        return 0

    def _reboot(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        out.line("rebooting...")
        self.kernel.reboot()
        return 0

    def _shutdown(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        out.line("powering off.")
        self.kernel.power_off()
        return 0
