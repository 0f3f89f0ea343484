"""Host commands of the research workflow: `tk backtest`, `tk data generate|lobster`, `tk report`,
`tk sweep`.

`tk backtest` boots the PC in deterministic mode and runs the shell's `backtest` inside it
(research/booted.py); `--host` runs the same engine code in this process instead. Exit codes
(for scripts): 0 done, 1 bad input (strategy, configuration or data unusable), 2 the strategy
was stopped (it raised, or passed a limit), 3 done but the data had bad messages, 4 the files
the machine wrote are not the run it printed (a broken invariant: nothing is written).
Progress (events, events/s, ETA) goes to stderr, the one-line summary to stdout. With --out DIR
the run's fills.csv, samples.csv, latency.csv and summary.json are written there (for `tk
report` and pandas) as the machine's own `backtest ... --out` wrote them on its disk, read back
from the image after power-off, with fills/samples/latency.parquet made from them; with --host,
the same files from the in-process run. STRATEGY may be a ring-3 program instead (/bin/NAME of
the OS's disk, or a host ELF file, put on the machine's disk as /strategies/NAME; --args gives
its arguments): it runs only in the machine (--host is refused), and what it prints before the
figures goes to stderr. `tk sweep` boots one machine per grid point the same
way (research/sweep.py).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import click

from tradekernel.kernel.trading import lobster
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.feed import FeedError

from .booted import (
    RUN_FILES,
    MachineError,
    RunMismatch,
    backtest_in_machine,
    is_program,
    machine_command,
    strategy_name,
)
from .config import SAMPLES, ConfigError, load
from .html import html_report, sweep_page
from .parquet import tables, write_tables
from .report import ReportError, report
from .sweep import METRICS, ClusterError, heatmap, parse_grid, sweep, table
from .synthetic import MAX_EVENTS, SessionSpec, generate

CONTEXT = {"help_option_names": ["-h", "--help"]}
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


def write_run(files: dict[str, bytes], out: Path) -> None:
    """The run's files (RUN_FILES, as its run wrote them, byte for byte) and their Parquet
    tables into `out`; ReportError, before anything is written, if they are malformed."""
    made = tables(files)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (out / name).write_bytes(files[name])
    write_tables(made, out)


@click.command(context_settings=CONTEXT)
@click.argument("strategy")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration (default: the .toml beside the strategy)")  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write the run's fills.csv, samples.csv, summary.json, latency.csv and their "
                   ".parquet tables here")  # fmt: skip
@click.option("--quiet", is_flag=True, help="no progress on stderr")
@click.option("--host", "on_host", is_flag=True,
              help="run in this process (the same engine code) instead of in a booted machine")
@click.option("--args", "program_args", metavar='"ARGS"',
              help="a ring-3 program's arguments (the shell's `-- ARGS`), split as a shell would")
def backtest(strategy: str, data: Path, config_path: Path | None, out: Path | None,
             quiet: bool, on_host: bool, program_args: str | None = None) -> None:  # fmt: skip
    """Backtest STRATEGY (a .py, a sample name, or a ring-3 program: /bin/NAME of the OS or a
    host ELF file) on DATA (.itch, .csv, LOBSTER *_message_*.csv). Boots the TradeKernel PC in
    deterministic mode with DATA on its disk and runs the shell's `backtest` in it (--host: in
    this process instead, not for a program). With --out, the files the machine's run wrote on
    its disk, checked against what it printed. Exit 0 done, 1 bad input, 2 strategy stopped, 3
    data had bad messages, 4 the machine's files and its printed run disagree."""
    program = is_program(strategy)
    words: list[str] | None = None
    if program_args is not None:
        if not program:
            _fail(f"--args: {strategy} is not a program (/bin/NAME or an ELF file)")
        try:
            words = shlex.split(program_args)
        except ValueError as err:
            _fail(f"--args: {err}")
    if program:
        if on_host:
            _fail(f"{strategy}: a ring-3 program runs only in the machine: --host cannot run it")
        path = Path(strategy)
    else:
        path = strategy_path(strategy)
        try:
            instance, cfg, digest = load(path, config_path)
        except ConfigError as err:
            _fail(str(err))
        instance.name = strategy_name(path, path.parent == SAMPLES)  # as the machine names it
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

    run: dict[str, bytes] = {}
    if on_host:
        try:
            result = run_backtest(instance, str(data), raw, cfg.fill, cfg.risk, digest,
                                  progress=progress)  # fmt: skip
        except FeedError as err:
            _fail(str(err))
        summary, stopped, data_errors = result.one_line(), result.strategy_error, result.feed_errors
        events = result.events
        run = {name: text.encode() for name, text in result.run_files().items()}
    else:
        try:
            command, files = machine_command(path, path.parent == SAMPLES, config_path,
                                             data.name, raw, words)  # fmt: skip
        except ValueError as err:
            _fail(str(err))
        except OSError as err:
            _fail(f"{err.filename}: cannot read: {err.strerror}")
        try:
            ran = backtest_in_machine(command, files, progress, collect=out is not None)
        except RunMismatch as err:
            click.echo(f"tk: {err}: no files written", err=True)
            sys.exit(EXIT_MISMATCH)
        except MachineError as err:
            _fail(str(err))
        printed, run = ran.printed, ran.files
        for line in ran.said:
            click.echo(line, err=True)
        summary, stopped, data_errors = printed.one_line, printed.stopped, printed.data_errors
        events = printed.events
    elapsed = time.monotonic() - started
    if not quiet:
        rate = events / max(elapsed, 1e-9)
        click.echo(f"\r{events} events in {elapsed:.2f}s ({rate:,.0f} events/s)   ", err=True)
    if out is not None:
        try:
            write_run(run, out)
        except ReportError as err:
            _fail(f"the run's files: {err}")
        except OSError as err:
            _fail(f"{out}: cannot write: {err.strerror}")
    for line in data_errors[:5]:
        click.echo(f"data: {line}", err=True)
    if stopped:
        click.echo(f"strategy stopped: {stopped}", err=True)
    click.echo(summary)
    if stopped:
        sys.exit(EXIT_STOPPED)
    if data_errors:
        sys.exit(EXIT_DATA_ERRORS)


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
@click.option("--jobs", default=os.cpu_count() or 1, type=click.IntRange(1, 256),
              help="local processes (default: one per CPU; one runs in this process)")
