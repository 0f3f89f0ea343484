"""Memory mappings: mmap/munmap/mprotect of anonymous memory, and System V shared memory.

A process's mappings are `Region`s (page-aligned [start, end)) kept in address order on the
process. The pages themselves live in its page tables (paging.py): an anonymous mapping gets
zeroed frames at once (no demand paging, so a system call may read or write a fresh mapping
through copy_to_user like any other memory); a shared one maps the same frames into every
space that holds it, with PTE_SHARED so fork shares them instead of copying on write.

Shared memory comes in two forms:
- MAP_SHARED | MAP_ANONYMOUS: frames shared by a process and the children it forks;
- System V segments (shmget/shmat/shmdt/shmctl, direct calls 395-398 or ipc(117)): frames
  owned by a segment and attached by unrelated processes through its key or id.
A segment holds one reference to each of its frames, and every attached page one more; so a
segment marked IPC_RMID disappears, frames freed, when its last attachment goes.

mremap resizes an mmap region in place (shrinking unmaps the tail, growing maps zeroed pages
past the end if they are free) or, with MREMAP_MAYMOVE, moves its pages (the frames
themselves, copy-on-write and shared bits kept) to a new place; System V attachments and
MREMAP_DONTUNMAP are not remapped (EINVAL).
Only mmap regions are unmapped or split by munmap (the ELF image, the brk heap and the stack
are left alone, where Linux would unmap them too); mprotect works on any mapped user page.
File-backed mappings are refused with ENODEV here; the system-call layer makes a private
file mapping from an anonymous one (proc/syscalls.py `_mmap`).

Contract: the process layer calls `forked` after copying an address space, and `released`
when a process's mappings go (exit, execve), before the space is torn down.
"""

from __future__ import annotations

import bisect
import errno as E
import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from tradekernel.kernel.mm.frames import OutOfFrames
from tradekernel.kernel.mm.paging import (
    ADDRESS_MASK,
    PAGE_SIZE,
    PTE_COW,
    PTE_P,
    PTE_RW,
    PTE_SHARED,
    PTE_US,
    USER_BASE,
    PagingError,
)

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_TYPE = 0x0F
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
MMAP_BASE = 0x4000_0000  # TASK_UNMAPPED_BASE of Linux i386: searched upwards from here
MMAP_LIMIT = 0xBF00_0000  # below the user stack and its room to grow (elf.STACK_TOP)
IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
IPC_RMID, IPC_SET, IPC_STAT = 0, 1, 2
IPC_64 = 0x100
SHM_RDONLY = 0o10000
SHM_RND = 0o20000
SHMMNI = 64  # segments system-wide
SHMMAX = 32 << 20  # bytes in one segment
SHMID_DS64 = struct.Struct("<iIIIIHHHHII" + "I" * 7 + "iiIII")  # struct shmid64_ds, 84 bytes


@dataclass(eq=False)
class ShmSegment:
    shmid: int
    key: int
    size: int
    mode: int
    creator: int
    frames: list[int]
    created_s: int
    attachments: int = 0
    last_pid: int = 0
    attached_s: int = 0
    detached_s: int = 0
    removed: bool = False


@dataclass(eq=False)
class Region:
    start: int
    end: int
    segment: ShmSegment | None = None  # a System V attachment
    shared: bool = False  # MAP_SHARED (anonymous, or a segment)


@dataclass
class ProcessMaps:
    """The mappings of one process, sorted by start address."""

    regions: list[Region] = field(default_factory=list)

    def add(self, region: Region) -> None:
        bisect.insort(self.regions, region, key=lambda r: r.start)

    def overlapping(self, start: int, end: int) -> list[Region]:
        return [r for r in self.regions if r.start < end and start < r.end]


def _page_range(start: int, length: int) -> tuple[int, int]:
    return start, start + ((length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))


def _batched(method: Callable[..., int]) -> Callable[..., int]:
    """A mapping call whose page changes cost one TLB flush, not one per page
    (Paging.batched_invalidation)."""

    @functools.wraps(method)
    def call(self, process, *args: int) -> int:  # noqa: ANN001 - MemoryMaps, Process
        with process.aspace.paging.batched_invalidation():
            return method(self, process, *args)

    return call


