"""Signals and job control through the shell: images/programs/sigtest.c and nointr.c, Ctrl-C on
the keyboard, and the kill, jobs, wait and nice commands."""

from __future__ import annotations

import re

import pytest

from tests.system.harness import PROMPT, BootedPc
from tests.system.test_ipc import output_of
from tests.system.test_processes import command_while_busy, frames_used, type_while_busy

SECOND = 1_000_000_000
MS = 1_000_000


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def ctrl(tk: BootedPc, key: str) -> None:
    """Ctrl-KEY straight to the keyboard (a foreground job holds the shell), then 50 ms."""
    for event in (("lctrl", True), (key, True), (key, False), ("lctrl", False)):
        tk.machine.channels.send("keyboard-key", event)
    tk.run_to_stop(50 * MS)


def ctrl_c(tk: BootedPc) -> None:
    ctrl(tk, "c")


def start(tk: BootedPc, line: str, ready: str) -> int:
    """Type a foreground command and run until it prints `ready`; the prompt count before."""
    before = tk.prompts_seen()
    tk.type(line + "\n")
    tk.wait_for(ready)
    return before


def serial(tk: BootedPc) -> str:
    """Everything printed so far: a background program's lines mix with the typing on screen."""
    return tk.serial.decode("utf-8", "replace")


def background(tk: BootedPc, line: str) -> str:
    """Start `line &`; its PID from the "[PID] name (job %N)" line."""
    tk.command(line + " &")
    return re.findall(r"\[(\d+)\] \S+ \(job %\d+\)", tk.text())[-1]


