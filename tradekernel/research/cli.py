"""Host commands of the research workflow: `tk backtest`, `tk data generate|lobster`, `tk report`,
`tk sweep`.

`tk backtest` boots the PC in deterministic mode and runs the shell's `backtest` inside it
(research/booted.py); `--host` runs the same engine code in this process instead. Exit codes
(for scripts): 0 done, 1 bad input (strategy, configuration or data unusable), 2 the strategy
was stopped (it raised, or passed a limit), 3 done but the data had bad messages, 4 the
machine's run and the host's differ (a broken invariant: nothing is written). Progress (events,
events/s, ETA) goes to stderr, the one-line summary to stdout. With --out DIR the run's
fills.csv, samples.csv, latency.csv, summary.json and results.parquet are written there (for
`tk report` and pandas): by the host-side run of the same engine, after its fills and P&L were
found equal to the machine's (the shell's backtest prints them but writes no files).
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from tradekernel.kernel.trading import lobster, strategies
from tradekernel.kernel.trading.backtest import BacktestResult, run_backtest
from tradekernel.kernel.trading.feed import FeedError

from .booted import DATA_DIR, STRATEGY_DIR, MachineError, disk_name, run_in_machine
from .config import ConfigError, load
from .html import html_report
from .parquet import write_parquet
from .report import ReportError, report
from .sweep import METRICS, ClusterError, heatmap, parse_grid, sweep, table
from .synthetic import MAX_EVENTS, SessionSpec, generate

CONTEXT = {"help_option_names": ["-h", "--help"]}
SAMPLES = Path(strategies.__file__).parent
MAX_DATA_BYTES = 1 << 31  # a data file larger than this is refused before reading
EXIT_INPUT, EXIT_STOPPED, EXIT_DATA_ERRORS, EXIT_MISMATCH = 1, 2, 3, 4
PROGRESS_EVERY_S = 0.5


def _fail(message: str) -> None:
    click.echo(f"tk: {message}", err=True)
    sys.exit(EXIT_INPUT)


def strategy_path(name: str) -> Path:
    """A path to a .py, or the name of a sample strategy (market_maker, momentum, imbalance)."""
    path = Path(name)
    if path.suffix == ".py":
        return path
    sample = SAMPLES / f"{name}.py"
    if not sample.is_file():
        known = ", ".join(sorted(p.stem for p in SAMPLES.glob("*.py") if p.stem != "__init__"))
        _fail(f"{name}: not a .py file nor a sample strategy ({known})")
    return sample


def count_messages(name: str, data: bytes) -> int:
    """Messages in a data file, for the ETA: frames of ITCH, lines of CSV/LOBSTER."""
    if name.lower().endswith(".itch"):
        count = offset = 0
        size = len(data)
        while offset + 2 <= size:
            offset += 2 + int.from_bytes(data[offset : offset + 2], "big")
            count += 1
        return count
    return data.count(b"\n")


def write_run(result: BacktestResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in result.run_files().items():
        (out / name).write_text(text)
    write_parquet(result, out)


@click.command(context_settings=CONTEXT)
@click.argument("strategy")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration (default: the .toml beside the strategy)")  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write fills.csv, samples.csv, summary.json, latency.csv and results.parquet "
                   "here")  # fmt: skip
@click.option("--quiet", is_flag=True, help="no progress on stderr")
@click.option("--host", "on_host", is_flag=True,
              help="run in this process (the same engine code) instead of in a booted machine")
def backtest(strategy: str, data: Path, config_path: Path | None, out: Path | None,
             quiet: bool, on_host: bool) -> None:  # fmt: skip
    """Backtest STRATEGY (a .py or a sample name) on DATA (.itch, .csv, LOBSTER
    *_message_*.csv). Boots the TradeKernel PC in deterministic mode with DATA on its disk and
    runs the shell's `backtest` in it (--host: in this process instead). With --out, the run's
    files come from the same engine run host-side, written only if its fills and P&L equal the
    machine's. Exit 0 done, 1 bad input, 2 strategy stopped, 3 data had bad messages, 4 the
    machine and the host disagree."""
    path = strategy_path(strategy)
    try:
        instance, cfg, digest = load(path, config_path)
    except ConfigError as err:
        _fail(str(err))
    try:
        if data.stat().st_size > MAX_DATA_BYTES:
            _fail(f"{data}: larger than {MAX_DATA_BYTES} bytes")
        raw = data.read_bytes()
    except OSError as err:
        _fail(f"{data}: cannot read: {err.strerror}")
    total = max(1, count_messages(data.name, raw))
    started = time.monotonic()
    shown = [started]

    def progress(events: int) -> None:
        now = time.monotonic()
        if quiet or now - shown[0] < PROGRESS_EVERY_S:
            return
        shown[0] = now
        rate = events / max(now - started, 1e-9)
        eta = (total - events) / rate if rate else 0.0
        click.echo(f"\r{events}/{total} events  {rate:,.0f} events/s  ETA {eta:.0f}s   ",
                   err=True, nl=False)  # fmt: skip

    result = None
    if on_host or out is not None:
        try:
            result = run_backtest(instance, str(data), raw, cfg.fill, cfg.risk, digest,
                                  progress=progress if on_host else None)  # fmt: skip
        except FeedError as err:
            _fail(str(err))
    if on_host:
        summary = result.one_line()  # type: ignore[union-attr]
        stopped, data_errors = result.strategy_error, result.feed_errors  # type: ignore[union-attr]
        events = result.events  # type: ignore[union-attr]
    else:
        command, files = machine_command(path, strategy, config_path, data, raw)
        try:
            ran = run_in_machine(command, files, progress)
        except MachineError as err:
            _fail(str(err))
        if ran.error is not None:
            _fail(ran.error)
        try:
            printed = parse_printed(ran.lines)
        except ValueError as err:
            _fail(f"the machine's backtest printed what tk cannot read: {err}")
        summary, stopped, data_errors = printed.one_line, printed.stopped, printed.data_errors
        events = printed.events
        if result is not None and printed.fingerprint != fingerprint(result):
            click.echo(f"tk: the machine's run ({printed.fingerprint}) differs from the host's "
                       f"({fingerprint(result)}): no files written", err=True)  # fmt: skip
            sys.exit(EXIT_MISMATCH)
    elapsed = time.monotonic() - started
    if not quiet:
        rate = events / max(elapsed, 1e-9)
        click.echo(f"\r{events} events in {elapsed:.2f}s ({rate:,.0f} events/s)   ", err=True)
    if out is not None:
        write_run(result, out)  # type: ignore[arg-type]
    for line in data_errors[:5]:
        click.echo(f"data: {line}", err=True)
    if stopped:
        click.echo(f"strategy stopped: {stopped}", err=True)
    click.echo(summary)
    if stopped:
        sys.exit(EXIT_STOPPED)
    if data_errors:
        sys.exit(EXIT_DATA_ERRORS)


def machine_command(path: Path, strategy: str, config_path: Path | None, data: Path,
                    raw: bytes) -> tuple[str, dict[str, bytes]]:  # fmt: skip
    """The shell line and the disk files of an in-machine run: the data in /data (under its
    own name, which tells its format), a strategy file in /strategies with the .toml beside it
    (a sample is known to the OS by name), a --config file as /data/config.toml."""
    files = {f"{DATA_DIR}/{(name := disk_name(data.name, 'data' + data.suffix))}": raw}
    if path.parent == SAMPLES:
        words = ["backtest", path.stem]
    else:
        stem = disk_name(path.stem, "strategy")
        files[f"{STRATEGY_DIR}/{stem}.py"] = path.read_bytes()
        beside = path.with_suffix(".toml")
        if config_path is None and beside.is_file():
            files[f"{STRATEGY_DIR}/{stem}.toml"] = beside.read_bytes()
        words = ["backtest", stem]
    words.append(f"{DATA_DIR}/{name}")
    if config_path is not None:
        files[f"{DATA_DIR}/config.toml"] = config_path.read_bytes()
        words += ["--config", f"{DATA_DIR}/config.toml"]
    return " ".join(words), files


@dataclass
class Printed:
    """What the shell's backtest printed, read back (kernel/shell/strategy.py print_result)."""

    one_line: str  # as BacktestResult.one_line()
    events: int
    stopped: str | None
    data_errors: list[str]
    fingerprint: str  # fills count and sha256 prefix, net: what must equal the host's run


