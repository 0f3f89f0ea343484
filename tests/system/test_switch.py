"""Context switches: sched_yield between processes switches in the trap itself (registers,
CR3, TSS.ESP0 and CR0.TS set by the machine, kernel/proc/process.py); the full path (IDT, stub,
iret) must resume what the fast path saved and the reverse."""

from __future__ import annotations

from collections import deque

import pytest

from tests.system.harness import PROMPT, SECOND, BootedPc
from tradekernel.ui.keymap import text_to_key_events


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def test_every_yield_between_two_processes_switches_and_returns_zero(tk: BootedPc) -> None:
    processes = tk.pc.kernel.processes
    before = processes.context_switches
    tk.command("sysbench pingpong 500", 10 * SECOND)
    assert "sysbench: 500 calls (0)" in tk.lines()
    assert processes.context_switches - before >= 2 * 500


def test_fast_and_full_path_switches_mix(tk: BootedPc) -> None:
    """Yields switch in the trap to a spinner that IRQ0 preempts and to a reader that blocks
    and wakes through the full path: each resumes what the other path saved. wc counts what
    pingpong printed: one 24-byte line, "sysbench: 300 calls (0)"."""
    tk.command("spin 20 | sysbench pingpong 300 | wc", 20 * SECOND)
    assert "1 4 24" in tk.lines()
    tk.command("sysbench pingpong 200", 10 * SECOND)
    assert "sysbench: 200 calls (0)" in tk.lines()


def test_yield_switches_stay_exact_under_real_time_preemption(tmp_path) -> None:  # noqa: ANN001
    """Real time: the slice timer stops the CPU at random points, also right around a trap
    whose register writes wait for the end of its slice."""
    from tradekernel.disktool import create_os_disk
    from tradekernel.emu.pc import PcConfig
    from tradekernel.ui.session import make_pc

    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    pc = make_pc(PcConfig(disk=disk))
    serial = bytearray()
    pc.machine.channels.listen("com1-tx", serial.extend)
    keys = deque(text_to_key_events("sysbench pingpong 5000\n"))

    def feed() -> bool:
        if not keys or PROMPT.encode() not in serial:
            return False
        pc.machine.channels.send("keyboard-key", keys.popleft())
        return True

    pc.machine.feed_when_idle(feed)
    try:
        pc.machine.run(wall_timeout_s=60, until=lambda: b"calls (" in serial)
    finally:
        pc.machine.close()
    assert "sysbench: 5000 calls (0)" in serial.decode()
