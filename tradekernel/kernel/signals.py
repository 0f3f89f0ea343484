"""Signals: Linux i386 numbers and semantics, from generation to the handler's frame and back.

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
"""

from __future__ import annotations

import errno as E
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tradekernel.kernel.paging import PagingError, UserMemoryFault, copy_from_user, copy_to_user
from tradekernel.kernel.trapframe import TrapFrame

if TYPE_CHECKING:
    from tradekernel.kernel.process import Process, ProcessManager

NSIG = 64
(SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1, SIGSEGV,
 SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN,
 SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS) = range(
    1, 32
)  # fmt: skip
SIGRTMIN = 32
SIGNAL_NAMES = {
    "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP,
    "ABRT": SIGABRT, "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1,
    "SEGV": SIGSEGV, "USR2": SIGUSR2, "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM,
    "STKFLT": SIGSTKFLT, "CHLD": SIGCHLD, "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP,
    "TTIN": SIGTTIN, "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU, "XFSZ": SIGXFSZ,
    "VTALRM": SIGVTALRM, "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO, "PWR": SIGPWR,
    "SYS": SIGSYS,
}  # fmt: skip
# What strsignal says (lower case: the kernel's report is "name[pid]: terminated").
SIGNAL_TEXT = {
    SIGHUP: "hangup", SIGINT: "interrupt", SIGQUIT: "quit", SIGILL: "illegal instruction",
    SIGTRAP: "trace/breakpoint trap", SIGABRT: "aborted", SIGBUS: "bus error",
    SIGFPE: "floating point exception", SIGKILL: "killed", SIGUSR1: "user defined signal 1",
    SIGSEGV: "segmentation fault", SIGUSR2: "user defined signal 2", SIGPIPE: "broken pipe",
    SIGALRM: "alarm clock", SIGTERM: "terminated", SIGSTKFLT: "stack fault",
    SIGCHLD: "child exited", SIGCONT: "continued", SIGSTOP: "stopped (signal)",
    SIGTSTP: "stopped", SIGTTIN: "stopped (tty input)", SIGTTOU: "stopped (tty output)",
    SIGURG: "urgent I/O condition", SIGXCPU: "CPU time limit exceeded",
    SIGXFSZ: "file size limit exceeded", SIGVTALRM: "virtual timer expired",
    SIGPROF: "profiling timer expired", SIGWINCH: "window changed", SIGIO: "I/O possible",
    SIGPWR: "power failure", SIGSYS: "bad system call",
}  # fmt: skip
IGNORED_BY_DEFAULT = frozenset({SIGCHLD, SIGURG, SIGWINCH, SIGCONT})  # SIGCONT still continues
STOP_SIGNALS = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})
UNCATCHABLE = frozenset({SIGKILL, SIGSTOP})

SIG_DFL, SIG_IGN = 0, 1
SA_NOCLDSTOP, SA_NOCLDWAIT, SA_SIGINFO, SA_RESTORER, SA_RESTART = 1, 2, 4, 0x0400_0000, 0x1000_0000
SA_NODEFER, SA_RESETHAND = 0x4000_0000, 0x8000_0000
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SI_USER, SI_KERNEL, SI_TKILL = 0, 0x80, -6
CLD_EXITED, CLD_KILLED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 5, 6
SEGV_MAPERR, SEGV_ACCERR, FPE_INTDIV, ILL_ILLOPN = 1, 2, 1, 2
PAGE_FAULT, DIVIDE_ERROR, INVALID_OPCODE = 14, 0, 6
SS_DISABLE = 2
ERESTARTSYS = 512  # internal: "restart the call if the handler allows", never seen by a program
SIGSET_SIZE = 8
SIGACTION = struct.Struct("<IIIQ")  # the kernel's i386 struct sigaction: handler, flags,
# restorer, mask
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))
ALL_SIGNALS = (1 << NSIG) - 1

# The i386 frames (arch/x86/include/asm/sigframe.h), offsets from the frame's start.
SIGCONTEXT = struct.Struct("<22I")  # gs fs es ds edi esi ebp esp ebx edx ecx eax trapno err
# eip cs eflags esp_at_signal ss fpstate oldmask cr2
FPSTATE_SIZE = 624
SIGFRAME_SC = 8
SIGFRAME_EXTRAMASK = SIGFRAME_SC + SIGCONTEXT.size + FPSTATE_SIZE  # 720
SIGFRAME_RETCODE = SIGFRAME_EXTRAMASK + 4
SIGFRAME_SIZE = SIGFRAME_RETCODE + 8  # 732
SIGINFO_SIZE = 128
RT_INFO = 16
RT_UC = RT_INFO + SIGINFO_SIZE  # 144: uc_flags, uc_link, uc_stack (sp, flags, size)
RT_MCONTEXT = RT_UC + 20  # 164
RT_SIGMASK = RT_MCONTEXT + SIGCONTEXT.size  # 252
RT_RETCODE = RT_SIGMASK + SIGSET_SIZE  # 260
RT_SIGFRAME_SIZE = RT_RETCODE + 8  # 268
SIGRETURN, RT_SIGRETURN = 119, 173
RETCODE = b"\x58\xb8" + struct.pack("<I", SIGRETURN) + b"\xcd\x80"  # popl %eax; movl; int
RT_RETCODE_BYTES = b"\xb8" + struct.pack("<I", RT_SIGRETURN) + b"\xcd\x80\x00"

