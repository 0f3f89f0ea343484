"""Processes: the table, their lives (spawn, run, block, die), and the context switch.

A process (its record: proc/task.py) is an ELF32 program (proc/elf.py; a dynamically linked one
with its interpreter, ld-linux.so.2, loaded beside it and started first) in its own address
space (mm/paging.py), with its thread-local storage descriptor (arch/gdt.py: written into the
GDT at every switch to it, so the stub's `pop gs` or the trap's segment write loads it), an
8 KiB kernel stack from the kernel heap (tag "kstack"), file descriptors 0/1/2 on the console
tty (fs/devfs.py), a brk heap and scheduling parameters (proc/scheduler.py). Its threads
(`clone_thread`) are records of their own that share its address space, memory maps,
descriptors and signal actions (task.py ThreadGroup); a thread's exit ends it alone, the
leader's exit, exit_group or a fatal signal the whole process (Linux lets the other threads
outlive a leader's pthread_exit; here they do not), and only the leader is ever a child to
wait for. PID 0 is the kernel's own context: the entry stub's idle loop and the shell, which
run whenever no process is ready.

How a context switch works with the stub (images/stub.asm)
----------------------------------------------------------
Every interrupt, exception and `int 0x80` (but the trap fast path below, and #NM, which the
stub handles alone) enters the kernel as the INTERRUPT hypercall with the address of the
trap frame the stub pushed (kernel/arch/trapframe.py) on the current kernel stack: the process's
own stack when it came from ring 3 (the CPU took ESP0 from the TSS), the boot stack for the
idle loop. `enter()` records that address as the current context's resume point. The
kernel handles the event, then `leave()` asks the scheduler who runs next and returns THAT
context's saved frame address; for a different process it also writes TSS.ESP0 (its kernel
stack top, for its next trip from ring 3) and asks the stub to load its CR3
(BootInfo.request_cr3); it also programs the one-shot timer for the chosen task's slice
end (scheduler.py). The stub does `mov esp, eax`, loads CR3 (and CR0.TS, below), pops
the frame and `iret`s into the other process. A new process starts from a frame built by
hand on its kernel stack (`_initial_frame`): ring-3 selectors, EIP = entry point, ESP = the
ABI start-up stack, IF set.

The paravirtual fast switch: sched_yield never enters the kernel through the IDT. It runs in
the machine's `int 0x80` trap (proc/trap.py), and when the scheduler picks another
process the switch happens right there: the caller's registers are written as the trap frame
the stub would have built on its kernel stack, and the chosen process's frame is handed to the
machine as register writes with its CR3 and CR0.TS (TSS.ESP0 is guest memory), which the
machine applies when the trap's slice ends. So a process's resume point is always a ring-3
frame at the top of its kernel stack, whichever path left it, and either path resumes it. A
switch costs about 28 us of host CPU this way against about 50 us on the full path (IDT
delivery in Python, the stub, the INTERRUPT hypercall's entry and exit; bench_process.py). It
is not taken while kernel work is deferred (that runs on the full path's exit), and the
kernel's own context (PID 0, ring 0) is only ever resumed by the stub.

x87/SSE state: lazy, with CR0.TS and #NM
-----------------------------------------
Each process has a 512-byte FXSAVE area (kernel heap, tag "fpu"); a new program's is a copy
of the clean image the stub saved at boot (fninit, MXCSR 0x1F80, xmm zero), fork copies the
parent's. The FPU registers belong to one owner at a time (BootInfo.fpu_owner). On the way back
to any task the stub sets CR0.TS unless that task is the owner; the task's first x87/SSE
instruction then raises #NM, and the stub's handler (no kernel entry) FXSAVEs the owner's state,
FXRSTORs the task's and makes it the owner. Lazy rather than eager because most switches
(yielding or blocking integer code, the kernel's own context) never touch the FPU and then cost
no 512-byte save and restore, and because the trap fast path runs no guest code where an
FXSAVE could run: it only sets TS, as Xen's fpu_taskswitch does for its guests. (Linux went
eager for LazyFP, a speculative leak of the owner's registers; an emulated CPU does not
speculate.) A dying or exec'ing owner just disowns the registers. A fork by the owner has
the stub FXSAVE the live registers straight into the child's area (BootInfo.request_fpu_copy).

A process that dies while it is the current one still has its CR3 loaded until the stub
switches, so its address space and kernel stack are released at the next kernel entry
(`release_dead`); one that dies while another runs is released at once.

Signals (proc/sigdelivery.py) are acted on in `leave()`, on the way into the chosen process,
whose frame is then the ring-3 one a handler's frame is built from (or, for an IRQ taken on
the stub's first instruction of `int 0x80`, a ring-0 one: that call's own exit delivers); a
process a default action kills or stops there gives the CPU to the next choice. A sleep
(`block`) names how a signal ends it (`cancel`). Ctrl-C sends SIGINT to the foreground job (one
process group), Ctrl-Z SIGTSTP; once its processes have all stopped the shell takes the
terminal back and job control lists the job as stopped; a background read of the terminal
stops the job with SIGTTIN (proc/terminal.py). The manager is the `Sleeper` a file's caller
waits through (fs/vfs.py: pipes, the tty).

Kernel work the idle loop would run (`Kernel.defer`: shell lines, timer callbacks) is also run
on the way out of an interrupt that interrupted a process, so a busy process never starves
the shell or a sleeper's wake-up (the softirq model).

Imports: proc (the record, terminal, signals, scheduler, ELF), fs (the tty file, ERESTARTSYS),
mm, arch. Job control above subscribes to callbacks (Terminal's, Signals'), never imported.
"""

