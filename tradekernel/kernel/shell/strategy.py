"""Strategies and backtests in the OS: `strategy list|params|start|stop|status` and `backtest`.

A strategy is a Python file defining one Strategy subclass (kernel/trading/strategy.py), with
a TOML configuration beside it (kernel/trading/config.py). The OS ships the samples of
kernel/trading/strategies; a file /strategies/NAME.py on the disk (with /strategies/NAME.toml)
adds a strategy or replaces a sample of the same name. `strategy start` binds a configured
instance to the kernel's live TradingEngine and the machine clock's timer (`Kernel.call_at`),
so it trades on whatever the desk and the feeds (`feed FILE [--pace]`) put in the books, under
the owner name NAME-ID (per-owner risk limits, the kill switch and `orders -o` apply to it).
`strategy status` lists them with their live tick-to-order percentiles (virtual ns), and
beside them every ring-3 program trading through /dev/market (kernel/trading/marketport.py),
by process id. `backtest` runs the same strategy code on a data file through the backtest
fill model (kernel/trading/backtest.py) in virtual time of its own: its fills and latencies
do not depend on the machine's clock, so the same file and configuration print the same
figures. `backtest ... --out DIR` also writes the run's files (BacktestResult.run_files: what
`tk report` reads) into DIR on the OS's disk, where `tk backtest` collects them after the run.

Ring-3 strategies: `backtest PROGRAM DATA [-- ARGS]` (PROGRAM a path, /bin/mdtaker) runs a C
program that trades through /dev/market as the strategy, unchanged: it is started in the
foreground with ARGS (or [params] args of its configuration), its /dev/market session is bound
to the backtest (trading/program.py: the replay moves in lockstep with the program's CPU time,
which becomes its tick-to-order latency), and the figures are printed when both the data and
the program have ended. Its configuration is --config F, else PROGRAM.toml beside it, else
the defaults (every instrument it subscribes to; default fill model and limits); there
[instruments] symbols limits what it can hear ("*": anything), and its hash covers the
program's bytes and its arguments. A program that crashes, is killed (Ctrl-C) or uses more than
[params] silence_limit_ms (100) ms of CPU without reading /dev/market (a loop: it is killed)
stops the backtest with one line; what ran until then is kept and printed (and written with
--out). After the
end of the data (its reads return 0) a program has END_GRACE_NS of machine time to exit
before it is killed. Only a deterministic machine gives the same figures on every run.

Containment: a strategy that raises or uses more than its CPU budget per event is stopped
(its orders cancelled), leaves an oops in the kernel log and one console line; the shell, the
desk and other strategies go on. Files from the disk are size-checked before they are read.

Imports: shell, trading, and proc for the program's process (main.py registers the commands
once trading has started).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from importlib import resources

from tradekernel.kernel.proc.process import SpawnError
from tradekernel.kernel.proc.signals import SIGKILL, signal_text
from tradekernel.kernel.proc.task import Process, State
from tradekernel.kernel.shell.programs import program_path
from tradekernel.kernel.shell.shell import Output, Shell, UsageError
from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.backtest import BacktestResult, percentiles, run_backtest
from tradekernel.kernel.trading.config import (
    MAX_FILE_BYTES,
    ConfigError,
    configure,
    parse_override,
    strategy_class,
)
from tradekernel.kernel.trading.feed import FeedError
from tradekernel.kernel.trading.program import (
    ALL_SYMBOLS,
    DEFAULT_CONFIG,
    ProgramBacktest,
    ProgramStrategy,
)
from tradekernel.kernel.trading.strategy import Strategy, StrategyHost

STRATEGY_DIR = "/strategies"
MAX_DATA_BYTES = 64 << 20  # a backtest data file larger than this is refused unread
MAX_RUNNING = 32  # strategies started and not yet stopped
PROGRESS_EVERY = 20_000  # backtest events between progress updates on the console
MAX_PROGRAM_BYTES = 16 << 20  # a ring-3 strategy's program larger than this is refused unread
END_GRACE_NS = 1_000_000_000  # machine time a program has to exit after the data's end
# machine time between looks at a backtested program, counted from its start: a look that
# lands while the program computes adds the interrupt's instructions to its latency, at the
# same points of every run
WATCH_EVERY_NS = 10_000_000
RED, CYAN, GREY = 12, 11, 7
START_USAGE = "strategy start NAME [--config FILE] [--param NAME=VALUE]..."
BACKTEST_USAGE = ("backtest NAME|PROGRAM DATA [--config FILE] [--param NAME=VALUE]... "
                  "[--out DIR] [-- ARGS]")  # fmt: skip


class StrategyCommands:
    """The commands' state: the running strategies by id, and how to reach the disk."""

    def __init__(self, shell: Shell, kernel) -> None:  # noqa: ANN001 - the Kernel
        self.shell = shell
        self.kernel = kernel
        self.running: dict[int, tuple[StrategyHost, int, str]] = {}  # id -> host, start, hash
        self._next_id = 1

    def register(self) -> None:
        self.shell.register(
            "strategy",
            self.cmd_strategy,
            "strategy list|params NAME|start NAME [--config F] [--param K=V]|stop ID|status",
            "trading strategies: the samples and /strategies/*.py; run them live on the desk",
        )
        self.shell.register(
            "backtest",
            self.cmd_backtest,
            BACKTEST_USAGE,
            "replay a data file (.itch, .csv, LOBSTER) through a strategy or a ring-3 program",
        )

    # ---- files --------------------------------------------------------------------------
    def _disk_file(self, path: str, limit: int) -> bytes:
        fs = self.kernel.fs
        if fs is None:
            raise ConfigError(f"{path}: no filesystem is mounted")
        try:
            size = fs.stat(path).size
            if size > limit:
                raise ConfigError(f"{path}: {size} bytes, more than {limit}")
            return fs.read_file(path)
        except (OSError, KeyError, ValueError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"{path}: cannot read: {err}") from None

    def catalogue(self) -> dict[str, str]:
        """name -> where its code is: 'sample' or the disk path (the disk wins)."""
        names = {entry.name[:-3]: "sample" for entry in resources.files(strategies).iterdir()
                 if entry.name.endswith(".py") and entry.name != "__init__.py"}  # fmt: skip
        fs = self.kernel.fs
        if fs is not None and fs.exists(STRATEGY_DIR):
            for entry in fs.listdir(STRATEGY_DIR):
                if entry.lower().endswith(".py"):
                    names[entry[:-3]] = f"{STRATEGY_DIR}/{entry}"
        return dict(sorted(names.items()))

    def _source(self, name: str) -> tuple[bytes, str, bytes, str]:
        """(code, its origin, configuration text, its origin) of a strategy by name."""
        where = self.catalogue().get(name)
        if where is None:
            raise ConfigError(f"{name}: no such strategy (strategy list shows them)")
        if where == "sample":
            folder = resources.files(strategies)
            return (folder.joinpath(f"{name}.py").read_bytes(), f"{name}.py",
                    folder.joinpath(f"{name}.toml").read_bytes(), f"{name}.toml")  # fmt: skip
        toml = where[:-3] + ".toml"
        return (self._disk_file(where, MAX_FILE_BYTES), where,
                self._disk_file(toml, MAX_FILE_BYTES), toml)  # fmt: skip

    def _load(self, args: list[str], positional: int) -> tuple[list[str], Strategy, object, str]:
        """Parse NAME [more positionals] [--config F] [--param K=V]...; the configured
        strategy, its configuration and the hash of code + configuration."""
        words, config_path, overrides = self._options(args, positional)
        code, origin, config, config_origin = self._source(words[0])
        if config_path is not None:
            config, config_origin = self._disk_file(config_path, MAX_FILE_BYTES), config_path
        cls = strategy_class(code, origin)
        strategy, cfg, digest = configure(cls, code, config, config_origin, overrides)
        strategy.name = words[0]
        return words, strategy, cfg, digest

    def _options(self, args: list[str], positional: int
                 ) -> tuple[list[str], str | None, dict[str, object]]:  # fmt: skip
        """(positionals, --config path or None, --param overrides)."""
        words: list[str] = []
        config_path: str | None = None
        overrides: dict[str, object] = {}
        i = 0
        while i < len(args):
            if args[i] in ("--config", "--param"):
                if i + 1 >= len(args):
                    raise UsageError(f"{args[i]} needs a value")
                if args[i] == "--config":
                    config_path = self.shell.resolve_path(args[i + 1])
                else:
                    key, value = parse_override(args[i + 1])
                    overrides[key] = value
                i += 2
            elif args[i].startswith("-"):
                raise UsageError(f"unknown option {args[i]!r}")
            else:
                words.append(args[i])
                i += 1
        if len(words) != positional:
            raise UsageError(f"expected {positional} argument{'s' if positional > 1 else ''}")
        return words, config_path, overrides

    # ---- strategy ... -------------------------------------------------------------------
    def cmd_strategy(self, args: list[str], out: Output) -> int:
        if not args:
            raise UsageError("expected list, params, start, stop or status")
        verb, rest = args[0], args[1:]
        handlers = {"list": self._list, "params": self._params, "start": self._start,
                    "stop": self._stop, "status": self._status}  # fmt: skip
        if verb not in handlers:
            raise UsageError(f"unknown subcommand {verb!r}")
        try:
            return handlers[verb](rest, out)
        except ConfigError as err:
            out.error(f"strategy: {err}")
            return 1

    def _list(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        running: dict[str, list[str]] = {}
        for sid, (host, _, _) in self.running.items():
            running.setdefault(host.strategy.name, []).append(str(sid))
        out.line(f"{'NAME':<16} {'CODE':<28} RUNNING (ids)")
        for name, where in self.catalogue().items():
            out.line(f"{name:<16} {where:<28} {','.join(running.get(name, [])) or '-'}")
        return 0

    def _params(self, args: list[str], out: Output) -> int:
        _, strategy, cfg, digest = self._load(args, 1)
        schema = getattr(type(strategy), "PARAMS", {})
        out.line(f"{strategy.name}: symbols {', '.join(cfg.symbols)}; hash {digest[:12]}")
        out.line(f"{'PARAM':<16} {'KIND':<8} {'DEFAULT':>12} {'CONFIGURED':>12}")
        for key, (kind, default) in schema.items():
            value = strategy.params[key]  # type: ignore[attr-defined]
            out.line(f"{key:<16} {kind.__name__:<8} {default!s:>12} {value!s:>12}")
        risk, fill = cfg.risk, cfg.fill
        out.line(f"risk: max_order_lots {risk.max_order_lots}, max_position_lots "
                 f"{risk.max_position_lots}, max_orders_per_s {risk.max_orders_per_s}")  # fmt: skip
        out.line(f"fill (backtest): order {fill.order_latency_ns} ns, md {fill.md_latency_ns} ns,"
                 f" fee {fill.fee_bps} bps + {fill.fee_per_lot}/lot")  # fmt: skip
        return 0

    def _start(self, args: list[str], out: Output) -> int:
        if len(self.running) >= MAX_RUNNING:
            out.error(f"strategy: {MAX_RUNNING} strategies are running already")
            return 1
        _, strategy, cfg, digest = self._load(args, 1)
        engine = self.kernel.trading
        for symbol in cfg.symbols:
            if symbol not in engine.books:
                out.error(f"strategy: {strategy.name}: unknown instrument {symbol!r}")
                return 1
        sid = self._next_id
        self._next_id += 1
        owner = f"{strategy.name}-{sid}"
        engine.risk.set_limit(owner, "max_order_qty", cfg.risk.max_order_lots)
        engine.risk.set_limit(owner, "max_position", cfg.risk.max_position_lots)
        engine.risk.set_limit(owner, "max_orders_per_sec", cfg.risk.max_orders_per_s)

        def stopped(message: str, error: BaseException | None) -> None:
            self._stopped(sid, message, error)

        host = StrategyHost(strategy, engine, self.kernel.call_at, owner, on_stopped=stopped)
        self.running[sid] = (host, self.kernel.clock.now_ns(), digest)
        host.start()
        if host.running:
            out.line(f"strategy {sid} started: {strategy.name} as owner {owner} on "
                     f"{', '.join(cfg.symbols)} (hash {digest[:12]})", CYAN)  # fmt: skip
            return 0
        return 1

    def _stopped(self, sid: int, message: str, error: BaseException | None) -> None:
        """A strategy's callback raised or overran: the oops, and one line on the console."""
        self.kernel.klog.oops("strategy", f"strategy {sid} {message}; it was stopped", error)
        self.kernel.console.write(f"strategy {sid} stopped: {message}\n", RED)

    def _stop(self, args: list[str], out: Output) -> int:
        if len(args) != 1 or not args[0].isdigit():
            raise UsageError("expected a strategy id (strategy status shows them)")
        sid = int(args[0])
        entry = self.running.pop(sid, None)
        if entry is None:
            out.error(f"strategy: no strategy with id {sid}")
            return 1
        host = entry[0]
        was = host.running
        host.stop()
        out.line(f"strategy {sid} ({host.owner}) stopped" + ("" if was else
                 f" (it had stopped: {host.error})"))  # fmt: skip
        return 0

    def _status(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        market = getattr(self.kernel, "market", None)  # /dev/market sessions (ring 3)
        ports = list(market.bound) if market is not None else []
        if not self.running and not ports:
            out.line("no strategies (strategy start NAME, or a program on /dev/market)")
            return 0
        now = self.kernel.clock.now_ns()
        out.line(f"{'ID':>3} {'OWNER':<16} {'STATE':<7} {'POS':>6} {'NET P&L':>10} "
                 f"{'ORD':>4} {'EVENTS':>7} {'EV/S':>6} {'CPU ms':>7}")  # fmt: skip
        for sid, (host, started, _) in self.running.items():
            state = "running" if host.running else "stopped"
            self._status_row(out, str(sid), host.owner, state, host.strategy.symbols,
                             host.events_delivered, now - started, host.cpu_ns)
            self._latency_line(out, host.latencies)
            if host.error:
                out.line(f"    {host.error}", RED)
        table = self.kernel.processes.table if self.kernel.processes else {}
        for port in ports:  # ring-3 programs: the id is the process's, CPU its user time
            process = table.get(port.pid)
            self._status_row(out, f"p{port.pid}", port.owner, "ring3", self.kernel.trading.books,
                             port.events, now - port.bound_ns, process.cpu_ns if process else 0)
            self._latency_line(out, port.latencies)
            if port.lost:
                out.line(f"    {port.lost} events dropped: the program read too slowly", RED)
        return 0

    def _status_row(self, out: Output, sid: str, owner: str, state: str, symbols, events: int,
                    age_ns: int, cpu_ns: int) -> None:  # noqa: ANN001 - any iterable of symbols
        engine = self.kernel.trading
        rate = events / (max(age_ns, 1) / 1e9)
        position = sum(engine.portfolio.position_qty(owner, s) for s in symbols)
        realized, unrealized, fees = engine.pnl(owner).get(owner, (Decimal(0),) * 3)
        out.line(f"{sid:>3} {owner:<16} {state:<7} {position:>6} "
                 f"{realized + unrealized - fees:>10.2f} {len(engine.open_orders(owner)):>4} "
                 f"{events:>7} {rate:>6.0f} {cpu_ns / 1e6:>7.1f}")  # fmt: skip

    @staticmethod
    def _latency_line(out: Output, latencies) -> None:  # noqa: ANN001 - a deque of ns
        figures = percentiles(list(latencies))
        if figures:
            out.line(f"    tick-to-order ns ({len(latencies)} orders): "
                     + " ".join(f"{k} {v}" for k, v in figures.items()), GREY)  # fmt: skip

    # ---- backtest -------------------------------------------------------------------------
    def cmd_backtest(self, args: list[str], out: Output) -> int:
        folder: str | None = None
        program_args: list[str] | None = None
        if "--" in args:
            at = args.index("--")
            args, program_args = args[:at], args[at + 1:]
        if "--out" in args:
            at = args.index("--out")
            if at + 1 >= len(args):
                raise UsageError("--out needs a value")
            folder = self.shell.resolve_path(args[at + 1])
            args = args[:at] + args[at + 2:]
        if args and "/" in args[0]:
            return self._backtest_program(args, program_args, folder, out)
        if program_args is not None:
            raise UsageError("-- ARGS are a program's (PROGRAM is a path: /bin/mdtaker)")
        try:
            words, strategy, cfg, digest = self._load(args, 2)
            path = self.shell.resolve_path(words[1])
            data = self._disk_file(path, MAX_DATA_BYTES)
        except ConfigError as err:
            out.error(f"backtest: {err}")
            return 1
        shown = [0]

        def progress(events: int) -> None:
            if events - shown[0] >= PROGRESS_EVERY:
                shown[0] = events
                out.write(f"\r  {events} events", GREY)

        try:
            result = run_backtest(strategy, path, data, cfg.fill, cfg.risk, digest,
                                  progress=progress,
                                  on_stopped=lambda m, e: self.kernel.klog.oops(
                                      "strategy", f"backtest {m}; it was stopped", e))  # fmt: skip
        except FeedError as err:
            out.error(f"backtest: {err}")
            return 1
        if shown[0]:
            out.write("\r" + " " * 20 + "\r")
        print_result(result, out)
        if folder is not None:
            try:
                self._write_run(folder, result)
            except ConfigError as err:
                out.error(f"backtest: {err}")
                return 1
        return 2 if result.strategy_error else 0

    def _backtest_program(self, args: list[str], program_args: list[str] | None,
                          folder: str | None, out: Output) -> int:  # fmt: skip
        """A ring-3 program as the strategy (see the module docstring): started here, ended
        by ProgramRun."""
        if not out.is_terminal:
            out.error("backtest: a program writes to the console; output redirection is not "
                      "supported")  # fmt: skip
            return 1
        kernel = self.kernel
        try:
            words, config_path, overrides = self._options(args, 2)
            path = program_path(kernel, words[0])
            code = self._disk_file(path, MAX_PROGRAM_BYTES)
            if config_path is None and kernel.fs.exists(path + ".toml"):
                config_path = path + ".toml"
            config, origin = DEFAULT_CONFIG, "(default configuration)"
            if config_path is not None:
                config, origin = self._disk_file(config_path, MAX_FILE_BYTES), config_path
            if program_args is not None:
                overrides["args"] = " ".join(program_args)
            strategy, cfg, digest = configure(ProgramStrategy, code, config, origin, overrides)
            data_path = self.shell.resolve_path(words[1])
            data = self._disk_file(data_path, MAX_DATA_BYTES)
        except ConfigError as err:
            out.error(f"backtest: {err}")
            return 1
        name = path.rsplit("/", 1)[-1]
        strategy.name = name
        if ALL_SYMBOLS in cfg.symbols:
            strategy.symbols = ()  # the program hears what it subscribes to
        argv = [words[0], *str(strategy.params["args"]).split()]  # type: ignore[attr-defined]
        run = ProgramRun(self, folder)
        link = ProgramBacktest(strategy, data_path, data, cfg.fill, cfg.risk, digest,
                               run.cpu_ns, run.why_closed, run.replay_ended)  # fmt: skip
        run.link = link
        link.start()  # up to the program's first step (a data file that cannot be read ends here)
        if link.finished:
            out.error(f"backtest: {link.error}")
            return 1
        try:
            run.process = kernel.processes.spawn(path, argv, self.shell.cwd, foreground=True)
        except SpawnError as err:
            out.error(f"backtest: {err}")
            link.stop(f"{name} did not start")
            return 1
        kernel.market.claims[run.process.pid] = link
        run.hold_terminal()
        if not kernel.platform.deterministic:
            out.line("backtest: the machine's clock is real time: a program's latencies (and so "
                     "its fills) differ from run to run", GREY)  # fmt: skip
        run.watch()
        self.shell.suspend_prompt()  # the job's end brings it back
        return 0

    def _write_run(self, folder: str, result: BacktestResult) -> None:
        """The run's files into `folder` on the disk (made with its parents if missing; files
        there replaced), flushed: on the disk image when the command returns."""
        fs = self.kernel.fs
        if fs is None:
            raise ConfigError(f"{folder}: no filesystem is mounted")
        try:
            made = ""
            for part in filter(None, folder.split("/")):
                made += "/" + part
                if not fs.exists(made):
                    fs.mkdir(made)
            for name, text in result.run_files().items():
                fs.write_file(f"{made}/{name}", text.encode())
            fs.flush()
        except (OSError, KeyError, ValueError) as err:
            raise ConfigError(f"{folder}: cannot write the run: {err}") from None


class ProgramRun:
    """The kernel's side of one ring-3 backtest: the program's CPU clock, why it ended, the
    watch for loops and for the end, and the figures once the replay and the program are
    both done."""

    def __init__(self, commands: StrategyCommands, folder: str | None) -> None:
        self.commands = commands
        self.kernel = commands.kernel
        self.process: Process = None  # type: ignore[assignment] - spawned once the replay is ready
        self.folder = folder
        self.link: ProgramBacktest | None = None
        self.reason = ""  # why the kernel killed it (a loop, no exit after the data)
        self.ended_at: int | None = None  # machine time the replay ended
        self.reported = False
        self.started_ns = self.kernel.clock.now_ns()
        self.looks = 0  # watches so far
        self._terminal_hook: tuple[Callable[[], None], Callable[[], None]] | None = None

    def cpu_ns(self) -> int:
        """The program's CPU time so far (up to this instant when it is the one running)."""
        manager = self.kernel.processes
        process = self.process
        if process is None:
            return 0
        if manager.current is process:
            return process.cpu_ns + self.kernel.clock.now_ns() - manager.last_entry_ns
        return process.cpu_ns

    def _dead(self) -> bool:
        return self.process.state == State.ZOMBIE or self.process.pid not in (
            self.kernel.processes.table)

    def why_closed(self) -> str:
        """Why the program's session closed: "" for an ordinary end (exit status 0, or a
        close it made itself)."""
        process = self.process
        who = f"{process.name}[{process.pid}]"
        if self.reason:
            return f"{who} {self.reason}"
        if process.state != State.ZOMBIE:
            return ""
        status = process.exit_status
        if status & 0x7F:
            return f"{who} died: {signal_text(status & 0x7F)}"
        return f"{who} exited with status {status >> 8}" if status >> 8 else ""

    def replay_ended(self) -> None:
        """The replay is over, or the program's session closed after it was (told on the
        kernel's thread, from inside whatever call: the report is deferred)."""
        if self.ended_at is None:
            self.ended_at = self.kernel.clock.now_ns()
        if self.process is not None:
            self.kernel.defer(self._report)

    def hold_terminal(self) -> None:
        """Be told first when the program (the foreground job) ends: the figures then come
        before the prompt even when it never opened /dev/market. (Another foreground job
        ending, while the program is stopped in the background, is passed on untouched.)"""
        terminal = self.kernel.processes.terminal
        told = terminal.on_foreground_ended

        def ended() -> None:
            if self._dead():
                self._release_terminal()
                self.kernel.defer(self._settle)
            told()  # job control: the prompt, deferred after the figures

        terminal.on_foreground_ended = ended
        self._terminal_hook = (ended, told)

    def _release_terminal(self) -> None:
        terminal = self.kernel.processes.terminal
        if self._terminal_hook is not None and terminal.on_foreground_ended is (
                self._terminal_hook[0]):  # fmt: skip
            terminal.on_foreground_ended = self._terminal_hook[1]
        self._terminal_hook = None

    def _settle(self) -> None:
        """The program has ended: its strategy ends (no-op if its session's close did it)."""
        assert self.link is not None
        self.link.stop(self.why_closed())
        self._report()

    def watch(self) -> None:
        """Every WATCH_EVERY_NS: a program that died without its session (it never opened
        one), loops, or outlives the data too long."""
        if self.reported:
            return
        link = self.link
        assert link is not None
        if self._dead():
            self.kernel.defer(self._settle)
            return
        limit_ms = link.strategy.params["silence_limit_ms"]  # type: ignore[attr-defined]
        if not link.finished and link.silent_ns() > limit_ms * 1_000_000:
            self._kill(f"used more than {limit_ms} ms of CPU without reading /dev/market: "
                       "killed")  # fmt: skip
        elif self.ended_at is not None and self.kernel.clock.now_ns() - self.ended_at > (
                END_GRACE_NS):  # fmt: skip
            self._kill(f"did not exit within {END_GRACE_NS // 1_000_000} ms of the end of the "
                       "data: killed")  # fmt: skip
        self.looks += 1
        self.kernel.call_at(self.started_ns + self.looks * WATCH_EVERY_NS, self.watch)

    def _kill(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            self.kernel.processes.signals.send(self.process, SIGKILL)

    def _report(self) -> None:
        """Once the replay and the program have both ended: the figures, the run's files."""
        link = self.link
        assert link is not None
        if self.reported or not link.finished or not self._dead():
            return
        self.reported = True
        self._release_terminal()
        kernel = self.kernel
        kernel.market.claims.pop(self.process.pid, None)
        out = kernel.shell.out
        for message, error in link.stopped:
            if error is not None:
                kernel.klog.oops("strategy", f"backtest {message}; it was stopped", error)
        if link.result is None:
            out.error(f"backtest: {link.error}")
            return
        print_result(link.result, out)
        if self.folder is not None:
            try:
                self.commands._write_run(self.folder, link.result)  # noqa: SLF001
            except ConfigError as err:
                out.error(f"backtest: {err}")


def print_result(result: BacktestResult, out: Output) -> None:
    """The figures of a run, within 80 columns, all exact (virtual ns, decimals)."""
    fills = hashlib.sha256(result.fills_csv().encode()).hexdigest()[:16]
    state = "ok" if result.strategy_error is None else "STOPPED"
    out.line(f"backtest {result.strategy} on {result.data_name}: {state}, {result.events} "
             f"events, hash {result.code_hash[:12]}")  # fmt: skip
    out.line(f"  net {result.net:.2f} = realized {result.realized:.2f} + unrealized "
             f"{result.unrealized:.2f} - fees {result.fees:.2f}")  # fmt: skip
    out.line(f"  fills {len(result.fills)} (sha256 {fills}), orders {result.orders_sent}, "
             f"end {result.end_ns} ns")  # fmt: skip
    latency = percentiles(result.tick_to_order_ns)
    if latency:
        out.line("  tick-to-order ns: " + " ".join(f"{k} {v}" for k, v in latency.items()))
    for line in result.feed_errors[:3]:
        out.line(f"  data: {line}", RED)
    if result.strategy_error:
        out.line(f"  stopped: {result.strategy_error}", RED)


def register_strategy_commands(shell: Shell, kernel) -> None:  # noqa: ANN001 - the Kernel
    StrategyCommands(shell, kernel).register()

