"""The shell's memory commands: memstats, memleak, memcheck and pgstats (the kernel heap and
paging, mm/), and ipcs (System V shared memory, mm/mmap.py).

They only read the memory services' own reports; nothing here changes memory.

Imports: shell (Output, UsageError) and mm.
"""

from __future__ import annotations

from tradekernel.kernel.mm.heap import format_memcheck, format_memleak, format_memstats
from tradekernel.kernel.mm.memory import KernelMemory
from tradekernel.kernel.mm.mmap import MemoryMaps
from tradekernel.kernel.shell.shell import Output, Shell, UsageError, wrap_items


class MemoryCommands:
    def __init__(self, mm: KernelMemory) -> None:
        self.heap = mm.heap
        self.paging = mm.paging

    def register_commands(self, shell: Shell) -> None:
        for name, handler, usage, text in (
            ("memstats", self._memstats, "memstats", "kernel heap use, fragmentation, peak"),
            ("memleak", self._memleak, "memleak [N]", "live heap blocks by tag, oldest first"),
            ("memcheck", self._memcheck, "memcheck", "verify every heap block and canary"),
            ("pgstats", self._pgstats, "pgstats", "physical frames, page tables, page faults"),
        ):
            shell.register(name, handler, usage, text)

    def _memstats(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        for line in format_memstats(self.heap.memstats()):
            out.line(line)
        return 0

    def _memleak(self, args: list[str], out: Output) -> int:
        per_tag = 5
        if args:
            if len(args) > 1 or not args[0].isdigit():
                raise UsageError("N must be a number of blocks to show per tag")
            per_tag = int(args[0])
        for line in format_memleak(self.heap.memleak(), per_tag):
            out.line(line)
        return 0

    def _memcheck(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        result = self.heap.memcheck()
        for line in format_memcheck(result):
            out.line(line)
        return 0 if result.ok else 1

    def _pgstats(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        stats = self.paging.pgstats()
        out.line(
            f"frames: {stats.frames_total} total, {stats.frames_used} used, "
            f"{stats.frames_free} free, {stats.frames_shared} shared (4 KiB each)"
        )
        out.line(f"page tables: {stats.page_tables}  address spaces: {stats.address_spaces}")
        faults = [f"{kind} {count}" for kind, count in sorted(stats.faults.items())]
        for line in wrap_items("page faults:", faults or ["none"]):
            out.line(line)
        return 0


def register_ipcs(shell: Shell, maps: MemoryMaps) -> None:
    """`ipcs`: the System V shared-memory segments."""

    def ipcs(args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        if not maps.segments:
            out.line("no shared-memory segments")
            return 0
        out.line(f"{'SHMID':>5} {'KEY':>10} {'BYTES':>9} {'NATTCH':>6} {'CPID':>5} STATUS")
        for segment in maps.segments.values():
            status = "removed" if segment.removed else ""
            out.line(f"{segment.shmid:>5} {segment.key:#010x} {segment.size:>9} "
                     f"{segment.attachments:>6} {segment.creator:>5} {status}")  # fmt: skip
        return 0

    shell.register("ipcs", ipcs, "ipcs", "System V shared-memory segments")
