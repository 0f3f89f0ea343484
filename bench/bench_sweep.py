"""Sweep throughput (tk sweep): deterministic backtests per second when every grid point boots a
machine of its own, on 1, 2 and N local processes, and on a local Dask cluster.

Data: a synthetic ITCH 5.0 session (tradekernel.research.synthetic, seeded) of --events
messages; the grid: --points values of the imbalance sample's `size`. Each figure is one sweep
of the whole grid, timed on the wall clock from the call to the last row (process start
included: a spawned worker imports the project and boots its machines), as runs per second
and as market-data events replayed per second over all runs. Beside each booted figure, the
same sweep with --host (the engine in the worker process, no machine), so the price of a
machine per point shows. With --cluster, the booted sweep also runs on a Dask LocalCluster
of N worker processes started here (its start, and one sweep warming its workers' imports,
are not timed). Every sweep's rows are checked equal to the first one's: a figure is only
printed for a sweep that gave the same table. A local sweep starts its own processes; what
that costs (spawning the pool and importing the machine's code in every worker) is measured
apart and printed per process count: a short sweep on a few processes is mostly that.

On a shared host the load average (printed at start and end) says how far the wall-clock
figures can be trusted; more processes than CPUs only shows the saturation.

Run: .venv/bin/python bench/bench_sweep.py [--events N] [--points P] [--jobs N] [--cluster]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from tradekernel.research.cli import count_messages
from tradekernel.research.config import SAMPLES
from tradekernel.research.sweep import Point, parse_grid, sweep
from tradekernel.research.synthetic import SessionSpec, generate


def timed(data: Path, points: int, jobs: int, host: bool,
          cluster: str | None = None) -> tuple[float, list[Point]]:  # fmt: skip
    grid = parse_grid([f"size={','.join(str(100 * (i + 1)) for i in range(points))}"])
    start = time.perf_counter()
    rows = sweep(SAMPLES / "imbalance.py", None, data, grid, jobs, cluster, host=host)
    return time.perf_counter() - start, rows


def _imported() -> None:
    """In a spawned worker: import what a machine-per-point run needs."""
    import tradekernel.research.sweep  # noqa: F401
    import tradekernel.ui.session  # noqa: F401


def start_cost(jobs: int) -> float:
    """Wall seconds to spawn `jobs` worker processes and import the project in each, as a
    sweep's pool does before its first run (nothing for one process: it runs in this one)."""
    if jobs <= 1:
        return 0.0
    start = time.perf_counter()
    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_imported)
    pool.close()
    pool.join()  # every worker ran its initializer and exited
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="messages in the session")
    parser.add_argument("--points", type=int, default=8, help="grid points (runs per sweep)")
    parser.add_argument("--jobs", type=int, default=max(4, os.cpu_count() or 1),
                        help="N, the most local processes (and cluster workers)")  # fmt: skip
    parser.add_argument("--cluster", action="store_true",
                        help="also on a Dask LocalCluster of N workers")  # fmt: skip
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    blob, _ = generate(SessionSpec(events=args.events, seed=1))
    per_run = count_messages("s.itch", blob)
    print(f"{args.points} imbalance backtests of {per_run} messages each per sweep")
    print(f"{'where':<22} {'mode':<8} {'wall s':>7} {'runs/s':>7} {'ms/run':>7} {'events/s':>10}")
    first: list[Point] | None = None
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "bench.itch"
        data.write_bytes(blob)
        cases = [(f"{jobs} process(es)", jobs, host, None)
                 for jobs in sorted({1, 2, args.jobs}) for host in (False, True)]  # fmt: skip
        cluster = None
        if args.cluster:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)  # fmt: skip
            where = f"Dask, {args.jobs} workers"
            cases += [(where, 1, False, cluster.scheduler_address),
                      (where, 1, True, cluster.scheduler_address)]  # fmt: skip
            timed(data, args.jobs, 1, False, cluster.scheduler_address)  # the workers' imports
        try:
            for where, jobs, host, address in cases:
                elapsed, rows = timed(data, args.points, jobs, host, address)
                if first is None:
                    first = rows
                if rows != first:
                    raise SystemExit(f"{where} {'host' if host else 'machine'}: other rows")
                runs = len(rows) / elapsed
                print(f"{where:<22} {'host' if host else 'machine':<8} {elapsed:>7.2f} "
                      f"{runs:>7.2f} {1000 / runs:>7.0f} {runs * per_run:>10,.0f}")  # fmt: skip
        finally:
            if cluster is not None:
                cluster.close()
    print("every sweep gave the same table")
    for jobs in sorted({2, args.jobs}):
        print(f"spawning {jobs} worker processes and importing the project in each: "
              f"{start_cost(jobs):.2f} s (part of every local sweep on {jobs} processes)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
