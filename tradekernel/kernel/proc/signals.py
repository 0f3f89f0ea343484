"""Signals: Linux i386 numbers and names, the per-process signal state, and the frames a
handler runs on.

Each process has a SignalState: dispositions (SIG_DFL, SIG_IGN or a handler with sa_flags,
sa_mask and sa_restorer), the blocked mask and the pending set (one siginfo per standard
signal: a second one while the first is pending is merged, as Linux does for signals < 32).

The frame is Linux's: `struct sigframe` (pretcode, sig, sigcontext, an unused 624-byte fpstate,
the mask's high word, an 8-byte retcode) for plain handlers, `struct rt_sigframe` (pretcode,
sig, pinfo, puc, siginfo, ucontext, retcode) with SA_SIGINFO. pretcode is sa_restorer with
SA_RESTORER, or the retcode trampoline in the frame itself (`popl %eax; movl $119, %eax;
int $0x80`, or `movl $173, %eax; int $0x80`), as Linux did before the vDSO. No FPU state is
saved (the sigcontext's fpstate pointer is 0, Linux's "no FPU context"). `restore_sigcontext`
checks every selector (an `iret` with a bad one would fault in the kernel).

This module is data and pure functions: it holds no process and no kernel, so the process
record (proc/task.py), job control and the shell can name signals without the service. The
service that sends, interrupts sleeps and delivers is proc/sigdelivery.py.

Imports: arch (the trap frame) only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from tradekernel.kernel.arch.trapframe import TrapFrame

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
    if word.isdecimal():
        number = int(word)
        return number if 1 <= number <= NSIG else None
    if word.startswith("RTMIN"):
        offset = word[5:].removeprefix("+")
        if not offset or offset.isdecimal() and int(offset) <= NSIG - SIGRTMIN:
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


def _selector(
    value: int, index: int, null_allowed: bool, tls: frozenset[int] = frozenset()
) -> int:
    value &= 0xFFFF
    if value & 0xFFFC == index & 0xFFFC:
        return index
    if null_allowed and value & 0xFFFC == 0:
        return 0
    if value in tls:
        return value
    raise BadFrame(f"selector {value:#x}")


def restore_sigcontext(frame: TrapFrame, data: bytes, tls: frozenset[int] = frozenset()) -> int:
    """Put the registers of a `struct sigcontext` back in the trap frame; returns EAX.
    Selectors must be the user ones (fs and gs may be null, or one of `tls`: the process's
    present TLS descriptors); BadFrame otherwise, with the frame untouched."""
    values = SIGCONTEXT.unpack(data)
    (gs, fs, es, ds, edi, esi, ebp, esp, ebx, edx, ecx, eax, _trapno, _err, eip, cs, eflags,
     _esp_at_signal, ss, _fpstate, _oldmask, _cr2) = values  # fmt: skip
    segments = (
        _selector(gs, USER_DATA, True, tls), _selector(fs, USER_DATA, True, tls),
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
