"""/proc: the process table and the kernel's figures as files, the way Linux programs read them.

A `ProcFs` is a vfs.Filesystem (mounted at /proc by main.py). Its files are made when opened,
from the state at that moment (a later read does not change under the reader, as Linux's
seq_file snapshot at open), and it is read-only (EROFS for anything that would change it;
EACCES for a write open).

    /proc/meminfo, cpuinfo, uptime    memory (frames), the CPU, seconds up and idle
    /proc/PID/                        one directory per process: stat, status, cmdline, comm,
                                      exe (a symbolic link to the program), cwd (to its
                                      working directory), fd/ (one link per descriptor),
                                      maps (its mapped ranges: "x" wherever "r" is, as i386
                                      without NX executes any readable page)

/proc/self is resolved by the system-call layer (it is a link to the caller's directory).
Formats follow Linux's proc(5) for the fields busybox's ps, top and free read; fields this
kernel does not keep (page-fault counts, a tty number) are 0, as Linux writes them for a
kernel without the feature.

Imports: fs.vfs and mm (user memory, page bits, the stack's place); the process layer is
passed in (anything with `table`, `mm`, `kernel`, and Process records), never imported.
"""

from __future__ import annotations

import errno as E

from tradekernel.kernel.fs.bytesfile import BytesFile
from tradekernel.kernel.fs.vfs import (
    O_ACCMODE,
    O_CREAT,
    S_IFDIR,
    S_IFREG,
    DirectoryFile,
    FileStat,
    OpenFile,
)
from tradekernel.kernel.mm.paging import (
    PAGE_SIZE,
    PTE_COW,
    PTE_RW,
    PTE_SHARED,
    USER_STACK_PAGES,
    USER_TOP,
)

PROC_DEVICE = 4  # the anonymous device number /proc reports
S_IFLNK = 0o120000
CLOCK_TICKS = 100  # USER_HZ: the unit of /proc/PID/stat's times (elf.CLOCK_TICKS_PER_SECOND)
NS = 1_000_000_000
GLOBAL_FILES = ("cpuinfo", "meminfo", "uptime")
PROCESS_FILES = ("cmdline", "comm", "cwd", "exe", "fd", "maps", "stat", "status")
LINKS = ("cwd", "exe")
STATE_NAMES = {"R": "R (running)", "S": "S (sleeping)", "T": "T (stopped)", "Z": "Z (zombie)"}


def proc_file(data: bytes) -> BytesFile:
    """A /proc file: its text made at open; fstat says size 0, as Linux does."""
    return BytesFile(data, device=PROC_DEVICE, size=0)


