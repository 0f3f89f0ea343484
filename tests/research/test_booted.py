"""`tk backtest` boots the PC deterministically and runs the shell's backtest inside it: the
same figures and fills as the in-OS command typed at the shell, byte-identical output over two
runs, live progress from the machine, and the host-side run (--host) agreeing with both."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.system.harness import SECOND
from tests.system.test_files import mtype
from tests.system.test_trading import booted
from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.research import booted as booted_module
from tradekernel.research.booted import RUN_FILES, parse_printed, run_in_machine
from tradekernel.research.cli import backtest, report_command
from tradekernel.research.config import load
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=8_000, seed=5))


def test_tk_backtest_is_the_in_os_command_and_repeats_byte_for_byte(
    tmp_path: Path, monkeypatch  # noqa: ANN001
) -> None:
    data = tmp_path / "s.itch"
    data.write_bytes(SESSION)

    def not_here(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("tk backtest ran the engine in the host process")

    with monkeypatch.context() as patch:  # the kernel's own binding of run_backtest is untouched
        patch.setattr("tradekernel.research.cli.run_backtest", not_here)
        runs = [CliRunner().invoke(backtest, ["market_maker", str(data)]) for _ in range(2)]
    for ran in runs:
        assert ran.exit_code == 0, ran.output
    assert runs[0].stdout_bytes == runs[1].stdout_bytes
    summary = runs[0].stdout.strip()
    assert summary.startswith("ok market_maker on s.itch: ") and " 0 fills" not in summary
    tk = booted(tmp_path, {"/data/s.itch": SESSION})
    typed = tk.output("backtest market_maker /data/s.itch", 60 * SECOND)
    assert parse_printed(typed).one_line == summary
    host = CliRunner().invoke(backtest, ["market_maker", str(data), "--host", "--quiet"])
    assert host.exit_code == 0 and host.stdout.strip() == summary


def test_progress_comes_live_from_the_machine() -> None:
    seen: list[int] = []
    ran = run_in_machine("backtest momentum /data/s.itch", {"/data/s.itch": big()},
                         seen.append)  # fmt: skip
    assert ran.error is None and ran.lines[0].startswith("backtest momentum on s.itch: ok")
    assert seen and seen == sorted(seen) and seen[0] >= 20_000


def test_the_run_files_are_collected_from_the_machine_s_disk(monkeypatch) -> None:  # noqa: ANN001
    """`backtest ... --out DIR` in the machine writes the run's files on its disk; after power
    off they are read from the image, and mtools (an independent FAT reader) finds the same
    bytes there. They equal a host run's files: nothing of it was needed to get them."""
    on_disk: dict[str, bytes] = {}
    collect = booted_module.collect_files

    def and_check_with_mtools(disk: Path, folder: str) -> dict[str, bytes]:
        for name in ("fills.csv", "summary.json", "samples.csv", "latency.csv"):
            on_disk[name] = mtype(disk, f"{folder}/{name}")
        return collect(disk, folder)

    monkeypatch.setattr(booted_module, "collect_files", and_check_with_mtools)
    ran = run_in_machine("backtest momentum /data/s.itch --out /runs/m",
                         {"/data/s.itch": SESSION}, collect="/runs/m")  # fmt: skip
    assert ran.error is None and ran.lines[0].startswith("backtest momentum on s.itch: ok")
    assert ran.files == on_disk and len(ran.files) == 4
    assert booted_module.files_fingerprint(ran.files) == parse_printed(ran.lines).fingerprint
    instance, cfg, digest = load(Path(strategies.__file__).parent / "momentum.py", None)
    host = run_backtest(instance, "/data/s.itch", SESSION, cfg.fill, cfg.risk, digest)
    assert host.fills and ran.files == {k: v.encode() for k, v in host.run_files().items()}


def test_a_run_left_nowhere_is_one_clear_error() -> None:
    try:
        run_in_machine("backtest momentum /data/s.itch", {"/data/s.itch": SESSION},
                       collect="/runs/none")  # fmt: skip
    except booted_module.MachineError as err:
        assert str(err).startswith("the machine left no run in /runs/none: ")
    else:
        raise AssertionError("no MachineError")


def big() -> bytes:
    return generate(SessionSpec(events=45_000, seed=6))[0]


def test_the_shell_s_refusal_is_one_line_and_exit_1(tmp_path: Path) -> None:
    data = tmp_path / "s.bin"  # no format the OS knows: the shell in the machine refuses it
    data.write_bytes(SESSION)
    ran = CliRunner().invoke(backtest, ["market_maker", str(data), "--quiet"])
    assert ran.exit_code == 1 and "Traceback" not in ran.output
    expected = "tk: /data/s.bin: unknown feed format (expected .itch, .fix or .csv)\n"
    assert ran.output == expected  # the machine's path: the line comes from its shell


