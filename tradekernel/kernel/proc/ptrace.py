"""ptrace: one process (or the kernel's own debugger) stops, reads and steers another.

Linux i386's system call 26 with its numbers: PTRACE_TRACEME, PEEKTEXT/PEEKDATA/PEEKUSER,
POKETEXT/POKEDATA/POKEUSER, CONT, KILL, SINGLESTEP, GETREGS/SETREGS, ATTACH, DETACH. As the raw
system call (not glibc's wrapper) PEEK* store the word at `data` and return 0. The registers
are `struct user_regs_struct` (17 longs: ebx ecx edx esi edi ebp eax ds es fs gs orig_eax eip
cs eflags esp ss), read from and written to the tracee's trap frame, the ring-3 frame at the
top of its kernel stack that it resumes from (proc/process.py).

Stops (`stop`): a traced process stops instead of
* taking a CPU exception (ProcessManager.user_exception): SIGTRAP for #BP (`int3`; EIP is past
  it, as on Linux) and #DB (the single step, EFLAGS.TF), the fault's signal otherwise (a page
  fault that copy-on-write cannot resolve, #GP, #DE...). Continued with that signal, it gets
  it as the fault would have given it (handler, or death with the usual report); continued
  with 0, the faulting instruction runs again.
* returning from a successful execve: SIGTRAP, at the new program's first instruction.
* having a signal delivered (ProcessManager.leave): the signal is held back and the tracer
  decides; CONT/SINGLESTEP/DETACH with a signal number delivers it, with 0 drops it. SIGKILL
  is never held.
A stop takes the tracee off the CPU; its tracer's wait4 reports it (WIFSTOPPED, WSTOPSIG, with
or without WUNTRACED) and gets SIGCHLD (CLD_TRAPPED). The kernel's debugger (tracer 0,
kernel/shell/debug.py) hears of stops through `kernel_stopped`.

Single step is the CPU's: SINGLESTEP sets EFLAGS.TF in the tracee's frame, the CPU runs one
instruction and raises #DB; CONT clears it. Memory goes through the tracee's page tables:
POKETEXT into read-only code writes it anyway (a private copy when fork shares the frame,
Linux's FOLL_FORCE), and the CPU's translations of the page are dropped so a breakpoint
written into code that already ran is seen.

Not done: PTRACE_SYSCALL and syscall stops (orig_eax reads -1), PTRACE_SETOPTIONS and event
stops, GETFPREGS, threads as tracees of their own (a thread is traced as its own record,
ATTACH takes any PID). ATTACH to a process asleep in a system call stops it when that call
ends (Linux interrupts the sleep). A tracer that is not the parent sees stops, not the death:
the parent reaps. Every process runs as root, so any process may trace any other but
itself, its own tracer or one already traced.

Imports: proc (the record, signals, the trap-frame layout), mm (user memory), arch.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from tradekernel.kernel.arch.trapframe import TrapFrame
from tradekernel.kernel.mm.paging import PagingError, UserMemoryFault, copy_from_user, copy_to_user
from tradekernel.kernel.proc.signals import NSIG, SIGCHLD, SIGKILL, SIGSTOP, SIGTRAP, siginfo
from tradekernel.kernel.proc.task import Process, State, tls_selectors

PTRACE_TRACEME, PTRACE_PEEKTEXT, PTRACE_PEEKDATA, PTRACE_PEEKUSER = 0, 1, 2, 3
PTRACE_POKETEXT, PTRACE_POKEDATA, PTRACE_POKEUSER, PTRACE_CONT = 4, 5, 6, 7
PTRACE_KILL, PTRACE_SINGLESTEP = 8, 9
PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_ATTACH, PTRACE_DETACH = 12, 13, 16, 17
EPERM, ESRCH, EIO, EFAULT = 1, 3, 5, 14
CLD_TRAPPED = 4
# struct user_regs_struct (arch/x86/include/asm/user_32.h), in order, as the debugger names
# them, and the trap-frame field each one is (None: orig_eax, which no frame keeps).
REG_NAMES = (
    "ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs", "orig_eax", "eip",
    "cs", "eflags", "esp", "ss",
)  # fmt: skip
USER_REGS = tuple(
    {"orig_eax": None, "esp": "user_esp", "ss": "user_ss"}.get(name, name) for name in REG_NAMES
)
USER_REGS_STRUCT = struct.Struct(f"<{len(USER_REGS)}I")
FLAG_TF = 0x100
# What a tracer may change in EFLAGS (CF PF AF ZF SF TF DF OF AC): Linux's FLAG_MASK without
# NT and RF, which an `iret` back into ring 3 must not see set by a tracer.
USER_FLAGS = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | FLAG_TF | 0x400 | 0x800 | 0x40000
USER_CODE, USER_DATA = 0x1B, 0x23
WORD = 4


class PtraceError(Exception):
    """A request refused: errno and the reason (the kernel's debugger prints it)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


class Ptrace:
    """The facility: the system call, and the same requests for the kernel's debugger."""

    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager, its owner
        self.manager = manager
        self.memory = manager.memory
        self.kernel = manager.kernel
        # A tracee of the kernel's debugger (tracer 0) stopped or died.
        self.kernel_stopped: Callable[[Process], None] = lambda tracee: None

    # ---- stopping ---------------------------------------------------------------------------
    def stop(self, process: Process, signal: int, fault: str = "") -> None:
        """Take `process` off the CPU in a ptrace stop with `signal` and tell its tracer."""
        process.trace_stop = process.trace_report = signal
        process.trace_fault = fault
        if process.state in (State.RUNNING, State.READY):
            self.manager.scheduler.remove(process)
            process.state = State.STOPPED
        self._tell_tracer(process)

    def _tell_tracer(self, process: Process) -> None:
        if process.tracer == 0:
            self.kernel_stopped(process)
            return
        tracer = self.manager.table.get(process.tracer)
        if tracer is None or tracer.state == State.ZOMBIE:
            return
        self.manager.child_changed(tracer, process)
        info = siginfo(SIGCHLD, CLD_TRAPPED, process.pid, 0, process.trace_stop, 0, 0)
        self.manager.signals.send(tracer, SIGCHLD, info)

    def exception(self, process: Process, frame: TrapFrame, signal: int, report: str) -> bool:
        """A CPU exception in a traced process: a stop (True), or False if not traced."""
        if process.tracer is None:
            return False
        self.stop(process, signal, "" if signal == SIGTRAP else report)
        return True

    def intercept(self, process: Process) -> bool:
        """On the way into `process` (ProcessManager.leave): a traced process with a signal to
        deliver stops with it instead (True). SIGKILL, and a signal its tracer passed on, go
        through."""
        if process.tracer is None:
            return False
        state = process.signals
        signal = state.deliverable()
        if signal is None or signal == SIGKILL:
            return False
        if signal == process.trace_pass:
            return False
        if not TrapFrame(self.memory, process.frame).from_user:
            return False  # the system call's own exit comes first (sigdelivery.py)
        state.pending.pop(signal)
        self.stop(process, signal)
        return True

    def holds_fatal(self, process: Process, signal: int) -> bool:
        """A signal about to kill a traced process (Signals.die, through terminate) is held
        pending for its tracer instead, as Linux does not short-circuit fatal signals to a
        tracee (True); a sleeping tracee wakes to stop. SIGKILL, and the signal the tracer
        passed on, kill (False)."""
        if process.tracer is None or signal == SIGKILL or process.state == State.ZOMBIE:
            return False
        if signal == process.trace_pass:
            process.trace_pass = 0
            return False
        process.signals.pending.setdefault(signal, siginfo(signal, 0x80))
        if process.state == State.SLEEPING:
            self.manager.signals.went_to_sleep(process)  # the sleep ends: a signal is pending
        return True

    def execed(self, process: Process) -> None:
        """A traced process replaced its image: it stops before the first instruction."""
        if process.tracer is not None:
            self.stop(process, SIGTRAP)

    def tracer_died(self, tracer: Process) -> None:
        """Its tracees are let go, each resumed as DETACH would."""
        for tracee in [p for p in self.manager.table.values() if p.tracer == tracer.tgid]:
            self.detach(tracee, 0)

    # ---- the requests -----------------------------------------------------------------------
    def traceme(self, process: Process) -> None:
        if process.tracer is not None:
            raise PtraceError(EPERM, "already traced")
        if process.ppid == 0:
            raise PtraceError(EPERM, "the kernel (PID 0) is the parent: nobody would trace")
        process.tracer = process.ppid

    def attach(self, tracer: int, tracee: Process) -> None:
        """Trace `tracee` (tracer 0: the kernel's debugger); it stops with SIGSTOP."""
        if tracee.tracer is not None:
            raise PtraceError(EPERM, f"process {tracee.pid} is already traced")
        if tracee.tgid == tracer or tracee.state == State.ZOMBIE:
            raise PtraceError(EPERM, f"process {tracee.pid} cannot be traced")
        tracee.tracer = tracer
        frame = TrapFrame(self.memory, tracee.frame)
        if tracee.state == State.SLEEPING or not frame.from_user:
            tracee.signals.pending.setdefault(SIGSTOP, siginfo(SIGSTOP, 0x80))  # stops on its way
        else:
            self.stop(tracee, SIGSTOP)

    def tracee(self, tracer: int, pid: int) -> Process:
        """`pid` as a tracee of `tracer` in a ptrace stop: what every request but KILL needs."""
        process = self.manager.table.get(pid)
        if process is None or process.tracer != tracer or process.state == State.ZOMBIE:
            raise PtraceError(ESRCH, f"no process {pid} traced by {tracer}")
        if not (process.trace_stop or process.stopped) or process.state != State.STOPPED:
            raise PtraceError(ESRCH, f"process {pid} is not stopped")
        return process

    def resume(self, process: Process, signal: int, step: bool = False) -> None:
        """CONT (SINGLESTEP with `step`): run on, delivering `signal` if not 0."""
        if not 0 <= signal < NSIG:
            raise PtraceError(EIO, f"no signal {signal}")
        frame = TrapFrame(self.memory, process.frame)
        eflags = frame.eflags
        frame.set("eflags", eflags | FLAG_TF if step else eflags & ~FLAG_TF)
        fault, process.trace_fault = process.trace_fault, ""
        process.trace_pass = signal
        if signal and fault and signal == process.trace_stop:
            self.manager.signals.fault(process, frame, signal, fault)  # as the fault would
            if process.state == State.ZOMBIE:
                return
        elif signal:
            process.signals.pending.setdefault(signal, siginfo(signal, 0x80))
        process.trace_stop = process.trace_report = 0
        process.stopped = 0  # a job-control stop ends too, as PTRACE_CONT ends Linux's
        process.stop_report = 0
        process.state = State.READY
        self.manager.scheduler.enqueue(process)

    def detach(self, process: Process, signal: int) -> None:
        """Untrace `process`; one in a stop runs on (with `signal`), without a single step."""
        process.tracer = None
        if process.trace_stop and process.state == State.STOPPED:
            self.resume(process, signal)
        else:
            process.trace_stop = process.trace_report = 0

    def kill(self, process: Process) -> None:
        self.manager.terminate(process, SIGKILL, None)

    def peek(self, process: Process, address: int) -> int:
        try:
            return int.from_bytes(copy_from_user(process.aspace, address, WORD), "little")
        except (UserMemoryFault, PagingError) as error:
            raise PtraceError(EIO, f"cannot read {address:#010x}: {error}") from error

    def poke(self, process: Process, address: int, value: int) -> None:
        """Write a word of the tracee's memory, read-only code included (see the module
        docstring); the CPU forgets what it translated from those pages."""
        data = (value & 0xFFFF_FFFF).to_bytes(WORD, "little")
        aspace = process.aspace
        pages = sorted({address & ~0xFFF, (address + WORD - 1) & ~0xFFF})
        forced = []
        try:
            for page in pages:
                if aspace.translate(page, write=True, user=True).reason == "read-only page":
                    aspace.protect(page, writable=True)  # copy-on-write if fork shares it
                    forced.append(page)
            copy_to_user(aspace, address, data)
        except (UserMemoryFault, PagingError) as error:
            raise PtraceError(EIO, f"cannot write {address:#010x}: {error}") from error
        finally:
            for page in forced:
                aspace.protect(page, writable=False)
        for page in pages:
            physical = aspace.translate(page, user=True).physical
            if physical is not None:
                self.kernel.platform.code_changed(physical, 0x1000)

    def get_regs(self, process: Process) -> dict[str, int]:
        """user_regs_struct as names (REG_NAMES) and values."""
        frame = TrapFrame(self.memory, process.frame)
        return {
            shown: 0xFFFF_FFFF if name is None else getattr(frame, name)
            for shown, name in zip(REG_NAMES, USER_REGS, strict=True)
        }

    def set_regs(self, process: Process, values: dict[str, int]) -> None:
        """Write registers by REG_NAMES name; segment values are checked as Linux's putreg
        does, narrowed to what the stub's pops and `iret` load safely; EFLAGS keeps its
        system bits."""
        frame = TrapFrame(self.memory, process.frame)
        allowed = {
            "cs": {USER_CODE}, "user_ss": {USER_DATA}, "ds": {USER_DATA},
            "es": {USER_DATA}, "fs": {0, USER_DATA} | tls_selectors(process),
            "gs": {0, USER_DATA} | tls_selectors(process),
        }  # fmt: skip
        updates = {}
        for shown, value in values.items():
            if shown not in REG_NAMES:
                raise PtraceError(EIO, f"no register {shown}")
            name = USER_REGS[REG_NAMES.index(shown)]
            value &= 0xFFFF_FFFF
            if name is None:
                continue  # orig_eax: no system-call restart here
            if name in allowed and value not in allowed[name]:
                if name in ("cs", "user_ss") and value == getattr(frame, name):
                    continue
                raise PtraceError(EIO, f"{shown} = {value:#x} is not a user selector")
            if name == "eflags":
                value = frame.eflags & ~USER_FLAGS | value & USER_FLAGS
            updates[name] = value
        for name, value in updates.items():
            frame.set(name, value)

    # ---- the system call --------------------------------------------------------------------
    def sys_ptrace(self, process: Process, args: tuple[int, ...]) -> int:
        """ptrace(request, pid, addr, data): 0 or -errno (PEEK*: the word stored at data)."""
        request, pid, address, data = args[0], _signed(args[1]), args[2], args[3]
        try:
            if request == PTRACE_TRACEME:
                self.traceme(process)
                return 0
            if request == PTRACE_ATTACH:
                target = self.manager.table.get(pid)
                if target is None:
                    return -ESRCH
                self.attach(process.tgid, target)
                return 0
            if request == PTRACE_KILL:
                target = self.manager.table.get(pid)
                if target is None or target.tracer != process.tgid:
                    return -ESRCH
                self.kill(target)
                return 0
            tracee = self.tracee(process.tgid, pid)
            return self._request(process, tracee, request, address, data)
        except PtraceError as error:
            return -error.errno
        except UserMemoryFault:
            return -EFAULT

    def _request(self, process: Process, tracee: Process, request: int, address: int,
                 data: int) -> int:  # fmt: skip
        if request in (PTRACE_PEEKTEXT, PTRACE_PEEKDATA, PTRACE_PEEKUSER):
            word = self.peek(tracee, address) if request != PTRACE_PEEKUSER else \
                self._user_word(tracee, address)  # fmt: skip
            copy_to_user(process.aspace, data, word.to_bytes(WORD, "little"))
        elif request in (PTRACE_POKETEXT, PTRACE_POKEDATA):
            self.poke(tracee, address, data)
        elif request == PTRACE_POKEUSER:
            self.set_regs(tracee, {REG_NAMES[self._user_index(address)]: data})
        elif request in (PTRACE_CONT, PTRACE_SINGLESTEP):
            self.resume(tracee, data, step=request == PTRACE_SINGLESTEP)
        elif request == PTRACE_DETACH:
            self.detach(tracee, data)
        elif request == PTRACE_GETREGS:
            regs = self.get_regs(tracee)
            copy_to_user(process.aspace, data, USER_REGS_STRUCT.pack(*regs.values()))
        elif request == PTRACE_SETREGS:
            words = USER_REGS_STRUCT.unpack(copy_from_user(process.aspace, data,
                                                           USER_REGS_STRUCT.size))  # fmt: skip
            self.set_regs(tracee, dict(zip(REG_NAMES, words, strict=True)))
        else:
            return -EIO
        return 0

    @staticmethod
    def _user_index(offset: int) -> int:
        """The register at byte `offset` of struct user (its regs come first)."""
        if offset % WORD or not 0 <= offset < USER_REGS_STRUCT.size:
            raise PtraceError(EIO, f"struct user offset {offset:#x}: not a register")
        return offset // WORD

    def _user_word(self, process: Process, offset: int) -> int:
        return list(self.get_regs(process).values())[self._user_index(offset)]


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value
