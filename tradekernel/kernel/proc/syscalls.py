"""The system-call table: Linux i386 numbers -> handlers, reached by `int 0x80` from ring 3.

ABI (Linux i386): EAX = number, EBX, ECX, EDX, ESI, EDI, EBP = arguments 1-6, result in EAX;
-errno (-4095..-1) is an error. The table is explicit (number -> name, handler), as xv6's
syscall.c; an unknown number returns -ENOSYS and is logged once per number.
It covers what static and dynamic glibc programs (Debian's busybox, ld-linux.so.2) call:
TLS (set_thread_area), futex, clone (fork, and threads: proc/process.py clone_thread), the
*at calls, fcntl, private file mmap, termios through ioctl, /proc's links. Calls glibc only
tries (rseq, statx, clone3, set_robust_list) get ENOSYS, and glibc falls back.

Every user pointer goes through copy_from_user/copy_to_user/read_user_string (mm/paging.py),
so a bad pointer is -EFAULT and never touches kernel memory; handlers decode arguments and call
down: into the process layer (process.py, signals), the caller's descriptors (fdtable.py), the
open files behind them (fs/vfs.py OpenFile: every kind of file alike), the mount table for
every path (the kernel's `vfs`), memory maps, or the clock. The trap paths that call into the
table are trap.py.

A handler returns the result, or None when the process went to sleep (read on the tty,
nanosleep): the wake-up writes the result into its frame later. Running out of frames or
kernel heap anywhere in a call is -ENOMEM. A handler that raises anything else unexpected is
a kernel oops (`Syscalls.oops`): logged with its call trace, the caller killed as by SIGSEGV
and its resources released, the rest of the system untouched; only KERNEL_INVARIANTS escape
(main.py panics on them). readv/writev move at most MAX_IO bytes per call in all.

Imports: proc, fs (the VFS, pipes), mm (user memory).
"""

from __future__ import annotations

import errno as E
import posixpath
import struct
from collections import Counter
from collections.abc import Callable

from tradekernel import __version__
from tradekernel.kernel.arch.gdt import (
    TLS_ENTRIES,
    USER_DESC_SIZE,
    TlsError,
    decode,
    parse_user_desc,
    present,
    selector,
)
from tradekernel.kernel.arch.trapframe import TrapFrame
from tradekernel.kernel.fs.pipe import Pipe
from tradekernel.kernel.fs.vfs import (
    O_APPEND,
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDONLY,
    O_WRONLY,
    S_IFMT,
    S_IFREG,
    SEEK_CUR,
    SEEK_SET,
    STATUS_FLAGS,
    FileStat,
    OpenFile,
)
from tradekernel.kernel.mm.frames import BadFrame
from tradekernel.kernel.mm.heap import HeapCorruption
from tradekernel.kernel.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, MAP_TYPE, PROT_READ, PROT_WRITE
from tradekernel.kernel.mm.paging import (
    PAGE_SIZE,
    PTE_COW,
    PTE_P,
    PTE_SHARED,
    PTE_US,
    USER_BASE,
    USER_TOP,
    PagingError,
    UserMemoryFault,
    UserStringTooLong,
    copy_from_user,
    copy_to_user,
    read_user_string,
)
from tradekernel.kernel.proc.elf import STACK_PAGES, page_up
from tradekernel.kernel.proc.fdtable import MAX_FILES
from tradekernel.kernel.proc.process import (
    ARGUMENT_MAX,
    MAX_ARGUMENTS,
    MAX_PROCESSES,
    NAME_LENGTH,
    WCONTINUED,
    WNOHANG,
    WUNTRACED,
    ProcessManager,
)
from tradekernel.kernel.proc.scheduler import (
    NICE_MAX,
    NICE_MIN,
    RT_PRIORITY_MAX,
    RT_PRIORITY_MIN,
    SchedulerError,
)
from tradekernel.kernel.proc.signals import SIGCHLD, SIGSEGV
from tradekernel.kernel.proc.task import Process

Handler = Callable[[Process, tuple[int, ...]], int | None]
# Errors that say the kernel's own bookkeeping is broken (the heap's block chain, a frame's
# reference count): no caller can be blamed, so they are not contained but panic.
KERNEL_INVARIANTS = (HeapCorruption, BadFrame)

MAX_IO = 1 << 20  # one read/write/readv/writev moves at most 1 MiB (Linux caps at 0x7ffff000)
UNKNOWN_LOGGED = 64  # distinct unknown call numbers logged (a fuzzer tries billions)
IOV_MAX = 1024  # iovecs in one readv/writev (Linux's UIO_MAXIOV)
PATH_MAX = 4096
BRK_LIMIT = 256 << 20  # the heap may grow this far past its start
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 0, 1, 2, 3
CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME = 4, 5, 6, 7
PRIO_PROCESS = 0
TIMER_ABSTIME = 1
AT_FDCWD = -100
DT_DIR, DT_REG = 4, 8
UTS_FIELD = 65
NS = 1_000_000_000
RUSAGE_SIZE = 72  # struct rusage on i386
IPC_SHMAT, IPC_SHMDT, IPC_SHMGET, IPC_SHMCTL = 21, 22, 23, 24  # ipc(2)'s call numbers
CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID = 0x100000, 0x200000, 0x1000000
CLONE_FORK_FLAGS = CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD = 0x100, 0x200, 0x400, 0x800, 0x10000
CLONE_SYSVSEM, CLONE_SETTLS = 0x40000, 0x80000
CLONE_THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 1030
F_GETLK, F_SETLK, F_SETLKW, F_GETLK64, F_SETLK64, F_SETLKW64 = 5, 6, 7, 12, 13, 14
FD_CLOEXEC = 1
AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_EMPTY_PATH = 0x100, 0x200, 0x1000
S_IFLNK = 0o120000
F_OK, X_OK, W_OK = 0, 1, 2
PR_SET_NAME, PR_GET_NAME = 15, 16
GRND_NONBLOCK, GRND_RANDOM = 1, 2
RANDOM_PIECE = 4096  # getrandom makes and copies this many bytes at a time
MADV_DONTNEED = 4
RLIM_INFINITY = 0xFFFF_FFFF
RLIMIT_STACK, RLIMIT_NPROC, RLIMIT_NOFILE, RLIM_NLIMITS = 3, 6, 7, 16


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


def _try_put_u32(aspace, address: int, value: int) -> None:  # noqa: ANN001 - AddressSpace
    """Write a word to user memory if it can be written; a bad pointer is ignored."""
    try:
        copy_to_user(aspace, address, struct.pack("<I", value))
    except (UserMemoryFault, PagingError):
        pass


def _priority_bound(policy: int, bound: int) -> int:
    """sched_get_priority_max/min: the real-time bound, 0 for SCHED_OTHER."""
    if policy in (1, 2):
        return bound
    return 0 if policy == 0 else -E.EINVAL


