"""The way into a system call: the full path (`int 0x80` through the IDT and the stub's trap
frame) and the machine's trap fast path, which runs a call without either.

Full path: the kernel's INTERRUPT handler (main.py) hands the stub's frame to `system_call`,
which runs the call through the table (proc/syscalls.py); the result goes into the frame's EAX
unless the caller went to sleep (its wake-up writes it) or died. A call that a signal cut short
(-ERESTARTSYS) is restarted or fails with EINTR as sigdelivery.py decides.

Fast path (`fast_system_call`, the machine's trap hook for vector 0x80): a call in
FAST_SYSCALLS (one that can neither block, switch, nor end the process) runs right in the
trap, with no IDT delivery, trap frame or iret; so does sched_yield unless kernel work is
waiting, and when the scheduler then picks another process the switch happens in the trap:
the caller's registers are written as the trap frame the stub would have built on its kernel
stack, and the chosen process's frame is handed to the machine as register writes, with its
CR3 and CR0.TS (ProcessManager.switch_to; the module docstring of proc/process.py tells why).

Trial calls (`add_trials`: the socket data calls and poll/select, registered by the network's
set-up): run in the trap under net.sockfile's `trial()`; one that would sleep raises
WouldSleep before it has done anything and takes the full path from the start, so a receive
that finds data waiting, a send that fits or a poll that finds a descriptor ready costs no IDT
delivery. Not while a signal for the caller waits (the full path's exit delivers it).

Imports: proc (the process manager and the system-call table), fs.vfs (ERESTARTSYS), arch
(the trap frame) and net.sockfile (the trial).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from tradekernel.kernel.arch.gdt import TLS_ENTRIES, selector
from tradekernel.kernel.arch.trapframe import FIELDS, TrapFrame
from tradekernel.kernel.fs.vfs import ERESTARTSYS
from tradekernel.kernel.net.sockfile import trial
from tradekernel.kernel.proc.process import USER_CODE, USER_DATA, ProcessManager
from tradekernel.kernel.proc.syscalls import Syscalls
from tradekernel.kernel.proc.task import Process, State

# Linux i386 calls that never block, switch tasks or end the caller: safe to run in the trap.
FAST_SYSCALLS = frozenset({
    13, 19, 20, 45, 64, 78, 96, 106, 108, 122, 155, 157, 159, 160, 195, 197, 199, 200, 201, 202,
    220, 224, 258, 265, 403,
})  # fmt: skip
SCHED_YIELD = 158  # switches tasks in the trap itself (SyscallEntry.fast_system_call)
EFLAGS_IOPL_VM = 0x23000  # what an `iret` at CPL 3 cannot change
FRAME = struct.Struct(f"<{len(FIELDS)}I")
SAVED_REGISTERS = ("gs", "fs", "es", "ds", "eip", "eflags")  # with the general registers
SYSCALL_VECTOR = 0x80
TLS_SELECTORS = frozenset(selector(entry) for entry in TLS_ENTRIES)


class SyscallEntry:
    """Both ways into the system-call table for the running process."""

    def __init__(self, manager: ProcessManager, syscalls: Syscalls) -> None:
        self.manager = manager
        self.syscalls = syscalls
        self.kernel = manager.kernel
        self.memory = manager.memory
        # number -> which argument tuples may be tried (see the module docstring)
        self._trials: dict[int, Callable[[tuple[int, ...]], bool]] = {}

    def add_trials(self, numbers: Iterable[int],
                   allowed: Callable[[int, tuple[int, ...]], bool]) -> None:
        """Let the trap try calls `numbers` when `allowed(number, args)` says so."""
        for number in numbers:
            self._trials[number] = lambda args, number=number: allowed(number, args)

    def system_call(self, frame: TrapFrame) -> None:
        """int 0x80 from ring 3: run the call; its result goes in EAX unless it blocked."""
        manager = self.manager
        process = manager.current
        if process is None:
            return
        result = self.syscalls.dispatch(process, frame)
        if result == -ERESTARTSYS:
            result = manager.signals.restartable(process)
        if result is not None and process.state != State.ZOMBIE:
            frame.set("eax", result & 0xFFFF_FFFF)
        elif result is None and process.state == State.SLEEPING:
            manager.signals.went_to_sleep(process)

    def fast_system_call(self, registers) -> bool:  # noqa: ANN001 - emu Registers
        """The machine's trap hook for `int 0x80`: a call in FAST_SYSCALLS runs right in the
        trap; so does sched_yield (`_yield_in_trap`) unless kernel work is waiting. Anything
        else answers False and takes the full path."""
        number = registers.read("eax")
        process = self.manager.current
        if process is None:
            return False
        if number in FAST_SYSCALLS:
            try:
                result = self.syscalls.run(process, number, registers.syscall_args())
            except Exception:  # noqa: BLE001 - the full path runs it again and contains it
                return False
            registers.write("eax", (result or 0) & 0xFFFF_FFFF)
            return True
        allowed = self._trials.get(number)
        if allowed is not None:
            return self._try(process, number, registers, allowed)
        if (
            number == SCHED_YIELD
            and not self.kernel.has_deferred_work()
            and not (process.signals.pending or process.signals.restart is not None)
        ):  # a signal for the caller is delivered by the full path's exit
            self._yield_in_trap(process, registers)
            return True
        return False

    def _try(self, process: Process, number: int, registers,  # noqa: ANN001 - emu Registers
             allowed: Callable[[tuple[int, ...]], bool]) -> bool:
        """A trial call (see the module docstring): True if it completed in the trap."""
        if process.signals.pending or process.signals.restart is not None:
            return False
        args = registers.syscall_args()
        if not allowed(args):
            return False
        try:
            with trial():
                result = self.syscalls.run(process, number, args)
        except Exception:  # noqa: BLE001 - WouldSleep, or a failure the full path contains
            self.syscalls.counts[number] -= 1  # the full path runs and counts it
            return False
        if result is None:
            return False  # cannot be: a trial never sleeps
        registers.write("eax", result & 0xFFFF_FFFF)
        return True

    def _yield_in_trap(self, process: Process, registers) -> None:  # noqa: ANN001
        """sched_yield as a paravirtual switch: the scheduler decides in the trap and, for
        another process, the caller's registers go into the trap frame the full path would
        have built on its kernel stack, and the chosen process's frame is loaded into the CPU
        with its CR3, TSS.ESP0 and CR0.TS (see the module docstring)."""
        manager = self.manager
        scheduler = manager.scheduler
        now = self.kernel.clock.now_ns()
        process.cpu_ns += now - manager.last_entry_ns
        scheduler.charge(process, now - manager.last_entry_ns)
        manager.last_entry_ns = now
        manager.release_dead()  # their CR3 was unloaded by the stub's last return
        result = self.syscalls.call(process, SCHED_YIELD, registers.syscall_args())
        registers.write("eax", (result or 0) & 0xFFFF_FFFF)
        yielded, process.yielded = process.yielded, False
        chosen = scheduler.next_task(process, yielded)
        if chosen is process or chosen is None:  # None: cannot be, the caller is runnable
            return
        outgoing = self._save_frame(process, registers)
        while chosen is not process and (  # into its frame
            manager.ptrace.intercept(chosen) or not manager.signals.deliver(chosen)
        ):
            chosen = scheduler.next_task(None) or process  # a signal killed or stopped it
        if chosen is process:
            self._load_frame(process.frame, registers, outgoing)
            return
        process.state = State.READY
        chosen.state = State.RUNNING
        manager.switch_to(chosen, registers)
        self._load_frame(chosen.frame, registers, outgoing)
        manager.context_switches += 1
        self.kernel.program_timer(manager.slice_end(chosen), now)

    def _save_frame(self, process: Process, registers) -> list[int]:  # noqa: ANN001
        """The trap frame of an `int 0x80` from the CPU's registers, where the stub would have
        built it (arch/trapframe.py), as the process's resume point; returns the values of
        SAVED_REGISTERS."""
        gs, fs, es, ds, eip, eflags = live = registers.read_many(SAVED_REGISTERS)
        eax, ecx, edx, ebx, esp, ebp, esi, edi = registers.gprs()
        process.frame = process.kstack_top - FRAME.size
        kernel_esp = process.kstack_top - 7 * 4  # what PUSHAD would have stored
        self.memory.write(process.frame, FRAME.pack(  # in FIELDS order
            0, gs, fs, es, ds, edi, esi, ebp, kernel_esp, ebx, edx, ecx, eax, SYSCALL_VECTOR, 0,
            eip, USER_CODE, eflags, esp, USER_DATA,
        ))  # fmt: skip
        return live

    def _load_frame(self, address: int, registers, live: list[int]) -> None:  # noqa: ANN001
        """What the stub's pops and `iret` do with a ring-3 frame, done by the machine (`live`:
        SAVED_REGISTERS now, so unchanged segment registers are not reloaded)."""
        (_, gs, fs, es, ds, edi, esi, ebp, _, ebx, edx, ecx, eax, _, _, eip, _, eflags, esp,
         _) = FRAME.unpack(self.memory.read(address, FRAME.size))  # fmt: skip
        registers.set_gprs([eax, ecx, edx, ebx, esp, ebp, esi, edi])
        for name, value, now in zip(SAVED_REGISTERS[:4], (gs, fs, es, ds), live, strict=False):
            if value != now or value in TLS_SELECTORS:  # the same TLS selector, a new base
                registers.write(name, value)
        registers.write("eflags", eflags & ~EFLAGS_IOPL_VM | 0x200)
        registers.write("eip", eip)