class MemoryMaps:
    """The mmap and shared-memory service (one per kernel)."""

    def __init__(self, frames, memory, wall_seconds) -> None:  # noqa: ANN001
        self._frames = frames  # the frame allocator
        self._memory = memory  # guest physical memory
        self._wall_seconds = wall_seconds  # () -> int: the clock for shmid_ds times
        self.segments: dict[int, ShmSegment] = {}
        self._next_id = 0

    # ---- mmap ---------------------------------------------------------------------------
    @_batched
    def mmap(self, process, address: int, length: int, prot: int, flags: int, fd: int,
             offset: int) -> int:  # fmt: skip  # noqa: ANN001 - Process
        """Linux mmap: the mapping's address, or -errno."""
        kind = flags & MAP_TYPE
        if length == 0 or kind not in (MAP_SHARED, MAP_PRIVATE) or offset % PAGE_SIZE:
            return -E.EINVAL
        if not flags & MAP_ANONYMOUS:
            return -E.EBADF if fd & 0x8000_0000 else -E.ENODEV
        size = _page_range(0, length)[1]
        if size > MMAP_LIMIT - MMAP_BASE or size // PAGE_SIZE > self._frames.free_count:
            return -E.ENOMEM  # before touching a page: no mapping larger than free memory
        start = self._place(process, address, size, bool(flags & MAP_FIXED))
        if start < 0:
            return start
        shared = kind == MAP_SHARED
        if flags & MAP_FIXED:
            self.munmap(process, start, size)
        pages = range(start, start + size, PAGE_SIZE)
        if any(process.aspace.entry(page) & PTE_P for page in pages):
            return -E.ENOMEM  # MAP_FIXED over the image, brk or stack: not replaced here
        writable, user = bool(prot & PROT_WRITE), prot != 0
        mapped: list[int] = []
        try:
            for page in pages:
                process.aspace.map_new(page, writable, user, shared=shared)
                mapped.append(page)
        except (OutOfFrames, PagingError):
            for page in mapped:
                process.aspace.unmap(page)
            return -E.ENOMEM
        process.maps.add(Region(start, start + size, shared=shared))
        return start

    def _place(self, process, hint: int, size: int, fixed: bool) -> int:  # noqa: ANN001
        """Where a new mapping of `size` bytes goes: the hint when it fits (it must, with
        MAP_FIXED), else the lowest free gap from MMAP_BASE."""
        if fixed:
            if hint % PAGE_SIZE or not USER_BASE <= hint or hint + size > MMAP_LIMIT:
                return -E.EINVAL
            return hint
        hint &= ~(PAGE_SIZE - 1)
        if MMAP_BASE <= hint and hint + size <= MMAP_LIMIT and self._free(process, hint, size):
            return hint
        candidate = MMAP_BASE
        for region in process.maps.regions:
            if region.end <= candidate:
                continue
            if region.start >= candidate + size and self._free(process, candidate, size):
                return candidate
            candidate = max(candidate, region.end)
        while candidate + size <= MMAP_LIMIT:
            if self._free(process, candidate, size):
                return candidate
            candidate += PAGE_SIZE * 256
        return -E.ENOMEM

    @staticmethod
    def _free(process, start: int, size: int) -> bool:  # noqa: ANN001
        if process.maps.overlapping(start, start + size):
            return False
        return not any(
            process.aspace.entry(page) & PTE_P for page in range(start, start + size, PAGE_SIZE)
        )

    @_batched
    def munmap(self, process, address: int, length: int) -> int:  # noqa: ANN001
        if address % PAGE_SIZE or length == 0 or address + length > 1 << 32:
            return -E.EINVAL
        start, end = _page_range(address, length)
        for region in process.maps.overlapping(start, end):
            cut_start, cut_end = max(start, region.start), min(end, region.end)
            for page in range(cut_start, cut_end, PAGE_SIZE):
                if process.aspace.entry(page) & PTE_P:
                    process.aspace.unmap(page)
            process.maps.regions.remove(region)
            pieces = [
                Region(a, b, region.segment, region.shared)
                for a, b in ((region.start, cut_start), (cut_end, region.end))
                if a < b
            ]
            for piece in pieces:
                process.maps.add(piece)
            if region.segment is not None:
                self._attachments_changed(region.segment, len(pieces) - 1, process.pid)
        return 0

    @_batched
    def mremap(self, process, old: int, old_size: int, new_size: int, flags: int,
               new: int) -> int:  # fmt: skip  # noqa: ANN001 - Process
        """Linux mremap of one mmap region: the (maybe new) address, or -errno."""
        if (old % PAGE_SIZE or flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED) or new_size == 0
                or flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE):  # fmt: skip
            return -E.EINVAL
        old_end = _page_range(old, old_size)[1]
        size = _page_range(0, new_size)[1]
        if old_size == 0 or old_end > 1 << 32 or size > MMAP_LIMIT - MMAP_BASE:
            return -E.EINVAL if old_size == 0 or old_end > 1 << 32 else -E.ENOMEM
        region = next((r for r in process.maps.overlapping(old, old_end)
                       if r.start <= old and old_end <= r.end), None)  # fmt: skip
        if region is None:
            return -E.EFAULT  # not inside one mapping
        if region.segment is not None:
            return -E.EINVAL
        if flags & MREMAP_FIXED:
            if new % PAGE_SIZE or new < old_end and old < new + size:
                return -E.EINVAL
            return self._move(process, region, old, old_end, new, size, fixed=True)
        if size <= old_end - old:
            if size < old_end - old:
                self.munmap(process, old + size, old_end - old - size)
            return old
        grow_end = old + size
        if (
            old_end == region.end
            and grow_end <= MMAP_LIMIT
            and self._free(process, old_end, grow_end - old_end)
        ):
            if (grow_end - old_end) // PAGE_SIZE > self._frames.free_count:
                return -E.ENOMEM
            writable, user = self._page_rights(process, old_end - PAGE_SIZE)
            mapped: list[int] = []
            try:
                for page in range(old_end, grow_end, PAGE_SIZE):
                    process.aspace.map_new(page, writable, user, shared=region.shared)
                    mapped.append(page)
            except (OutOfFrames, PagingError):
                for page in mapped:
                    process.aspace.unmap(page)
                return -E.ENOMEM
            region.end = grow_end
            return old
        if not flags & MREMAP_MAYMOVE:
            return -E.ENOMEM
        return self._move(process, region, old, old_end, 0, size, fixed=False)

    @staticmethod
    def _page_rights(process, page: int) -> tuple[bool, bool]:  # noqa: ANN001
        """(writable, user) of a mapped page, copy-on-write counting as writable."""
        entry = process.aspace.entry(page)
        return bool(entry & (PTE_RW | PTE_COW)), bool(entry & PTE_US)

    def _move(self, process, region: Region, old: int, old_end: int, new: int, size: int,
              fixed: bool) -> int:  # fmt: skip  # noqa: ANN001 - Process
        """Move [old, old_end) to a place of `size` bytes (`new` if fixed): the frames
        themselves; a larger size gets zeroed pages after them, a smaller drops the rest."""
        keep = min(size, old_end - old)
        extra = (size - keep) // PAGE_SIZE
        if extra > self._frames.free_count:
            return -E.ENOMEM
        if fixed:
            if new + size > MMAP_LIMIT or new < USER_BASE:
                return -E.EINVAL
            self.munmap(process, new, size)
            if not self._free(process, new, size):
                return -E.ENOMEM  # the image, brk or stack is there: not replaced here
            start = new
        else:
            start = self._place(process, 0, size, False)
            if start < 0:
                return start
        writable, user = self._page_rights(process, old)
        aspace, frames = process.aspace, self._frames
        for offset in range(0, keep, PAGE_SIZE):
            entry = aspace.entry(old + offset)
            if not entry & PTE_P:
                continue
            frame = entry & ADDRESS_MASK
            frames.ref(frame)  # held across the unmap, handed to the new mapping
            aspace.unmap(old + offset)
            aspace.map(start + offset, frame, bool(entry & PTE_RW), bool(entry & PTE_US),
                       shared=bool(entry & PTE_SHARED))  # fmt: skip
            if entry & PTE_COW:
                aspace.protect(start + offset, writable=True)  # copy-on-write again
        for offset in range(keep, size, PAGE_SIZE):
            aspace.map_new(start + offset, writable, user, shared=region.shared)
        self.munmap(process, old, old_end - old)  # the region's bookkeeping (pages are gone)
        process.maps.add(Region(start, start + size, shared=region.shared))
        return start

    @_batched
    def mprotect(self, process, address: int, length: int, prot: int) -> int:  # noqa: ANN001
        if address % PAGE_SIZE or prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
            return -E.EINVAL
        start, end = _page_range(address, length)
        pages = range(start, end, PAGE_SIZE)
        if any(not process.aspace.entry(page) & PTE_P for page in pages):
            return -E.ENOMEM
        for page in pages:
            process.aspace.protect(page, writable=bool(prot & PROT_WRITE), user=prot != 0)
        return 0

    # ---- System V shared memory ---------------------------------------------------------
    def shmget(self, process, key: int, size: int, flags: int) -> int:  # noqa: ANN001
        if key != IPC_PRIVATE:
            found = next((s for s in self.segments.values() if s.key == key and not s.removed),
                         None)  # fmt: skip
            if found is not None:
                if flags & IPC_CREAT and flags & IPC_EXCL:
                    return -E.EEXIST
                return -E.EINVAL if size > found.size else found.shmid
            if not flags & IPC_CREAT:
                return -E.ENOENT
        if not 1 <= size <= SHMMAX:
            return -E.EINVAL
        if _page_range(0, size)[1] // PAGE_SIZE > self._frames.free_count:
            return -E.ENOMEM
        if len(self.segments) >= SHMMNI:
            return -E.ENOSPC
        frames: list[int] = []
        try:
            for _ in range(_page_range(0, size)[1] // PAGE_SIZE):
                frame = self._frames.alloc()
                frames.append(frame)
                self._memory.write(frame, bytes(PAGE_SIZE))
        except OutOfFrames:
            for frame in frames:
                self._frames.free(frame)
            return -E.ENOMEM
        self._next_id += 1
        segment = ShmSegment(self._next_id, key, size, flags & 0o777, process.pid, frames,
                             self._wall_seconds())  # fmt: skip
        self.segments[segment.shmid] = segment
        return segment.shmid

    def shmat(self, process, shmid: int, address: int, flags: int) -> int:  # noqa: ANN001
        segment = self.segments.get(shmid)
        if segment is None or segment.removed:
            return -E.EINVAL
        if address and flags & SHM_RND:
            address &= ~(PAGE_SIZE - 1)
        size = len(segment.frames) * PAGE_SIZE
        start = self._place(process, address, size, fixed=bool(address))
        if start < 0:
            return start
        if not self._free(process, start, size):
            return -E.EINVAL
        writable = not flags & SHM_RDONLY
        mapped: list[int] = []
        for page, frame in zip(range(start, start + size, PAGE_SIZE), segment.frames,
                               strict=True):  # fmt: skip
            self._frames.ref(frame)
            try:
                process.aspace.map(page, frame, writable, True, shared=True)
            except (OutOfFrames, PagingError):  # no frame for a page table: undo it all
                self._frames.free(frame)
                for done in mapped:
                    process.aspace.unmap(done)
                return -E.ENOMEM
            mapped.append(page)
        process.maps.add(Region(start, start + size, segment, shared=True))
        segment.attached_s = self._wall_seconds()
        self._attachments_changed(segment, 1, process.pid)
        return start

    def shmdt(self, process, address: int) -> int:  # noqa: ANN001
        region = next((r for r in process.maps.regions
                       if r.start == address and r.segment is not None), None)  # fmt: skip
        if region is None:
            return -E.EINVAL
        return self.munmap(process, region.start, region.end - region.start)

    def shmctl(self, process, shmid: int, command: int) -> bytes | int:  # noqa: ANN001
        """IPC_RMID -> 0; IPC_STAT (IPC_64 layout only) -> the struct's bytes; else -errno."""
        segment = self.segments.get(shmid)
        if segment is None:
            return -E.EINVAL
        command, layout64 = command & ~IPC_64, bool(command & IPC_64)
        if command == IPC_RMID:
            segment.removed = True
            segment.key = IPC_PRIVATE  # a removed segment can no longer be found by its key
            self._attachments_changed(segment, 0, process.pid)
            return 0
        if command == IPC_STAT:
            if not layout64:
                return -E.EINVAL
            return SHMID_DS64.pack(
                segment.key, 0, 0, 0, 0, segment.mode | (0o1000 if segment.removed else 0), 0,
                0, 0, 0, 0, segment.size, segment.attached_s, 0, segment.detached_s, 0,
                segment.created_s, 0, segment.creator, segment.last_pid, segment.attachments, 0,
                0,
            )  # fmt: skip
        return -E.EINVAL

    def _attachments_changed(self, segment: ShmSegment, delta: int, pid: int) -> None:
        segment.attachments += delta
        segment.last_pid = pid
        if delta < 0:
            segment.detached_s = self._wall_seconds()
        if segment.removed and segment.attachments == 0:
            for frame in segment.frames:
                self._frames.free(frame)
            segment.frames = []
            del self.segments[segment.shmid]

    # ---- process lifetime ---------------------------------------------------------------
    def forked(self, parent, child) -> None:  # noqa: ANN001 - Process
        """The child's space is a copy of the parent's: so are its regions."""
        for region in parent.maps.regions:
            child.maps.add(Region(region.start, region.end, region.segment, region.shared))
            if region.segment is not None:
                self._attachments_changed(region.segment, 1, child.pid)

    def released(self, process) -> None:  # noqa: ANN001 - Process
        """The process's mappings go with its address space (exit, execve)."""
        regions, process.maps.regions = process.maps.regions, []
        for region in regions:
            if region.segment is not None:
                self._attachments_changed(region.segment, -1, process.pid)