USER_CODE, USER_DATA = 0x1B, 0x23
FLAG_TF, FLAG_DF, FLAG_RF = 0x100, 0x400, 0x1_0000
# The flags sigreturn takes from the frame (Linux's FIX_EFLAGS): the rest stay the kernel's.
FIX_EFLAGS = 0x4_0000 | 0x800 | FLAG_DF | FLAG_TF | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | FLAG_RF
SEGMENT_FIELDS = ("gs", "fs", "es", "ds")
PUSHED_FIELDS = ("edi", "esi", "ebp", "user_esp", "ebx", "edx", "ecx", "eax")


def signal_name(signal: int) -> str:
    """The name without SIG ("TERM", "RTMIN+3"), or the number for anything else."""
    for name, number in SIGNAL_NAMES.items():
        if number == signal:
            return name
    if SIGRTMIN <= signal <= NSIG:
        return "RTMIN" if signal == SIGRTMIN else f"RTMIN+{signal - SIGRTMIN}"
    return str(signal)


def parse_signal(word: str) -> int | None:
    """A signal from "9", "KILL", "SIGKILL", "sigterm" or "RTMIN+2"; None if it is none."""
    word = word.upper().removeprefix("SIG")
    if word.isdigit():
        number = int(word)
        return number if 1 <= number <= NSIG else None
    if word.startswith("RTMIN"):
        offset = word[5:].removeprefix("+")
        if not offset or offset.isdigit() and int(offset) <= NSIG - SIGRTMIN:
            return SIGRTMIN + int(offset or 0)
        return None
    return SIGNAL_NAMES.get(word)


def signal_text(signal: int) -> str:
    if signal >= SIGRTMIN:
        return f"real-time signal {signal - SIGRTMIN}"
    return SIGNAL_TEXT.get(signal, f"signal {signal}")


def bit(signal: int) -> int:
    return 1 << (signal - 1)


def siginfo(signal: int, code: int, *fields: int) -> bytes:
    """A 128-byte siginfo_t: si_signo, si_errno (0), si_code, then the union's words."""
    return struct.pack(f"<iii{len(fields)}I", signal, 0, code, *fields).ljust(SIGINFO_SIZE, b"\0")


@dataclass(frozen=True)
class Action:
    """A disposition: sa_handler (SIG_DFL, SIG_IGN or an address), sa_flags, sa_restorer,
    sa_mask."""

    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0


DEFAULT = Action()


@dataclass
class SignalState:
    actions: dict[int, Action] = field(default_factory=dict)  # only the non-default ones
    blocked: int = 0
    pending: dict[int, bytes] = field(default_factory=dict)  # signal -> its siginfo
    saved_mask: int | None = None  # rt_sigsuspend's caller mask, back once a handler runs
    cancel: Callable[[], int] | None = None  # how the current sleep ends if a signal comes
    restart: int | None = None  # the call number of a sleep ended with ERESTARTSYS
    alarm: tuple[int, int] | None = None  # (deadline ns, token) of alarm()'s SIGALRM
    alarm_token: int = 0

    def action(self, signal: int) -> Action:
        return self.actions.get(signal, DEFAULT)

    def ignores(self, signal: int) -> bool:
        handler = self.action(signal).handler
        return handler == SIG_IGN or handler == SIG_DFL and signal in IGNORED_BY_DEFAULT

    def stops(self, signal: int) -> bool:
        """Whether `signal`'s action is to stop the process (a stop signal left at SIG_DFL)."""
        return signal in STOP_SIGNALS and self.action(signal).handler == SIG_DFL

    def reaps_children(self) -> bool:
        """SIGCHLD ignored or SA_NOCLDWAIT: dead children leave no zombie to wait for."""
        action = self.action(SIGCHLD)
        return action.handler == SIG_IGN or bool(action.flags & SA_NOCLDWAIT)

    def deliverable(self) -> int | None:
        """The lowest pending signal not blocked."""
        return min((s for s in self.pending if not self.blocked & bit(s)), default=None)

    def forked(self) -> SignalState:
        """A fork child's: the same dispositions and mask, nothing pending, no alarm."""
        return SignalState(dict(self.actions), self.blocked)

    def exec_reset(self) -> None:
        """execve: handlers go back to SIG_DFL (ignored signals stay ignored), flags go."""
        self.actions = {s: Action(SIG_IGN) for s, a in self.actions.items() if a.handler == SIG_IGN}


class BadFrame(Exception):
    """A sigreturn frame that cannot be restored (unreadable, or a forbidden selector)."""


