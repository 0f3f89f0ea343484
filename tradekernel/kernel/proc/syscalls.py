"""The system-call table: Linux i386 numbers -> handlers, reached by `int 0x80` from ring 3.

ABI (Linux i386): EAX = number, EBX, ECX, EDX, ESI, EDI, EBP = arguments 1-6, result in EAX;
-errno (-4095..-1) is an error. The table is explicit (number -> name, handler), as xv6's
syscall.c; an unknown number returns -ENOSYS and is logged once per number.

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
from tradekernel.kernel.fs.pipe import Pipe
from tradekernel.kernel.fs.vfs import SEEK_CUR, SEEK_SET, FileStat, OpenFile
from tradekernel.kernel.mm.frames import BadFrame
from tradekernel.kernel.mm.heap import HeapCorruption
from tradekernel.kernel.mm.paging import (
    PAGE_SIZE,
    PagingError,
    UserMemoryFault,
    UserStringTooLong,
    copy_from_user,
    copy_to_user,
    read_user_string,
)
from tradekernel.kernel.proc.elf import page_up
from tradekernel.kernel.proc.process import (
    ARGUMENT_MAX,
    MAX_ARGUMENTS,
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
AT_FDCWD = -100
DT_DIR, DT_REG = 4, 8
UTS_FIELD = 65
NS = 1_000_000_000
RUSAGE_SIZE = 72  # struct rusage on i386
IPC_SHMAT, IPC_SHMDT, IPC_SHMGET, IPC_SHMCTL = 21, 22, 23, 24  # ipc(2)'s call numbers


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


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
        signals = manager.signals
        self.table: dict[int, tuple[str, Handler]] = {
            1: ("exit", self.sys_exit),
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
            20: ("getpid", lambda p, a: p.pid),
            27: ("alarm", signals.sys_alarm),
            29: ("pause", signals.sys_pause),
            37: ("kill", signals.sys_kill),
            38: ("rename", self.sys_rename),
            39: ("mkdir", self.sys_mkdir),
            40: ("rmdir", self.sys_rmdir),
            41: ("dup", self.sys_dup),
            42: ("pipe", self.sys_pipe),
            45: ("brk", self.sys_brk),
            54: ("ioctl", self.sys_ioctl),
            63: ("dup2", self.sys_dup2),
            64: ("getppid", lambda p, a: p.ppid),
            65: ("getpgrp", lambda p, a: p.pgid),
            78: ("gettimeofday", self.sys_gettimeofday),
            90: ("mmap", self.sys_old_mmap),
            91: ("munmap", lambda p, a: self.manager.maps.munmap(p, a[0], a[1])),
            96: ("getpriority", self.sys_getpriority),
            97: ("setpriority", self.sys_setpriority),
            106: ("stat", self.sys_stat),
            108: ("fstat", self.sys_fstat),
            114: ("wait4", self.sys_wait4),
            117: ("ipc", self.sys_ipc),
            119: ("sigreturn", signals.sys_sigreturn),
            120: ("clone", self.sys_clone),
            122: ("uname", self.sys_uname),
            125: ("mprotect", lambda p, a: self.manager.maps.mprotect(p, a[0], a[1], a[2])),
            132: ("getpgid", self.sys_getpgid),
            145: ("readv", self.sys_readv),
            146: ("writev", self.sys_writev),
            155: ("sched_getparam", self.sys_sched_getparam),
            156: ("sched_setscheduler", self.sys_sched_setscheduler),
            157: ("sched_getscheduler", self.sys_sched_getscheduler),
            158: ("sched_yield", self.sys_sched_yield),
            159: ("sched_get_priority_max", lambda p, a: _priority_bound(a[0], RT_PRIORITY_MAX)),
            160: ("sched_get_priority_min", lambda p, a: _priority_bound(a[0], RT_PRIORITY_MIN)),
            162: ("nanosleep", self.sys_nanosleep),
            173: ("rt_sigreturn", signals.sys_rt_sigreturn),
            174: ("rt_sigaction", signals.sys_rt_sigaction),
            175: ("rt_sigprocmask", signals.sys_rt_sigprocmask),
            176: ("rt_sigpending", signals.sys_rt_sigpending),
            179: ("rt_sigsuspend", signals.sys_rt_sigsuspend),
            183: ("getcwd", self.sys_getcwd),
            192: ("mmap2", self.sys_mmap2),
            195: ("stat64", self.sys_stat64),
            197: ("fstat64", self.sys_fstat64),
            199: ("getuid32", lambda p, a: 0),
            200: ("getgid32", lambda p, a: 0),
            201: ("geteuid32", lambda p, a: 0),
            202: ("getegid32", lambda p, a: 0),
            220: ("getdents64", self.sys_getdents64),
            224: ("gettid", lambda p, a: p.pid),
            238: ("tkill", signals.sys_tkill),
            252: ("exit_group", self.sys_exit),
            258: ("set_tid_address", lambda p, a: p.pid),
            265: ("clock_gettime", self.sys_clock_gettime),
            270: ("tgkill", signals.sys_tgkill),
            295: ("openat", self.sys_openat),
            331: ("pipe2", self.sys_pipe2),
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
        self.manager.exit(process, args[0])
        return None

    def sys_clone(self, process: Process, args: tuple[int, ...]) -> int:
        """Only clone's fork form: flags SIGCHLD and no new stack (what libc's fork does)."""
        if args[0] != SIGCHLD or args[1]:
            return -E.ENOSYS
        return self.manager.fork(process)

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

    def sys_getpgid(self, process: Process, args: tuple[int, ...]) -> int:
        target = process if args[0] == 0 else self.manager.table.get(args[0])
        return -E.ESRCH if target is None else target.pgid

    def sys_brk(self, process: Process, args: tuple[int, ...]) -> int:
        """Linux semantics: returns the new break, or the old one when the request fails."""
        wanted = args[0]
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
        seconds, nanoseconds = struct.unpack("<iI", copy_from_user(process.aspace, args[0], 8))
        if seconds < 0 or nanoseconds >= NS:
            return -E.EINVAL
        if args[1]:
            copy_to_user(process.aspace, args[1], bytes(8))  # EFAULT now, not after the sleep
        duration = seconds * NS + nanoseconds
        if duration == 0:
            process.yielded = True
            return 0
        deadline = self.kernel.clock.now_ns() + duration

        def interrupted() -> int:
            """A signal: the time left goes to `remaining` (if given), and -EINTR."""
            if args[1]:
                left = max(0, deadline - self.kernel.clock.now_ns())
                try:
                    copy_to_user(process.aspace, args[1], struct.pack("<iI", *divmod(left, NS)))
                except UserMemoryFault:
                    pass  # it was writable when the call began; the error is the EINTR
            return -E.EINTR

        token = self.manager.block(process, cancel=interrupted)
        self.kernel.call_at(deadline, lambda: self.manager.wake(process, token, 0))
        return None

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
        raw = read_user_string(process.aspace, pointer, PATH_MAX)
        if not raw:
            raise OSError(E.ENOENT, "empty path")
        joined = posixpath.join(process.cwd, raw.decode("utf-8", "replace"))
        return posixpath.normpath("/" + joined.lstrip("/"))

    def sys_open(self, process: Process, args: tuple[int, ...]) -> int:
        return self._open(process, self._path(process, args[0]), args[1])

    def sys_openat(self, process: Process, args: tuple[int, ...]) -> int:
        path = self._path(process, args[1])
        if _signed(args[0]) != AT_FDCWD and not path.startswith("/"):
            return -E.ENOTSUP
        return self._open(process, path, args[2])

    def _open(self, process: Process, path: str, flags: int) -> int:
        (free,) = process.files.free()
        process.files.install(free, self.vfs.open(path, flags))
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

    def sys_pipe(self, process: Process, args: tuple[int, ...]) -> int:
        return self.sys_pipe2(process, (args[0], 0))

    def sys_pipe2(self, process: Process, args: tuple[int, ...]) -> int:
        """Flags (O_CLOEXEC, O_NONBLOCK, O_DIRECT) are not supported: EINVAL."""
        if args[1]:
            return -E.EINVAL
        free = process.files.free(2)
        copy_to_user(process.aspace, args[0], struct.pack("<ii", *free))  # EFAULT before any fd
        read_end, write_end = Pipe(self.manager).ends()
        process.files.install(free[0], read_end)
        process.files.install(free[1], write_end)
        return 0

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
        return self.manager.maps.mmap(process, address, length, prot, flags, fd, offset)

    def sys_mmap2(self, process: Process, args: tuple[int, ...]) -> int:
        """mmap2 (192): the offset in 4 KiB pages."""
        address, length, prot, flags, fd, pages = args
        return self.manager.maps.mmap(process, address, length, prot, flags, fd,
                                      pages * PAGE_SIZE)  # fmt: skip

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
