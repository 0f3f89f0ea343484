"""futex(2): sleeping on a word of user memory until another task wakes that word.

What glibc needs for locks, condition variables, once-only initialisation and thread exit:
FUTEX_WAIT (sleep if the word still holds the expected value, with an optional relative
timeout), FUTEX_WAKE (wake at most N sleepers on the word), and their _BITSET forms (an
absolute timeout, on CLOCK_MONOTONIC or, with FUTEX_CLOCK_REALTIME, the wall clock; a sleeper
is woken only by a wake whose bitset shares a bit with its own). FUTEX_PRIVATE_FLAG is
accepted: a word is named by its physical address either way (the frame and the offset), so
a futex in MAP_SHARED or System V shared memory works between processes, as Linux's shared
futexes do. Other operations (requeue, PI, wake-op) return ENOSYS.

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
from tradekernel.kernel.mm.paging import copy_from_user
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


class Futexes:
    """The wait queues, keyed by physical address."""

    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager
        self.manager = manager
        self.queues: defaultdict[int, list[_Waiter]] = defaultdict(list)

    @staticmethod
    def key(process: Process, address: int) -> int:
        """The physical address of the word (EFAULT if it is not mapped)."""
        copy_from_user(process.aspace, address, 4)  # EFAULT if it is not readable
        physical = process.aspace.translate(address).physical
        if physical is None:
            raise OSError(E.EFAULT, f"futex word {address:#x} is not mapped")
        return physical

    def sys_futex(self, process: Process, args: tuple[int, ...]) -> int | None:
        address, op, value, timeout, _address2, value3 = args
        command = op & FUTEX_CMD_MASK
        if command in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
            bitset = BITSET_MATCH_ANY if command == FUTEX_WAIT else value3
            absolute = command == FUTEX_WAIT_BITSET
            return self.wait(process, address, value, timeout, bitset, absolute,
                             bool(op & FUTEX_CLOCK_REALTIME))  # fmt: skip
        if command in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
            bitset = BITSET_MATCH_ANY if command == FUTEX_WAKE else value3
            return self.wake(process, address, value, bitset)
        return -E.ENOSYS

    def wait(self, process: Process, address: int, expected: int, timeout: int, bitset: int,
             absolute: bool, realtime: bool) -> int | None:  # fmt: skip
        if address % 4:
            return -E.EINVAL
        if not bitset:
            return -E.EINVAL
        deadline = None
        clock = self.manager.kernel.clock
        if timeout:
            seconds, nanoseconds = struct.unpack(
                "<iI", copy_from_user(process.aspace, timeout, 8)
            )
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
        key = self.key(process, address)
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

    def wake(self, process: Process, address: int, count: int, bitset: int = BITSET_MATCH_ANY
             ) -> int:  # fmt: skip
        """Wake up to `count` sleepers on the word; how many were woken."""
        if address % 4 or not bitset:
            return -E.EINVAL
        return self.wake_key(self.key(process, address), count, bitset)

    def wake_key(self, key: int, count: int, bitset: int = BITSET_MATCH_ANY) -> int:
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

    def _forget(self, key: int, waiter: _Waiter) -> None:
        queue = self.queues.get(key)
        if queue and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.queues[key]

