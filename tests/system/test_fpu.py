"""x87/SSE state is per process: images/programs/fpu.c forks and both processes keep their own
xmm0-7, x87 stack, MXCSR and FCW across sched_yield switches and timer preemptions, while the
stub switches the state lazily on #NM (images/stub.asm) and fork copies it."""

from __future__ import annotations

import pytest

from tests.system.harness import SECOND, BootedPc


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def test_two_processes_keep_their_fpu_state_across_yields(tk: BootedPc) -> None:
    tk.command("fpu 300", 10 * SECOND)
    lines = tk.lines()
    assert any(line.startswith("fpu: clean start (mxcsr 0x1f80 fcw 0x37f") for line in lines)
    assert "fpu: parent: 300 rounds ok" in lines
    assert "fpu: child: 300 rounds ok" in lines
    assert "fpu: child exit 0" in lines


def test_fpu_state_survives_preemption_mid_computation(tk: BootedPc) -> None:
    """Each round adds in st0 and xmm7 for 60 ms of virtual time (15 million 4-instruction
    loops at 1000 MIPS), longer than a 50 ms slice, so the PIT preempts with the registers in
    use. Starting and ending take 4 switches and the yields at most 4: the rest are
    preemptions."""
    processes = tk.pc.kernel.processes
    before = processes.context_switches
    tk.command("fpu 2 15000000", 20 * SECOND)
    lines = tk.lines()
    assert "fpu: parent: 2 rounds ok" in lines and "fpu: child: 2 rounds ok" in lines
    assert processes.context_switches - before >= 4 + 4 + 2


def test_a_new_program_starts_with_a_clean_fpu_after_another_used_it(tk: BootedPc) -> None:
    tk.command("fpu 10", 10 * SECOND)
    tk.command("fpu 10", 10 * SECOND)
    starts = [line for line in tk.lines() if line.startswith("fpu: ") and "start" in line]
    assert len(starts) == 2 and all("clean start" in line for line in starts)
