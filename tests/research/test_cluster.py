"""`tk sweep --cluster`: a real Dask cluster (a scheduler and two worker processes started
here, on loopback) runs the grid with the files shipped to its workers, each point a machine
booted on the worker, and gives the same rows as the local run, point for point, and as the
in-process engine on the cluster (--host); an address nobody answers is one line, exit 1."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from distributed import LocalCluster

from tradekernel.kernel.trading import strategies
from tradekernel.research.cli import sweep_command
from tradekernel.research.sweep import parse_grid, sweep
from tradekernel.research.synthetic import SessionSpec, generate

SAMPLES = Path(strategies.__file__).parent


def test_the_cluster_gives_the_local_rows(tmp_path: Path) -> None:
    data = tmp_path / "s.itch"
    data.write_bytes(generate(SessionSpec(events=4000, seed=2))[0])
    points = parse_grid(["size=100,200", "threshold=0.5,0.7"])
    imbalance = SAMPLES / "imbalance.py"
    local = sweep(imbalance, None, data, points, jobs=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        remote = sweep(imbalance, None, data, points, cluster=address)
        in_process = sweep(imbalance, None, data, points, cluster=address, host=True)
        workers = len(cluster.scheduler_info["workers"])
        ran = CliRunner().invoke(sweep_command, ["imbalance", str(data), "--grid",
                                                 "size=100,200", "--cluster", address])  # fmt: skip
    assert workers == 2
    assert remote == local == in_process and all(p.fills for p in remote)
    assert len({p.net for p in remote}) > 1
    assert ran.exit_code == 0 and f"on cluster {address}, one machine each" in ran.output


def test_an_address_nobody_answers_is_one_line(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("tradekernel.research.sweep.CLUSTER_CONNECT_S", 2)
    data = tmp_path / "s.itch"
    data.write_bytes(generate(SessionSpec(events=500, seed=2))[0])
    ran = CliRunner().invoke(sweep_command, ["imbalance", str(data), "--grid", "size=100",
                                             "--cluster", "tcp://127.0.0.1:9"])  # fmt: skip
    assert ran.exit_code == 1 and "cannot connect" in ran.output and "Traceback" not in ran.output
