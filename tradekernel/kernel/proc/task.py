"""The process record: what the kernel keeps about one process, and its run states.

A `Process` is plain data that every part of the process layer reads: its address space
(mm/paging.py), kernel stack, file descriptors (proc/fdtable.py), scheduling
parameters (proc/scheduler.py), signal state (proc/signals.py), memory maps (mm/mmap.py) and
where it stands in its life (`State`). The services that change it live beside it: the process
manager (proc/process.py), signals (proc/signals.py), ptrace (proc/ptrace.py), the system calls
(proc/syscalls.py).

Imports: arch.gdt (the empty TLS descriptor), mm, proc.fdtable, proc.scheduler and
proc.signals (nothing that acts on a process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from tradekernel.kernel.arch.gdt import EMPTY, TLS_ENTRIES, present, selector
from tradekernel.kernel.mm.mmap import ProcessMaps
from tradekernel.kernel.mm.paging import AddressSpace
from tradekernel.kernel.proc.fdtable import FileTable
from tradekernel.kernel.proc.scheduler import SchedParams
from tradekernel.kernel.proc.signals import SignalState

KERNEL_STACK_SIZE = 8192


class State(Enum):
    RUNNING = "running"
    READY = "ready"
    SLEEPING = "sleeping"
    STOPPED = "stopped"  # by a stop signal while it could run (a sleeper stays SLEEPING)
    ZOMBIE = "zombie"


STATE_LETTERS = {State.RUNNING: "R", State.READY: "R", State.SLEEPING: "S", State.STOPPED: "T",
                 State.ZOMBIE: "Z"}  # fmt: skip


@dataclass(eq=False, repr=False)  # it refers back to its threads
class ThreadGroup:
    """The threads of one process (clone with CLONE_THREAD): they share the leader's address
    space, memory maps, descriptors and signal actions; the leader's PID is the process's."""

    leader: Process
    members: list[Process]  # the live threads, the leader included


@dataclass
class Process:
    pid: int
    ppid: int
    name: str
    argv: list[str]
    aspace: AddressSpace
    kstack: int
    brk_start: int
    cwd: str
    fpu: int = 0  # its FXSAVE area (kernel heap, 16-aligned): x87/SSE state while off the FPU
    frame: int = 0  # address of the trap frame to resume from
    state: State = State.READY
    sched: SchedParams = field(default_factory=SchedParams)
    pgid: int = 0  # process group: the job (Ctrl-C, kill -PGID, kill(0, ...))
    signals: SignalState = field(default_factory=SignalState)
    cpu_ns: int = 0
    brk: int = 0
    files: FileTable = field(default_factory=FileTable)
    foreground: bool = False
    exit_status: int = 0
    wait_token: int = 0  # bumped at every block, so a stale wake-up is ignored
    yielded: bool = False
    pending_input: bytes = b""  # the rest of a tty line a read did not take
    waiting: tuple[int, int, int, int] | None = None  # in wait4: token, pid, status, options
    stopped: int = 0  # the stop signal while stopped (asleep or not), else 0
    stop_report: int = 0  # a stop wait4(WUNTRACED) has yet to report: its signal
    continued_report: bool = False  # a SIGCONT wait4(WCONTINUED) has yet to report
    maps: ProcessMaps = field(default_factory=ProcessMaps)  # mmap and shared-memory regions
    tls: tuple[bytes, ...] = (EMPTY,) * len(TLS_ENTRIES)  # its GDT TLS descriptors (arch/gdt.py)
    umask: int = 0o022
    exe: str = ""  # the program's path (/proc/PID/exe)
    clear_child_tid: int = 0  # set_tid_address: zeroed and futex-woken when it exits
    threads: ThreadGroup | None = None  # set once the process has made a thread
    tracer: int | None = None  # ptrace (proc/ptrace.py): the tracer's PID, 0 the kernel's debugger
    trace_stop: int = 0  # the signal of the ptrace stop it is in, else 0
    trace_report: int = 0  # a ptrace stop the tracer's wait4 has yet to see: its signal
    trace_fault: str = ""  # the stop is a CPU exception's: the report if the tracer passes it on
    trace_pass: int = 0  # a signal the tracer passed on: delivered without another stop

    @property
    def tgid(self) -> int:
        """getpid(): the process's PID, which for a thread is its group leader's."""
        return self.threads.leader.pid if self.threads is not None else self.pid

    @property
    def is_thread(self) -> bool:
        """A thread other than its group's leader (never a child to wait for)."""
        return self.threads is not None and self.threads.leader is not self

    @property
    def kstack_top(self) -> int:
        return self.kstack + KERNEL_STACK_SIZE

    @property
    def runnable(self) -> bool:
        return self.state in (State.RUNNING, State.READY)

    @property
    def letter(self) -> str:
        """ps's state: R, S, T (stopped, asleep or not), t (in a ptrace stop) or Z."""
        if self.trace_stop and self.state != State.ZOMBIE:
            return "t"
        return "T" if self.stopped and self.state != State.ZOMBIE else STATE_LETTERS[self.state]


def tls_selectors(process: Process) -> frozenset[int]:
    """The selectors of `process`'s present TLS descriptors: the only ones beside the user
    segments its %fs and %gs may hold when the kernel returns to it (a selector of an absent
    descriptor would fault in the stub's `pop gs`)."""
    return frozenset(
        selector(entry) for entry, d in zip(TLS_ENTRIES, process.tls, strict=True) if present(d)
    )