from __future__ import annotations

import hashlib
import itertools
import posixpath
import struct
from collections.abc import Callable
from dataclasses import replace

from tradekernel.kernel.arch.bootinfo import FXSAVE_SIZE
from tradekernel.kernel.arch.gdt import EMPTY, TLS_ENTRIES
from tradekernel.kernel.arch.trapframe import FIELDS, TrapFrame
from tradekernel.kernel.fs.devfs import RandomSource, TtyFile
from tradekernel.kernel.fs.vfs import ERESTARTSYS, O_RDWR
from tradekernel.kernel.mm.mmap import MemoryMaps
from tradekernel.kernel.mm.paging import AddressSpace, PagingError, UserMemoryFault, copy_to_user
from tradekernel.kernel.proc.elf import (
    INTERPRETER_BASE,
    ElfError,
    ElfImage,
    build_stack,
    load_elf,
    parse_elf,
)
from tradekernel.kernel.proc.futex import Futexes
from tradekernel.kernel.proc.ptrace import Ptrace
from tradekernel.kernel.proc.scheduler import Scheduler
from tradekernel.kernel.proc.sigdelivery import Signals
from tradekernel.kernel.proc.signals import (
    SIGBUS,
    SIGFPE,
    SIGILL,
    SIGPIPE,
    SIGSEGV,
    SIGTRAP,
    SignalState,
    signal_text,
)
from tradekernel.kernel.proc.task import KERNEL_STACK_SIZE, Process, State, ThreadGroup
from tradekernel.kernel.proc.terminal import Terminal

KSTACK_TAG = "kstack"
FPU_TAG = "fpu"
USER_CODE, USER_DATA = 0x1B, 0x23
EFLAGS_USER = 0x202  # IF, and the always-one bit 1
CR0_TS = 0x8
TSS_ESP0 = 4
MAX_PROCESSES = 64
SHELL_RESERVE = 4  # table slots fork may not take, so the shell can still start programs
NAME_LENGTH = 15  # Linux's comm
ENVIRONMENT = (b"PATH=/bin:/usr/bin", b"HOME=/", b"TERM=linux")

# CPU exception -> the signal Linux sends for it from ring 3 (arch/x86/kernel/traps.c).
EXCEPTION_SIGNALS = {
    0: SIGFPE, 1: SIGTRAP, 3: SIGTRAP, 4: SIGSEGV, 5: SIGSEGV, 6: SIGILL, 7: SIGFPE,
    10: SIGSEGV, 11: SIGBUS, 12: SIGBUS, 13: SIGSEGV, 14: SIGSEGV, 16: SIGFPE, 17: SIGBUS,
    19: SIGFPE,
}  # fmt: skip
PAGE_FAULT = 14
EIO, ENOEXEC, ECHILD, EAGAIN, ENOMEM, EFAULT, EINVAL = 5, 8, 10, 11, 12, 14, 22
WNOHANG, WUNTRACED, WCONTINUED = 1, 2, 8
MAX_ARGUMENTS = 256  # execve's argv/envp entries each
ARGUMENT_MAX = 4096  # bytes in one argument string


