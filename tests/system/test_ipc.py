"""Pipes, fork, execve and wait4 through the shell: pipelines of /bin programs, and the test
programs images/programs/{forktest,pipetest,exectest}.c."""

from __future__ import annotations

import re

import pytest

from tests.system.harness import PROMPT, BootedPc
from tests.system.test_processes import frames_used

SECOND = 1_000_000_000
MS = 1_000_000


@pytest.fixture(scope="module")
def tk(tmp_path_factory):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path_factory.mktemp("ipc")).boot()


def output_of(tk: BootedPc, line: str, virtual_ns: int = 10 * SECOND) -> list[str]:
    """The lines a command printed: between its echo and the next prompt (screen cleared
    first, so nothing older is in the way)."""
    tk.command("clear")
    tk.command(line, virtual_ns)
    lines = [text for text in tk.lines() if text]
    start = lines.index(PROMPT + line)
    return lines[start + 1 : -1]


def pattern_checksum(total: int) -> int:
    """What pipetest computes over the bytes its child sends."""
    checksum = 0
    for position in range(total):
        checksum += ((position * 7 + 3) % 251) * (position % 65521 + 1)
    return checksum & 0xFFFF_FFFF


def test_yes_into_head_stops_and_the_prompt_returns(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    assert output_of(tk, "yes | head -n 3") == ["y", "y", "y"]
    tk.command("ps")
    assert not any(line.endswith(" yes") or line.endswith(" head") for line in tk.lines())
    assert frames_used(tk) == baseline


def test_cat_a_file_into_wc(tk: BootedPc) -> None:
    tk.command("echo one two three > words.txt")
    tk.command("echo four >> words.txt")
    assert output_of(tk, "cat words.txt | wc") == ["2 4 19"]
    assert output_of(tk, "wc words.txt") == ["2 4 19 words.txt"]
    assert output_of(tk, "yes 5 | cat | wc") == ["5 5 10"]


def test_program_redirections(tk: BootedPc) -> None:
    tk.command("yes 4 > ys.txt")
    assert output_of(tk, "wc < ys.txt") == ["4 4 8"]
    assert output_of(tk, "head -n 2 < ys.txt | wc > count.txt") == []
    assert output_of(tk, "cat count.txt") == ["2 2 4"]
    assert "no such file" in " ".join(output_of(tk, "wc < nosuch.txt"))


def test_pipeline_syntax_errors(tk: BootedPc) -> None:
    assert output_of(tk, "yes |") == ["sh: syntax error: '|' needs a command after it"]
    assert output_of(tk, "| wc") == ["sh: syntax error near '|'"]
    assert output_of(tk, "echo a | wc") == ["1 1 2"]  # a built-in may start a pipeline
    assert output_of(tk, "yes 1 | echo") == [
        "sh: echo: a built-in takes no input (no < and not after a |)"
    ]
    assert output_of(tk, "echo 'a | b'") == ["a | b"]


def test_fork_and_wait_status(tk: BootedPc) -> None:
    lines = output_of(tk, "forktest")
    assert re.fullmatch(r"forktest: child \d+ reaped=1 status=0x700 exit=7 shared=41", lines[0])
    assert lines[1] == "forktest: wait again = -10"  # ECHILD: the child was reaped


def test_pipe_carries_a_mebibyte_intact(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    total = 1 << 20
    lines = output_of(tk, "pipetest", 60 * SECOND)
    assert lines == [f"pipetest: {total} bytes checksum {pattern_checksum(total)} child exit 0"]
    assert frames_used(tk) == baseline


def test_exec_replaces_the_child(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    lines = output_of(tk, "exectest")
    assert lines == ["exectest: execve(/bin/nosuch) = -2", "hello, world", "exectest: child exit 0"]
    assert frames_used(tk) == baseline


def test_fork_exec_wait_rounds(tk: BootedPc) -> None:
    assert output_of(tk, "exectest 5") == ["exectest: 5 spawns done"]


def test_ctrl_c_ends_the_whole_pipeline(tk: BootedPc) -> None:
    before = tk.prompts_seen()
    tk.type("spin | cat\n")  # spin holds the CPU, cat sleeps on the pipe
    tk.run_to_stop(100 * MS)
    assert tk.prompts_seen() == before  # the job holds the foreground
    for event in (("lctrl", True), ("c", True), ("c", False), ("lctrl", False)):
        tk.machine.channels.send("keyboard-key", event)
        tk.run_to_stop(20 * MS)
    tk.run_until(lambda: tk.prompts_seen() > before, SECOND)
    assert output_of(tk, "ps")[2:] == []  # only the header and the kernel line are left