def pack_sigcontext(frame: TrapFrame, mask: int) -> bytes:
    """The interrupted registers as `struct sigcontext` (fpstate 0: none saved)."""
    esp = frame.user_esp
    return SIGCONTEXT.pack(
        frame.gs, frame.fs, frame.es, frame.ds, frame.edi, frame.esi, frame.ebp, esp, frame.ebx,
        frame.edx, frame.ecx, frame.eax, frame.vector, frame.error_code, frame.eip, frame.cs,
        frame.eflags, esp, frame.user_ss, 0, mask & 0xFFFF_FFFF, frame.cr2,
    )  # fmt: skip


def _selector(value: int, index: int, null_allowed: bool) -> int:
    value &= 0xFFFF
    if value & 0xFFFC == index & 0xFFFC:
        return index
    if null_allowed and value & 0xFFFC == 0:
        return 0
    raise BadFrame(f"selector {value:#x}")


def restore_sigcontext(frame: TrapFrame, data: bytes) -> int:
    """Put the registers of a `struct sigcontext` back in the trap frame; returns EAX.
    Selectors must be the user ones (fs and gs may be null); BadFrame otherwise, with the
    frame untouched."""
    values = SIGCONTEXT.unpack(data)
    (gs, fs, es, ds, edi, esi, ebp, esp, ebx, edx, ecx, eax, _trapno, _err, eip, cs, eflags,
     _esp_at_signal, ss, _fpstate, _oldmask, _cr2) = values  # fmt: skip
    segments = (
        _selector(gs, USER_DATA, True), _selector(fs, USER_DATA, True),
        _selector(es, USER_DATA, False), _selector(ds, USER_DATA, False),
    )  # fmt: skip
    cs, ss = _selector(cs, USER_CODE, False), _selector(ss, USER_DATA, False)
    for name, value in zip(SEGMENT_FIELDS, segments, strict=True):
        frame.set(name, value)
    for name, value in zip(PUSHED_FIELDS, (edi, esi, ebp, esp, ebx, edx, ecx, eax), strict=True):
        frame.set(name, value)
    frame.set("eip", eip)
    frame.set("cs", cs)
    frame.set("user_ss", ss)
    frame.set("eflags", frame.eflags & ~FIX_EFLAGS | eflags & FIX_EFLAGS)
    return eax


def frame_address(user_esp: int, size: int) -> int:
    """Where a frame of `size` bytes goes below `user_esp`: aligned so that ESP + 4 is a
    multiple of 16 at the handler's first instruction, as after a `call` (the i386 ABI)."""
    return ((user_esp - size + 4) & ~15) - 4


def build_sigframe(address: int, signal: int, action: Action, context: bytes, mask: int) -> bytes:
    """`struct sigframe` at `address`: for a handler without SA_SIGINFO."""
    pretcode = action.restorer if action.flags & SA_RESTORER else address + SIGFRAME_RETCODE
    return (
        struct.pack("<Ii", pretcode, signal) + context + bytes(FPSTATE_SIZE)
        + struct.pack("<I", mask >> 32) + RETCODE
    )  # fmt: skip


def build_rt_sigframe(address: int, signal: int, action: Action, context: bytes, mask: int,
                      info: bytes) -> bytes:  # fmt: skip
    """`struct rt_sigframe` at `address`: for an SA_SIGINFO handler (sig, info, ucontext)."""
    pretcode = action.restorer if action.flags & SA_RESTORER else address + RT_RETCODE
    ucontext = struct.pack("<IIIiI", 0, 0, 0, SS_DISABLE, 0) + context + struct.pack("<Q", mask)
    head = struct.pack("<IiII", pretcode, signal, address + RT_INFO, address + RT_UC)
    return head + info + ucontext + RT_RETCODE_BYTES


class Signals:
    """The kernel service: sending, interrupting sleeps, delivering, and the system calls."""

    def __init__(self, manager: ProcessManager) -> None:
        self.manager = manager
        self.memory = manager.memory
        self.kernel = manager.kernel
        # A child of the kernel (PID 0: the shell's jobs) ended, stopped or continued: the
        # shell's SIGCHLD.
        self.kernel_child_changed: Callable[[Process], None] = lambda child: None

    # ---- generation -----------------------------------------------------------------------
    def send(self, target: Process, signal: int, info: bytes | None = None) -> None:
        """Generate `signal` for `target` (see the module docstring for what happens)."""
        from tradekernel.kernel.process import State

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
        from tradekernel.kernel.process import State

        if process.stopped:
            return
        process.stopped = signal
        if process.runnable:
            self.manager.scheduler.remove(process)
            process.state = State.STOPPED
        elif self.manager.reads_tty(process):
            self._interrupt(process)  # the wake-up finds it stopped; the read restarts later
        process.stop_report, process.continued_report = signal, False
        self._tell_parent(process, CLD_STOPPED, signal)
        self.manager.process_stopped(process)

    def _continue(self, process: Process) -> None:
        """SIGCONT: pending stops are dropped and a stopped process runs again."""
        from tradekernel.kernel.process import State

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
        from tradekernel.kernel.process import State

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
        return self.send_to(process, [target] if target and tid == tgid else [], signal, SI_TKILL)

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
            eax = restore_sigcontext(frame, context)
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
