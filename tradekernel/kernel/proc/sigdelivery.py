"""Signals as a kernel service: generation, interrupted sleeps, delivery, and the system calls.

Each process has a SignalState: dispositions (SIG_DFL, SIG_IGN or a handler with sa_flags,
sa_mask and sa_restorer), the blocked mask and the pending set (one siginfo per standard
signal: a second one while the first is pending is merged, as Linux does for signals < 32).

Generation (`send`): SIGKILL, and any unblocked signal whose default action is to terminate,
ends the process at once (Linux wakes it and it dies on its way out; nothing runs in between
here either). A signal ignored by disposition is discarded unless blocked. Anything else
becomes pending, and a process asleep in an interruptible call is woken: the sleep's `cancel`
(given to ProcessManager.block) undoes what the call was waiting for and says what it returns,
-ERESTARTSYS for a call that may be restarted (read, write, wait4: restarted when the handler
has SA_RESTART, -EINTR otherwise) or -EINTR for one that never is (nanosleep, pause).

Delivery (`deliver`) runs on every way out of the kernel into ring 3 (ProcessManager.leave):
each pending unblocked signal, lowest number first, is ignored, kills, or gets a handler frame
pushed on the user stack; several frames may nest, the last one built runs first. The frame is
Linux's: `struct sigframe` (pretcode, sig, sigcontext, an unused 624-byte fpstate, the mask's
high word, an 8-byte retcode) for plain handlers, `struct rt_sigframe` (pretcode, sig, pinfo,
puc, siginfo, ucontext, retcode) with SA_SIGINFO. pretcode is sa_restorer with SA_RESTORER, or
the retcode trampoline in the frame itself (`popl %eax; movl $119, %eax; int $0x80`, or
`movl $173, %eax; int $0x80`), as Linux did before the vDSO. No FPU state is saved (the
sigcontext's fpstate pointer is 0, Linux's "no FPU context"): a handler must not disturb the
x87/SSE registers of the code it interrupted. sigreturn/rt_sigreturn read the frame back,
check every selector (an `iret` with a bad one would fault in the kernel), and restore the
registers, the arithmetic flags and the mask; a frame that cannot be read or is invalid kills
the process with SIGSEGV.

A process that ignores SIGCHLD (SIG_IGN, or SA_NOCLDWAIT) leaves no zombies: its children are
reaped as they die, and a wait4 for them fails with ECHILD once none is left (POSIX.1-2001).

Stopping: the default action of SIGSTOP, SIGTSTP, SIGTTIN and SIGTTOU takes the process off the
CPU (Process.stopped) until a SIGCONT, which continues it whatever its mask and disposition say
and discards pending stop signals (as a stop signal discards a pending SIGCONT). A sleeping
process stays asleep and its wake-up finds it stopped, so nanosleep, pause and wait4 go on as
if nothing happened; only a tty read is cancelled (the terminal goes back to the shell) and
restarted at SIGCONT. Signals other than SIGKILL and fatal defaults wait for the SIGCONT. The
parent hears of both through SIGCHLD (CLD_STOPPED, CLD_CONTINUED; not with SA_NOCLDSTOP) and
wait4's WUNTRACED and WCONTINUED.

Not here: sigaltstack, queued real-time signals, core dumps, orphaned process groups (the
shell, PID 0, is every group's parent, so none ever is one). Every process runs as root, so no
send is ever EPERM.

The numbers, the per-process state and the frame layouts are proc/signals.py.

Imports: proc (signals, the process record), fs.vfs (ERESTARTSYS), mm (user memory), arch.
"""

from __future__ import annotations

import errno as E
import struct
from collections.abc import Callable

