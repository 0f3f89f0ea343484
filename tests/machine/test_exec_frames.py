"""Programs exec'd over and over into frames other programs ran in, on the booted OS.

The kernel loads a program through `GuestMemory.write`, which (tradekernel.emu.memory) drops the
CPU's translations of the frames it fills. The kernel's own `code_changed` calls are switched
off here, so what is tested is that the memory layer alone keeps the CPU from running code it
translated from a frame's previous contents.
"""

from __future__ import annotations

from tests.system.harness import SECOND, BootedPc
from tradekernel.emu.machine import Machine

ROUNDS = 3
RUNS = (
    ("hello", ["hello, world"]),
    ("exectest 8", ["exectest: 8 spawns done"]),
    ("exectest", ["exectest: execve(/bin/nosuch) = -2", "hello, world", "exectest: child exit 0"]),
)


def output_of(tk: BootedPc, line: str) -> list[str]:
    tk.command("clear")
    tk.command(line, 20 * SECOND)
    lines = [row for row in tk.lines() if row]
    return lines[1:-1]  # between the command's echo and the next prompt


def test_exec_into_recycled_frames_runs_each_new_program(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Machine, "code_changed", lambda self, address, size: None)
    tk = BootedPc(tmp_path).boot()
    for _ in range(ROUNDS):
        for line, expected in RUNS:
            assert output_of(tk, line) == expected, line