class Syscalls:
    """The table, and the handlers that decode each call's arguments."""

    def __init__(self, manager: ProcessManager) -> None:
        self.manager = manager
        self.kernel = manager.kernel
        self.vfs = manager.kernel.vfs
        self.counts: Counter[int] = Counter()
        self._unknown_logged: set[int] = set()
        self.futexes = manager.futexes
        signals = manager.signals
        self.table: dict[int, tuple[str, Handler]] = {
            1: ("exit", self.sys_exit_thread),
            2: ("fork", lambda p, a: self.manager.fork(p)),
            3: ("read", self.sys_read),
            4: ("write", self.sys_write),
            5: ("open", self.sys_open),
            6: ("close", self.sys_close),
            7: ("waitpid", lambda p, a: self.sys_wait4(p, (a[0], a[1], a[2], 0))),
            10: ("unlink", self.sys_unlink),
            11: ("execve", self.sys_execve),
            12: ("chdir", self.sys_chdir),
            13: ("time", self.sys_time),
            19: ("lseek", self.sys_lseek),
            20: ("getpid", lambda p, a: p.tgid),
            24: ("getuid", lambda p, a: 0),  # everyone is root: the OS has one user
            26: ("ptrace", manager.ptrace.sys_ptrace),
            27: ("alarm", signals.sys_alarm),
            29: ("pause", signals.sys_pause),
            33: ("access", self.sys_access),
            37: ("kill", signals.sys_kill),
            38: ("rename", self.sys_rename),
            39: ("mkdir", self.sys_mkdir),
            40: ("rmdir", self.sys_rmdir),
            41: ("dup", self.sys_dup),
            42: ("pipe", self.sys_pipe),
            45: ("brk", self.sys_brk),
            47: ("getgid", lambda p, a: 0),
            49: ("geteuid", lambda p, a: 0),
            50: ("getegid", lambda p, a: 0),
            54: ("ioctl", self.sys_ioctl),
            55: ("fcntl", self.sys_fcntl),
            57: ("setpgid", self.sys_setpgid),
            60: ("umask", self.sys_umask),
            63: ("dup2", self.sys_dup2),
            64: ("getppid", lambda p, a: p.ppid),
            65: ("getpgrp", lambda p, a: p.pgid),
            76: ("getrlimit", self.sys_getrlimit),
            78: ("gettimeofday", self.sys_gettimeofday),
            80: ("getgroups", self.sys_getgroups),
            85: ("readlink", self.sys_readlink),
            90: ("mmap", self.sys_old_mmap),
            91: ("munmap", lambda p, a: self.manager.maps.munmap(p, a[0], a[1])),
            96: ("getpriority", self.sys_getpriority),
            97: ("setpriority", self.sys_setpriority),
            106: ("stat", self.sys_stat),
            108: ("fstat", self.sys_fstat),
            114: ("wait4", self.sys_wait4),
            116: ("sysinfo", self.sys_sysinfo),
            117: ("ipc", self.sys_ipc),
            119: ("sigreturn", signals.sys_sigreturn),
            120: ("clone", self.sys_clone),
            122: ("uname", self.sys_uname),
            125: ("mprotect", lambda p, a: self.manager.maps.mprotect(p, a[0], a[1], a[2])),
            132: ("getpgid", self.sys_getpgid),
            133: ("fchdir", self.sys_fchdir),
            140: ("_llseek", self.sys_llseek),
            145: ("readv", self.sys_readv),
            146: ("writev", self.sys_writev),
            155: ("sched_getparam", self.sys_sched_getparam),
            156: ("sched_setscheduler", self.sys_sched_setscheduler),
            157: ("sched_getscheduler", self.sys_sched_getscheduler),
            158: ("sched_yield", self.sys_sched_yield),
            159: ("sched_get_priority_max", lambda p, a: _priority_bound(a[0], RT_PRIORITY_MAX)),
            160: ("sched_get_priority_min", lambda p, a: _priority_bound(a[0], RT_PRIORITY_MIN)),
            162: ("nanosleep", self.sys_nanosleep),
            163: ("mremap", lambda p, a: self.manager.maps.mremap(p, *a[:5])),
            172: ("prctl", self.sys_prctl),
            173: ("rt_sigreturn", signals.sys_rt_sigreturn),
            174: ("rt_sigaction", signals.sys_rt_sigaction),
            175: ("rt_sigprocmask", signals.sys_rt_sigprocmask),
            176: ("rt_sigpending", signals.sys_rt_sigpending),
            179: ("rt_sigsuspend", signals.sys_rt_sigsuspend),
            180: ("pread64", self.sys_pread64),
            181: ("pwrite64", self.sys_pwrite64),
            183: ("getcwd", self.sys_getcwd),
            187: ("sendfile", lambda p, a: self.sys_sendfile(p, a, wide=False)),
            190: ("vfork", lambda p, a: self.manager.fork(p)),  # a copy serves vfork's contract
            191: ("ugetrlimit", self.sys_getrlimit),
            192: ("mmap2", self.sys_mmap2),
            195: ("stat64", self.sys_stat64),
            196: ("lstat64", self.sys_lstat64),
            197: ("fstat64", self.sys_fstat64),
            199: ("getuid32", lambda p, a: 0),
            200: ("getgid32", lambda p, a: 0),
            201: ("geteuid32", lambda p, a: 0),
            202: ("getegid32", lambda p, a: 0),
            205: ("getgroups32", self.sys_getgroups),
            219: ("madvise", self.sys_madvise),
            220: ("getdents64", self.sys_getdents64),
            221: ("fcntl64", self.sys_fcntl),
            224: ("gettid", lambda p, a: p.pid),  # getpid is the thread group's
            238: ("tkill", signals.sys_tkill),
            239: ("sendfile64", lambda p, a: self.sys_sendfile(p, a, wide=True)),
            240: ("futex", self.futexes.sys_futex),
            243: ("set_thread_area", self.sys_set_thread_area),
            244: ("get_thread_area", self.sys_get_thread_area),
            252: ("exit_group", self.sys_exit),
            258: ("set_tid_address", self.sys_set_tid_address),
            265: ("clock_gettime", self.sys_clock_gettime),
            266: ("clock_getres", self.sys_clock_getres),
            267: ("clock_nanosleep", self.sys_clock_nanosleep),
            270: ("tgkill", signals.sys_tgkill),
            295: ("openat", self.sys_openat),
            296: ("mkdirat", self.sys_mkdirat),
            300: ("fstatat64", self.sys_fstatat64),
            301: ("unlinkat", self.sys_unlinkat),
            302: ("renameat", self.sys_renameat),
            305: ("readlinkat", self.sys_readlinkat),
            307: ("faccessat", self.sys_faccessat),
            330: ("dup3", self.sys_dup3),
            331: ("pipe2", self.sys_pipe2),
            340: ("prlimit64", self.sys_prlimit64),
            355: ("getrandom", self.sys_getrandom),
            395: ("shmget", lambda p, a: self.manager.maps.shmget(p, _signed(a[0]), a[1], a[2])),
            396: ("shmctl", self.sys_shmctl),
            397: ("shmat", lambda p, a: self.manager.maps.shmat(p, _signed(a[0]), a[1], a[2])),
            398: ("shmdt", lambda p, a: self.manager.maps.shmdt(p, a[0])),
            403: ("clock_gettime64", self.sys_clock_gettime64),
        }  # fmt: skip

    def dispatch(self, process: Process, frame) -> int | None:  # noqa: ANN001 - TrapFrame
        args = (frame.ebx, frame.ecx, frame.edx, frame.esi, frame.edi, frame.ebp)
        return self.call(process, frame.eax, args)

    def call(self, process: Process, number: int, args: tuple[int, ...]) -> int | None:
        """Run system call `number`: its result, or None when the caller blocked or died.
        This is the containment boundary: a handler that raises anything unexpected is a
        kernel oops that kills only its caller (`oops`)."""
        try:
            return self.run(process, number, args)
        except KERNEL_INVARIANTS:
            raise  # the kernel's own state is broken: that is a panic (main.py), not an oops
        except Exception as error:  # noqa: BLE001 - the boundary: the caller dies, not the OS
            return self.oops(process, number, error)

    def oops(self, process: Process, number: int, error: Exception) -> None:
        """As Linux's oops in process context: logged with its call trace, the caller killed
        as by SIGSEGV (its memory, descriptors and kernel stack released), the rest goes on."""
        name = self.table[number][0] if number in self.table else "?"
        who = f"{process.name}[{process.pid}]"
        self.kernel.klog.oops("syscall", f"system call {number} ({name}) by {who}", error)
        self.manager.terminate(
            process, SIGSEGV, f"{who}: kernel oops in system call {number} ({name}): killed"
        )
        return None

    def run(self, process: Process, number: int, args: tuple[int, ...]) -> int | None:
        """`call` without the boundary: an unexpected exception goes to the caller (the trap
        fast path then hands the call to the full path, which contains it)."""
        entry = self.table.get(number)
        self.counts[number] += 1
        if entry is None:
            if number not in self._unknown_logged and len(self._unknown_logged) < UNKNOWN_LOGGED:
                self._unknown_logged.add(number)
                self.kernel.klog.info("syscall", f"{process.name}[{process.pid}]: no system "
                                      f"call {number}")  # fmt: skip
            return -E.ENOSYS
        try:
            return entry[1](process, args)
        except (UserMemoryFault, PagingError):
            return -E.EFAULT
        except UserStringTooLong:
            return -E.ENAMETOOLONG
        except SchedulerError:
            return -E.EINVAL
        except MemoryError:  # out of frames or kernel heap, wherever the call needed one
            return -E.ENOMEM
        except OSError as error:
            return -(error.errno or E.EIO)

    # ---- process ------------------------------------------------------------------------
    def sys_exit(self, process: Process, args: tuple[int, ...]) -> None:
        """exit_group: the whole process, every thread of it."""
        self.manager.exit(process, args[0])
        return None

    def sys_exit_thread(self, process: Process, args: tuple[int, ...]) -> None:
        """exit: the calling thread (the process, for a single-threaded one)."""
        self.manager.exit_thread(process, args[0])
        return None

    def sys_clone(self, process: Process, args: tuple[int, ...]) -> int:
        """clone's two forms glibc uses. fork: SIGCHLD, no new stack. A thread (pthread_create):
        CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD on a new stack, with
        CLONE_SETTLS (a user_desc, as set_thread_area). Both take the tid flags
        (CLONE_PARENT_SETTID, CLONE_CHILD_SETTID, CLONE_CHILD_CLEARTID); CLONE_SYSVSEM is
        accepted (no semaphores here). Any other combination is ENOSYS."""
        flags, stack, parent_tid, tls, child_tid = args[:5]
        if flags & CLONE_THREAD_FLAGS == CLONE_THREAD_FLAGS:
            if flags & ~(CLONE_THREAD_FLAGS | CLONE_FORK_FLAGS | CLONE_SETTLS | CLONE_SYSVSEM
                         | 0xFF) or not stack:  # fmt: skip
                return -E.ENOSYS
            child_tls = process.tls
            if flags & CLONE_SETTLS:
                try:
                    entry, descriptor = parse_user_desc(
                        copy_from_user(process.aspace, tls, USER_DESC_SIZE), process.tls
                    )
                except TlsError as error:
                    return -error.errno
                index = TLS_ENTRIES.index(entry)
                child_tls = process.tls[:index] + (descriptor,) + process.tls[index + 1 :]
            made = self.manager.clone_thread(process, stack, child_tls)
            if isinstance(made, int):
                return made
            child = made
        else:
            if flags & ~(CLONE_FORK_FLAGS | 0xFF) or flags & 0xFF != SIGCHLD or stack:
                return -E.ENOSYS
            pid = self.manager.fork(process)
            if pid < 0:
                return pid
            child = self.manager.table[pid]
        pid = child.pid
        # As Linux (kernel_clone, schedule_tail): a tid word that cannot be written is
        # skipped, never an error, since the child exists by now and must not be orphaned.
        if flags & CLONE_PARENT_SETTID:
            _try_put_u32(process.aspace, parent_tid, pid)
            if child.aspace is not process.aspace:
                _try_put_u32(child.aspace, parent_tid, pid)
        if flags & CLONE_CHILD_SETTID:
            _try_put_u32(child.aspace, child_tid, pid)
        if flags & CLONE_CHILD_CLEARTID:
            child.clear_child_tid = child_tid
        return pid

    def sys_set_tid_address(self, process: Process, args: tuple[int, ...]) -> int:
        """Where exit writes 0 and wakes a futex (a thread's joiner); returns the tid."""
        process.clear_child_tid = args[0]
        return process.pid

    def sys_wait4(self, process: Process, args: tuple[int, ...]) -> int | None:
        if args[2] & ~(WNOHANG | WUNTRACED | WCONTINUED):
            return -E.EINVAL
        if args[3]:
            copy_to_user(process.aspace, args[3], bytes(RUSAGE_SIZE))  # no usage accounting
        return self.manager.wait(process, _signed(args[0]), args[1], args[2])

    def sys_execve(self, process: Process, args: tuple[int, ...]) -> int:
        path = self._path(process, args[0])
        argv = self._string_array(process, args[1])
        envp = self._string_array(process, args[2])
        return self.manager.execve(process, path, argv, envp)

    def _string_array(self, process: Process, pointer: int) -> list[bytes]:
        """A NULL-terminated array of user string pointers (NULL itself: no strings)."""
        strings: list[bytes] = []
        while pointer:
            (item,) = struct.unpack("<I", copy_from_user(process.aspace, pointer, 4))
            if not item:
                break
            if len(strings) >= MAX_ARGUMENTS:
                raise OSError(E.E2BIG, "too many arguments")
            strings.append(read_user_string(process.aspace, item, ARGUMENT_MAX))
            pointer += 4
        return strings

    def sys_set_thread_area(self, process: Process, args: tuple[int, ...]) -> int:
        """Install a TLS descriptor (arch/gdt.py) and write the chosen entry back."""
        try:
            entry, descriptor = parse_user_desc(
                copy_from_user(process.aspace, args[0], USER_DESC_SIZE), process.tls
            )
        except TlsError as error:
            return -error.errno
        copy_to_user(process.aspace, args[0], struct.pack("<I", entry))
        index = TLS_ENTRIES.index(entry)
        process.tls = process.tls[:index] + (descriptor,) + process.tls[index + 1 :]
        self.manager.load_tls(process)
        if not present(descriptor):  # the stub's `pop` of that selector would fault
            frame = TrapFrame(self.manager.memory, process.frame)
            for name in ("fs", "gs"):
                if getattr(frame, name) & 0xFFFF == selector(entry):
                    frame.set(name, 0)
        return 0

    def sys_get_thread_area(self, process: Process, args: tuple[int, ...]) -> int:
        (entry,) = struct.unpack("<I", copy_from_user(process.aspace, args[0], 4))
        if entry not in TLS_ENTRIES:
            return -E.EINVAL
        descriptor = process.tls[TLS_ENTRIES.index(entry)]
        copy_to_user(process.aspace, args[0], decode(entry, descriptor))
        return 0

    @staticmethod
    def sys_getgroups(process: Process, args: tuple[int, ...]) -> int:
        """No supplementary groups: nothing ran initgroups (no login), as a Linux process
        started outside a session has none; the primary group is getgid's 0."""
        return -E.EINVAL if _signed(args[0]) < 0 else 0

    def sys_setpgid(self, process: Process, args: tuple[int, ...]) -> int:
        """setpgid(pid, pgid) as Linux's: the caller or one of its children (ESRCH else) joins
        group `pgid` (0: its own pid), which must exist unless it is the target's own (EPERM).
        There is one session, so the session rules never refuse."""
        pid, pgid = _signed(args[0]), _signed(args[1])
        if pid < 0 or pgid < 0:
            return -E.EINVAL if pgid < 0 else -E.ESRCH
        target = self.manager.table.get(pid or process.tgid)
        if target is None or target.tgid != process.tgid and target.ppid != process.tgid:
            return -E.ESRCH
        pgid = pgid or target.tgid
        if pgid != target.tgid and not self.manager.group(pgid):
            return -E.EPERM
        members = target.threads.members if target.threads is not None else [target]
        for member in members:
            member.pgid = pgid
        return 0

    def sys_getpgid(self, process: Process, args: tuple[int, ...]) -> int:
        target = process if args[0] == 0 else self.manager.table.get(args[0])
        return -E.ESRCH if target is None else target.pgid

    def sys_brk(self, process: Process, args: tuple[int, ...]) -> int:
        """Linux semantics: returns the new break, or the old one when the request fails."""
        wanted = args[0]
        if process.threads is not None:  # one heap per process: its leader's record keeps it
            process = process.threads.leader
        if wanted < process.brk_start or wanted > process.brk_start + BRK_LIMIT:
            return process.brk
        old_end, new_end = page_up(process.brk), page_up(wanted)
        mapped = []
        try:
            for page in range(old_end, new_end, PAGE_SIZE):
                process.aspace.map_new(page)
                mapped.append(page)
        except (PagingError, MemoryError, OSError):
            for page in mapped:
                process.aspace.unmap(page)
            return process.brk
        for page in range(new_end, old_end, PAGE_SIZE):
            process.aspace.unmap(page)
        process.brk = wanted
        return wanted

    def sys_getpriority(self, process: Process, args: tuple[int, ...]) -> int:
        target = self._priority_target(process, args[0], args[1])
        return 20 - target.sched.nice  # the raw call returns 1..40; libc turns it into nice

    def sys_setpriority(self, process: Process, args: tuple[int, ...]) -> int:
        target = self._priority_target(process, args[0], args[1])
        nice = max(NICE_MIN, min(NICE_MAX, _signed(args[2])))
        self.manager.scheduler.set_params(target, target.sched.policy, target.sched.rt_priority,
                                          nice)  # fmt: skip
        return 0

    def _priority_target(self, process: Process, which: int, who: int) -> Process:
        if which != PRIO_PROCESS:
            raise OSError(E.EINVAL, "only PRIO_PROCESS is supported")
        target = process if who == 0 else self.manager.table.get(who)
        if target is None:
            raise OSError(E.ESRCH, f"no process {who}")
        return target

    def sys_sched_yield(self, process: Process, args: tuple[int, ...]) -> int:
        process.yielded = True
        return 0

    def sys_sched_setscheduler(self, process: Process, args: tuple[int, ...]) -> int:
        target = self._priority_target(process, PRIO_PROCESS, args[0])
        (priority,) = struct.unpack("<i", copy_from_user(process.aspace, args[2], 4))
        self.manager.scheduler.set_params(target, _signed(args[1]), priority)
        return 0

    def sys_sched_getscheduler(self, process: Process, args: tuple[int, ...]) -> int:
        return int(self._priority_target(process, PRIO_PROCESS, args[0]).sched.policy)

    def sys_sched_getparam(self, process: Process, args: tuple[int, ...]) -> int:
        target = self._priority_target(process, PRIO_PROCESS, args[0])
        copy_to_user(process.aspace, args[1], struct.pack("<i", target.sched.rt_priority))
        return 0

    def sys_uname(self, process: Process, args: tuple[int, ...]) -> int:
        fields = ("TradeKernel", "tradekernel", __version__, "#1 TradeKernel", "i686", "(none)")
        blob = b"".join(value.encode().ljust(UTS_FIELD, b"\0") for value in fields)
        copy_to_user(process.aspace, args[0], blob)
        return 0

    def sys_umask(self, process: Process, args: tuple[int, ...]) -> int:
        """The mask is kept and reported (FAT stores no permission bits to apply it to)."""
        old, process.umask = process.umask, args[0] & 0o777
        return old

    def _limits(self, resource: int) -> tuple[int, int]:
        """(soft, hard) of a resource: what this kernel really bounds, infinity elsewhere."""
        if resource == RLIMIT_STACK:
            return STACK_PAGES * PAGE_SIZE, STACK_PAGES * PAGE_SIZE
        if resource == RLIMIT_NOFILE:
            return MAX_FILES, MAX_FILES
        if resource == RLIMIT_NPROC:
            return MAX_PROCESSES, MAX_PROCESSES
        if 0 <= resource < RLIM_NLIMITS:
            return RLIM_INFINITY, RLIM_INFINITY
        raise OSError(E.EINVAL, f"no resource {resource}")

    def sys_getrlimit(self, process: Process, args: tuple[int, ...]) -> int:
        copy_to_user(process.aspace, args[1], struct.pack("<II", *self._limits(args[0])))
        return 0

    def sys_prlimit64(self, process: Process, args: tuple[int, ...]) -> int:
        """Reading works for any process; the limits are the kernel's own, so a new one is
        refused (EPERM)."""
        pid, resource, new, old = args[:4]
        if pid and pid not in self.manager.table:
            return -E.ESRCH
        soft, hard = self._limits(resource)
        if new:
            return -E.EPERM
        if old:
            wide = [(1 << 64) - 1 if v == RLIM_INFINITY else v for v in (soft, hard)]
            copy_to_user(process.aspace, old, struct.pack("<QQ", *wide))
        return 0

    def sys_sysinfo(self, process: Process, args: tuple[int, ...]) -> int:
        """struct sysinfo: uptime, load averages (none kept: 0), memory in pages."""
        stats = self.manager.mm.frames.stats()
        uptime = self.kernel.clock.uptime_ns() // NS
        blob = struct.pack("<i3I6IHHIII8x", uptime, 0, 0, 0, stats.total, stats.free, 0, 0, 0, 0,
                           len(self.manager.table), 0, 0, 0, PAGE_SIZE)  # fmt: skip
        copy_to_user(process.aspace, args[0], blob)
        return 0

    def sys_prctl(self, process: Process, args: tuple[int, ...]) -> int:
        """The process's name (PR_SET_NAME/PR_GET_NAME, 16 bytes with the NUL); the rest of
        prctl's options are not supported (EINVAL, as for an unknown option)."""
        if args[0] == PR_SET_NAME:
            raw = copy_from_user(process.aspace, args[1], NAME_LENGTH + 1)
            process.name = raw.split(b"\0")[0].decode("utf-8", "replace")[:NAME_LENGTH]
            return 0
        if args[0] == PR_GET_NAME:
            encoded = process.name.encode()[:NAME_LENGTH]
            copy_to_user(process.aspace, args[1], encoded.ljust(NAME_LENGTH + 1, b"\0"))
            return 0
        return -E.EINVAL

    def sys_getrandom(self, process: Process, args: tuple[int, ...]) -> int:
        if args[2] & ~(GRND_NONBLOCK | GRND_RANDOM):
            return -E.EINVAL
        count, done = min(args[1], MAX_IO), 0
        while done < count:  # a piece at a time: a bad buffer fails before much is made
            piece = min(count - done, RANDOM_PIECE)
            try:
                copy_to_user(process.aspace, args[0] + done, self.manager.random.read(piece))
            except UserMemoryFault:
                if done:
                    break  # what was copied counts, as Linux returns a short read
                raise
            done += piece
        return done

    def sys_madvise(self, process: Process, args: tuple[int, ...]) -> int:
        """Advice is only advice, with one exception programs rely on: MADV_DONTNEED on
        private memory reads back as zeros. A range with unmapped pages is ENOMEM."""
        address, length, advice = args[:3]
        end = page_up(address + length)
        if address % PAGE_SIZE or end > 1 << 32:  # a range wrapping past 4 GiB: EINVAL
            return -E.EINVAL
        # Only user pages: below USER_BASE is the kernel's own memory (zeroing a
        # supervisor "guard page" there would wipe the kernel), and counts as unmapped.
        pages = range(max(address, USER_BASE), min(end, USER_TOP), PAGE_SIZE)
        unmapped = len(pages) * PAGE_SIZE != end - address or any(
            not process.aspace.entry(page) & PTE_P for page in pages
        )
        if advice == MADV_DONTNEED:
            for page in pages:
                entry = process.aspace.entry(page)
                if not entry & PTE_P or entry & PTE_SHARED:
                    continue
                if entry & PTE_US:  # copy-on-write pages are copied first, as by a write
                    copy_to_user(process.aspace, page, bytes(PAGE_SIZE))
                elif not entry & PTE_COW:  # PROT_NONE (a guard page): its own frame
                    self.manager.memory.write(entry & ~(PAGE_SIZE - 1), bytes(PAGE_SIZE))
        return -E.ENOMEM if unmapped else 0  # as Linux: the mapped part is advised anyway

    # ---- time ---------------------------------------------------------------------------
    def _clock_ns(self, process: Process, clock: int) -> int:
        kernel_clock = self.kernel.clock
        if clock in (CLOCK_REALTIME, CLOCK_REALTIME_COARSE):
            return self.manager.epoch_ns + kernel_clock.now_ns()
        if clock in (CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME):
            return kernel_clock.uptime_ns()
        if clock in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):
            return process.cpu_ns + kernel_clock.now_ns() - self.manager.last_entry_ns
        raise OSError(E.EINVAL, f"unknown clock {clock}")

    def sys_clock_gettime(self, process: Process, args: tuple[int, ...]) -> int:
        seconds, nanoseconds = divmod(self._clock_ns(process, args[0]), NS)
        copy_to_user(process.aspace, args[1], struct.pack("<iI", seconds, nanoseconds))
        return 0

    def sys_clock_gettime64(self, process: Process, args: tuple[int, ...]) -> int:
        seconds, nanoseconds = divmod(self._clock_ns(process, args[0]), NS)
        copy_to_user(process.aspace, args[1], struct.pack("<qq", seconds, nanoseconds))
        return 0

    def sys_gettimeofday(self, process: Process, args: tuple[int, ...]) -> int:
        if args[0]:
            seconds, nanoseconds = divmod(self._clock_ns(process, CLOCK_REALTIME), NS)
            copy_to_user(process.aspace, args[0], struct.pack("<iI", seconds, nanoseconds // 1000))
        if args[1]:
            copy_to_user(process.aspace, args[1], bytes(8))  # struct timezone: UTC
        return 0

    def sys_time(self, process: Process, args: tuple[int, ...]) -> int:
        seconds = self._clock_ns(process, CLOCK_REALTIME) // NS
        if args[0]:
            copy_to_user(process.aspace, args[0], struct.pack("<i", seconds))
        return seconds

    def sys_nanosleep(self, process: Process, args: tuple[int, ...]) -> int | None:
        return self._sleep(process, args[0], args[1], None)

    def sys_clock_nanosleep(self, process: Process, args: tuple[int, ...]) -> int | None:
        """clock_nanosleep(clock, flags, request, remain): relative, or with TIMER_ABSTIME
        until `request` on that clock (no remaining time is written then)."""
        clock, flags, request, remain = args[:4]
        if flags & ~TIMER_ABSTIME or clock in (CLOCK_THREAD_CPUTIME_ID,):
            return -E.EINVAL
        now = self._clock_ns(process, clock)  # EINVAL for an unknown clock
        return self._sleep(process, request, 0 if flags else remain,
                           now if flags & TIMER_ABSTIME else None)  # fmt: skip

    def _sleep(self, process: Process, request: int, remain: int, absolute_now: int | None
               ) -> int | None:  # fmt: skip
        """Sleep for the timespec at `request` (or until it, given the clock's time now)."""
        seconds, nanoseconds = struct.unpack("<iI", copy_from_user(process.aspace, request, 8))
        if seconds < 0 or nanoseconds >= NS:
            return -E.EINVAL
        if remain:
            copy_to_user(process.aspace, remain, bytes(8))  # EFAULT now, not after the sleep
        duration = seconds * NS + nanoseconds
        if absolute_now is not None:
            duration = max(0, duration - absolute_now)
        if duration == 0:
            process.yielded = True
            return 0
        deadline = self.kernel.clock.now_ns() + duration

        def interrupted() -> int:
            """A signal: the time left goes to `remain` (if given), and -EINTR."""
            if remain:
                left = max(0, deadline - self.kernel.clock.now_ns())
                try:
                    copy_to_user(process.aspace, remain, struct.pack("<iI", *divmod(left, NS)))
                except UserMemoryFault:
                    pass  # it was writable when the call began; the error is the EINTR
            return -E.EINTR

        token = self.manager.block(process, cancel=interrupted)
        self.kernel.call_at(deadline, lambda: self.manager.wake(process, token, 0))
        return None

    def sys_clock_getres(self, process: Process, args: tuple[int, ...]) -> int:
        """Every clock counts in nanoseconds."""
        self._clock_ns(process, args[0])
        if args[1]:
            copy_to_user(process.aspace, args[1], struct.pack("<iI", 0, 1))
        return 0

    # ---- files --------------------------------------------------------------------------
    @staticmethod
    def _file(process: Process, fd: int) -> OpenFile:
        return process.files.get(_signed(fd))

    def sys_read(self, process: Process, args: tuple[int, ...]) -> int | None:
        handle = self._file(process, args[0])
        count = min(args[2], MAX_IO)
        if count == 0:
            return 0
        return handle.read(process, args[1], count)

    def sys_write(self, process: Process, args: tuple[int, ...]) -> int:
        handle = self._file(process, args[0])
        data = copy_from_user(process.aspace, args[1], min(args[2], MAX_IO))
        return handle.write(process, data) if data else 0

    def _iovecs(self, process: Process, pointer: int, count: int) -> list[tuple[int, int]]:
        """The (base, length) pairs of a readv/writev call, cut to MAX_IO bytes in all (the
        cap is the whole call's, as Linux's MAX_RW_COUNT); a negative length or more than
        IOV_MAX vectors is EINVAL before anything is copied."""
        if count > IOV_MAX:
            raise OSError(E.EINVAL, f"{count} iovecs (at most {IOV_MAX})")
        vector = copy_from_user(process.aspace, pointer, 8 * count)
        pieces, left = [], MAX_IO
        for base, length in struct.iter_unpack("<II", vector):
            if length & 0x8000_0000:
                raise OSError(E.EINVAL, f"iovec length {length:#x}")
            if left and length:
                pieces.append((base, min(length, left)))
                left -= pieces[-1][1]
        return pieces

    def sys_writev(self, process: Process, args: tuple[int, ...]) -> int:
        handle = self._file(process, args[0])
        pieces = self._iovecs(process, args[1], args[2])
        data = b"".join(copy_from_user(process.aspace, base, size) for base, size in pieces)
        return handle.write(process, data) if data else 0

    def sys_readv(self, process: Process, args: tuple[int, ...]) -> int | None:
        """Into the first non-empty iovec only: a short read, which POSIX always allows, and
        one destination for a read that sleeps and is finished by its wake-up."""
        handle = self._file(process, args[0])
        pieces = self._iovecs(process, args[1], args[2])
        return handle.read(process, *pieces[0]) if pieces else 0

    def _path(self, process: Process, pointer: int) -> str:
        return self._path_at(process, AT_FDCWD, pointer)

    def _path_at(self, process: Process, dirfd: int, pointer: int, empty_ok: bool = False
                 ) -> str:  # fmt: skip
        """An absolute, normalised path: `pointer`'s string against the directory `dirfd`
        names (AT_FDCWD: the working directory); /proc/self becomes /proc/PID, as its
        symbolic link would. An empty string is ENOENT unless `empty_ok` (AT_EMPTY_PATH: the
        descriptor itself, as "")."""
        raw = read_user_string(process.aspace, pointer, PATH_MAX).decode("utf-8", "replace")
        if not raw:
            if empty_ok:
                return ""
            raise OSError(E.ENOENT, "empty path")
        base = process.cwd
        if not raw.startswith("/") and _signed(dirfd & 0xFFFF_FFFF) != AT_FDCWD:
            handle = self._file(process, dirfd)
            if not handle.path or not handle.stat().is_dir:
                raise OSError(E.ENOTDIR, f"fd {_signed(dirfd)} is not a directory")
            base = handle.path
        path = posixpath.normpath("/" + posixpath.join(base, raw).lstrip("/"))
        if path == "/proc/self" or path.startswith("/proc/self/"):
            path = f"/proc/{process.pid}" + path[len("/proc/self") :]
        return path

    def sys_open(self, process: Process, args: tuple[int, ...]) -> int:
        return self._open(process, self._path(process, args[0]), args[1])

    def sys_openat(self, process: Process, args: tuple[int, ...]) -> int:
        return self._open(process, self._path_at(process, args[0], args[1]), args[2])

    def _open(self, process: Process, path: str, flags: int) -> int:
        (free,) = process.files.free()
        process.files.install(free, self.vfs.open(path, flags), bool(flags & O_CLOEXEC))
        return free

    def sys_close(self, process: Process, args: tuple[int, ...]) -> int:
        return 0 if process.files.close(_signed(args[0])) is not None else -E.EBADF

    def sys_dup(self, process: Process, args: tuple[int, ...]) -> int:
        handle = self._file(process, args[0])
        (fd,) = process.files.free()
        process.files.install(fd, handle)
        return fd

    def sys_dup2(self, process: Process, args: tuple[int, ...]) -> int:
        handle = self._file(process, args[0])
        fd = _signed(args[1])
        process.files.install(fd, handle)
        return fd

    def sys_dup3(self, process: Process, args: tuple[int, ...]) -> int:
        """dup2 with O_CLOEXEC; the same descriptor twice is EINVAL (dup2 allows it)."""
        if args[2] & ~O_CLOEXEC or args[0] == args[1]:
            return -E.EINVAL
        handle = self._file(process, args[0])
        fd = _signed(args[1])
        process.files.install(fd, handle, bool(args[2] & O_CLOEXEC))
        return fd

    def sys_fcntl(self, process: Process, args: tuple[int, ...]) -> int:
        """Descriptor flags (FD_CLOEXEC), the file's status flags (O_APPEND, O_NONBLOCK:
        shared by every descriptor of the file) and F_DUPFD; record locks are refused with
        EINVAL, as a filesystem without locking does."""
        fd, command, argument = _signed(args[0]), args[1], args[2]
        handle = process.files.get(fd)
        if command in (F_DUPFD, F_DUPFD_CLOEXEC):
            (new,) = process.files.free(1, _signed(argument))
            process.files.install(new, handle, command == F_DUPFD_CLOEXEC)
            return new
        if command == F_GETFD:
            return FD_CLOEXEC if process.files.cloexec(fd) else 0
        if command == F_SETFD:
            process.files.set_cloexec(fd, bool(argument & FD_CLOEXEC))
            return 0
        if command == F_GETFL:
            return handle.status_flags
        if command == F_SETFL:
            handle.status_flags = handle.status_flags & ~STATUS_FLAGS | argument & STATUS_FLAGS
            return 0
        return -E.EINVAL

    def sys_pipe(self, process: Process, args: tuple[int, ...]) -> int:
        return self.sys_pipe2(process, (args[0], 0))

    def sys_pipe2(self, process: Process, args: tuple[int, ...]) -> int:
        """Flags O_CLOEXEC and O_NONBLOCK (O_DIRECT's packet mode is not supported: EINVAL)."""
        if args[1] & ~(O_CLOEXEC | O_NONBLOCK):
            return -E.EINVAL
        free = process.files.free(2)
        copy_to_user(process.aspace, args[0], struct.pack("<ii", *free))  # EFAULT before any fd
        read_end, write_end = Pipe(self.manager).ends()
        read_end.status_flags = O_RDONLY | args[1] & O_NONBLOCK
        write_end.status_flags = O_WRONLY | args[1] & O_NONBLOCK
        process.files.install(free[0], read_end, bool(args[1] & O_CLOEXEC))
        process.files.install(free[1], write_end, bool(args[1] & O_CLOEXEC))
        return 0

    def sys_llseek(self, process: Process, args: tuple[int, ...]) -> int:
        """_llseek: a 64-bit offset in two words, the new position written to `result`."""
        fd, high, low, result, whence = args[:5]
        offset = high << 32 | low
        if offset & 1 << 63:
            offset -= 1 << 64
        position = self._file(process, fd).seek(offset, whence)
        copy_to_user(process.aspace, result, struct.pack("<q", position))
        return 0

    def _at_offset(self, process: Process, fd: int, offset: int, work: Callable[[OpenFile], int]
                   ) -> int:  # fmt: skip
        """pread64/pwrite64: `work` at `offset`, the file's own position left as it was."""
        handle = self._file(process, fd)
        if offset < 0:
            return -E.EINVAL
        saved = handle.seek(0, SEEK_CUR)
        handle.seek(offset, SEEK_SET)
        try:
            return work(handle)
        finally:
            handle.seek(saved, SEEK_SET)

    def sys_pread64(self, process: Process, args: tuple[int, ...]) -> int | None:
        count = min(args[2], MAX_IO)
        offset = args[3] | args[4] << 32
        return self._at_offset(process, args[0], offset,
                               lambda f: f.read(process, args[1], count) or 0)  # fmt: skip

    def sys_pwrite64(self, process: Process, args: tuple[int, ...]) -> int | None:
        data = copy_from_user(process.aspace, args[1], min(args[2], MAX_IO))
        offset = args[3] | args[4] << 32
        return self._at_offset(process, args[0], offset, lambda f: f.write(process, data) or 0)

    def sys_sendfile(self, process: Process, args: tuple[int, ...], wide: bool) -> int | None:
        """sendfile(out, in, offset, count): up to `count` bytes (at most MAX_IO) from a
        regular file to any writable file, inside the kernel. With an offset pointer (a
        64-bit loff_t for sendfile64, 32-bit for sendfile) the read starts there, the
        pointer is advanced by what was written and the file position left alone; without
        one the position moves by what was written (a short or refused write, such as a
        full non-blocking pipe, gives the rest back). A writer that must wait (a full pipe)
        sleeps until all is taken; its wake-up carries the count."""
        out, source = self._file(process, args[0]), self._file(process, args[1])
        pointer, count = args[2], min(args[3], MAX_IO)
        layout = "<q" if wide else "<i"
        if out.status_flags & O_APPEND:
            return -E.EINVAL  # as Linux: sendfile never appends
        if not pointer:
            data = source.read_data(count)
            written = out.write(process, data) if data else 0
            if written is not None and written < len(data):
                source.seek(max(written, 0) - len(data), SEEK_CUR)
            return written
        (offset,) = struct.unpack(layout, copy_from_user(process.aspace, pointer, 8 if wide
                                                         else 4))  # fmt: skip
        if offset < 0:
            return -E.EINVAL
        saved = source.seek(0, SEEK_CUR)
        source.seek(offset, SEEK_SET)
        try:
            data = source.read_data(count)
        finally:
            source.seek(saved, SEEK_SET)
        written = out.write(process, data) if data else 0
        moved = len(data) if written is None else max(written, 0)
        copy_to_user(process.aspace, pointer, struct.pack(layout, offset + moved))
        return written

    def sys_lseek(self, process: Process, args: tuple[int, ...]) -> int:
        return self._file(process, args[0]).seek(_signed(args[1]), args[2])

    def _stat_path(self, process: Process, pointer: int) -> FileStat:
        return self.vfs.stat(self._path(process, pointer))

    def sys_stat(self, process: Process, args: tuple[int, ...]) -> int:
        copy_to_user(process.aspace, args[1], pack_stat(self._stat_path(process, args[0])))
        return 0

    def sys_fstat(self, process: Process, args: tuple[int, ...]) -> int:
        copy_to_user(process.aspace, args[1], pack_stat(self._file(process, args[0]).stat()))
        return 0

    def sys_stat64(self, process: Process, args: tuple[int, ...]) -> int:
        copy_to_user(process.aspace, args[1], pack_stat64(self._stat_path(process, args[0])))
        return 0

    def sys_fstat64(self, process: Process, args: tuple[int, ...]) -> int:
        copy_to_user(process.aspace, args[1], pack_stat64(self._file(process, args[0]).stat()))
        return 0

    def sys_lstat64(self, process: Process, args: tuple[int, ...]) -> int:
        copy_to_user(process.aspace, args[1], pack_stat64(self._lstat(self._path(process,
                                                                                  args[0]))))
        return 0

    def _lstat(self, path: str) -> FileStat:
        """stat without following a final symbolic link (only /proc has them)."""
        try:
            target = self.vfs.readlink(path)
        except OSError as error:
            if error.errno != E.EINVAL:
                raise
            return self.vfs.stat(path)
        return FileStat(S_IFLNK | 0o777, size=len(target.encode()))

    def sys_fstatat64(self, process: Process, args: tuple[int, ...]) -> int:
        """fstatat64(dirfd, path, buf, flags): AT_EMPTY_PATH with "" is fstat of dirfd;
        AT_SYMLINK_NOFOLLOW stats a link itself."""
        path = self._path_at(process, args[0], args[1], empty_ok=bool(args[3] & AT_EMPTY_PATH))
        if not path:
            stat = self._file(process, args[0]).stat()
        else:
            stat = self._lstat(path) if args[3] & AT_SYMLINK_NOFOLLOW else self.vfs.stat(path)
        copy_to_user(process.aspace, args[2], pack_stat64(stat))
        return 0

    def sys_access(self, process: Process, args: tuple[int, ...]) -> int:
        return self._access(process, self._path(process, args[0]), args[1])

    def sys_faccessat(self, process: Process, args: tuple[int, ...]) -> int:
        return self._access(process, self._path_at(process, args[0], args[1]), args[2])

    def _access(self, process: Process, path: str, mode: int) -> int:
        """The caller is root: any file may be read or written; X_OK needs an execute bit."""
        if mode & ~7:
            return -E.EINVAL
        stat = self.vfs.stat(path)
        if mode & X_OK and not stat.mode & 0o111:
            return -E.EACCES
        return 0

    def sys_readlink(self, process: Process, args: tuple[int, ...]) -> int:
        return self._readlink(process, self._path(process, args[0]), args[1], args[2])

    def sys_readlinkat(self, process: Process, args: tuple[int, ...]) -> int:
        path = self._path_at(process, args[0], args[1])
        return self._readlink(process, path, args[2], args[3])

    def _readlink(self, process: Process, path: str, buffer: int, size: int) -> int:
        """The target, cut to `size` bytes without a NUL, as Linux; EINVAL for a file that is
        not a symbolic link (only /proc has them)."""
        if _signed(size) <= 0:
            return -E.EINVAL
        target = self.vfs.readlink(path).encode()[:size]
        copy_to_user(process.aspace, buffer, target)
        return len(target)

    def sys_getdents64(self, process: Process, args: tuple[int, ...]) -> int:
        """struct linux_dirent64 records (d_ino, d_off, d_reclen, d_type, name), 8-aligned."""
        handle = self._file(process, args[0])
        entries = handle.directory_entries()
        start = position = handle.seek(0, SEEK_CUR)  # the directory's offset: an entry index
        out = bytearray()
        while position < len(entries):
            name, is_dir = entries[position]
            encoded = name.encode("utf-8") + b"\0"
            length = (19 + len(encoded) + 7) & ~7
            if len(out) + length > args[2]:
                break
            record = struct.pack("<QqHB", position + 1, position + 1, length,
                                 DT_DIR if is_dir else DT_REG) + encoded  # fmt: skip
            out += record.ljust(length, b"\0")
            position += 1
        if not out and position < len(entries):
            return -E.EINVAL  # the buffer cannot hold even one entry
        copy_to_user(process.aspace, args[1], bytes(out))
        if position != start:
            handle.seek(position, SEEK_SET)
        return len(out)

    # ---- the filesystem's names ----------------------------------------------------------
    def sys_mkdir(self, process: Process, args: tuple[int, ...]) -> int:
        self.vfs.mkdir(self._path(process, args[0]))
        return 0

    def sys_rmdir(self, process: Process, args: tuple[int, ...]) -> int:
        self.vfs.rmdir(self._path(process, args[0]))
        return 0

    def sys_unlink(self, process: Process, args: tuple[int, ...]) -> int:
        self.vfs.unlink(self._path(process, args[0]))
        return 0

    def sys_rename(self, process: Process, args: tuple[int, ...]) -> int:
        self.vfs.rename(self._path(process, args[0]), self._path(process, args[1]))
        return 0

    def sys_mkdirat(self, process: Process, args: tuple[int, ...]) -> int:
        self.vfs.mkdir(self._path_at(process, args[0], args[1]))
        return 0

    def sys_unlinkat(self, process: Process, args: tuple[int, ...]) -> int:
        if args[2] & ~AT_REMOVEDIR:
            return -E.EINVAL
        path = self._path_at(process, args[0], args[1])
        (self.vfs.rmdir if args[2] & AT_REMOVEDIR else self.vfs.unlink)(path)
        return 0

    def sys_renameat(self, process: Process, args: tuple[int, ...]) -> int:
        source = self._path_at(process, args[0], args[1])
        self.vfs.rename(source, self._path_at(process, args[2], args[3]))
        return 0

    def sys_fchdir(self, process: Process, args: tuple[int, ...]) -> int:
        handle = self._file(process, args[0])
        if not handle.path or not handle.stat().is_dir:
            return -E.ENOTDIR
        process.cwd = handle.path
        return 0

    def sys_chdir(self, process: Process, args: tuple[int, ...]) -> int:
        path = self._path(process, args[0])
        if not self.vfs.stat(path).is_dir:
            return -E.ENOTDIR
        process.cwd = path
        return 0

    def sys_getcwd(self, process: Process, args: tuple[int, ...]) -> int:
        encoded = process.cwd.encode() + b"\0"
        if args[1] < len(encoded):
            return -E.ERANGE
        copy_to_user(process.aspace, args[0], encoded)
        return len(encoded)

    def sys_ioctl(self, process: Process, args: tuple[int, ...]) -> int:
        """The file's own requests (the tty's settings, size, bytes waiting); ENOTTY else."""
        return self._file(process, args[0]).ioctl(process, args[1], args[2])

    # ---- memory mappings ----------------------------------------------------------------
    def sys_old_mmap(self, process: Process, args: tuple[int, ...]) -> int:
        """mmap (90): its six arguments in a struct in user memory; the offset in bytes."""
        address, length, prot, flags, fd, offset = struct.unpack(
            "<6I", copy_from_user(process.aspace, args[0], 24)
        )
        return self._mmap(process, address, length, prot, flags, fd, offset)

    def sys_mmap2(self, process: Process, args: tuple[int, ...]) -> int:
        """mmap2 (192): the offset in 4 KiB pages."""
        address, length, prot, flags, fd, pages = args
        return self._mmap(process, address, length, prot, flags, fd, pages * PAGE_SIZE)

    def _mmap(self, process: Process, address: int, length: int, prot: int, flags: int,
              fd: int, offset: int) -> int:  # fmt: skip
        """Anonymous mappings go to mm/mmap.py as they are. A private file mapping is an
        anonymous one filled from the file at `offset` (a copy: later writes to the file
        are not seen, which MAP_PRIVATE allows), then given `prot`. Only regular files map;
        shared file mappings are not supported (ENODEV either way)."""
        maps = self.manager.maps
        if flags & MAP_ANONYMOUS or flags & MAP_TYPE != MAP_PRIVATE or offset % PAGE_SIZE:
            return maps.mmap(process, address, length, prot, flags, fd, offset)
        handle = self._file(process, fd)
        if handle.stat().mode & S_IFMT != S_IFREG:  # a tty, pipe, device: nothing to map
            return -E.ENODEV
        start = maps.mmap(process, address, length, PROT_READ | PROT_WRITE,
                          flags | MAP_ANONYMOUS, 0xFFFF_FFFF, 0)  # fmt: skip
        if start < 0:
            return start
        try:
            saved = handle.seek(0, SEEK_CUR)
            try:
                handle.seek(offset, SEEK_SET)
                done = 0
                while done < length:
                    got = handle.read(process, start + done, min(length - done, MAX_IO))
                    if not got or got < 0:
                        break
                    done += got
            finally:
                handle.seek(saved, SEEK_SET)
        except OSError:
            maps.munmap(process, start, length)
            raise
        if prot != PROT_READ | PROT_WRITE:
            maps.mprotect(process, start, page_up(length), prot)
        return start

    def sys_shmctl(self, process: Process, args: tuple[int, ...]) -> int:
        result = self.manager.maps.shmctl(process, _signed(args[0]), args[1])
        if isinstance(result, bytes):
            copy_to_user(process.aspace, args[2], result)
            return 0
        return result

    def sys_ipc(self, process: Process, args: tuple[int, ...]) -> int:
        """ipc (117): the System V multiplexer older i386 libcs call shm* through."""
        call, first, second, third, pointer, _fifth = args
        maps = self.manager.maps
        if call == IPC_SHMAT:
            address = maps.shmat(process, _signed(first), pointer, second)
            if address < 0:
                return address
            copy_to_user(process.aspace, third, struct.pack("<I", address))
            return 0
        if call == IPC_SHMDT:
            return maps.shmdt(process, pointer)
        if call == IPC_SHMGET:
            return maps.shmget(process, _signed(first), second, third)
        if call == IPC_SHMCTL:
            return self.sys_shmctl(process, (first, second, pointer))
        return -E.ENOSYS


def pack_stat(stat: FileStat) -> bytes:
    """Linux i386 `struct stat` (64 bytes)."""
    return struct.pack(
        "<IIHHHHIIIIIIIIIIII", stat.device, stat.inode & 0xFFFF_FFFF, stat.mode, 1, 0, 0,
        stat.rdev, stat.size, stat.blksize, -(-stat.size // 512), stat.mtime, 0, stat.mtime, 0,
        stat.mtime, 0, 0, 0,
    )  # fmt: skip


def pack_stat64(stat: FileStat) -> bytes:
    """Linux i386 `struct stat64` (96 bytes)."""
    return struct.pack(
        "<Q4xIIIIIQ4xqIQIIIIIIQ", stat.device, stat.inode & 0xFFFF_FFFF, stat.mode, 1, 0, 0,
        stat.rdev, stat.size, stat.blksize, -(-stat.size // 512), stat.mtime, 0, stat.mtime, 0,
        stat.mtime, 0, stat.inode,
    )  # fmt: skip