@click.option("--cluster", metavar="ADDRESS",
              help="run on this Dask cluster (scheduler address, tcp://HOST:PORT) instead")
@click.option("--sort", default="net", show_default=True, type=click.Choice(METRICS))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write a CSV here")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="write the table and (two parameters) a colour heatmap here")  # fmt: skip
@click.option("--host", "on_host", is_flag=True,
              help="run each point in the worker process (the same engine code) instead of "
                   "booting a machine for it")  # fmt: skip
def sweep_command(strategy: str, data: Path, grids: tuple[str, ...], config_path: Path | None,
                  jobs: int, sort: str, out: Path | None, cluster: str | None = None,
                  html_path: Path | None = None, on_host: bool = False) -> None:  # fmt: skip
    """Backtest STRATEGY on DATA once per point of the --grid, each in a TradeKernel PC booted
    in deterministic mode for it (--host: in the worker process), in --jobs local processes or
    on the Dask cluster at --cluster; a table sorted by --sort, and a heatmap of it for a
    two-parameter grid (--html: a page with the table and a colour heatmap). Every run is
    deterministic: the same table whatever --jobs is, and on a cluster. Exit 0 done, 1 bad
    input, no cluster or a machine's failure, 2 a run was stopped."""
    try:
        points = parse_grid(list(grids))
        started = time.monotonic()
        results = sweep(strategy_path(strategy), config_path, data, points, jobs, cluster,
                        host=on_host)  # fmt: skip
    except (ConfigError, ClusterError, MachineError) as err:
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
    each = "in the worker process" if on_host else "one machine each"
    click.echo(f"{len(results)} runs in {elapsed:.1f}s on {where}, {each}", err=True)
    names = list(results[0].params)
    rows = [",".join([*names, *METRICS, "code_hash", "error"])]
    for p in results:
        rows.append(",".join([*(str(p.params[n]) for n in names),
                              *(str(getattr(p, m)) for m in METRICS), p.code_hash,
                              (p.error or "").replace(",", ";")]))  # fmt: skip
    title = f"sweep of {strategy} on {data.name}"
    for path, make in ((out, lambda: "\n".join(rows) + "\n"),
                       (html_path, lambda: sweep_page(title, results, sort))):  # fmt: skip
        try:
            if path is not None:
                path.write_text(make())
        except OSError as err:
            _fail(f"{path}: cannot write: {err.strerror}")
    if any(p.error for p in results):
        sys.exit(EXIT_STOPPED)
