"""`tk backtest` with a ring-3 strategy program: /bin/mdtaker of the OS's disk, or a host ELF
file put on the machine's disk, runs as the shell's `backtest PROGRAM DATA ... -- ARGS` in a
booted deterministic machine; its own output comes before the figures and goes to stderr, the
one-line summary to stdout, the same bytes on two runs; --out brings back the files the
machine wrote (for `tk report`); a program that segfaults stops the run with one line and exit
2; --host, and --args for a Python strategy, are refused in one line before any machine boots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradekernel.research import booted as booted_module
from tradekernel.research.booted import RUN_FILES
from tradekernel.research.cli import backtest, report_command
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=3000, seed=3))  # tests/trading/test_ring3_backtest.py's
EVENTS = 3157  # messages in SESSION
MDTAKER = Path(booted_module.__file__).parents[1] / "data" / "programs" / "mdtaker"
SUMMARY = re.compile(rf"(ok|STOPPED) (\w+) on s\.itch: {EVENTS} events, (\d+) fills, net \S+ "
                     r"\(realized \S+, unrealized \S+, fees \S+\) hash \w{12}\n")  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "s.itch"
    path.write_bytes(SESSION)
    return path


def tk(*args: str) -> object:
    return CliRunner().invoke(backtest, [*args, "--quiet"])


def test_the_os_s_program_backtests_in_the_machine_the_same_twice(
        data: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def not_here(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a program's backtest ran something in the host process")

    monkeypatch.setattr("tradekernel.research.cli.run_backtest", not_here)
    monkeypatch.setattr("tradekernel.research.cli.load", not_here)
    runs = [tk("/bin/mdtaker", str(data), "--args", "SYNTH 0") for _ in range(2)]
    for ran in runs:
        assert ran.exit_code == 0, ran.output
    assert runs[0].stdout_bytes == runs[1].stdout_bytes
    found = SUMMARY.fullmatch(runs[0].stdout)
    assert found and found.group(1, 2) == ("ok", "mdtaker") and int(found[3]) > 5, runs[0].stdout
    # the program's own line, printed in the machine before the figures, comes on stderr
    mine = re.search(r"^mdtaker: events \d+ orders \d+ fills (\d+)", runs[0].stderr, re.M)
    assert mine and mine[1] == found[3], runs[0].stderr


def test_a_host_program_with_its_toml_and_out_writes_the_machine_s_files(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    program = tmp_path / "mytaker"
    program.write_bytes(MDTAKER.read_bytes())
    # beside it, as the OS looks for PROGRAM.toml: a faster market-data latency than the default
    (tmp_path / "mytaker.toml").write_bytes(b'[instruments]\nsymbols = ["SYNTH"]\n'
                                            b"[fill]\nmd_latency_ns = 5000\n")  # fmt: skip
    collected: list[dict[str, bytes]] = []
    collect = booted_module.collect_files

    def recorded(disk: Path, folder: str) -> dict[str, bytes]:
        collected.append(collect(disk, folder))
        return collected[-1]

    monkeypatch.setattr(booted_module, "collect_files", recorded)
    out = tmp_path / "run"
    ran = tk(str(program), str(data), "--args", "SYNTH 0", "--out", str(out))
    assert ran.exit_code == 0, ran.output
    found = SUMMARY.fullmatch(ran.stdout)
    assert found and found.group(1, 2) == ("ok", "mytaker"), ran.stdout
    assert len(collected) == 1 and {n: (out / n).read_bytes() for n in RUN_FILES} == collected[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fills"] == int(found[3]) and summary["strategy"] == "mytaker"
    latencies = [int(v) for v in (out / "latency.csv").read_text().split()[1:]]
    assert latencies and all(5_100 < v < 6_000 for v in latencies)  # its compute on top of 5 us
    shown = CliRunner().invoke(report_command, [str(out)])
    p50 = sorted(latencies)[(len(latencies) + 1) // 2 - 1]
    assert shown.exit_code == 0 and "mytaker on s.itch" in shown.stdout, shown.output
    assert re.search(rf"tick-to-order ns .*\bp50 {p50}\b", shown.stdout), shown.stdout


def test_a_segfaulting_program_is_one_line_and_exit_2_and_its_run_is_kept(
        data: Path, tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "crash"
    ran = tk("/bin/mdtaker", str(data), "--args", "SYNTH 400 crash", "--out", str(out))
    assert ran.exit_code == 2, ran.output
    found = SUMMARY.fullmatch(ran.stdout)
    assert found and found.group(1, 2) == ("STOPPED", "mdtaker"), ran.stdout
    stopped = [line for line in ran.stderr.splitlines() if line.startswith("strategy stopped")]
    assert len(stopped) == 1 and re.fullmatch(
        r"strategy stopped: mdtaker\[\d+\] died: segmentation fault", stopped[0]), ran.stderr
    assert "Traceback" not in ran.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy_error"].endswith("died: segmentation fault")
    assert summary["fills"] == int(found[3])


def test_what_a_program_cannot_do_is_refused_in_one_line_before_any_boot(
        data: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def no_boot(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a machine was booted for a refused command")

    monkeypatch.setattr(booted_module, "run_in_machine", no_boot)
    for args, line in (
        (["/bin/mdtaker", "--host"],
         "tk: /bin/mdtaker: a ring-3 program runs only in the machine: --host cannot run it\n"),
        (["momentum", "--args", "SYNTH 0"],
         "tk: --args: momentum is not a program (/bin/NAME or an ELF file)\n"),
        (["/bin/mdtaker", "--args", "SYNTH 'a;b'"], "tk: --args: 'a;b' is not a plain word\n"),
        (["/bin/mdtaker", "--args", "SYNTH 'open"], "tk: --args: No closing quotation\n"),
        (["/bin/md taker"], "tk: /bin/md taker: not a plain program name under /bin\n"),
    ):  # fmt: skip
        ran = tk(args[0], str(data), *args[1:])
        assert (ran.exit_code, ran.output) == (1, line), args


def test_the_shell_s_refusal_of_a_program_is_its_one_line(data: Path) -> None:
    ran = tk("/bin/nosuch", str(data))
    assert ran.exit_code == 1
    assert ran.output == "tk: /bin/nosuch: cannot read: /bin/nosuch: no such file or directory\n"
