"""A trailing `&` is the shell's background operator wherever it stands after the words: after a
redirection (`hello > out &`), glued to a word (`hello&`), never an argument of the command."""

from __future__ import annotations

import pytest

from tests.system.harness import PROMPT, BootedPc
from tradekernel.kernel.shell.shell import split_command_line


@pytest.mark.parametrize(
    ("line", "stages", "redirections"),
    [
        ("hello > out &", [["hello"]], [(">", "out")]),
        ("hello >out&", [["hello"]], [(">", "out")]),
        ("hello &", [["hello"]], []),
        ("cat < in | wc -l >> out &", [["cat"], ["wc", "-l"]], [("<", "in"), (">>", "out")]),
    ],
)
def test_a_trailing_ampersand_backgrounds_the_line(
    line: str, stages: list[list[str]], redirections: list[tuple[str, str]]
) -> None:
    assert split_command_line(line) == (stages, redirections, True)


def test_a_quoted_or_escaped_ampersand_is_a_word() -> None:
    assert split_command_line("echo '&' \\& \"a&b\"") == ([["echo", "&", "&", "a&b"]], [], False)


@pytest.mark.parametrize("line", ["hello & echo x", "&", "hello & &", "hello | & wc"])
def test_an_ampersand_anywhere_else_is_a_syntax_error(line: str) -> None:
    with pytest.raises(ValueError, match="&"):
        split_command_line(line)


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def test_a_redirected_program_runs_in_the_background(tk: BootedPc) -> None:
    """The shell hands the job to the process layer's background runner, without the `&`."""
    shell = tk.pc.kernel.shell
    seen = []
    shell.run_programs = lambda *call: seen.append(("foreground", *call)) or 0
    shell.run_programs_in_background = lambda *call: seen.append(("background", *call)) or 0
    tk.command("hello > out &")
    assert [(kind, stages, redirections) for kind, stages, redirections, *_ in seen] == [
        ("background", [["hello"]], [(">", "out")])
    ]


def test_a_background_line_without_a_background_runner_is_refused(tk: BootedPc) -> None:
    tk.pc.kernel.shell.run_programs_in_background = None
    tk.command("hello > out &")
    lines = [line for line in tk.lines() if line]
    assert lines[-3:-1] == [PROMPT + "hello > out &",
                            "sh: cannot run this in the background: no job control"]
    assert not tk.pc.kernel.fs.exists("/out")  # nothing ran, nothing was created


def test_a_plain_program_with_ampersand_is_still_a_job(tk: BootedPc) -> None:
    """`hello&` (no space) goes the way `hello &` always went: a job of its own."""
    tk.command("hello&")
    tk.run_to_stop(100_000_000)
    assert any(line.startswith("[") and "hello (job %1)" in line for line in tk.lines())
    assert "hello, world" in tk.lines()


def test_a_redirected_program_really_runs_as_a_background_job(tk: BootedPc) -> None:
    """With the process layer's runner: the prompt comes back at once with the job's number,
    and the program's output lands in the file, not in the argument list."""
    tk.command("hello > out &")
    assert any(line.startswith("[") and "hello (job %1)" in line for line in tk.lines())
    tk.run_to_stop(100_000_000)
    assert tk.pc.kernel.fs.read_file("/out") == b"hello, world\n"