class ProcFs:
    """/proc as a vfs.Filesystem over the process manager."""

    def __init__(self, manager) -> None:  # noqa: ANN001 - proc.process.ProcessManager
        self.manager = manager

    # ---- names ----------------------------------------------------------------------------
    def _split(self, path: str) -> tuple[object, list[str]]:
        """(the process, or None for the top level, and the rest of the path's parts);
        ENOENT for a name /proc does not have."""
        parts = [part for part in path.split("/") if part]
        if not parts:
            return None, []
        if _is_number(parts[0]):
            process = self.manager.table.get(int(parts[0]))
            if process is None:
                raise OSError(E.ENOENT, f"/proc{path}: no such process")
            rest = parts[1:]
            if rest and (rest[0] not in PROCESS_FILES or len(rest) > 2 or len(rest) == 2
                         and (rest[0] != "fd" or not self._fd_target(process, rest[1]))):
                raise OSError(E.ENOENT, f"/proc{path}: no such file")  # fmt: skip
            return process, rest
        if len(parts) == 1 and parts[0] in GLOBAL_FILES:
            return None, parts
        raise OSError(E.ENOENT, f"/proc{path}: no such file")

    @staticmethod
    def _fd_target(process, name: str) -> str:  # noqa: ANN001 - Process
        if not _is_number(name):
            return ""
        for fd, file in process.files.items():
            if fd == int(name):
                return file.path or f"anon_inode:[{type(file).__name__}]"
        return ""

    # ---- the Filesystem calls -------------------------------------------------------------
    def open(self, path: str, flags: int) -> OpenFile:
        if flags & O_ACCMODE or flags & O_CREAT:
            raise OSError(E.EACCES, f"/proc{path}: read-only")
        process, rest = self._split(path)
        if process is None and not rest:
            names = [(str(pid), True) for pid in sorted(self.manager.table)]
            return DirectoryFile(names + [("self", False)] + [(n, False) for n in GLOBAL_FILES],
                                 "/proc", PROC_DEVICE)  # fmt: skip
        if process is None:
            return proc_file(getattr(self, f"_{rest[0]}")().encode())
        if not rest or rest == ["fd"]:
            if not rest:
                entries = [(name, name == "fd") for name in PROCESS_FILES]
            else:
                entries = [(str(fd), False) for fd, _ in process.files.items()]
            return DirectoryFile(entries, f"/proc/{process.pid}/" + "/".join(rest),
                                 PROC_DEVICE)  # fmt: skip
        if rest[0] in LINKS or rest[0] == "fd":
            target = self.readlink(path)
            return self.manager.kernel.vfs.open(target, flags)  # following the link
        return proc_file(getattr(self, f"_process_{rest[0]}")(process))

    def stat(self, path: str) -> FileStat:
        process, rest = self._split(path)
        if not rest or rest == ["fd"]:
            return FileStat(S_IFDIR | 0o555, device=PROC_DEVICE, inode=_inode(path))
        if process is not None and (rest[0] in LINKS or rest[0] == "fd"):
            return self.manager.kernel.vfs.stat(self.readlink(path))  # stat follows links
        return FileStat(S_IFREG | 0o444, device=PROC_DEVICE, inode=_inode(path))

    def readlink(self, path: str) -> str:
        process, rest = self._split(path)
        if process is None or not rest or rest == ["fd"] or rest[0] not in (*LINKS, "fd"):
            raise OSError(E.EINVAL, f"/proc{path}: not a symbolic link")
        if rest[0] == "exe":
            return process.exe
        if rest[0] == "cwd":
            return process.cwd
        return self._fd_target(process, rest[1])

    def _refuse(self, path: str) -> None:
        raise OSError(E.EROFS, f"/proc{path}: read-only")

    mkdir = rmdir = unlink = _refuse

    def rename(self, source: str, target: str) -> None:
        self._refuse(source)

    # ---- the global files -----------------------------------------------------------------
    def _meminfo(self) -> str:
        stats = self.manager.mm.frames.stats()
        kib = 4  # KiB per frame
        return (
            f"MemTotal:       {stats.total * kib:8} kB\n"
            f"MemFree:        {stats.free * kib:8} kB\n"
            f"MemAvailable:   {stats.free * kib:8} kB\n"
            f"Buffers:        {0:8} kB\n"
            f"Cached:         {0:8} kB\n"
            f"Shared:         {stats.shared * kib:8} kB\n"
            f"SwapTotal:      {0:8} kB\n"
            f"SwapFree:       {0:8} kB\n"
        )

    def _cpuinfo(self) -> str:
        return (
            "processor\t: 0\nvendor_id\t: TradeKernel\ncpu family\t: 6\nmodel\t\t: 0\n"
            "model name\t: TradeKernel emulated i686 (Unicorn)\nfpu\t\t: yes\n"
            "flags\t\t: fpu tsc cx8 cmov mmx fxsr sse sse2\n\n"
        )

    def _uptime(self) -> str:
        up = self.manager.kernel.clock.uptime_ns()
        idle = self.manager.kernel_cpu_ns
        return f"{_seconds(up)} {_seconds(idle)}\n"

    # ---- per process ----------------------------------------------------------------------
    @staticmethod
    def _process_cmdline(process) -> bytes:  # noqa: ANN001
        return b"".join(arg.encode() + b"\0" for arg in process.argv)

    @staticmethod
    def _process_comm(process) -> bytes:  # noqa: ANN001
        return process.name.encode() + b"\n"

    def _process_stat(self, process) -> bytes:  # noqa: ANN001
        ticks = process.cpu_ns * CLOCK_TICKS // NS
        pages = sum(1 for _ in process.aspace.mapped_pages()) if process.state.value != "zombie" \
            else 0  # fmt: skip
        fields = [
            process.pid, f"({process.name})", process.letter, process.ppid, process.pgid,
            process.pgid, 0, -1, 0, 0, 0, 0, 0, ticks, 0, 0, 0, 20 + process.sched.nice,
            process.sched.nice, 1, 0, 0, pages * 4096, pages,
        ]  # fmt: skip
        return (" ".join(str(field) for field in fields) + " 0" * 28 + "\n").encode()

    @staticmethod
    def _process_maps(process) -> bytes:  # noqa: ANN001
        """Runs of present user pages with the same rights, named as Linux names them."""
        if process.state.value == "zombie":
            return b""
        runs: list[list[int]] = []  # [start, end, writable, shared]
        for vaddr, pte in process.aspace.mapped_pages():
            writable = bool(pte & (PTE_RW | PTE_COW))  # a copy-on-write page is writable
            shared = bool(pte & PTE_SHARED)
            if runs and runs[-1][1] == vaddr and runs[-1][2:] == [writable, shared]:
                runs[-1][1] = vaddr + PAGE_SIZE
            else:
                runs.append([vaddr, vaddr + PAGE_SIZE, writable, shared])
        lines = []
        for start, end, writable, shared in runs:
            name = ""
            if start >= USER_TOP - USER_STACK_PAGES * PAGE_SIZE:
                name = "[stack]"
            elif process.brk_start <= start < max(process.brk, process.brk_start + 1):
                name = "[heap]"
            elif start < process.brk_start:
                name = process.exe
            rights = "rw" if writable else "r-"
            lines.append(f"{start:08x}-{end:08x} {rights}x{'s' if shared else 'p'} 00000000 "
                         f"00:00 0          {name}".rstrip())  # fmt: skip
        return ("\n".join(lines) + "\n").encode() if lines else b""

    @staticmethod
    def _process_status(process) -> bytes:  # noqa: ANN001
        return (
            f"Name:\t{process.name}\nState:\t{STATE_NAMES[process.letter]}\n"
            f"Tgid:\t{process.tgid}\nPid:\t{process.pid}\nPPid:\t{process.ppid}\n"
            f"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
            f"Threads:\t{len(process.threads.members) if process.threads else 1}\n"
        ).encode()


def _is_number(name: str) -> bool:
    """ASCII digits only: str.isdigit also takes "²", which int() refuses (ValueError)."""
    return name.isascii() and name.isdigit()


def _inode(path: str) -> int:
    """A stable inode number per /proc path (the same in every run)."""
    value = 0
    for byte in path.encode():
        value = (value * 131 + byte) & 0x7FFF_FFFF
    return value


def _seconds(ns: int) -> str:
    """Seconds with two decimals, as /proc/uptime writes them."""
    return f"{ns // NS}.{ns // 10_000_000 % 100:02}"
