"""Parameter sweeps: one deterministic backtest per point of a grid, in local processes or on a
Dask cluster.

`parse_grid(["size=100,200", "half_spread=0.01,0.02"])` gives the points (the cartesian
product, in the order the grid names them, values read as TOML values like `--param`). Each
point is the strategy's configuration with those [params] overrides, validated and hashed as
any run (kernel/trading/config.py). `sweep` runs the points on `jobs` processes (spawned, not
forked: a fork would inherit the parent's CPU watchdog without its thread) and returns one
row per point in grid order; every run is deterministic, so the rows are the same whatever
`jobs` is. With `cluster` (a Dask scheduler address, tcp://HOST:PORT) the points run on that
cluster's workers instead: their disks are not ours, so the strategy source, its configuration
and the data travel with the work (the data scattered once to every worker), and each worker
writes them under the same file names in a scratch folder before the same `run_point`: the
same bytes give the same code hash and the same rows as a local run. Dask distributed was
chosen over Ray as the lighter install (pure Python wheels); it is imported only for a cluster.
"""

from __future__ import annotations

import itertools
import multiprocessing
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.config import ConfigError, parse_override

from .config import load

MAX_POINTS = 10_000  # points in one sweep
CLUSTER_CONNECT_S = 10  # how long to wait for a cluster's scheduler to answer


class ClusterError(Exception):
    """The cluster could not be reached or a run failed on it (one line)."""
METRICS = ("net", "realized", "unrealized", "fees", "fills", "orders")


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


def run_point(task: tuple[str, str | None, str, dict[str, object]]) -> Point:
    """One backtest (in a worker process): strategy file, config file, data file, overrides."""
    strategy_path, config_path, data_path, params = task
    strategy, config, digest = load(
        Path(strategy_path), Path(config_path) if config_path else None, params
    )
    data = Path(data_path).read_bytes()
    result = run_backtest(strategy, data_path, data, config.fill, config.risk, digest)
    return Point(params, result.net, result.realized, result.unrealized, result.fees,
                 len(result.fills), result.orders_sent, digest, result.strategy_error)  # fmt: skip


def run_shipped(files: dict[str, bytes], strategy_name: str, data_name: str,
                params: dict[str, object], data: bytes) -> Point:
    """One backtest on a cluster worker: `files` (strategy and its .toml) and the data written
    under their names in a scratch folder, then `run_point`."""
    with tempfile.TemporaryDirectory(prefix="tk-sweep-") as folder:
        for name, content in {**files, data_name: data}.items():
            (Path(folder) / name).write_bytes(content)
        return run_point((str(Path(folder) / strategy_name), None, str(Path(folder) / data_name),
                          params))  # fmt: skip


def sweep_on_cluster(address: str, strategy_path: Path, config_path: Path | None,
                     data_path: Path, points: list[dict[str, object]]) -> list[Point]:  # fmt: skip
    from distributed import Client

    config = (config_path or strategy_path.with_suffix(".toml")).read_bytes()
    files = {strategy_path.name: strategy_path.read_bytes(),
             strategy_path.with_suffix(".toml").name: config}  # fmt: skip
    try:
        client = Client(address, timeout=CLUSTER_CONNECT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise ClusterError(f"cluster {address}: cannot connect: {err}") from None
    try:
        data = client.scatter(data_path.read_bytes(), broadcast=True)
        futures = client.map(run_shipped, [files] * len(points), [strategy_path.name] * len(points),
                             [data_path.name] * len(points), points, data=data,
                             pure=False)  # fmt: skip
        try:
            return client.gather(futures)
        except Exception as err:  # a worker's failure comes back as its exception
            raise ClusterError(f"cluster {address}: a run failed: {type(err).__name__}: {err}"
                               ) from None  # fmt: skip
    finally:
        client.close()


def sweep(strategy_path: Path, config_path: Path | None, data_path: Path,
          points: list[dict[str, object]], jobs: int = 1,
          cluster: str | None = None) -> list[Point]:  # fmt: skip
    """Every point's result, in the order of `points`. The configuration is checked once
    for every point here first, so a bad value fails before any process starts."""
    for params in points:
        load(strategy_path, config_path, params)
    if cluster is not None:
        return sweep_on_cluster(cluster, strategy_path, config_path, data_path, points)
    tasks = [(str(strategy_path), str(config_path) if config_path else None, str(data_path), p)
             for p in points]  # fmt: skip
    if jobs <= 1:
        return [run_point(task) for task in tasks]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        return pool.map(run_point, tasks, chunksize=1)


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
        lines.append(f"{d!s:>12} " + " ".join(f"{_shown(v):>12}" for v in values))
    return lines


def _shown(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, Decimal) else str(value)