class SpawnError(Exception):
    """A program that cannot be started; carries an errno and a message for the shell."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


def exception_report(process: Process, frame: TrapFrame, signal: int, detail: str) -> str:
    """The line printed when a process dies by a CPU exception."""
    text = signal_text(signal)
    if frame.vector == PAGE_FAULT:
        return f"{process.name}[{process.pid}]: {text} at {frame.cr2:#010x} ({detail}), " \
            f"eip {frame.eip:#010x}"  # fmt: skip
    return f"{process.name}[{process.pid}]: {text} ({detail}), eip {frame.eip:#010x}"


class ProcessManager:
    """The process layer: owns the table, the scheduler, signals and the terminal; it is the
    `Sleeper` files make their callers wait through (fs/vfs.py)."""

    def __init__(self, kernel) -> None:  # noqa: ANN001 - tradekernel.kernel.main.Kernel
        self.kernel = kernel
        self.memory = kernel.memory
        self.mm = kernel.mm
        self.scheduler = Scheduler()
        self.signals = Signals(self)
        self.maps = MemoryMaps(
            self.mm.frames, self.memory, lambda: (self.epoch_ns + kernel.clock.now_ns()) // 10**9
        )
        self.table: dict[int, Process] = {}
        self.current: Process | None = None  # None: the kernel's own context (PID 0)
        self.context_switches = 0  # changes of the running context, kernel (PID 0) included
        self._kernel_frame = 0
        self._pids = itertools.count(1)
        self._dead: list[Process] = []
        self._dead_spaces: list[AddressSpace] = []  # replaced by execve while still loaded
        self.last_entry_ns = kernel.clock.now_ns()
        self.kernel_cpu_ns = 0
        self.epoch_ns = (
            int(kernel.clock.wall_time().timestamp()) * 1_000_000_000 - self.last_entry_ns
        )
        self.random = RandomSource(f"{kernel.clock.wall_time()}:{self.last_entry_ns}".encode())
        self.terminal = Terminal(self)
        self.futexes = Futexes(self)
        self.ptrace = Ptrace(self)

    # ---- the interrupt path -------------------------------------------------------------
    def enter(self, frame: TrapFrame) -> None:
        """Every kernel entry: remember where the interrupted context resumes, charge it the
        CPU time since the last entry, free what died on the way out last time."""
        now = self.kernel.clock.now_ns()
        if self.current is None:
            self._kernel_frame = frame.address
            self.kernel_cpu_ns += now - self.last_entry_ns
        else:
            self.current.frame = frame.address
            self.current.cpu_ns += now - self.last_entry_ns
            self.scheduler.charge(self.current, now - self.last_entry_ns)
        self.last_entry_ns = now
        self.release_dead()

    def leave(self) -> int:
        """Every kernel exit: the frame address of the context to resume (see the module
        docstring), after the kernel's deferred work when a process was interrupted."""
        previous = self.current
        if previous is not None:
            self.kernel.run_deferred()
        yielded = previous is not None and previous.yielded
        if previous is not None:
            previous.yielded = False
        chosen = self.scheduler.next_task(previous, yielded)
        while chosen is not None and (
            self.ptrace.intercept(chosen) or not self.signals.deliver(chosen)
        ):
            chosen = self.scheduler.next_task(None)  # a signal killed or stopped it on its way
        if previous is not None and previous.state == State.RUNNING and chosen is not previous:
            previous.state = State.READY
        if chosen is not None:
            chosen.state = State.RUNNING
        if chosen is not previous:
            self.switch_to(chosen)
            self.context_switches += 1
        self.kernel.program_timer(self.slice_end(chosen), self.last_entry_ns)
        return self._kernel_frame if chosen is None else chosen.frame

    def slice_end(self, chosen: Process | None) -> int | None:
        """When the task about to run must be preempted, or None if no slice end matters."""
        if chosen is None or not self.scheduler.slice_can_end(chosen):
            return None
        return self.last_entry_ns + max(0, chosen.sched.slice_left)

    def switch_to(self, process: Process | None, registers=None) -> None:  # noqa: ANN001
        """TSS.ESP0 and the FPU's current task (guest memory), then CR3: through the stub's
        mailbox (the stub also sets CR0.TS on its way out), or, given the trap's `registers`,
        written by the machine after the trap, as a hypervisor loads a paravirtual guest's
        page directory; CR0.TS then follows the stub's rule here."""
        self.current = process
        boot = self.kernel.boot
        if process is None:
            cr3 = self.mm.kernel_space.cr3
            boot.set_fpu_current(0)
        else:
            self.memory.write_u32(boot.tss + TSS_ESP0, process.kstack_top)
            boot.set_fpu_current(process.fpu)
            self.load_tls(process)
            cr3 = process.aspace.cr3
        if registers is not None and process is not None:
            boot.take_cr3_request()  # the stub must not load a stale one later
            self.mm.current_cr3 = cr3
            registers.write("cr3", cr3)
            cr0 = registers.read("cr0")
            wanted = cr0 & ~CR0_TS if boot.fpu_owner == process.fpu else cr0 | CR0_TS
            if wanted != cr0:
                registers.write("cr0", wanted)
        elif cr3 != self.mm.current_cr3:
            self.mm.current_cr3 = cr3
            boot.request_cr3(cr3)

    def load_tls(self, process: Process) -> None:
        """Write `process`'s TLS descriptors into the GDT (arch/gdt.py), as Linux's
        load_TLS does on every switch: the stub's `pop gs` (or the trap's segment write)
        then loads them."""
        for entry, descriptor in zip(TLS_ENTRIES, process.tls, strict=True):
            self.memory.write(self.kernel.boot.gdt + 8 * entry, descriptor)

    def user_exception(self, frame: TrapFrame) -> bool:
        """A CPU exception in ring 3: resolve it (copy-on-write) or send the signal Linux would
        (its handler may catch it). False if no process is running (the caller panics)."""
        process = self.current
        if process is None:
            return False
        if frame.vector == PAGE_FAULT:
            info = process.aspace.handle_fault(frame.cr2, frame.error_code)
            if info.resolved:
                return True
            detail = info.text
        else:
            detail = frame.describe().split(" (")[0]
        signal = EXCEPTION_SIGNALS.get(frame.vector, SIGSEGV)
        report = exception_report(process, frame, signal, detail)
        if not self.ptrace.exception(process, frame, signal, report):  # a tracee stops
            self.signals.fault(process, frame, signal, report)
        return True

    # ---- starting a program -------------------------------------------------------------
    def spawn(self, path: str, argv: list[str], cwd: str = "/", foreground: bool = False,
              parent: int = 0, pgid: int = 0) -> Process:  # fmt: skip
        """Load the program at `path` and make it ready, in process group `pgid` (0: a new
        group led by this process). SpawnError says why not."""
        if len(self.table) >= MAX_PROCESSES:
            raise SpawnError(EAGAIN, f"too many processes ({MAX_PROCESSES})")
        pid = next(self._pids)
        aspace, brk_start, entry, esp, path = self._load_program(
            path, [a.encode() for a in argv], list(ENVIRONMENT), pid
        )
        try:
            kstack, fpu = self._kernel_allocations()
        except MemoryError as error:
            aspace.teardown()
            raise SpawnError(ENOMEM, f"{path}: {error}") from error
        self._clean_fpu(fpu)
        name = posixpath.basename(path)[:NAME_LENGTH]
        process = Process(pid, parent, name, argv, aspace, kstack, brk_start, cwd, fpu,
                          brk=brk_start, foreground=foreground, pgid=pgid or pid)  # fmt: skip
        process.exe = path
        process.frame = self._initial_frame(process, entry, esp)
        tty = TtyFile(self.kernel.console, self.terminal)
        tty.status_flags, tty.path = O_RDWR, "/dev/tty"
        for fd in (0, 1, 2):
            process.files.install(fd, tty)
        self.table[pid] = process
        if foreground:
            self.terminal.foreground.append(process)
        self.scheduler.enqueue(process)
        return process

    def _kernel_allocations(self) -> tuple[int, int]:
        """A kernel stack and an FXSAVE area for a new process (MemoryError if none)."""
        kstack = self.mm.heap.kmalloc(KERNEL_STACK_SIZE, KSTACK_TAG)
        try:
            return kstack, self.mm.heap.kmalloc(FXSAVE_SIZE, FPU_TAG)
        except MemoryError:
            self.mm.heap.kfree(kstack)
            raise

    def _clean_fpu(self, area: int) -> None:
        """The state a new program starts with: the stub's FXSAVE of a clean FPU."""
        self.memory.write(area, self.memory.read(self.kernel.boot.fpu_initial, FXSAVE_SIZE))

    def _load_program(
        self, path: str, argv: list[bytes], envp: list[bytes], pid: int
    ) -> tuple[AddressSpace, int, int, int, str]:
        """A new address space holding the ELF at `path` and its start-up stack:
        (space, brk start, entry point, initial ESP, the path with a /proc link followed).
        SpawnError says why not."""
        try:
            path = self.kernel.vfs.follow(path)
            data = self.kernel.read_file(path)
        except OSError as error:
            reason = str(error.strerror or error).removeprefix(f"{path}: ")  # named once
            raise SpawnError(error.errno or EIO, f"{path}: {reason}") from error
        try:
            image = parse_elf(data)
        except ElfError as error:
            raise SpawnError(error.errno, f"{path}: cannot execute: {error}") from error
        interpreter = self._interpreter(path, image) if image.interpreter else None
        pages = image.pages + (interpreter[0].pages if interpreter else 0)
        free = self.mm.frames.free_count
        if pages > free:  # bounded by guest memory before anything is allocated
            raise SpawnError(ENOMEM, f"{path}: needs {pages * 4} KiB of memory, "
                                     f"{free * 4} KiB free")  # fmt: skip
        try:
            aspace = self.mm.paging.create_address_space()
        except (PagingError, MemoryError, OSError) as error:
            raise SpawnError(ENOMEM, f"{path}: {error}") from error
        entry = image.entry
        try:
            brk_start = load_elf(aspace, image, data, self.memory.write)
            if interpreter is not None:  # it runs first and loads the libraries
                load_elf(aspace, interpreter[0], interpreter[1], self.memory.write)
                entry = interpreter[0].entry
            seed = f"{pid}:{self.kernel.clock.now_ns()}".encode()
            esp = build_stack(
                aspace, image, argv, envp, hashlib.blake2b(seed, digest_size=16).digest(),
                INTERPRETER_BASE if interpreter is not None else 0,
            )
        except (ElfError, PagingError, MemoryError, OSError) as error:
            aspace.teardown()
            code = getattr(error, "errno", ENOMEM) or ENOMEM
            raise SpawnError(code, f"{path}: {error}") from error
        except Exception:
            aspace.teardown()
            raise
        return aspace, brk_start, entry, esp, path

    def _interpreter(self, path: str, image: ElfImage) -> tuple[ElfImage, bytes]:
        """The dynamic linker `image` names, parsed at INTERPRETER_BASE, and its bytes."""
        name = image.interpreter
        try:
            data = self.kernel.read_file(self.kernel.vfs.follow(name))
        except OSError as error:
            raise SpawnError(error.errno or EIO, f"{path}: interpreter {name}: "
                             f"{error.strerror or error}") from error  # fmt: skip
        try:
            interpreter = parse_elf(data, bias=INTERPRETER_BASE)
        except ElfError as error:
            raise SpawnError(error.errno, f"{path}: interpreter {name}: {error}") from error
        if interpreter.interpreter:
            raise SpawnError(ENOEXEC, f"{path}: interpreter {name} names an interpreter itself")
        if any(s.vaddr < i.end and i.vaddr < s.end
               for s in image.segments for i in interpreter.segments):  # fmt: skip
            raise SpawnError(ENOEXEC, f"{path}: overlaps its interpreter at {INTERPRETER_BASE:#x}")
        return interpreter, data

    def _initial_frame(self, process: Process, entry: int, esp: int) -> int:
        """A trap frame that `iret`s into ring 3 at `entry` with the start-up stack."""
        values = dict.fromkeys(FIELDS, 0)
        values.update(gs=USER_DATA, fs=USER_DATA, es=USER_DATA, ds=USER_DATA)
        values.update(eip=entry, cs=USER_CODE, eflags=EFLAGS_USER, user_esp=esp, user_ss=USER_DATA)
        block = struct.pack(f"<{len(FIELDS)}I", *(values[name] for name in FIELDS))
        address = process.kstack_top - len(block)
        self.memory.write(address, block)
        return address

    # ---- fork, execve, wait4 ------------------------------------------------------------
    def fork(self, parent: Process) -> int:
        """A copy of `parent` (copy-on-write memory, the same open files, a copy of its trap
        frame on a kernel stack of its own) that returns 0; the parent gets the child's PID."""
        if len(self.table) >= MAX_PROCESSES - SHELL_RESERVE:
            return -EAGAIN
        try:
            kstack, fpu = self._kernel_allocations()
        except MemoryError:
            return -ENOMEM
        try:
            aspace = parent.aspace.clone()
        except (PagingError, MemoryError, OSError):
            self.mm.heap.kfree(kstack)
            self.mm.heap.kfree(fpu)
            return -ENOMEM
        child = Process(
            next(self._pids), parent.tgid, parent.name, list(parent.argv), aspace, kstack,
            parent.brk_start, parent.cwd, fpu, brk=parent.brk, foreground=parent.foreground,
            sched=replace(parent.sched, switches=0), pgid=parent.pgid,
            signals=parent.signals.forked(), tls=parent.tls, exe=parent.exe,
            umask=parent.umask,
        )  # fmt: skip
        if self.kernel.boot.fpu_owner == parent.fpu:
            self.kernel.boot.request_fpu_copy(fpu)  # its state is live in the registers
        else:
            self.memory.write(fpu, self.memory.read(parent.fpu, FXSAVE_SIZE))
        frame_size = 4 * len(FIELDS)
        child.frame = child.kstack_top - frame_size
        self.memory.write(child.frame, self.memory.read(parent.frame, frame_size))
        TrapFrame(self.memory, child.frame).set("eax", 0)
        self.maps.forked(parent, child)
        child.files = parent.files.forked()
        self.table[child.pid] = child
        if parent in self.terminal.foreground:
            self.terminal.foreground.append(child)
        self.scheduler.enqueue(child)
        return child.pid

    def clone_thread(self, parent: Process, stack: int, tls: tuple[bytes, ...]) -> Process | int:
        """A new thread of `parent`'s process: the same address space, memory maps,
        descriptors and signal actions; its own registers (a copy of the caller's frame that
        returns 0 on `stack`), kernel stack, FPU state, signal mask and TLS. -errno if the
        table or the kernel heap is full."""
        if len(self.table) >= MAX_PROCESSES - SHELL_RESERVE:
            return -EAGAIN
        try:
            kstack, fpu = self._kernel_allocations()
        except MemoryError:
            return -ENOMEM
        group = parent.threads
        if group is None:
            group = parent.threads = ThreadGroup(parent, [parent])
        thread = Process(
            next(self._pids), group.leader.ppid, parent.name, list(parent.argv), parent.aspace,
            kstack, parent.brk_start, parent.cwd, fpu, brk=parent.brk,
            foreground=parent.foreground, sched=replace(parent.sched, switches=0),
            pgid=parent.pgid, signals=SignalState(parent.signals.actions, parent.signals.blocked),
            tls=tls, exe=parent.exe, umask=parent.umask, files=parent.files, maps=parent.maps,
            threads=group,
        )  # fmt: skip
        group.members.append(thread)
        if self.kernel.boot.fpu_owner == parent.fpu:
            self.kernel.boot.request_fpu_copy(fpu)
        else:
            self.memory.write(fpu, self.memory.read(parent.fpu, FXSAVE_SIZE))
        frame_size = 4 * len(FIELDS)
        thread.frame = thread.kstack_top - frame_size
        self.memory.write(thread.frame, self.memory.read(parent.frame, frame_size))
        frame = TrapFrame(self.memory, thread.frame)
        frame.set("eax", 0)
        frame.set("user_esp", stack)
        self.table[thread.pid] = thread
        if parent in self.terminal.foreground:
            self.terminal.foreground.append(thread)
        self.scheduler.enqueue(thread)
        return thread

    def execve(self, process: Process, path: str, argv: list[bytes], envp: list[bytes]) -> int:
        """Replace the running process's image with the program at `path`; on failure the old
        image stays and the call returns -errno."""
        try:
            aspace, brk_start, entry, esp, path = self._load_program(
                path, argv, envp, process.pid
            )
        except SpawnError as error:
            return -error.errno
        if process.threads is not None:  # the other threads end; the caller is the process
            if process.is_thread:
                return -EINVAL  # (Linux would give it the leader's PID: not supported)
            for thread in [t for t in process.threads.members if t is not process]:
                self._end_thread(thread)
            process.threads = None
        self.maps.released(process)
        self._dead_spaces.append(process.aspace)  # its CR3 is live until the stub switches
        process.aspace = aspace
        process.brk_start = process.brk = brk_start
        process.name = posixpath.basename(path)[:NAME_LENGTH]
        process.exe = path
        process.files.exec_close()
        process.argv = [arg.decode("utf-8", "replace") for arg in argv]
        process.pending_input = b""
        process.signals.exec_reset()
        process.tls = (EMPTY,) * len(TLS_ENTRIES)  # the new image's frame loads no TLS selector
        process.clear_child_tid = 0
        self.mm.current_cr3 = aspace.cr3
        self.kernel.boot.request_cr3(aspace.cr3)
        if self.kernel.boot.fpu_owner == process.fpu:
            self.kernel.boot.disown_fpu()
        self._clean_fpu(process.fpu)
        process.frame = self._initial_frame(process, entry, esp)
        self.ptrace.execed(process)
        return 0

    def wait(self, process: Process, pid: int, status_pointer: int, options: int) -> int | None:
        """wait4: reap a dead child, or (WUNTRACED, WCONTINUED) report one that stopped or
        continued: its PID; 0 with WNOHANG if there is none yet, or sleep until there is one
        (None). Any pid <= 0 means any child (no process groups here). A tracee counts as a
        child of its tracer (proc/ptrace.py), whose wait4 reports its stops."""
        children = [
            child for child in self.table.values()
            if (child.ppid == process.tgid and not child.is_thread
                or child.tracer == process.tgid and child.state != State.ZOMBIE)
            and (pid <= 0 or child.pid == pid)
        ]  # fmt: skip
        if not children:
            return -ECHILD
        for child in children:
            if (status := self._reportable(process, child, options)) is not None:
                return self._report(process, child, status, status_pointer)
        if options & WNOHANG:
            return 0
        token = self.block(process, cancel=lambda: self._stop_waiting(process))
        process.waiting = (token, pid, status_pointer, options)
        return None

    @staticmethod
    def _stop_waiting(process: Process) -> int:
        """A signal ended the wait4 sleep: no child is reaped for it."""
        process.waiting = None
        return -ERESTARTSYS

    @staticmethod
    def _reportable(waiter: Process, child: Process, options: int) -> int | None:
        """The wait status `waiter`'s wait4 with `options` would report for `child` now, if
        any: a ptrace stop, and any stop of a tracee, without WUNTRACED; a death only to the
        parent."""
        traced = child.tracer == waiter.tgid
        if child.state == State.ZOMBIE:
            return child.exit_status if child.ppid == waiter.tgid else None
        if traced and child.trace_report:
            return child.trace_report << 8 | 0x7F
        if (options & WUNTRACED or traced) and child.stop_report:
            return child.stop_report << 8 | 0x7F
        if options & WCONTINUED and child.continued_report:
            return 0xFFFF
        return None

    def _report(self, parent: Process, child: Process, status: int, status_pointer: int) -> int:
        """Hand `status` to the waiting parent: a dead child is reaped, a stop or a continue
        is reported once."""
        if status_pointer:
            copy_to_user(parent.aspace, status_pointer, struct.pack("<i", status))
        if child.state == State.ZOMBIE:
            del self.table[child.pid]
        elif child.trace_report and child.tracer == parent.tgid:
            child.trace_report = 0
        elif status == 0xFFFF:
            child.continued_report = False
        else:
            child.stop_report = 0
        return child.pid

    def child_changed(self, parent: Process, child: Process) -> None:
        """A child died, stopped or continued: wake its parent if it sleeps in wait4 for it."""
        if parent.waiting is None or parent.state != State.SLEEPING:
            return
        token, wanted, status_pointer, options = parent.waiting
        if wanted > 0 and wanted != child.pid:
            return
        if child.pid not in self.table:  # reaped at once: the parent ignores SIGCHLD
            if any(c.ppid == parent.pid and not c.is_thread and (wanted <= 0 or c.pid == wanted)
                   for c in self.table.values()):  # fmt: skip
                return
            result = -ECHILD  # POSIX: wait returns once every child is gone
        else:
            status = self._reportable(parent, child, options)
            if status is None:
                return
            try:
                result = self._report(parent, child, status, status_pointer)
            except UserMemoryFault:
                result = -EFAULT
        parent.waiting = None
        self.wake(parent, token, result)

    # ---- blocking -----------------------------------------------------------------------
    def block(self, process: Process, cancel: Callable[[], int] | None = None) -> int:
        """Put the process to sleep (it leaves the CPU at this interrupt's exit); returns the
        token its wake-up must present. A signal may end the sleep: `cancel` then undoes
        what the call waits for and returns its result (signals.py; None: -EINTR)."""
        process.signals.cancel = cancel
        process.state = State.SLEEPING
        process.wait_token += 1
        self.scheduler.remove(process)
        return process.wait_token

    def asleep(self, process: Process, token: int) -> bool:
        """Whether `process` still sleeps the sleep that `block` gave `token` for."""
        return process.state == State.SLEEPING and process.wait_token == token

    def broken_pipe(self, process: Process) -> None:
        """A write to a pipe with no reader: SIGPIPE (by default the writer dies quietly)."""
        self.signals.send(process, SIGPIPE)

    def wake(self, process: Process, token: int, result: int) -> None:
        """End a sleep with `result` as the system call's return value (ignored if the
        process died or was woken since)."""
        if process.state != State.SLEEPING or process.wait_token != token:
            return
        TrapFrame(self.memory, process.frame).set("eax", result & 0xFFFF_FFFF)
        if process.stopped:
            process.state = State.STOPPED  # it runs again at SIGCONT
            return
        process.state = State.READY
        self.scheduler.enqueue(process)

    # ---- process groups, dying ----------------------------------------------------------
    def group(self, pgid: int) -> list[Process]:
        """The processes of process group `pgid` (zombies too)."""
        return [process for process in self.table.values() if process.pgid == pgid]

    def exit(self, process: Process, status: int) -> None:
        """exit/exit_group: the process ends with `status` (0-255)."""
        self._finish(process, (status & 0xFF) << 8, None)

    def terminate(self, process: Process, signal: int, report: str | None = "") -> None:
        """Death by `signal`. `report` is the line to print: "" for the usual "name[pid]:
        killed" wording, None for nothing (Ctrl-C shows ^C instead). A traced process is
        not killed by a signal other than SIGKILL until its tracer passes the signal on: the
        signal waits, pending, for the ptrace stop on its way to ring 3 (proc/ptrace.py)."""
        if self.ptrace.holds_fatal(process, signal):
            return
        if report == "":
            report = f"{process.name}[{process.pid}]: {signal_text(signal)}"
        self._finish(process, signal, report)

    def exit_thread(self, process: Process, status: int) -> None:
        """exit (1): a thread other than the leader ends alone; otherwise the process ends
        (the leader's exit ends every thread, where Linux would let the others run on)."""
        if process.is_thread:
            self._end_thread(process)
        else:
            self.exit(process, status)

    def _end_thread(self, thread: Process) -> None:
        """A thread goes: its tid word cleared (a joiner wakes), its kernel stack and FPU
        area freed; the process's memory, descriptors and parent are untouched."""
        if thread.state == State.ZOMBIE:
            return
        self._clear_child_tid(thread)
        self.terminal.exiting(thread)
        thread.state = State.ZOMBIE
        thread.waiting = None
        self.scheduler.remove(thread)
        if self.kernel.boot.fpu_owner == thread.fpu:
            self.kernel.boot.disown_fpu()
        if thread.threads is not None and thread in thread.threads.members:
            thread.threads.members.remove(thread)
        self.table.pop(thread.pid, None)
        if thread is self.current:
            self._dead.append(thread)  # its kernel stack is in use until the stub switches
        else:
            self._release(thread)
        self.terminal.exited(thread)

    def _clear_child_tid(self, process: Process) -> None:
        if process.clear_child_tid:  # set_tid_address: 0 there, and a futex wake (a joiner)
            try:
                copy_to_user(process.aspace, process.clear_child_tid, bytes(4))
                self.futexes.wake(process, process.clear_child_tid, 1)
            except (UserMemoryFault, PagingError, OSError, MemoryError):
                pass  # the address went away (or no frame for its copy): nobody waits there

    def _finish(self, process: Process, status: int, report: str | None) -> None:
        if process.state == State.ZOMBIE:
            return
        if process.threads is not None:  # the whole process ends: every thread, then the leader
            group = process.threads
            for thread in [t for t in group.members if t is not group.leader]:
                self._end_thread(thread)
            if process is not group.leader:
                if report:  # a thread's death by a signal is the process's
                    report = report.replace(f"[{process.pid}]", f"[{group.leader.pid}]")
                process = group.leader
                if process.state == State.ZOMBIE:
                    return
        self._clear_child_tid(process)
        self.terminal.exiting(process)
        process.state = State.ZOMBIE
        process.exit_status = status
        process.waiting = None
        self.scheduler.remove(process)
        if self.kernel.boot.fpu_owner == process.fpu:
            self.kernel.boot.disown_fpu()  # before its area is freed: #NM must not save there
        if report:
            self.kernel.console.write(report + "\n", 0x0C)
        process.files.close_all()  # now: a pipe's other end sees EOF or SIGPIPE at once
        self.maps.released(process)
        self.ptrace.tracer_died(process)
        if process.tracer == 0:
            self.ptrace.kernel_stopped(process)  # the kernel's debugger hears of the death
        for child in [c for c in self.table.values() if c.ppid == process.pid]:
            if child.is_thread:
                child.ppid = 0
                continue
            if child.state == State.ZOMBIE:
                del self.table[child.pid]  # nobody is left to reap it
            else:
                child.ppid = 0  # the kernel (PID 0) adopts orphans, as init does
        parent = self.table.get(process.ppid)
        if parent is None or parent.state == State.ZOMBIE or parent.signals.reaps_children():
            del self.table[process.pid]  # the shell (PID 0) reaps its children at once
        if self.current is not None and self.current.aspace is process.aspace:
            self._dead.append(process)  # its CR3 is live until the stub switches
        else:
            self._release(process)
        if parent is not None and parent.state != State.ZOMBIE:
            self.child_changed(parent, process)
        self.signals.child_exited(process)
        self.terminal.exited(process)

    def release_dead(self) -> None:
        """Free what died while its CR3 was loaded (that CR3 is gone once the stub switched)."""
        if not (self._dead or self._dead_spaces):
            return
        dead, self._dead = self._dead, []
        for process in dead:
            self._release(process)
        spaces, self._dead_spaces = self._dead_spaces, []
        for aspace in spaces:
            aspace.teardown()

    def _release(self, process: Process) -> None:
        if not process.is_thread:  # a thread's memory is its process's
            process.aspace.teardown()
        self.mm.heap.kfree(process.kstack)
        self.mm.heap.kfree(process.fpu)