PRINTED_HEAD = re.compile(r"backtest (\S+) on (\S+): (ok|STOPPED), (\d+) events, hash (\w+)")
PRINTED_NET = re.compile(r"net (\S+) = realized (\S+) \+ unrealized (\S+) - fees (\S+)")
PRINTED_FILLS = re.compile(r"fills (\d+) \(sha256 (\w+)\)")


def parse_printed(lines: list[str]) -> Printed:
    head = PRINTED_HEAD.fullmatch(lines[0]) if lines else None
    net = PRINTED_NET.fullmatch(lines[1].strip()) if len(lines) > 1 else None
    fills = PRINTED_FILLS.match(lines[2].strip()) if len(lines) > 2 else None
    if head is None or net is None or fills is None:
        raise ValueError(" / ".join(lines[:3]) or "nothing")
    name, data_name, state, events, code = head.groups()
    one_line = (f"{state} {name} on {data_name}: {events} events, {fills[1]} fills, net "
                f"{net[1]} (realized {net[2]}, unrealized {net[3]}, fees {net[4]}) hash {code}")
    rest = [line.strip() for line in lines[3:]]
    stopped = next((line.removeprefix("stopped: ") for line in rest
                    if line.startswith("stopped: ")), None)  # fmt: skip
    if state == "STOPPED" and stopped is None:
        stopped = "stopped"
    errors = [line.removeprefix("data: ") for line in rest if line.startswith("data: ")]
    mark = f"{fills[1]} fills {fills[2]} net {net[1]}"
    return Printed(one_line, int(events), stopped, errors, mark)


def fingerprint(result: BacktestResult) -> str:
    """The host run's figures as the machine prints them (print_result)."""
    digest = hashlib.sha256(result.fills_csv().encode()).hexdigest()[:16]
    return f"{len(result.fills)} fills {digest} net {result.net:.2f}"