def test_out_writes_the_machine_s_files_not_a_host_run(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """`tk backtest --out` runs nothing in this process: the CSV/JSON files are the bytes read
    from the machine's disk image, the Parquet tables and the HTML report are made from them,
    and two runs give the same bytes for all of it."""
    data = tmp_path / "s.itch"
    data.write_bytes(SESSION)
    collected: list[dict[str, bytes]] = []
    collect = booted_module.collect_files

    def recorded(disk: Path, folder: str) -> dict[str, bytes]:
        collected.append(collect(disk, folder))
        return collected[-1]

    def not_here(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("tk backtest --out ran the engine in the host process")

    monkeypatch.setattr(booted_module, "collect_files", recorded)
    monkeypatch.setattr("tradekernel.research.cli.run_backtest", not_here)
    pages = []
    for run in ("a", "b"):
        out = tmp_path / run
        ran = CliRunner().invoke(backtest, ["momentum", str(data), "--out", str(out), "--quiet"])
        assert ran.exit_code == 0, ran.output
        assert {name: (out / name).read_bytes() for name in RUN_FILES} == collected[-1]
        page = tmp_path / f"{run}.html"
        assert CliRunner().invoke(report_command, [str(out), "--html", str(page)]).exit_code == 0
        pages.append(page.read_bytes())
    assert len(collected) == 2 and b"BUY" in collected[0]["fills.csv"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        [*RUN_FILES, "fills.parquet", "samples.parquet", "latency.parquet"])
    for name in sorted(p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert pages[0] == pages[1] and b"<svg" in pages[0]


def test_host_and_machine_write_the_same_files_for_a_strategy_file(tmp_path: Path) -> None:
    """A strategy from a file of another name than its class's: the machine runs it as the
    file names it, and so does --host, so both write the same bytes, Parquet included."""
    data = tmp_path / "s.itch"
    data.write_bytes(SESSION)
    samples = Path(strategies.__file__).parent
    (tmp_path / "mymo.py").write_bytes((samples / "momentum.py").read_bytes())
    (tmp_path / "mymo.toml").write_bytes((samples / "momentum.toml").read_bytes())
    for run, more in (("machine", []), ("host", ["--host"])):
        ran = CliRunner().invoke(backtest, [str(tmp_path / "mymo.py"), str(data), "--quiet",
                                            "--out", str(tmp_path / run), *more])  # fmt: skip
        assert ran.exit_code == 0 and ran.output.startswith("ok mymo on s.itch: "), ran.output
    names = sorted(p.name for p in (tmp_path / "machine").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "host").iterdir()) and len(names) == 7
    for name in names:
        machine, host = (tmp_path / "machine" / name).read_bytes(), (tmp_path / "host" / name)
        assert machine == host.read_bytes(), name


def test_out_writes_nothing_when_the_files_are_not_the_printed_run(
    tmp_path: Path, monkeypatch  # noqa: ANN001
) -> None:
    data = tmp_path / "s.itch"
    data.write_bytes(SESSION)
    monkeypatch.setattr(booted_module, "files_fingerprint", lambda files: "something else")
    ran = CliRunner().invoke(backtest, ["momentum", str(data), "--out", str(tmp_path / "b"),
                                        "--quiet"])  # fmt: skip
    assert ran.exit_code == 4 and "differs from the files it wrote" in ran.output
    assert not (tmp_path / "b").exists()


def test_malformed_run_files_are_one_line_and_nothing_written(
    tmp_path: Path, monkeypatch  # noqa: ANN001
) -> None:
    data = tmp_path / "s.itch"
    data.write_bytes(SESSION)
    collect = booted_module.collect_files

    def broken(disk: Path, folder: str) -> dict[str, bytes]:
        files = collect(disk, folder)
        return {**files, "samples.csv": files["samples.csv"] + b"1,2\n"}  # a short row

    monkeypatch.setattr(booted_module, "collect_files", broken)
    ran = CliRunner().invoke(backtest, ["momentum", str(data), "--out", str(tmp_path / "c"),
                                        "--quiet"])  # fmt: skip
    assert ran.exit_code == 1 and "samples.csv: malformed" in ran.output
    assert "Traceback" not in ran.output and not (tmp_path / "c").exists()


def test_unreadable_run_files_are_one_clear_error() -> None:
    for files in ({}, {"summary.json": b"{", "fills.csv": b""},
                  {"summary.json": b'{"fills": 1, "net": "x"}', "fills.csv": b""}):  # fmt: skip
        try:
            booted_module.files_fingerprint(files)
        except booted_module.MachineError as err:
            assert str(err).startswith("the machine's run files are not readable: ")
        else:
            raise AssertionError(files)
