"""Tickless time (kernel/drivers/timer.py, proc/scheduler.py): the PIT is programmed one-shot for
the next slice end or kernel timer, and not at all when neither exists. IRQ0s are counted by the
kernel (`Kernel.timer_interrupts`); time itself comes from the clock, not from them."""

from __future__ import annotations

import re

import pytest

from tests.system.harness import SECOND, BootedPc
from tradekernel.kernel.proc.scheduler import TICK_NS, SchedParams, Scheduler

MS = 1_000_000


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def irq0s_during(tk: BootedPc, action) -> int:  # noqa: ANN001
    before = tk.pc.kernel.timer_interrupts
    action()
    return tk.pc.kernel.timer_interrupts - before


def test_an_idle_machine_takes_no_timer_interrupts_and_keeps_time(tk: BootedPc) -> None:
    assert irq0s_during(tk, lambda: tk.run_to_stop(5 * SECOND)) == 0
    tk.command("uptime")
    match = re.search(r"up 0:00:(\d+)\.\d{3}", tk.text())
    assert match is not None and int(match.group(1)) >= 5


def test_a_lone_spin_takes_no_timer_interrupts(tk: BootedPc) -> None:
    """Nobody could take over at its slice end, so no slice end is armed."""
    assert irq0s_during(tk, lambda: tk.command("spin 20", 10 * SECOND)) == 0
    assert "spin: 20 million iterations done" in tk.lines()


def test_two_spins_are_preempted_at_their_slice_ends(tk: BootedPc) -> None:
    """Each runs ~100 ms of 50 ms slices: the slice ends while both live are IRQ0s."""
    processes = tk.pc.kernel.processes
    before = processes.context_switches
    irq0s = irq0s_during(tk, lambda: tk.command("spin 20 | spin 20", 10 * SECOND))
    assert 2 <= irq0s <= 5
    assert processes.context_switches - before >= 2 + irq0s - 1


def test_nanosleep_wakes_on_time_and_a_sleeper_takes_one_interrupt(tk: BootedPc) -> None:
    irq0s = irq0s_during(tk, lambda: tk.command("nap 30 3"))
    naps = [int(us) for us in re.findall(r"nap: (\d+) us", tk.text())]
    assert len(naps) == 3 and all(30_000 <= us < 30_100 for us in naps)
    assert irq0s == 3


def test_a_long_sleep_takes_an_interrupt_per_longest_one_shot(tk: BootedPc) -> None:
    """The 8254's longest one-shot is 65536 counts, 54.9 ms: 200 ms takes four."""
    irq0s = irq0s_during(tk, lambda: tk.command("nap 200"))
    assert re.search(r"nap: 200\d\d\d us", tk.text())
    assert irq0s == 4


class _Task:
    def __init__(self, policy: int = 0, priority: int = 0) -> None:
        self.sched = SchedParams()
        self.runnable = True
        if policy:
            Scheduler().set_params(self, policy, priority)


def test_which_slice_ends_need_a_timer_interrupt() -> None:
    """Only a slice end that could hand the CPU over: not a lone task's, not a FIFO task's,
    not one above everything ready; and charged CPU time ends the slice."""
    scheduler = Scheduler()
    normal, other = _Task(), _Task()
    assert not scheduler.slice_can_end(normal)
    scheduler.enqueue(other)
    assert scheduler.slice_can_end(normal)
    fifo, rr, rr_peer = _Task(1, 10), _Task(2, 10), _Task(2, 10)
    assert not scheduler.slice_can_end(fifo)  # a normal task is ready, FIFO runs on
    assert not scheduler.slice_can_end(rr)  # only lower ranks are ready
    scheduler.enqueue(rr_peer)
    assert scheduler.slice_can_end(rr)
    scheduler.remove(rr_peer)
    scheduler.charge(normal, 5 * TICK_NS - 1)
    assert scheduler.next_task(normal) is normal
    scheduler.charge(normal, 1)
    assert scheduler.next_task(normal) is other


def test_a_fifo_task_keeps_the_cpu_from_a_normal_one_with_no_timer_armed(tk: BootedPc) -> None:
    """chrt -f on a running spin (the call the chrt command and sched_setscheduler make), then
    a normal spin started behind it: it gets no CPU until the FIFO one is done, and no slice
    end is armed meanwhile, since the FIFO task would run on through it."""
    from tests.system.test_processes import type_while_busy

    processes = tk.pc.kernel.processes
    tk.command("spin 60 &")
    fifo = next(p for p in processes.table.values() if p.name == "spin")
    processes.scheduler.set_params(fifo, 1, 10)
    before = tk.pc.kernel.timer_interrupts
    type_while_busy(tk, "spin 5\n")  # the shell still runs from the keyboard's interrupts
    tk.run_until(lambda: len(processes.table) == 2)
    normal = next(p for p in processes.table.values() if p is not fifo)
    tk.run_until(lambda: fifo.pid not in processes.table, 10 * SECOND)
    assert tk.pc.kernel.timer_interrupts == before
    assert normal.cpu_ns < 1 * MS  # its start-up only, none of the FIFO task's time
    tk.run_until(lambda: normal.pid not in processes.table, 10 * SECOND)
