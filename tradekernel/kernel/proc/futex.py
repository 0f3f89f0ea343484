"""futex(2): sleeping on a word of user memory until another task wakes that word.

What glibc needs for locks, condition variables, once-only initialisation and thread exit:
FUTEX_WAIT (sleep if the word still holds the expected value, with an optional relative
timeout), FUTEX_WAKE (wake at most N sleepers on the word), and their _BITSET forms (an
absolute timeout, on CLOCK_MONOTONIC or, with FUTEX_CLOCK_REALTIME, the wall clock; a sleeper
is woken only by a wake whose bitset shares a bit with its own). Other operations (requeue,
PI, wake-op) return ENOSYS.

A word is named as Linux names it (`key`): with FUTEX_PRIVATE_FLAG, or on private memory
whatever the flag, by (address space, virtual address), which a copy on write after fork does
not change (the frame under a sleeper may be replaced by the time its wake comes); on a shared
mapping (MAP_SHARED, System V shared memory: PTE_SHARED) without the flag, by the physical
address of the word, the same in every process that maps the page, wherever it maps it.

The check of the word and the sleep are atomic, as Linux requires: nothing else runs
between them (one CPU, the kernel not preempted). A signal ends the wait with EINTR
(ERESTARTSYS for an untimed wait, which SA_RESTART restarts).

Imports: fs.vfs (ERESTARTSYS), mm (user memory), proc (the manager is passed in).
"""

from __future__ import annotations

import errno as E
import struct
from collections import defaultdict
from dataclasses import dataclass

from tradekernel.kernel.fs.vfs import ERESTARTSYS
from tradekernel.kernel.mm.paging import PTE_SHARED, copy_from_user
from tradekernel.kernel.proc.task import Process

FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 0, 1, 9, 10
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
BITSET_MATCH_ANY = 0xFFFF_FFFF
NS = 1_000_000_000


@dataclass(eq=False)
class _Waiter:
    process: Process
    token: int
    bitset: int


FutexKey = tuple[str, int, int] | tuple[str, int]


class Futexes:
    """The wait queues, by futex key."""

    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager
        self.manager = manager
        self.queues: defaultdict[FutexKey, list[_Waiter]] = defaultdict(list)

    @staticmethod
    def key(process: Process, address: int, private: bool) -> FutexKey:
        """The word's name (see the module docstring): ("mm", page directory, virtual
        address) or ("page", physical address); EFAULT if it is not mapped. Threads share
        their address space, hence its page directory; a dead space's number may come back
        for a new one, but its sleepers are dead too and a wake skips them."""
        copy_from_user(process.aspace, address, 4)  # EFAULT if it is not readable
        translation = process.aspace.translate(address)
        if translation.physical is None:
            raise OSError(E.EFAULT, f"futex word {address:#x} is not mapped")
        if not private and translation.pte & PTE_SHARED:
            return ("page", translation.physical)
        return ("mm", process.aspace.cr3, address)

    def sys_futex(self, process: Process, args: tuple[int, ...]) -> int | None:
        address, op, value, timeout, _address2, value3 = args
        command = op & FUTEX_CMD_MASK
        private = bool(op & FUTEX_PRIVATE_FLAG)
        if command in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
            bitset = BITSET_MATCH_ANY if command == FUTEX_WAIT else value3
            absolute = command == FUTEX_WAIT_BITSET
            return self.wait(process, address, value, timeout, bitset, absolute,
                             bool(op & FUTEX_CLOCK_REALTIME), private)  # fmt: skip
        if command in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
            bitset = BITSET_MATCH_ANY if command == FUTEX_WAKE else value3
            return self.wake(process, address, value, bitset, private)
        return -E.ENOSYS

    def wait(self, process: Process, address: int, expected: int, timeout: int, bitset: int,
             absolute: bool, realtime: bool, private: bool = False) -> int | None:  # fmt: skip
        if address % 4:
            return -E.EINVAL
        if not bitset:
            return -E.EINVAL
        deadline = None
        clock = self.manager.kernel.clock
        if timeout:
            seconds, nanoseconds = struct.unpack("<iI", copy_from_user(process.aspace, timeout, 8))
            if seconds < 0 or nanoseconds >= NS:
                return -E.EINVAL
            span = seconds * NS + nanoseconds
            if absolute:  # against the clock the caller named; the kernel's timers are uptime
                now = self.manager.epoch_ns + clock.now_ns() if realtime else clock.uptime_ns()
                span = max(0, span - now)
            deadline = clock.now_ns() + span
        (word,) = struct.unpack("<I", copy_from_user(process.aspace, address, 4))
        if word != expected & 0xFFFF_FFFF:
            return -E.EAGAIN
        key = self.key(process, address, private)
        waiter = _Waiter(process, 0, bitset)

        def cancel() -> int:
            self._forget(key, waiter)
            return -E.EINTR if deadline is not None else -ERESTARTSYS

        waiter.token = self.manager.block(process, cancel=cancel)
        self.queues[key].append(waiter)
        if deadline is not None:

            def expire() -> None:
                if self.manager.asleep(process, waiter.token):
                    self._forget(key, waiter)
                    self.manager.wake(process, waiter.token, -E.ETIMEDOUT)

            self.manager.kernel.call_at(deadline, expire)
        return None

    def wake(self, process: Process, address: int, count: int, bitset: int = BITSET_MATCH_ANY,
             private: bool = False) -> int:  # fmt: skip
        """Wake up to `count` sleepers on the word; how many were woken. The kernel's own wake
        (a thread's exit, CLONE_CHILD_CLEARTID) is a shared one, as Linux's."""
        if address % 4 or not bitset:
            return -E.EINVAL
        return self.wake_key(self.key(process, address, private), count, bitset)

    def wake_key(self, key: FutexKey, count: int, bitset: int = BITSET_MATCH_ANY) -> int:
        queue = self.queues.get(key, [])
        woken = 0
        for waiter in list(queue):
            if woken >= count:
                break
            if not self.manager.asleep(waiter.process, waiter.token):
                queue.remove(waiter)
                continue
            if waiter.bitset & bitset:
                queue.remove(waiter)
                self.manager.wake(waiter.process, waiter.token, 0)
                woken += 1
        if not queue:
            self.queues.pop(key, None)
        return woken

    def _forget(self, key: FutexKey, waiter: _Waiter) -> None:
        queue = self.queues.get(key)
        if queue and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.queues[key]