from tradekernel.kernel.arch.trapframe import TrapFrame
from tradekernel.kernel.fs.vfs import ERESTARTSYS
from tradekernel.kernel.mm.paging import PagingError, UserMemoryFault, copy_from_user, copy_to_user
from tradekernel.kernel.proc.signals import (
    CLD_CONTINUED,
    CLD_EXITED,
    CLD_KILLED,
    CLD_STOPPED,
    DEFAULT,
    DIVIDE_ERROR,
    FLAG_DF,
    FLAG_RF,
    FLAG_TF,
    FPE_INTDIV,
    IGNORED_BY_DEFAULT,
    ILL_ILLOPN,
    INVALID_OPCODE,
    NSIG,
    PAGE_FAULT,
    RT_INFO,
    RT_MCONTEXT,
    RT_RETCODE,
    RT_SIGFRAME_SIZE,
    RT_SIGMASK,
    RT_UC,
    SA_NOCLDSTOP,
    SA_NODEFER,
    SA_RESETHAND,
    SA_RESTART,
    SA_RESTORER,
    SA_SIGINFO,
    SEGV_ACCERR,
    SEGV_MAPERR,
    SI_KERNEL,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIG_DFL,
    SIG_IGN,
    SIG_SETMASK,
    SIG_UNBLOCK,
    SIGACTION,
    SIGALRM,
    SIGCHLD,
    SIGCONT,
    SIGCONTEXT,
    SIGFRAME_EXTRAMASK,
    SIGFRAME_RETCODE,
    SIGFRAME_SC,
    SIGFRAME_SIZE,
    SIGINT,
    SIGKILL,
    SIGPIPE,
    SIGSEGV,
    SIGSET_SIZE,
    STOP_SIGNALS,
    UNBLOCKABLE,
    UNCATCHABLE,
    USER_CODE,
    USER_DATA,
    Action,
    BadFrame,
    SignalState,
    bit,
    build_rt_sigframe,
    build_sigframe,
    frame_address,
    pack_sigcontext,
    restore_sigcontext,
    siginfo,
)
from tradekernel.kernel.proc.task import Process, State, tls_selectors