@click.group(context_settings=CONTEXT)
def data() -> None:
    """Market data files: synthetic sessions and LOBSTER conversion."""


@data.command("generate", context_settings=CONTEXT)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", default="SYNTH", show_default=True)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--events", default=100_000, show_default=True,
              type=click.IntRange(1, MAX_EVENTS))  # fmt: skip
@click.option("--rate", default=2000.0, show_default=True, help="mean events per second")
@click.option("--price", default="100.00", show_default=True, help="start price")
def data_generate(out: Path, symbol: str, seed: int, events: int, rate: float,
                  price: str) -> None:  # fmt: skip
    """Write a synthetic ITCH 5.0 session to OUT; the same options give the same bytes."""
    try:
        start = round(float(price) * 10_000)
        spec = SessionSpec(symbol=symbol, seed=seed, events=events, rate_per_s=rate,
                           start_price=start)  # fmt: skip
        blob, summary = generate(spec)
    except ValueError as err:
        _fail(str(err))
    out.write_bytes(blob)
    click.echo(f"{out}: {len(blob)} bytes, {summary.adds} adds, {summary.cancels} cancels, "
               f"{summary.executions} executions")  # fmt: skip


@data.command("lobster", context_settings=CONTEXT)
@click.argument("source", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, help="the stock symbol (1-8 letters)")
def data_lobster(source: Path, out: Path, symbol: str) -> None:
    """Convert a LOBSTER message file SOURCE into ITCH 5.0 OUT (bad lines are reported)."""
    if source.stat().st_size > MAX_DATA_BYTES:
        _fail(f"{source}: larger than {MAX_DATA_BYTES} bytes")
    errors: list[lobster.LobsterError] = []
    try:
        blob = lobster.to_itch(lobster.read(source.read_bytes(), errors), symbol)
    except ValueError as err:
        _fail(str(err))
    out.write_bytes(blob)
    for err in errors[:5]:
        click.echo(f"{source}: {err}", err=True)
    click.echo(f"{out}: {len(blob)} bytes, {len(errors)} bad lines skipped")
    if errors:
        sys.exit(EXIT_DATA_ERRORS)


@click.command("report", context_settings=CONTEXT)
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="also write an HTML report with plots here")  # fmt: skip
def report_command(run: Path, html_path: Path | None) -> None:
    """Print the performance report of RUN (a `tk backtest --out` directory) as text tables;
    with --html, also a page with the equity curve, drawdown, position, fills over the price
    and the latency histogram."""
    try:
        click.echo(report(run))
        if html_path is not None:
            html_path.write_text(html_report(run))
            click.echo(f"{html_path}: written", err=True)
    except ReportError as err:
        _fail(str(err))
    except OSError as err:
        _fail(f"{html_path}: cannot write: {err.strerror}")


@click.command("sweep", context_settings=CONTEXT)
@click.argument("strategy")
@click.argument("data", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--grid", "grids", multiple=True, required=True,
              help="NAME=V1,V2,... (repeat it: every combination runs)")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration (default: the .toml beside the strategy)")  # fmt: skip
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="local processes")  # fmt: skip
@click.option("--cluster", metavar="ADDRESS",
              help="run on this Dask cluster (scheduler address, tcp://HOST:PORT) instead")
@click.option("--sort", default="net", show_default=True, type=click.Choice(METRICS))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write a CSV here")
def sweep_command(strategy: str, data: Path, grids: tuple[str, ...], config_path: Path | None,
                  jobs: int, sort: str, out: Path | None,
                  cluster: str | None = None) -> None:  # fmt: skip
    """Backtest STRATEGY on DATA once per point of the --grid, in --jobs local processes or on
    the Dask cluster at --cluster; a table sorted by --sort, and a heatmap of it for a
    two-parameter grid. Every run is deterministic: the same table whatever --jobs is, and on
    a cluster. Exit 0 done, 1 bad input or no cluster, 2 a run was stopped."""
    try:
        points = parse_grid(list(grids))
        started = time.monotonic()
        results = sweep(strategy_path(strategy), config_path, data, points, jobs, cluster)
    except (ConfigError, ClusterError) as err:
        _fail(str(err))
    except FeedError as err:
        _fail(f"{data}: {err}")
    elapsed = time.monotonic() - started
    for line in table(results, sort):
        click.echo(line)
    if len(results[0].params) == 2:
        click.echo("")
        for line in heatmap(results, sort):
            click.echo(line)
    where = f"cluster {cluster}" if cluster else f"{jobs} process(es)"
    click.echo(f"{len(results)} runs in {elapsed:.1f}s on {where}", err=True)
    if out is not None:
        names = list(results[0].params)
        rows = [",".join([*names, *METRICS, "code_hash", "error"])]
        for p in results:
            rows.append(",".join([*(str(p.params[n]) for n in names),
                                  *(str(getattr(p, m)) for m in METRICS), p.code_hash,
                                  (p.error or "").replace(",", ";")]))  # fmt: skip
        out.write_text("\n".join(rows) + "\n")
    if any(p.error for p in results):
        sys.exit(EXIT_STOPPED)
