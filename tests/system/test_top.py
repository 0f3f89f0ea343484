"""`top` through the whole path: a live table with CPU shares, refreshed in virtual time, left
with q, the screen put back."""

from __future__ import annotations

import re

from tests.system.harness import PROMPT, BootedPc
from tests.system.test_processes import type_while_busy

MS = 1_000_000


def test_top_shows_a_spinning_process_and_leaves_with_q(tmp_path) -> None:  # noqa: ANN001
    tk = BootedPc(tmp_path).boot()
    tk.command("spin &")
    pid = re.search(r"\[(\d+)\] spin", tk.text()).group(1)
    before = tk.lines()
    type_while_busy(tk, "top\n")  # spin has the CPU: keys go straight to the keyboard
    tk.run_to_stop(1200 * MS)  # two refreshes
    lines = tk.lines()
    assert lines[0].startswith("top - up ") and "q to leave" in lines[0]
    row = next(line.split() for line in lines if line.split()[:1] == [pid])
    assert row[-1] == "spin" and float(row[-2]) > 50.0  # spin has most of the CPU
    idle = next(line.split() for line in lines if line.split()[-1:] == ["[idle]"])
    assert idle[2] == "I" and float(idle[-2]) < 50.0  # PID 0 is the idle loop, not running
    assert re.match(r"cpu: \d+\.\d% processes, \d+\.\d% idle$", lines[1])
    type_while_busy(tk, "q")
    tk.run_to_stop(100 * MS)
    after = [line for line in tk.lines() if line]
    assert (
        after[: len([line for line in before if line]) - 1]
        == [line for line in before if line][:-1]
    )
    assert after[-2:] == ["tk:/> top", PROMPT.rstrip()]  # the screen is back, then the prompt
    assert not any(line.startswith("top - up") for line in after)


def test_top_of_an_idle_machine_shows_it_idle(tmp_path) -> None:  # noqa: ANN001
    tk = BootedPc(tmp_path).boot()
    tk.type("top\n")
    tk.run_to_stop(1200 * MS)
    lines = tk.lines()
    assert ", 0 processes, " in lines[0]
    assert lines[1] == "cpu: 0.0% processes, 100.0% idle"
    assert "[kernel]" not in tk.text()
    tk.type("q")
    tk.run_to_stop(100 * MS)