class Signals:
    """The kernel service: sending, interrupting sleeps, delivering, and the system calls."""

    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager, its owner
        self.manager = manager
        self.memory = manager.memory
        self.kernel = manager.kernel
        # A child of the kernel (PID 0: the shell's jobs) ended, stopped or continued: the
        # shell's SIGCHLD.
        self.kernel_child_changed: Callable[[Process], None] = lambda child: None

    # ---- generation -----------------------------------------------------------------------
    def send(self, target: Process, signal: int, info: bytes | None = None) -> None:
        """Generate `signal` for `target` (see the module docstring for what happens)."""
        if target.state == State.ZOMBIE:
            return
        state = target.signals
        if signal == SIGCONT:
            self._continue(target)
        elif signal in STOP_SIGNALS:
            state.pending.pop(SIGCONT, None)
        blocked = bool(state.blocked & bit(signal))
        if signal == SIGKILL or not blocked and self._fatal(state, signal):
            self.die(target, signal)
            return
        if not blocked and state.ignores(signal):
            return
        if not blocked and state.stops(signal):
            self.stop(target, signal)
            return
        state.pending.setdefault(signal, info or siginfo(signal, SI_KERNEL))
        if not blocked and target.state == State.SLEEPING:
            self._interrupt(target)

    @staticmethod
    def _fatal(state: SignalState, signal: int) -> bool:
        return state.action(signal).handler == SIG_DFL and not (
            signal in IGNORED_BY_DEFAULT or signal in STOP_SIGNALS
        )  # fmt: skip

    def die(self, process: Process, signal: int) -> None:
        """Death by `signal`'s default action. A foreground job's SIGINT (the tty showed ^C)
        and SIGPIPE end quietly, as under bash; anything else prints the report."""
        quiet = signal == SIGPIPE or signal == SIGINT and process.foreground
        self.manager.terminate(process, signal, None if quiet else "")

    def stop(self, process: Process, signal: int) -> None:
        """A stop signal's default action (see the module docstring)."""
        if process.stopped:
            return
        process.stopped = signal
        if process.runnable:
            self.manager.scheduler.remove(process)
            process.state = State.STOPPED
        elif self.manager.terminal.reads_tty(process):
            self._interrupt(process)  # the wake-up finds it stopped; the read restarts later
        process.stop_report, process.continued_report = signal, False
        self._tell_parent(process, CLD_STOPPED, signal)
        self.manager.terminal.process_stopped(process)

    def _continue(self, process: Process) -> None:
        """SIGCONT: pending stops are dropped and a stopped process runs again."""
        for signal in STOP_SIGNALS:
            process.signals.pending.pop(signal, None)
        if not process.stopped:
            return
        process.stopped = 0
        if process.state == State.STOPPED:
            process.state = State.READY
            self.manager.scheduler.enqueue(process)
        process.stop_report, process.continued_report = 0, True
        self._tell_parent(process, CLD_CONTINUED, SIGCONT)

    def restartable(self, process: Process) -> int:
        """A system call of `process` ended in -ERESTARTSYS (a sleep a signal cut short, or a
        call that sent one, as a background tty read's SIGTTIN): it runs again once the
        process goes on, unless a handler without SA_RESTART runs first; then it fails with
        EINTR, which this returns. The trap frame's EAX is still the call number."""
        process.signals.restart = TrapFrame(self.memory, process.frame).eax
        return -E.EINTR

    def went_to_sleep(self, process: Process) -> None:
        """A system call has just put `process` to sleep: a signal that was already pending
        (sent while it was on its way into the call) ends the sleep at once, as Linux checks
        signal_pending() before it schedules away."""
        if process.signals.deliverable() is not None:
            self._interrupt(process)

    def _interrupt(self, process: Process) -> None:
        """End the process's sleep: a handled signal is pending."""
        state = process.signals
        cancel, state.cancel = state.cancel, None
        result = cancel() if cancel is not None else -E.EINTR
        if result == -ERESTARTSYS:
            result = self.restartable(process)
        self.manager.wake(process, process.wait_token, result)

    def fault(self, process: Process, frame: TrapFrame, signal: int, report: str) -> None:
        """A CPU exception's signal, as Linux's force_sig: an installed, unblocked handler
        gets it (returning re-runs the faulting instruction); otherwise the process dies with
        `report`, whatever its mask or SIG_IGN say."""
        state = process.signals
        if state.blocked & bit(signal) or state.action(signal).handler in (SIG_DFL, SIG_IGN):
            self.kernel.platform.log(report)
            self.manager.terminate(process, signal, report)
            return
        if frame.vector == PAGE_FAULT:
            code = SEGV_ACCERR if frame.error_code & 1 else SEGV_MAPERR
            address = frame.cr2
        else:
            code = {DIVIDE_ERROR: FPE_INTDIV, INVALID_OPCODE: ILL_ILLOPN}.get(
                frame.vector, SI_KERNEL
            )
            address = frame.eip
        state.pending[signal] = siginfo(signal, code, address)

    def user_signal(self, sender: Process | None, signal: int, code: int = SI_USER) -> bytes:
        """The siginfo of a kill/tkill from `sender` (None: the kernel, PID 0)."""
        return siginfo(signal, code, sender.pid if sender else 0, 0)

    def child_exited(self, child: Process) -> None:
        """SIGCHLD for the parent of a child that just died."""
        status = child.exit_status
        code, value = (CLD_EXITED, status >> 8) if status & 0x7F == 0 else (CLD_KILLED, status)
        self._tell_parent(child, code, value)

    def _tell_parent(self, child: Process, code: int, value: int) -> None:
        """SIGCHLD with si_code `code` and si_status `value`; a stop or a continue also wakes
        a parent in wait4 (a death does that on its own, in ProcessManager._finish)."""
        if child.ppid == 0:
            self.kernel_child_changed(child)
            return
        parent = self.manager.table.get(child.ppid)
        if parent is None:
            return
        if code in (CLD_STOPPED, CLD_CONTINUED):
            self.manager.child_changed(parent, child)
            if parent.signals.action(SIGCHLD).flags & SA_NOCLDSTOP:
                return
        self.send(parent, SIGCHLD, siginfo(SIGCHLD, code, child.pid, 0, value, 0, 0))

    # ---- delivery ---------------------------------------------------------------------------
    def deliver(self, process: Process) -> bool:
        """On the way into `process`: act on its pending unblocked signals. False if one of
        them killed or stopped it."""
        state = process.signals
        if not state.pending and state.restart is None:
            return True
        frame = TrapFrame(self.memory, process.frame)
        if not frame.from_user:
            # An IRQ taken on the stub's first instruction of an `int $0x80` (a trap gate
            # leaves IF set): the process resumes in ring 0 and the system call's own exit,
            # a moment later, is the way back to ring 3.
            return True
        while (signal := state.deliverable()) is not None:
            info = state.pending.pop(signal)
            action = state.action(signal)
            if state.ignores(signal):
                continue
            if state.stops(signal):
                self.stop(process, signal)  # the rest stay pending until it goes on
                return False
            if action.handler == SIG_DFL:
                self.die(process, signal)
                return False
            if not self._run_handler(process, frame, signal, action, info):
                return False
        if state.restart is not None:  # no handler ran: the interrupted call goes on
            frame.set("eax", state.restart)
            frame.set("eip", frame.eip - 2)
            state.restart = None
        return True

    def _run_handler(self, process: Process, frame: TrapFrame, signal: int, action: Action,
                     info: bytes) -> bool:  # fmt: skip
        state = process.signals
        if state.restart is not None:
            if action.flags & SA_RESTART:
                frame.set("eax", state.restart)
                frame.set("eip", frame.eip - 2)  # back onto the `int $0x80`
            else:
                frame.set("eax", -E.EINTR & 0xFFFF_FFFF)
            state.restart = None
        old_mask = state.blocked if state.saved_mask is None else state.saved_mask
        context = pack_sigcontext(frame, old_mask)
        rt = bool(action.flags & SA_SIGINFO)
        size = RT_SIGFRAME_SIZE if rt else SIGFRAME_SIZE
        address = frame_address(frame.user_esp, size)
        if rt:
            data = build_rt_sigframe(address, signal, action, context, old_mask, info)
        else:
            data = build_sigframe(address, signal, action, context, old_mask)
        try:
            copy_to_user(process.aspace, address, data)
        except (UserMemoryFault, PagingError):
            self.kernel.platform.log(f"{process.name}[{process.pid}]: no room for a signal frame")
            self.die(process, SIGSEGV)  # Linux's force_sigsegv: the stack is unusable
            return False
        if not action.flags & SA_RESTORER:
            retcode = address + (RT_RETCODE if rt else SIGFRAME_RETCODE)
            self._code_written(process, retcode, 8)
        state.saved_mask = None
        frame.set("user_esp", address)
        frame.set("eip", action.handler)
        frame.set("eax", signal)
        frame.set("edx", address + RT_INFO if rt else 0)
        frame.set("ecx", address + RT_UC if rt else 0)
        frame.set("ds", USER_DATA)
        frame.set("es", USER_DATA)
        frame.set("cs", USER_CODE)
        frame.set("user_ss", USER_DATA)
        frame.set("eflags", frame.eflags & ~(FLAG_DF | FLAG_TF | FLAG_RF))
        if not action.flags & SA_NODEFER:
            state.blocked |= bit(signal)
        state.blocked = (state.blocked | action.mask) & ~UNBLOCKABLE
        if action.flags & SA_RESETHAND:
            state.actions.pop(signal, None)
        return True

    def _code_written(self, process: Process, address: int, size: int) -> None:
        """The trampoline is code: drop what the CPU translated from those bytes before."""
        for page_address in {address, address + size - 1}:
            physical = process.aspace.translate(page_address, user=True).physical
            if physical is not None:
                self.kernel.platform.code_changed(physical & ~0xFFF, 0x1000)

    def _bad_frame(self, process: Process, why: str) -> None:
        self.kernel.platform.log(f"{process.name}[{process.pid}]: bad signal frame ({why})")
        self.die(process, SIGSEGV)

    # ---- system calls ---------------------------------------------------------------------
    def sys_kill(self, process: Process, args: tuple[int, ...]) -> int:
        """kill(pid, sig): pid > 0 one process, 0 the caller's group, -1 every process but
        the caller, < -1 the group -pid. Signal 0 only checks that the target exists."""
        pid, signal = _signed(args[0]), args[1]
        if not 0 <= signal <= NSIG:
            return -E.EINVAL
        table = self.manager.table.values()
        if pid > 0:
            targets = [p for p in table if p.pid == pid]
        elif pid == -1:
            targets = [p for p in table if p is not process]
        else:
            targets = self.manager.group(process.pgid if pid == 0 else -pid)
        return self.send_to(process, targets, signal)

    def send_to(self, sender: Process | None, targets: list[Process], signal: int,
                code: int = SI_USER) -> int:  # fmt: skip
        """Send to every live target: 0, or -ESRCH if there is none."""
        targets = [target for target in targets if target.state != State.ZOMBIE]
        if not targets:
            return -E.ESRCH
        for target in targets:
            if signal:
                self.send(target, signal, self.user_signal(sender, signal, code))
        return 0

    def sys_tkill(self, process: Process, args: tuple[int, ...]) -> int:
        """tkill(tid, sig): one thread, and a thread is a process here."""
        return self.sys_tgkill(process, (args[0], args[0], args[1]))

    def sys_tgkill(self, process: Process, args: tuple[int, ...]) -> int:
        tgid, tid, signal = _signed(args[0]), _signed(args[1]), args[2]
        if tgid <= 0 or tid <= 0 or not 0 <= signal <= NSIG:
            return -E.EINVAL
        target = self.manager.table.get(tid)
        return self.send_to(process, [target] if target and target.tgid == tgid else [], signal,
                            SI_TKILL)  # fmt: skip

    def sys_rt_sigaction(self, process: Process, args: tuple[int, ...]) -> int:
        signal, new, old, size = args[0], args[1], args[2], args[3]
        if size != SIGSET_SIZE or not 1 <= signal <= NSIG or new and signal in UNCATCHABLE:
            return -E.EINVAL
        state = process.signals
        if new:
            handler, flags, restorer, mask = SIGACTION.unpack(
                copy_from_user(process.aspace, new, SIGACTION.size)
            )
        if old:
            action = state.action(signal)
            packed = SIGACTION.pack(action.handler, action.flags, action.restorer, action.mask)
            copy_to_user(process.aspace, old, packed)
        if new:
            action = Action(handler, flags, restorer, mask & ~UNBLOCKABLE)
            if action == DEFAULT:
                state.actions.pop(signal, None)
            else:
                state.actions[signal] = action
            if state.ignores(signal):  # POSIX: a pending signal now ignored is discarded
                state.pending.pop(signal, None)
        return 0

    def sys_rt_sigprocmask(self, process: Process, args: tuple[int, ...]) -> int:
        how, new, old, size = args[0], args[1], args[2], args[3]
        if size != SIGSET_SIZE:
            return -E.EINVAL
        state = process.signals
        if new:
            (mask,) = struct.unpack("<Q", copy_from_user(process.aspace, new, SIGSET_SIZE))
            if how not in (SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK):
                return -E.EINVAL
        if old:
            copy_to_user(process.aspace, old, struct.pack("<Q", state.blocked))
        if new:
            blocked = {
                SIG_BLOCK: state.blocked | mask, SIG_UNBLOCK: state.blocked & ~mask,
                SIG_SETMASK: mask,
            }[how]  # fmt: skip
            state.blocked = blocked & ~UNBLOCKABLE
        return 0

    def sys_rt_sigpending(self, process: Process, args: tuple[int, ...]) -> int:
        if args[1] != SIGSET_SIZE:
            return -E.EINVAL
        state = process.signals
        pending = sum(bit(signal) for signal in state.pending) & state.blocked
        copy_to_user(process.aspace, args[0], struct.pack("<Q", pending))
        return 0

    def sys_pause(self, process: Process, args: tuple[int, ...]) -> int | None:
        """Sleep until a signal runs a handler (-EINTR) or kills."""
        self.manager.block(process, cancel=lambda: -E.EINTR)
        return None

    def sys_rt_sigsuspend(self, process: Process, args: tuple[int, ...]) -> int | None:
        """pause() with `mask` blocked meanwhile; the caller's mask is back after the handler."""
        if args[1] != SIGSET_SIZE:
            return -E.EINVAL
        (mask,) = struct.unpack("<Q", copy_from_user(process.aspace, args[0], SIGSET_SIZE))
        state = process.signals
        state.saved_mask = state.blocked
        state.blocked = mask & ~UNBLOCKABLE
        if state.deliverable() is not None:
            return -E.EINTR  # already pending: delivered on this very return
        return self.sys_pause(process, args)

    def sys_sigreturn(self, process: Process, args: tuple[int, ...]) -> int | None:
        """Back from a plain handler: its `ret` popped pretcode and the trampoline popped sig,
        so the sigcontext is at ESP."""
        frame = TrapFrame(self.memory, process.frame)
        base = frame.user_esp - 8
        try:
            context = copy_from_user(process.aspace, base + SIGFRAME_SC, SIGCONTEXT.size)
            extramask = copy_from_user(process.aspace, base + SIGFRAME_EXTRAMASK, 4)
        except (UserMemoryFault, PagingError) as error:
            self._bad_frame(process, str(error))
            return None
        mask = SIGCONTEXT.unpack(context)[20] | struct.unpack("<I", extramask)[0] << 32
        return self._restore(process, frame, context, mask)

    def sys_rt_sigreturn(self, process: Process, args: tuple[int, ...]) -> int | None:
        """Back from an SA_SIGINFO handler: its `ret` popped pretcode."""
        frame = TrapFrame(self.memory, process.frame)
        base = frame.user_esp - 4
        try:
            context = copy_from_user(process.aspace, base + RT_MCONTEXT, SIGCONTEXT.size)
            (mask,) = struct.unpack("<Q", copy_from_user(process.aspace, base + RT_SIGMASK, 8))
        except (UserMemoryFault, PagingError) as error:
            self._bad_frame(process, str(error))
            return None
        return self._restore(process, frame, context, mask)

    def _restore(self, process: Process, frame: TrapFrame, context: bytes,
                 mask: int) -> int | None:  # fmt: skip
        try:
            eax = restore_sigcontext(frame, context, tls_selectors(process))
        except BadFrame as error:
            self._bad_frame(process, str(error))
            return None
        process.signals.blocked = mask & ~UNBLOCKABLE
        process.signals.restart = None
        return eax

    def sys_alarm(self, process: Process, args: tuple[int, ...]) -> int:
        """SIGALRM in `seconds` (0 cancels); returns the seconds left of the previous one."""
        state = process.signals
        now = self.kernel.clock.now_ns()
        left = 0
        if state.alarm is not None:
            left = max(1, -(-(state.alarm[0] - now) // 1_000_000_000))
        state.alarm_token += 1
        state.alarm = None
        if args[0]:
            token = state.alarm_token
            deadline = now + args[0] * 1_000_000_000
            state.alarm = (deadline, token)
            self.kernel.call_at(deadline, lambda: self._alarm_rang(process, token))
        return left

    def _alarm_rang(self, process: Process, token: int) -> None:
        state = process.signals
        if state.alarm is None or state.alarm[1] != token:
            return
        state.alarm = None
        self.send(process, SIGALRM, siginfo(SIGALRM, SI_KERNEL))


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value
