"""The scheduler: which ready task runs next, and when the running one is preempted.

Two classes, as in Linux:
* real time (SCHED_FIFO, SCHED_RR), priorities 1..99, strictly above everything normal: the
  highest ready priority runs; within a level tasks run in FIFO order. A FIFO task runs until it
  blocks, yields or a higher priority becomes ready (it then goes back to the HEAD of its level);
  an RR task also loses the CPU after RR_SLICE_TICKS, to the tail of its level.
* normal (SCHED_OTHER): round robin with a time slice that nice sets (`nice_slice_ticks`):
  nice -20 gets 10 ticks, 0 gets 5, 19 gets 1. A normal task preempted by a real-time one keeps
  the rest of its slice and goes to the head of the normal queue.
A tick is TICK_NS of CPU time, a unit of slice length only: slices are kept in nanoseconds and
`charge()` takes the CPU time a task used, measured on the kernel's clock at every entry.

Preemption is tickless: on the way out of every kernel entry the kernel programs the PIT
one-shot (kernel/drivers/timer.py) for the earliest of the running task's slice end and the next
kernel timer, and asks for no interrupt at all when neither exists. A slice end is only
wanted when `slice_can_end()` says another task could take over at it: a lone task, a FIFO
task, or an idle CPU takes no timer interrupt. The kernel asks `next_task(current)` on the way
out of every interrupt, so a task woken by an interrupt (a key, a timer) runs as soon as it
outranks the current one.

The scheduler knows tasks only by their `SchedParams` (`task.sched`) and `runnable` flag; the
running task is never in a queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

TICK_NS = 10_000_000  # the unit of slice lengths (a Linux HZ=100 tick)
RR_SLICE_TICKS = 10  # SCHED_RR's quantum: 100 ms, as Linux's default
NICE_MIN, NICE_MAX = -20, 19
RT_PRIORITY_MIN, RT_PRIORITY_MAX = 1, 99


class Policy(IntEnum):
    """Linux's numbers (sched_setscheduler)."""

    OTHER = 0
    FIFO = 1
    RR = 2


def nice_slice_ticks(nice: int) -> int:
    """The normal class's time slice for a nice value, in ticks (at least one)."""
    return max(1, (20 - nice) // 4)


@dataclass
class SchedParams:
    policy: Policy = Policy.OTHER
    rt_priority: int = 0  # 1..99 for FIFO/RR, 0 for OTHER
    nice: int = 0
    slice_left: int = nice_slice_ticks(0) * TICK_NS  # ns of CPU until the slice ends
    switches: int = 0  # times this task was given the CPU

    @property
    def realtime(self) -> bool:
        return self.policy != Policy.OTHER

    @property
    def rank(self) -> int:
        """Higher runs first: real-time priorities above every normal task."""
        return self.rt_priority if self.realtime else 0

    def refill(self) -> None:
        ticks = RR_SLICE_TICKS if self.policy == Policy.RR else nice_slice_ticks(self.nice)
        self.slice_left = ticks * TICK_NS

    def label(self) -> str:
        """For ps: "RR 50", "FF 10", "TS 0" (class and priority or nice)."""
        if self.policy == Policy.FIFO:
            return f"FF {self.rt_priority}"
        if self.policy == Policy.RR:
            return f"RR {self.rt_priority}"
        return f"TS {self.nice}"


class Task(Protocol):
    sched: SchedParams

    @property
    def runnable(self) -> bool: ...


class SchedulerError(ValueError):
    """A bad policy, priority or nice value (errno EINVAL)."""

    errno = 22


class Scheduler:
    def __init__(self) -> None:
        self._realtime: dict[int, deque[Task]] = {}
        self._normal: deque[Task] = deque()
        self.context_switches = 0

    # ---- queues -------------------------------------------------------------------------
    def _queue(self, task: Task) -> deque[Task]:
        if task.sched.realtime:
            return self._realtime.setdefault(task.sched.rt_priority, deque())
        return self._normal

    def enqueue(self, task: Task, front: bool = False) -> None:
        """Make a ready task eligible (at the tail of its level, or the head)."""
        queue = self._queue(task)
        if task in queue:
            return
        if front:
            queue.appendleft(task)
        else:
            queue.append(task)

    def remove(self, task: Task) -> None:
        """Forget a task that blocked or died (no-op if it was not queued)."""
        queue = self._queue(task)
        if task in queue:
            queue.remove(task)

    def _best_rank(self) -> int | None:
        for priority in sorted(self._realtime, reverse=True):
            if self._realtime[priority]:
                return priority
        return 0 if self._normal else None

    def _pop_best(self) -> Task | None:
        for priority in sorted(self._realtime, reverse=True):
            if self._realtime[priority]:
                return self._realtime[priority].popleft()
        return self._normal.popleft() if self._normal else None

    def ready_count(self) -> int:
        return len(self._normal) + sum(len(queue) for queue in self._realtime.values())

    # ---- decisions ----------------------------------------------------------------------
    def charge(self, current: Task | None, ns: int) -> None:
        """`ns` of CPU used by `current` (None: the kernel's idle context)."""
        if current is not None and current.sched.policy != Policy.FIFO:
            current.sched.slice_left -= ns

    def slice_can_end(self, current: Task) -> bool:
        """Whether the running task's slice end would hand the CPU over (a ready task of its
        rank waits, and it is not FIFO): only then does it need a timer interrupt."""
        if current.sched.policy == Policy.FIFO:
            return False
        best = self._best_rank()
        return best is not None and best >= current.sched.rank

    def next_task(self, current: Task | None, yielded: bool = False) -> Task | None:
        """The task to run now. `current` (if still runnable) keeps the CPU unless a higher
        rank is ready, its slice ran out with an equal rank waiting, or it yielded."""
        best = self._best_rank()
        if current is not None and current.runnable:
            sched = current.sched
            if best is None or best < sched.rank:
                if sched.slice_left <= 0:
                    sched.refill()
                return current
            if best > sched.rank:
                self.enqueue(current, front=True)  # preempted: it keeps its place and slice
            elif yielded or sched.slice_left <= 0 and sched.policy != Policy.FIFO:
                sched.refill()
                self.enqueue(current)
            else:
                return current
        chosen = self._pop_best()
        if chosen is not None:
            if chosen.sched.slice_left <= 0:
                chosen.sched.refill()
            chosen.sched.switches += 1
            if chosen is not current:
                self.context_switches += 1
        return chosen

    # ---- parameters ---------------------------------------------------------------------
    def set_params(
        self, task: Task, policy: int, rt_priority: int, nice: int | None = None
    ) -> None:
        """Change class/priority (and nice); a queued task moves to its new queue's tail."""
        if policy not in tuple(Policy):
            raise SchedulerError(f"unknown scheduling policy {policy}")
        policy = Policy(policy)
        if policy == Policy.OTHER and rt_priority != 0:
            raise SchedulerError("SCHED_OTHER takes priority 0")
        if policy != Policy.OTHER and not RT_PRIORITY_MIN <= rt_priority <= RT_PRIORITY_MAX:
            raise SchedulerError(
                f"real-time priority {rt_priority} outside {RT_PRIORITY_MIN}..{RT_PRIORITY_MAX}"
            )
        queued = task in self._queue(task)
        if queued:
            self.remove(task)
        task.sched.policy = policy
        task.sched.rt_priority = rt_priority
        if nice is not None:
            task.sched.nice = max(NICE_MIN, min(NICE_MAX, nice))
        task.sched.refill()
        if queued:
            self.enqueue(task)
