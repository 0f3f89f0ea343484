"""Parameter sweeps: one deterministic backtest per point of a grid, each a whole machine, in
local processes or on a Dask cluster.

`parse_grid(["size=100,200", "half_spread=0.01,0.02"])` gives the points (the cartesian
product, in the order the grid names them, values read as TOML values like `--param`). Each
point is the strategy's configuration with those [params] overrides, validated and hashed as
any run (kernel/trading/config.py); every point is checked here before any run starts.

A point's run is a `MachineJob`: the TradeKernel PC booted in deterministic mode on a disk of
its own holding the data (and the strategy and configuration files when they are not a
sample), the shell's `backtest ... --param NAME=VALUE... --out DIR` typed at its prompt, and
the row read from the summary.json the machine wrote on its disk (research/booted.py), after
checking it against what the machine printed. `host=True` (tk sweep --host) makes it a
`HostJob` instead: the same engine code run in the worker process, no machine.

`sweep` runs the points on `jobs` local processes (spawned, not forked: a fork would inherit
the parent's CPU watchdog without its thread) and returns one row per point in grid order;
every run is deterministic, so the rows are the same whatever `jobs` is. With `cluster` (a Dask
scheduler address, tcp://HOST:PORT) the points run on that cluster's workers instead: their
disks are not ours, so a job carries the strategy and configuration bytes, and the data is
scattered once to every worker; the same bytes give the same code hash and the same rows as a
local run. Dask distributed was chosen over Ray as the lighter install (pure Python wheels);
it is imported only for a cluster.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import shlex
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.config import (
    ConfigError,
    configure,
    parse_override,
    strategy_class,
)

from .booted import MachineError, backtest_in_machine, data_at, machine_command
from .config import SAMPLES, load, read_bounded

MAX_POINTS = 10_000  # points in one sweep
CLUSTER_CONNECT_S = 10  # how long to wait for a cluster's scheduler to answer
METRICS = ("net", "realized", "unrealized", "fees", "fills", "orders")


class ClusterError(Exception):
    """The cluster could not be reached or a run failed on it (one line)."""


@dataclass(frozen=True)
class Point:
    params: dict[str, object]
    net: Decimal
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    fills: int
    orders: int
    code_hash: str
    error: str | None


def parse_grid(specs: list[str]) -> list[dict[str, object]]:
    """The points of `NAME=V1,V2,...` specs: every combination, first name slowest."""
    axes: list[tuple[str, list[object]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ConfigError(f"--grid {spec!r}: expected NAME=V1,V2,...")
        if any(name.strip() == seen for seen, _ in axes):
            raise ConfigError(f"--grid {spec!r}: {name.strip()} is already in the grid")
        axes.append((name.strip(), [parse_override(f"{name}={v}")[1] for v in values.split(",")]))
    count = 1
    for _, values in axes:
        count *= len(values)
    if count > MAX_POINTS:
        raise ConfigError(f"--grid: {count} points, more than {MAX_POINTS}")
    return [dict(zip([n for n, _ in axes], combo, strict=True))
            for combo in itertools.product(*(v for _, v in axes))]  # fmt: skip


def param_text(name: str, value: object) -> str:
    """`value` as the text of a `--param NAME=TEXT` that reads back as exactly `value` (the
    machine's shell parses it with the same parse_override); ConfigError if there is none."""
    if isinstance(value, bool):
        texts = ["true" if value else "false"]
    elif isinstance(value, str):
        texts = [json.dumps(value), value]  # a TOML basic string, else the bare word
    else:
        texts = [str(value)]
    for text in texts:
        if parse_override(f"{name}={text}")[1] == value:
            return text
    raise ConfigError(f"--grid {name}: {value!r} cannot be given to the machine's backtest")


@dataclass(frozen=True)
class MachineJob:
    """A sweep's point run in a machine of its own: the backtest line without its --param
    words, and the disk files beside the data (at `data_at` on the machine's disk)."""

    command: str
    files: dict[str, bytes]
    data_at: str
    data_path: str  # where a local worker reads the data

    def run(self, params: dict[str, object], data: bytes) -> Point:
        words = [f" --param {shlex.quote(f'{k}={param_text(k, v)}')}" for k, v in params.items()]
        try:
            ran = backtest_in_machine(self.command + "".join(words),
                                      {**self.files, self.data_at: data}, collect=True)  # fmt: skip
            return point_from_summary(params, ran.files["summary.json"])
        except MachineError as err:
            raise MachineError(f"point {params}: {err}") from None


@dataclass(frozen=True)
class HostJob:
    """A sweep's point run by the engine in the worker process (tk sweep --host)."""

    source: bytes  # the strategy file
    origin: str
    config: bytes  # its configuration text
    config_origin: str
    data_name: str
    data_path: str

    def run(self, params: dict[str, object], data: bytes) -> Point:
        cls = strategy_class(self.source, self.origin)
        strategy, cfg, digest = configure(cls, self.source, self.config, self.config_origin,
                                          params)  # fmt: skip
        result = run_backtest(strategy, self.data_name, data, cfg.fill, cfg.risk, digest)
        return Point(params, result.net, result.realized, result.unrealized, result.fees,
                     len(result.fills), result.orders_sent, digest,
                     result.strategy_error)  # fmt: skip


def point_from_summary(params: dict[str, object], summary_json: bytes) -> Point:
    """The row of a run from the summary.json it wrote (BacktestResult.summary)."""
    try:
        s = json.loads(summary_json)
        return Point(params, Decimal(s["net"]), Decimal(s["realized"]), Decimal(s["unrealized"]),
                     Decimal(s["fees"]), int(s["fills"]), int(s["orders"]), str(s["code_hash"]),
                     s["strategy_error"] and str(s["strategy_error"]))  # fmt: skip
    except (KeyError, TypeError, ValueError, InvalidOperation) as err:
        raise MachineError(f"the machine's summary.json is not readable: {err!r}") from None


def run_job(job: MachineJob | HostJob, params: dict[str, object],
            data: bytes | None = None) -> Point:  # fmt: skip
    """One point (in a worker): the data as shipped, else read from the job's local path."""
    return job.run(params, data if data is not None else Path(job.data_path).read_bytes())


def make_job(strategy_path: Path, config_path: Path | None, data_path: Path,
             host: bool) -> MachineJob | HostJob:  # fmt: skip
    """The fixed part of every point's run, with the strategy and configuration as bytes."""
    if host:
        config = config_path or strategy_path.with_suffix(".toml")
        return HostJob(read_bounded(strategy_path), str(strategy_path), read_bounded(config),
                       str(config), str(data_path), str(data_path))  # fmt: skip
    command, files = machine_command(strategy_path, strategy_path.parent == SAMPLES, config_path,
                                     data_path.name, b"")  # fmt: skip
    where = data_at(data_path.name)
    del files[where]  # it travels on its own (read where the run is, or scattered once)
    return MachineJob(command, files, where, str(data_path))


def sweep_on_cluster(address: str, job: MachineJob | HostJob, data_path: Path,
                     points: list[dict[str, object]]) -> list[Point]:  # fmt: skip
    from distributed import Client

    try:
        client = Client(address, timeout=CLUSTER_CONNECT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise ClusterError(f"cluster {address}: cannot connect: {err}") from None
    try:
        data = client.scatter(data_path.read_bytes(), broadcast=True)
        futures = client.map(run_job, [job] * len(points), points, data=data, pure=False)
        try:
            return client.gather(futures)
        except Exception as err:  # a worker's failure comes back as its exception
            raise ClusterError(f"cluster {address}: a run failed: {type(err).__name__}: {err}"
                               ) from None  # fmt: skip
    finally:
        client.close()


def sweep(strategy_path: Path, config_path: Path | None, data_path: Path,
          points: list[dict[str, object]], jobs: int = 1, cluster: str | None = None,
          host: bool = False) -> list[Point]:  # fmt: skip
    """Every point's result, in the order of `points`, each run in a machine of its own
    (`host`: in the worker process). The configuration is checked once for every point here
    first, so a bad value fails before any process starts."""
    for params in points:
        load(strategy_path, config_path, params)
        if not host:
            for key, value in params.items():
                param_text(key, value)
    job = make_job(strategy_path, config_path, data_path, host)
    if cluster is not None:
        return sweep_on_cluster(cluster, job, data_path, points)
    jobs = min(jobs, len(points))  # a process more than the points would only start and stop
    if jobs <= 1:
        return [run_job(job, params) for params in points]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        return pool.starmap(run_job, [(job, params) for params in points], chunksize=1)


def table(points: list[Point], sort: str) -> list[str]:
    """Rows sorted by `sort` (largest first; ties keep grid order), as text."""
    names = list(points[0].params) if points else []
    ordered = sorted(points, key=lambda p: getattr(p, sort), reverse=True)
    head = " ".join(f"{n:>12}" for n in names)
    lines = [f"{head} {'net':>12} {'realized':>12} {'fees':>10} {'fills':>7} {'orders':>7}"]
    for p in ordered:
        cells = " ".join(f"{p.params[n]!s:>12}" for n in names)
        line = (f"{cells} {p.net:>12.2f} {p.realized:>12.2f} {p.fees:>10.2f} {p.fills:>7} "
                f"{p.orders:>7}")  # fmt: skip
        lines.append(line + (f"  STOPPED: {p.error}" if p.error else ""))
    return lines


def heatmap(points: list[Point], metric: str) -> list[str]:
    """A two-parameter grid as a text table: first parameter down, second across."""
    names = list(points[0].params)
    down = list(dict.fromkeys(p.params[names[0]] for p in points))
    across = list(dict.fromkeys(p.params[names[1]] for p in points))
    cell = {(p.params[names[0]], p.params[names[1]]): getattr(p, metric) for p in points}
    lines = [f"{metric} by {names[0]} (down) x {names[1]} (across)",
             f"{'':>12} " + " ".join(f"{a!s:>12}" for a in across)]  # fmt: skip
    for d in down:
        values = (cell[(d, a)] for a in across)
        lines.append(f"{d!s:>12} " + " ".join(f"{shown(v):>12}" for v in values))
    return lines


def shown(value: object) -> str:
    """A metric as the table prints it: money to the cent, counts as they are."""
    return f"{value:.2f}" if isinstance(value, Decimal) else str(value)
