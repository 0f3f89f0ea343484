"""The boot-to-shell harness fails a scenario whose screen, serial console or log shows a
failure, even when the text the test waits for was printed first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.harness import BootedPc, KernelFailure


def with_broken_command(tmp_path: Path, **kwargs: object) -> BootedPc:
    """A booted PC whose shell has `broken`: it prints a good line, then raises."""
    tk = BootedPc(tmp_path, **kwargs).boot()  # type: ignore[arg-type]

    def broken(args: list[str], out) -> int:  # noqa: ANN001
        out.line("all good")
        raise RuntimeError("a bug after the output")

    tk.pc.kernel.shell.register("broken", broken, "broken", "print a line, then raise")
    return tk


def test_a_command_that_raises_fails_the_scenario(tmp_path: Path) -> None:
    tk = with_broken_command(tmp_path)
    with pytest.raises(KernelFailure, match="broken: internal error: RuntimeError"):
        tk.command("broken")
    assert "all good" in tk.lines()  # the line a careless test would have waited for


def test_a_test_may_expect_it(tmp_path: Path) -> None:
    tk = with_broken_command(tmp_path, expect=("internal error", "oops"))
    tk.command("broken")
    tk.command("echo still here")
    assert "still here" in tk.lines()


def test_a_failure_that_scrolled_off_the_screen_is_still_seen(tmp_path: Path) -> None:
    """The serial console keeps what the screen lost; a later, clean command still fails."""
    tk = with_broken_command(tmp_path, expect=("internal error", "oops"))
    tk.command("broken")
    tk.command("clear")
    tk.expected_failures = ()
    with pytest.raises(KernelFailure, match="serial: broken: internal error"):
        tk.command("echo fine")


def test_the_log_is_read_too(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path).boot()
    tk.machine.channels.send("log", "kernel: oops: a broken invariant")
    with pytest.raises(KernelFailure, match="log: kernel: oops"):
        tk.command("echo fine")


def test_words_that_merely_contain_a_mark_are_not_failures(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path).boot()
    tk.command("echo cluster chain loops")
    assert "cluster chain loops" in tk.lines()