def test_the_self_test_sees_every_rule(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    assert output_of(tk, "sigtest") == [
        "handler: 1",
        "blocked: 1 pending 1",
        "unblocked: 2",  # two sends while blocked were one pending signal
        "registers: 0 differ, handler ran 1",  # sigreturn restored EBX..EBP and DF
        "siginfo: code 0 pid self frame ok",  # SI_USER from kill, rt_sigframe's ucontext
        "trampoline: 2",  # no SA_RESTORER: the retcode in the frame
        "SIGKILL: sigaction -22 blockable 0",
        "pipe read: -4",  # EINTR without SA_RESTART
        "pipe read with SA_RESTART: 1",
        "SIGCHLD: 1, sigsuspend -4, code 1 status 3 pid child",  # CLD_EXITED
        "fork: USR2 same handler, TERM blocked 1, pending 0",
        "exec: USR1 ignored, USR2 default, TERM blocked 1",
        "ignored pending TERM: 0",
        "nanosleep: -4, left > 900 ms",
        "alarm: 5 left, pause -4, SIGALRM 1",
        "group: child exit 0, parent got 1, no group -3",  # kill(0) reached its whole group
        "SIGCHLD ignored: wait -10, then -10",  # ECHILD: no zombies were left to reap
    ]
    assert frames_used(tk) == baseline


def test_ctrl_c_is_caught_by_a_handler(tk: BootedPc) -> None:
    before = start(tk, "sigtest catch", "sigtest: catching")
    ctrl_c(tk)
    tk.wait_for("sigtest: SIGINT 1")
    assert tk.prompts_seen() == before  # it caught it and goes on
    ctrl_c(tk)
    ctrl_c(tk)
    tk.run_until(lambda: tk.prompts_seen() > before)
    lines = tk.lines()
    assert "sigtest: SIGINT 3" in lines and "sigtest: done" in lines


def test_ctrl_c_still_ends_a_default_program(tk: BootedPc) -> None:
    before = start(tk, "cat", "cat")  # asleep in a tty read
    tk.run_to_stop(50 * MS)
    ctrl_c(tk)
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert output_of(tk, "ps")[2:] == []


def test_a_handled_sigint_interrupts_a_tty_read(tk: BootedPc) -> None:
    before = start(tk, "sigtest read", "sigtest: reading")
    tk.run_to_stop(50 * MS)
    ctrl_c(tk)
    tk.wait_for("sigtest: read -4, SIGINT 1")  # EINTR: its handler has no SA_RESTART
    tk.type("again\n")  # the terminal is its own again
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert "sigtest: then read 6" in tk.lines()


def test_sigint_ignored_but_sigkill_is_not(tk: BootedPc) -> None:
    before = start(tk, "nointr 1", "nointr: ignoring SIGINT")
    ctrl_c(tk)
    ctrl_c(tk)
    assert tk.prompts_seen() == before
    tk.run_until(lambda: tk.prompts_seen() > before, 2 * SECOND)
    assert "nointr: done" in tk.lines()
    pid = background(tk, "nointr")
    tk.command(f"kill -INT {pid}")
    tk.command(f"kill -SIGTERM {pid}")
    assert f"nointr[{pid}]: terminated" in tk.lines()
    pid = background(tk, "nointr")
    tk.command(f"kill -INT {pid}")
    assert any(line.split()[:1] == [pid] for line in output_of(tk, "ps"))
    tk.command(f"kill -9 {pid}")
    tk.command("echo next")
    lines = tk.lines()
    assert f"nointr[{pid}]: killed" in lines
    assert "[1]+  Killed                  nointr" in lines


def test_bad_sigreturn_frames_kill_only_the_offender(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    tk.command("sigtest badframe")  # the saved CS says ring 0
    tk.command("sigtest badstack")  # the frame is not even readable
    lines = tk.lines()
    assert len([line for line in lines if re.fullmatch(r"sigtest\[\d+\]: segmentation fault",
                                                       line)]) == 2  # fmt: skip
    assert "sigtest: back in ring 0?" not in lines
    assert output_of(tk, "hello") == ["hello, world"]
    assert frames_used(tk) == baseline


def test_kill_sends_any_signal_to_a_process_or_a_job(tk: BootedPc) -> None:
    pid = background(tk, "sigtest catch")
    tk.command(f"kill -USR1 {pid}")
    tk.command(f"kill -s usr1 {pid}")
    tk.run_to_stop(50 * MS)
    assert "sigtest: SIGUSR1 2" in serial(tk)
    tk.command("kill %1")
    tk.command("echo next")
    lines = tk.lines()
    assert "sigtest: done" in serial(tk)
    assert "[1]+  Done                    sigtest catch" in lines
    assert output_of(tk, "kill 999") == ["kill: (999) - no such process"]
    assert output_of(tk, "kill -FOO 1")[0] == "kill: unknown signal 'FOO'"


def test_kill_lists_the_signals(tk: BootedPc) -> None:
    lines = output_of(tk, "kill -l")
    assert lines[0].split() == ["1)", "SIGHUP", "2)", "SIGINT", "3)", "SIGQUIT", "4)", "SIGILL",
                                "5)", "SIGTRAP"]  # fmt: skip
    assert "10) SIGUSR1" in " ".join(lines) and "31) SIGSYS" in " ".join(lines)
    assert output_of(tk, "kill -l 15 USR1") == ["TERM", "10"]


def test_jobs_wait_and_done_notices(tk: BootedPc) -> None:
    tk.command("spin 300 &")
    command_while_busy(tk, "spin 200 &")  # both run for a second of virtual time
    command_while_busy(tk, "jobs")
    assert [line for line in tk.lines() if line][-3:-1] == [
        "[1]-  Running                 spin 300 &",
        "[2]+  Running                 spin 200 &",
    ]
    before = tk.prompts_seen()
    type_while_busy(tk, "wait\n")
    tk.run_until(lambda: tk.prompts_seen() > before, 10 * SECOND)
    assert "spin: 300 million iterations done" in serial(tk)  # the prompt came after both
    lines = [line for line in tk.lines() if line]
    assert lines[-3:] == [
        "[1]-  Done                    spin 300",
        "[2]+  Done                    spin 200",
        PROMPT.rstrip(),
    ]
    assert output_of(tk, "jobs") == []  # reported once, then forgotten


def test_wait_for_one_job_and_ctrl_c_stops_waiting(tk: BootedPc) -> None:
    spin_pid = background(tk, "spin")
    command_while_busy(tk, "spin 50 &")
    before = tk.prompts_seen()
    type_while_busy(tk, "wait %2\n")
    tk.run_until(lambda: tk.prompts_seen() > before, 5 * SECOND)
    assert "[2]+  Done                    spin 50" in tk.lines()
    before = tk.prompts_seen()
    type_while_busy(tk, f"wait {spin_pid}\n")
    tk.run_to_stop(200 * MS)
    assert tk.prompts_seen() == before  # spin runs forever
    ctrl_c(tk)
    tk.run_until(lambda: tk.prompts_seen() > before)
    command_while_busy(tk, "jobs")
    assert "[1]+  Running                 spin &" in tk.lines()
    command_while_busy(tk, "kill %1")
    tk.command("echo next")
    assert "[1]+  Terminated              spin" in tk.lines()
    assert output_of(tk, "wait 999") == ["wait: pid 999 is not a child of this shell"]


def test_a_job_killed_by_a_fault_is_reported(tk: BootedPc) -> None:
    tk.command("crash &")
    tk.command("echo next")
    assert "[1]+  Segmentation fault      crash" in tk.lines()


def test_nice_starts_a_program_with_a_nice_value(tk: BootedPc) -> None:
    first = background(tk, "nice -n 7 spin")
    command_while_busy(tk, "nice spin &")
    second = re.findall(r"\[(\d+)\] spin \(job %2\)", tk.text())[0]
    command_while_busy(tk, "ps")
    rows = {line.split()[0]: line.split() for line in tk.lines() if line.split()[:1]}
    assert rows[first][3:5] == ["TS", "7"]
    assert rows[second][3:5] == ["TS", "10"]
    command_while_busy(tk, f"kill -9 {first} {second}")
    tk.command("echo next")
    assert "[2]+  Killed                  nice spin" not in tk.lines()  # the program's line
    assert "[2]+  Killed                  spin" in tk.lines()


def test_a_fault_goes_to_a_handler_unless_it_is_blocked(tk: BootedPc) -> None:
    assert output_of(tk, "sigtest segv") == ["sigtest: signal 11 at 0x50000000 code 1"]  # MAPERR
    text = "".join(output_of(tk, "sigtest segv blocked"))
    assert re.fullmatch(r"sigtest\[\d+\]: segmentation fault at 0x50000000 \(user write.*", text)
