"""Host commands of the research workflow: `tk backtest`, `tk data generate|lobster`, `tk report`,
`tk sweep`.

`tk backtest` runs HOST-SIDE: the same engine code the kernel runs (the trading package, the
strategy API, the backtest fill model) in this Python process, not inside a booted machine.
Exit codes (for scripts): 0 done, 1 bad input (strategy, configuration or data unusable),
2 the strategy was stopped (it raised, or passed a limit), 3 done but the data had bad messages.
Progress (events, events/s, ETA) goes to stderr, the one-line summary to stdout. With --out DIR
the run's fills.csv, samples.csv and summary.json are written there (for `tk report`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from tradekernel.kernel.trading import lobster, strategies
from tradekernel.kernel.trading.backtest import BacktestResult, run_backtest
from tradekernel.kernel.trading.feed import FeedError

from .config import ConfigError, load
from .html import html_report
from .report import ReportError, report
from .sweep import METRICS, heatmap, parse_grid, sweep, table
from .synthetic import MAX_EVENTS, SessionSpec, generate

CONTEXT = {"help_option_names": ["-h", "--help"]}
SAMPLES = Path(strategies.__file__).parent
MAX_DATA_BYTES = 1 << 31  # a data file larger than this is refused before reading
EXIT_INPUT, EXIT_STOPPED, EXIT_DATA_ERRORS = 1, 2, 3
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
    (out / "fills.csv").write_text(result.fills_csv())
    samples = ["ts_ns,net,position_lots,mark_ticks"] + [
        f"{t},{n},{p},{m}" for (t, n, p), m in zip(result.samples, result.marks, strict=True)
    ]
    (out / "samples.csv").write_text("\n".join(samples) + "\n")
    (out / "summary.json").write_text(result.summary_json() + "\n")
    latency = ["tick_to_order_ns", *map(str, result.tick_to_order_ns)]
    (out / "latency.csv").write_text("\n".join(latency) + "\n")


@click.command(context_settings=CONTEXT)
@click.argument("strategy")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration (default: the .toml beside the strategy)")  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write fills.csv, samples.csv, summary.json here")  # fmt: skip
@click.option("--quiet", is_flag=True, help="no progress on stderr")
def backtest(strategy: str, data: Path, config_path: Path | None, out: Path | None,
             quiet: bool) -> None:  # fmt: skip
    """Backtest STRATEGY (a .py or a sample name) on DATA (.itch, .csv, LOBSTER
    *_message_*.csv). Runs host-side, with the engine code the kernel runs, not inside a
    booted machine. Exit 0 done, 1 bad input, 2 strategy stopped, 3 data had bad messages."""
    try:
        instance, cfg, digest = load(strategy_path(strategy), config_path)
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

    try:
        result = run_backtest(instance, str(data), raw, cfg.fill, cfg.risk, digest,
                              progress=progress)  # fmt: skip
    except FeedError as err:
        _fail(str(err))
    elapsed = time.monotonic() - started
    if not quiet:
        rate = result.events / max(elapsed, 1e-9)
        click.echo(
            f"\r{result.events} events in {elapsed:.2f}s ({rate:,.0f} events/s)   ", err=True
        )
    if out is not None:
        write_run(result, out)
    for line in result.feed_errors[:5]:
        click.echo(f"data: {line}", err=True)
    if result.strategy_error:
        click.echo(f"strategy stopped: {result.strategy_error}", err=True)
    click.echo(result.one_line())
    if result.strategy_error:
        sys.exit(EXIT_STOPPED)
    if result.feed_errors:
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
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="local processes")  # fmt: skip
@click.option("--sort", default="net", show_default=True, type=click.Choice(METRICS))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write a CSV here")
def sweep_command(strategy: str, data: Path, grids: tuple[str, ...], config_path: Path | None,
                  jobs: int, sort: str, out: Path | None) -> None:  # fmt: skip
    """Backtest STRATEGY on DATA once per point of the --grid, in --jobs local processes; a
    table sorted by --sort, and a heatmap of it for a two-parameter grid. Every run is
    deterministic: the same table whatever --jobs is. Exit 0 done, 1 bad input, 2 a run was
    stopped."""
    try:
        points = parse_grid(list(grids))
        started = time.monotonic()
        results = sweep(strategy_path(strategy), config_path, data, points, jobs)
    except ConfigError as err:
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
    click.echo(f"{len(results)} runs in {elapsed:.1f}s on {jobs} process(es)", err=True)
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
