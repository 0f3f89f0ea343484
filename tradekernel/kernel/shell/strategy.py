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

Containment: a strategy that raises or uses more than its CPU budget per event is stopped
(its orders cancelled), leaves an oops in the kernel log and one console line; the shell, the
desk and other strategies go on. Files from the disk are size-checked before they are read.

Imports: shell and trading (main.py registers the commands once trading has started).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from importlib import resources

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
from tradekernel.kernel.trading.strategy import Strategy, StrategyHost

STRATEGY_DIR = "/strategies"
MAX_DATA_BYTES = 64 << 20  # a backtest data file larger than this is refused unread
MAX_RUNNING = 32  # strategies started and not yet stopped
PROGRESS_EVERY = 20_000  # backtest events between progress updates on the console
RED, CYAN, GREY = 12, 11, 7
START_USAGE = "strategy start NAME [--config FILE] [--param NAME=VALUE]..."
BACKTEST_USAGE = "backtest NAME DATA [--config FILE] [--param NAME=VALUE]... [--out DIR]"


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
            "replay a data file (.itch, .csv, LOBSTER) through a strategy",
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
        code, origin, config, config_origin = self._source(words[0])
        if config_path is not None:
            config, config_origin = self._disk_file(config_path, MAX_FILE_BYTES), config_path
        cls = strategy_class(code, origin)
        strategy, cfg, digest = configure(cls, code, config, config_origin, overrides)
        strategy.name = words[0]
        return words, strategy, cfg, digest

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
        if "--out" in args:
            at = args.index("--out")
            if at + 1 >= len(args):
                raise UsageError("--out needs a value")
            folder = self.shell.resolve_path(args[at + 1])
            args = args[:at] + args[at + 2:]
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

