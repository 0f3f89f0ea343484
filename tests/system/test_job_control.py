"""Stopping and continuing: images/programs/stoptest.c, Ctrl-Z, a background read of the
terminal (SIGTTIN), and the fg, bg, jobs, kill and wait commands on stopped jobs."""

from __future__ import annotations

import re

import pytest

from tests.system.harness import PROMPT, BootedPc
from tests.system.test_ipc import output_of
from tests.system.test_processes import command_while_busy, frames_used, type_while_busy
from tests.system.test_signals import MS, background, ctrl, ctrl_c, start


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def ps_rows(tk: BootedPc) -> dict[str, list[str]]:
    """`ps` by PID: [PID, PPID, S, CLS, PRI, TIME, CMD...]."""
    return {row[0]: row for row in map(str.split, output_of(tk, "ps")[1:])}


def test_the_stop_self_test_sees_every_rule(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    lines = [line for line in output_of(tk, "stoptest") if not re.match(r"stoptest\[\d+\]", line)]
    assert lines == [
        "stop: stopped 19, still 1, again 0, continued 1, moves 1, then 15",  # no CPU stopped
        "SIGCHLD: stopped 5/20, continued 6/18, with SA_NOCLDSTOP 0, killed 9",
        "SIGTSTP: caught 1, runs 1; USR1 waits 0, then 1; SIGCONT handler 1",
        "SIGTSTP ignored: goes on",
        "blocked SIGTSTP: discarded by SIGCONT 1, exit 7",
        "nanosleep across a stop: 1, outlasting one: 1",  # 0, not EINTR, and the full time
        "raise(SIGSTOP): stopped 1, exit 3",
    ]
    assert frames_used(tk) == baseline


def test_ctrl_z_stops_the_foreground_job_and_fg_and_bg_continue_it(tk: BootedPc) -> None:
    before = start(tk, "spin", "spin")
    tk.run_to_stop(100 * MS)
    ctrl(tk, "z")
    tk.run_until(lambda: tk.prompts_seen() > before)
    lines = [line for line in tk.lines() if line]
    assert lines[-3:] == ["^Z", "[1]+  Stopped                 spin", PROMPT.rstrip()]
    rows = ps_rows(tk)
    (pid,) = [pid for pid, row in rows.items() if row[6:] == ["spin"]]
    stopped = rows[pid]
    tk.run_to_stop(200 * MS)
    later = ps_rows(tk)[pid]
    assert later[2] == "T" and later[5] == stopped[5]  # no CPU at all
    assert output_of(tk, "jobs") == ["[1]+  Stopped                 spin"]
    tk.command("bg")
    assert "[1]+ spin &" in tk.lines()
    command_while_busy(tk, "jobs")
    assert "[1]+  Running                 spin &" in tk.lines()
    before = tk.prompts_seen()
    type_while_busy(tk, "fg\n")
    tk.run_to_stop(200 * MS)
    assert tk.prompts_seen() == before  # spin holds the terminal again
    ctrl_c(tk)
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert output_of(tk, "jobs") == []  # it ended in the foreground: no notice
    assert list(ps_rows(tk)) == ["0"]


def test_a_background_read_of_the_terminal_stops_the_job(tk: BootedPc) -> None:
    background(tk, "run cat")
    tk.command("echo next")
    assert "[1]+  Stopped (tty input)     cat" in tk.lines()  # SIGTTIN, said before the prompt
    before = tk.prompts_seen()
    tk.type("fg\n")
    tk.run_to_stop(50 * MS)
    lines = [line for line in tk.lines() if line]
    assert lines[-2:] == [PROMPT + "fg", "cat"]  # the job's command line, and no prompt
    tk.type("typed after fg\n")
    tk.run_to_stop(100 * MS)
    assert tk.lines().count("typed after fg") == 2  # the tty's echo, and cat's copy
    ctrl(tk, "d")
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert output_of(tk, "jobs") == []


def test_ctrl_z_stops_a_whole_pipeline_and_kill_ends_it(tk: BootedPc) -> None:
    before = start(tk, "yes | wc", "yes | wc")
    tk.run_to_stop(2 * MS)  # both run (a pipe's every write and read costs a kernel entry)
    ctrl(tk, "z")
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert "[1]+  Stopped                 yes | wc" in tk.lines()
    rows = ps_rows(tk)
    assert sorted(row[2] + row[6] for pid, row in rows.items() if pid != "0") == ["Twc", "Tyes"]
    tk.command("kill %1")  # TERM's default action ends stopped processes too
    tk.command("echo next")
    assert "[1]+  Terminated              yes | wc" in tk.lines()
    assert list(ps_rows(tk)) == ["0"]


def test_kill_stops_and_continues_a_job_and_wait_returns_for_a_stopped_one(
    tk: BootedPc,
) -> None:
    pid = background(tk, "spin")
    command_while_busy(tk, "kill -STOP %1")
    tk.command("echo next")
    assert "[1]+  Stopped (signal)        spin" in tk.lines()
    tk.command("wait")  # returns: the job will not end on its own
    assert ps_rows(tk)[pid][2] == "T"
    tk.command(f"kill -CONT {pid}")
    command_while_busy(tk, "jobs")
    assert "[1]+  Running                 spin &" in tk.lines()
    command_while_busy(tk, "kill -TSTP %1")
    tk.command("kill -USR1 %1")  # also continued (as bash does), and USR1 ends it
    tk.command("echo next")
    assert "[1]+  User defined signal 1   spin" in tk.lines()


def test_fg_and_bg_errors_and_ctrl_z_at_the_prompt(tk: BootedPc) -> None:
    ctrl(tk, "z")
    assert output_of(tk, "echo ok") == ["ok"]
    assert "^Z" not in tk.text()
    assert output_of(tk, "fg")[0] == "fg: no current job"
    assert output_of(tk, "bg %3")[0] == "bg: %3: no such job"
    background(tk, "spin")
    command_while_busy(tk, "bg %1")
    assert "bg: job 1 already in background" in tk.lines()
    command_while_busy(tk, "kill -9 %1")


def test_ctrl_z_during_a_tty_read_gives_the_line_to_the_shell_and_fg_reads_again(
    tk: BootedPc,
) -> None:
    start(tk, "run cat", PROMPT + "run cat")
    tk.run_to_stop(50 * MS)  # asleep in its read
    ctrl(tk, "z")
    tk.run_to_stop(50 * MS)
    assert output_of(tk, "echo typed at the prompt") == ["typed at the prompt"]  # the shell's
    before = tk.prompts_seen()
    tk.type("fg\n")
    tk.run_to_stop(50 * MS)
    tk.type("for cat\n")
    tk.run_to_stop(50 * MS)
    assert tk.lines().count("for cat") == 2  # the read was restarted, and took this line
    ctrl(tk, "d")
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert output_of(tk, "jobs") == []
