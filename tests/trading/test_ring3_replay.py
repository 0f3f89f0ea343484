"""How a ring-3 backtest's replay takes turns with the kernel (kernel/trading/program.py): in a
greenlet on the kernel's own thread, switched into from inside the CPU's hooks, with no host
thread. A machine thrown away in the middle of a backtest is garbage with everything of the
backtest's (no thread, no greenlet left, the collector's thresholds put back); the replay's
strategy CPU budget counts its own callbacks, never the kernel's time between its turns; and
a turn asked for from inside strategy code is refused."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import greenlet
import pytest

from tests.system.harness import close_pc
from tests.system.test_trading import booted
from tests.trading.test_program_backtest import Program
from tradekernel.kernel.trading.marketport import OP_SUBSCRIBE
from tradekernel.kernel.trading.strategy import EVENT_BUDGET_NS, CpuWatchdog
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=3000, seed=3))
STEP_NS = 20_000  # machine time per look while the backtest runs (it uses ~1 ms in all)
READ_BEFORE_DROP = 300  # records the program has read when its machine is thrown away


def live_greenlets() -> list[greenlet.greenlet]:
    """Greenlets started and not finished, but this thread's main one."""
    here = greenlet.getcurrent()
    return [g for g in gc.get_objects()
            if isinstance(g, greenlet.greenlet) and g and g is not here]  # fmt: skip


def collect() -> None:
    """Collect until a pass finds nothing: the replay's own objects become garbage only once
    its greenlet, freed in one pass, has unwound."""
    for _ in range(5):
        if not gc.collect():
            return


def burn(cpu_ns: int) -> None:
    """Use `cpu_ns` of this thread's CPU time."""
    end = time.thread_time_ns() + cpu_ns
    while time.thread_time_ns() < end:
        pass


def test_a_machine_thrown_away_mid_backtest_is_garbage_and_leaves_nothing(
        tmp_path: Path) -> None:  # fmt: skip
    tk = booted(tmp_path, {"/data/s.itch": SESSION})
    tk.output("backtest momentum /data/s.itch")  # this thread's strategy watchdog, made once
    threads, thresholds = set(threading.enumerate()), gc.get_threshold()
    greenlets = set(live_greenlets())  # (none, unless an earlier test keeps one)
    running: list[bool] = []  # at each switch into the replay: was the CPU running (a hook)?
    kernel, watched = greenlet.getcurrent(), [tk.machine.cpu]

    def traced(event: str, args: tuple[greenlet.greenlet, greenlet.greenlet]) -> None:
        if event == "switch" and args[1] is not kernel:
            running.append(watched[0].running)

    tk.type("backtest /bin/mdtaker /data/s.itch -- SYNTH 0\n")
    claims = tk.pc.kernel.market.claims
    previous = greenlet.settrace(traced)
    try:
        for _ in range(10_000):
            tk.run_to_stop(STEP_NS)
            if any(link.port is not None and link.port.events >= READ_BEFORE_DROP
                   for link in claims.values()):  # fmt: skip
                break
    finally:
        greenlet.settrace(previous)
        watched.clear()
    (link,) = claims.values()
    (replay,) = set(live_greenlets()) - greenlets  # its only greenlet
    assert not link.finished, "the backtest is under way"
    # every turn so far was switched from inside Unicorn's emu_start (a hook), C frames below
    assert len(running) > READ_BEFORE_DROP // 3 and all(running), running
    assert set(threading.enumerate()) <= threads  # no thread of its own
    dropped = [weakref.ref(x) for x in (replay, link, link.strategy, link.port, tk.pc,
                                        tk.machine)]  # fmt: skip
    del replay, link, claims
    close_pc(tk)
    del tk
    collect()
    assert [ref() for ref in dropped] == [None] * len(dropped)
    assert set(live_greenlets()) <= greenlets
    assert set(threading.enumerate()) <= threads
    assert gc.get_threshold() == thresholds  # run_backtest's cleanup ran as the replay unwound


def test_the_replays_cpu_budget_counts_its_own_callbacks_not_the_kernels_time() -> None:
    program = Program()
    program.command(OP_SUBSCRIBE)
    for _ in range(20):
        program.read()
    # the kernel (the program's emulation) takes longer than a whole event budget on this
    # thread between two turns: none of it is the replay's
    burned = EVENT_BUDGET_NS + 50_000_000
    burn(burned)
    while program.read():
        pass
    result = program.link.result
    assert result is not None and result.strategy_error is None and result.events > 1000
    host = program.link.strategy.link.ctx.host
    assert 0 < host.cpu_ns < burned // 10, host.cpu_ns


def test_a_turn_asked_for_from_inside_strategy_code_is_refused() -> None:
    program = Program()
    program.command(OP_SUBSCRIBE)
    while len(program.port.queue):  # the next read needs a turn: nothing is queued
        program.read()
    dog = CpuWatchdog.for_this_thread()
    with pytest.raises(AssertionError, match="resumed from inside strategy code"):
        dog.run(program.read, EVENT_BUDGET_NS)
    assert not dog.busy
