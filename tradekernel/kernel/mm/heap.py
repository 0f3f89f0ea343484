"""The kernel heap: kmalloc/kfree/krealloc/kcalloc over a region of guest physical memory.

Contract
--------
* Blocks live in guest RAM with boundary tags, so memory is the truth and `memcheck()` can walk
  it. The Python side keeps a mirror (live allocations, free blocks by address and by size) only
  to make best fit and coalescing O(log n); `memcheck()` proves mirror and memory agree.
* Errors are exceptions, never a crash and never a silent 0: every failure raises a subclass
  of `HeapError` with a message naming the block (address, tag, size, site) and an `errno`
  (ENOMEM, EINVAL, EFAULT) the system-call layer can return. `kfree(0)` is a no-op.
* Every allocation records its `tag` (the service that asked), an optional `site` string the
  caller supplies (e.g. "net/arp.py:42"; empty by default, since finding the caller's line on
  every call would cost more than the allocation) and the virtual time from `now_ns()`.
  Double frees are named with the block's tag for the last 4096-8192 frees; an older one is
  still refused, as a pointer into free memory.
* A pointer is the payload address (16-byte aligned, or `align` when asked). When an overrun or
  underrun is found at `kfree` the block is still released (its real size comes from the mirror)
  and `HeapCorruption` is raised afterwards to report the damage.

Block layout (every block a multiple of 16 bytes, 16-byte aligned, little endian)
----------------------------------------------------------------------------------
    used:  +0  u32 HEAD_MAGIC      free:  +0  u32 HEAD_MAGIC
           +4  u32 size | USED            +4  u32 size
           +8  u32 requested size         ... (contents undefined; a free block may be
           +12 u32 ~(size | USED)              as small as 16 bytes: header + footer)
           +16 16-byte front canary
           +32 payload (requested size)
           ... canary bytes up to the footer (at least 8)
       end-8   u32 size | USED, u32 FOOT_MAGIC     (free: u32 size, u32 FOOT_MAGIC)

Fast path: when the memory object offers `view()` -- a writable memoryview whose index is the
guest physical address -- every access is one `struct.pack_into`/slice on it; a kmalloc costs
at most three writes and a kfree two reads and two writes. The machine provides that view over
the very buffer Unicorn maps as RAM (`mem_map_ptr`), so the CPU and the heap see the same bytes.
Without `view()` the plain `read(address, size)`/`write(address, data)` protocol is used.
"""

from __future__ import annotations

import functools
import struct
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tradekernel.hypercall import EFAULT, EINVAL
from tradekernel.memmap import KERNEL_HEAP_BASE, KERNEL_HEAP_SIZE

ENOMEM = 12

GRANULE = 16
HEADER = 32  # 16 bytes of header words + 16 bytes of front canary
FOOTER = 8
MIN_BACK_CANARY = 8
OVERHEAD = HEADER + MIN_BACK_CANARY + FOOTER
MAX_ALIGN = 4096
USED = 1
HEAD_MAGIC = 0x4B48_4254  # "TBHK"
FOOT_MAGIC = 0x4B46_4254  # "TBFK"
CANARY_BYTE = 0xFD
_M32 = 0xFFFF_FFFF
_FRONT_CANARY = bytes([CANARY_BYTE]) * (HEADER - 16)
_FREE_HEAD = struct.Struct("<II")
_HEAD_WORDS = struct.Struct("<IIII")
_FOOT = struct.Struct("<II")
_USED_HEAD = struct.Struct(f"<IIII{HEADER - 16}s")
_HEAD_BYTES = struct.Struct(f"{HEADER}s")
_FOOT_THEN_HEAD = struct.Struct(f"<II{HEADER}s")
_FREED_HISTORY = 4096  # frees remembered per generation, to name the block in a double free
_SHAPE_CACHE_LIMIT = 4096


class GuestMemory(Protocol):
    """Guest physical memory as the kernel sees it (the devices' PhysicalMemory protocol).

    A memory object may also offer `view() -> memoryview`, writable, indexed by physical address;
    kernel services use it when present for speed and fall back to read/write otherwise.
    """

    def read(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes) -> None: ...


def guest_view(memory: GuestMemory, end: int) -> memoryview | None:
    """The memory's byte view if it offers one that covers [0, end), else None (plain protocol)."""
    view_method = getattr(memory, "view", None)
    if view_method is None:
        return None
    view = view_method()
    if not isinstance(view, memoryview) or view.readonly or view.itemsize != 1:
        raise TypeError("memory.view() must return a writable byte memoryview")
    if view.format != "B":
        view = view.cast("B")  # e.g. a ctypes char buffer: slices must take bytes
    if len(view) < end:
        raise ValueError(f"memory.view() covers {len(view):#x} bytes, need {end:#x}")
    return view


def heap_size_for_ram(ram_size: int) -> int:
    """The heap size policy: 4 MiB, or an eighth of RAM when that is larger (page multiple);
    on a machine too small for that (under 9 MiB), half of the RAM above the heap's base, so
    the other half is left for page tables and user frames."""
    return min(max(KERNEL_HEAP_SIZE, (ram_size // 8)), (ram_size - KERNEL_HEAP_BASE) // 2) & ~0xFFF


class HeapError(Exception):
    """Any heap failure; `errno` is what a system call reports for it."""

    errno = EINVAL


class InvalidRequest(HeapError):
    """A size, count, alignment or tag the heap cannot honour (0, negative, too big, not 2**k)."""


class OutOfMemory(HeapError, MemoryError):
    """No free block is large enough (the heap may still have that many free bytes, fragmented)."""

    errno = ENOMEM


class BadPointer(HeapError):
    """kfree/krealloc of something that is not a live allocation's payload address."""

    errno = EFAULT


class DoubleFree(BadPointer):
    """The pointer was returned by the heap but has already been freed."""


class HeapCorruption(HeapError):
    """Guest memory of the heap does not hold what the heap wrote: an overrun, underrun or stray
    write. `problem` names the first damaged block."""

    errno = EFAULT

    def __init__(self, problem: HeapProblem) -> None:
        super().__init__(problem.describe())
        self.problem = problem


@dataclass(frozen=True)
class HeapProblem:
    """One broken invariant: where (block address), whose (tag, site, size) and what."""

    address: int
    what: str
    tag: str = ""
    size: int | None = None
    site: str = ""

    def describe(self) -> str:
        owner = f" '{self.tag}'" if self.tag else ""
        size = f" size {self.size}" if self.size is not None else ""
        site = f" allocated at {self.site}" if self.site else ""
        return f"heap block {self.address:#010x}{owner}{size}{site}: {self.what}"


@dataclass(frozen=True)
class Allocation:
    """A live allocation as reported by `allocation()` and `memleak()`."""

    address: int  # the payload pointer kmalloc returned
    size: int  # bytes requested
    tag: str
    site: str
    time_ns: int
    align: int
    block: int  # address of the block header
    block_size: int


@dataclass(frozen=True)
class LeakGroup:
    tag: str
    count: int
    bytes: int
    allocations: list[Allocation]  # oldest first


@dataclass(frozen=True)
class HeapStats:
    total: int  # bytes in the region
    used: int  # bytes in used blocks, headers and canaries included
    requested: int  # payload bytes the live allocations asked for
    free: int
    largest_free: int
    free_blocks: int
    fragmentation: float  # 1 - largest_free / free (0 when nothing or one block is free)
    allocations: int  # successful kmalloc/kcalloc (and moving krealloc) since start
    frees: int
    live: int
    peak_used: int


@dataclass
class MemcheckResult:
    ok: bool
    blocks: int
    used_blocks: int
    free_blocks: int
    problems: list[HeapProblem] = field(default_factory=list)


# A live record: (block, block size, requested, tag, site, time_ns, align, head, tail, tail
# struct), where head and tail are the exact bytes written before and after the payload (checked
# at kfree) and the struct reads or writes the tail in one call.
_Record = tuple[int, int, int, str, str, int, int, bytes, bytes, struct.Struct]


@functools.cache
def _bytes_struct(length: int) -> struct.Struct:
    """A packer for `length` raw bytes: pack_into/unpack_from on a memoryview are the cheapest
    way to move a byte string in or out of guest memory (no slice object is built)."""
    return struct.Struct(f"{length}s")


def _block_size(requested: int) -> int:
    return (requested + OVERHEAD + GRANULE - 1) & ~(GRANULE - 1)


# A shape: (block size, head bytes, tail bytes, tail struct) for one (block size, request).
_Shape = tuple[int, bytes, bytes, struct.Struct]


def _shape(n: int, size: int) -> _Shape:
    """The bytes of a used block of size n holding `size` bytes: header + front canary, and
    back canary (up to the footer) + footer."""
    sf = n | USED
    head = _USED_HEAD.pack(HEAD_MAGIC, sf, size, sf ^ _M32, _FRONT_CANARY)
    tail = bytes([CANARY_BYTE]) * (n - HEADER - FOOTER - size) + _FOOT.pack(sf, FOOT_MAGIC)
    return n, head, tail, _bytes_struct(len(tail))


class KernelHeap:
    """A best-fit, boundary-tagged heap with canaries, in guest RAM at [base, base + size).

    Mirror: the free block that starts at `base` is the "top" block, tracked by `_top_end`
    alone (allocations are carved from the high end of a free block, so its start never moves);
    every other free block is in `_free_start`/`_free_end` and in a size bin. Best fit compares
    the smallest fitting binned block with the top block, so the top block costs no bin updates
    on the common path and the choice is still the smallest block that fits.
    """

    __slots__ = (
        "base", "size", "end", "_memory", "_now", "_mv", "_max_request", "_live", "_top_end",
        "_free_start", "_free_end", "_bins", "_sizes", "_freed", "_freed_older", "_shapes",
        "_used", "_peak", "_allocs",
    )  # fmt: skip

    def __init__(
        self,
        memory: GuestMemory,
        now_ns: Callable[[], int],
        base: int = KERNEL_HEAP_BASE,
        size: int = KERNEL_HEAP_SIZE,
    ) -> None:
        if base % GRANULE or base <= 0:
            raise ValueError(f"heap base {base:#x} must be a positive multiple of {GRANULE}")
        size &= ~(GRANULE - 1)
        if size < 4096 or base + size > 1 << 32:
            raise ValueError(f"heap size {size:#x} at {base:#x} must be >= 4 KiB and below 4 GiB")
        self.base = base
        self.size = size
        self.end = base + size
        self._memory = memory
        self._now = now_ns
        self._mv = guest_view(memory, self.end)
        self._max_request = size - OVERHEAD
        self._live: dict[int, _Record] = {}  # payload pointer -> record
        self._top_end = self.end  # the top block is [base, _top_end); empty when equal
        self._free_start: dict[int, int] = {}  # start -> size, top block excluded
        self._free_end: dict[int, int] = {}  # end -> start, top block excluded
        self._bins: dict[int, dict[int, None]] = {}  # size -> starts (an ordered set)
        self._sizes: list[int] = []  # sorted sizes that have a bin
        self._freed: dict[int, _Record] = {}  # recent frees, to name a double free's block
        self._freed_older: dict[int, _Record] = {}
        self._shapes: dict[int, _Shape] = {}  # requested size -> its block's shape
        self._used = 0
        self._peak = 0
        self._allocs = 0
        self._write_free(base, size)

    # ----------------------------------------------------------------- allocation

    def kmalloc(self, size: int, tag: str, align: int = GRANULE, site: str = "") -> int:
        """Allocate `size` bytes for service `tag`; returns the payload address (never 0).

        Raises InvalidRequest for a bad size/alignment/tag, OutOfMemory when nothing fits.
        """
        shape = self._shapes.get(size)
        if shape is None or tag.__class__ is not str or align != GRANULE:
            return self._kmalloc_checked(size, tag, align, site)
        n, head, tail, tail_bytes = shape
        base = self.base
        top_size = self._top_end - base
        sizes = self._sizes
        i = bisect_left(sizes, n)
        mv = self._mv
        if i < len(sizes) and (sizes[i] <= top_size or top_size < n):
            b = self._carve_binned(i, n, head)
        elif top_size >= n:
            b = self._top_end = base + top_size - n
            rest = top_size - n
            if mv is None:
                self._carve_writes(base, rest, b, head)
            elif rest:
                _FREE_HEAD.pack_into(mv, base, HEAD_MAGIC, rest)
                _FOOT_THEN_HEAD.pack_into(mv, b - FOOTER, rest, FOOT_MAGIC, head)
            else:
                _HEAD_BYTES.pack_into(mv, b, head)
        else:
            raise self._out_of_memory(size, tag)
        p = b + HEADER
        if mv is not None:
            tail_bytes.pack_into(mv, p + size, tail)
        else:
            self._memory.write(p + size, tail)
        self._live[p] = (b, n, size, tag, site, self._now(), GRANULE, head, tail, tail_bytes)
        used = self._used + n
        self._used = used
        if used > self._peak:
            self._peak = used
        self._allocs += 1
        return p

    def kcalloc(self, count: int, size: int, tag: str, align: int = GRANULE, site: str = "") -> int:
        """kmalloc(count * size) with the payload zeroed; the product is checked, not wrapped."""
        for name, value in (("count", count), ("size", size)):
            if value.__class__ is not int or value <= 0:
                raise InvalidRequest(f"kcalloc({count!r}, {size!r}) for '{tag}': bad {name}")
        total = count * size
        if total > self._max_request:
            raise InvalidRequest(
                f"kcalloc({count}, {size}) for '{tag}': {total} bytes exceeds the heap"
            )
        p = self.kmalloc(total, tag, align, site)
        self._put(p, bytes(total))
        return p

    def kfree(self, ptr: int) -> None:
        """Release an allocation. kfree(0) does nothing; anything else not live raises."""
        rec = self._live.pop(ptr, None)
        if rec is None:
            error = self._bad_pointer(ptr, "kfree")
            if error is not None:
                raise error
            return
        b, n, req, _tag, _site, _time, _align, head, tail, tail_bytes = rec
        mv = self._mv
        if (
            mv is None
            or _HEAD_BYTES.unpack_from(mv, b)[0] != head
            or tail_bytes.unpack_from(mv, ptr + req)[0] != tail
        ):
            self._free_checked(ptr, rec)
            return
        self._used -= n
        freed = self._freed
        freed[ptr] = rec
        if len(freed) >= _FREED_HISTORY:
            self._freed_older = freed
            self._freed = {}
        end = b + n
        if b == self._top_end and end not in self._free_start:
            # The common case, written out: the block joins the top block below it.
            size = end - self.base
            self._top_end = end
            _FREE_HEAD.pack_into(mv, self.base, HEAD_MAGIC, size)
            _FOOT.pack_into(mv, end - FOOTER, size, FOOT_MAGIC)
        else:
            self._release(b, n)

    def _free_checked(self, ptr: int, rec: _Record) -> None:
        """kfree's careful path: plain memory, or a block whose header or canaries changed.
        The block is released either way (the mirror knows its true size); damage is raised."""
        problem = self._check_used(rec)
        self._used -= rec[1]
        self._freed[ptr] = rec
        self._release(rec[0], rec[1])
        if problem is not None:
            raise HeapCorruption(problem)

    def krealloc(self, ptr: int, size: int) -> int:
        """Resize an allocation, in place when it can (shrinking, or growing into a free next
        block), else by moving it (same tag, site and alignment; contents kept up to the smaller
        size). On any error the old allocation is left untouched and still valid."""
        rec = self._live.get(ptr)
        if rec is None:
            raise self._bad_pointer(ptr, "krealloc") or BadPointer("krealloc(0): null pointer")
        b, n, req, tag, site, _t, align = rec[:7]
        if size.__class__ is not int or not 0 < size <= self._max_request:
            raise InvalidRequest(f"krealloc({ptr:#x}, {size!r}) for '{tag}': bad size")
        problem = self._check_used(rec)
        if problem is not None:
            raise HeapCorruption(problem)
        need = _block_size(size)
        if need <= n:
            if n - need >= GRANULE:
                self._set_used(rec, need, size)
                self._used -= n - need
                self._release(b + need, n - need)
            else:
                self._set_used(rec, n, size)
            return ptr
        nxt = self._free_start.get(b + n)
        if nxt is not None and n + nxt >= need:
            self._remove_free(b + n, nxt)
            rest = n + nxt - need
            if rest:
                self._add_free(b + need, rest)
                self._write_free(b + need, rest)
            self._set_used(rec, need, size)
            self._used += need - n
            self._peak = max(self._peak, self._used)
            return ptr
        new = self.kmalloc(size, tag, align, site)
        self._put(new, self._get(ptr, min(req, size)))
        self.kfree(ptr)
        return new

    # ----------------------------------------------------------------- inspection

    def allocation(self, ptr: int) -> Allocation | None:
        """The live allocation whose payload starts at `ptr`, if any."""
        rec = self._live.get(ptr)
        return None if rec is None else _allocation(ptr, rec)

    def free_blocks(self) -> list[tuple[int, int]]:
        """Every free block as (start, size), in address order (from the mirror)."""
        blocks = sorted(self._free_start.items())
        if self._top_end > self.base:
            blocks.insert(0, (self.base, self._top_end - self.base))
        return blocks

    def memstats(self) -> HeapStats:
        free = self.size - self._used
        largest = max(self._sizes[-1] if self._sizes else 0, self._top_end - self.base)
        return HeapStats(
            total=self.size,
            used=self._used,
            requested=sum(rec[2] for rec in self._live.values()),
            free=free,
            largest_free=largest,
            free_blocks=len(self._free_start) + (self._top_end > self.base),
            fragmentation=(1.0 - largest / free) if free else 0.0,
            allocations=self._allocs,
            frees=self._allocs - len(self._live),
            live=len(self._live),
            peak_used=self._peak,
        )

    def memleak(self) -> list[LeakGroup]:
        """Live allocations grouped by tag; groups and their members ordered oldest first."""
        by_tag: dict[str, list[Allocation]] = {}
        for ptr, rec in self._live.items():
            by_tag.setdefault(rec[3], []).append(_allocation(ptr, rec))
        groups = []
        for tag, allocations in by_tag.items():
            allocations.sort(key=lambda a: (a.time_ns, a.address))
            total = sum(a.size for a in allocations)
            groups.append(LeakGroup(tag, len(allocations), total, allocations))
        groups.sort(key=lambda g: (g.allocations[0].time_ns, g.tag))
        return groups

    def memcheck(self) -> MemcheckResult:
        """Walk every block in guest memory and check every invariant against the mirror."""
        if self._mv is not None:
            data: bytes | memoryview = self._mv[self.base : self.end]
        else:
            data = self._memory.read(self.base, self.size)
        walk = _Walk(self, data)
        walk.run()
        return MemcheckResult(
            ok=not walk.problems,
            blocks=walk.used + walk.free,
            used_blocks=walk.used,
            free_blocks=walk.free,
            problems=walk.problems,
        )

    # ----------------------------------------------------------------- internals

    def _kmalloc_checked(self, size: object, tag: object, align: object, site: str) -> int:
        """The slow path: validate everything, learn the size's shape, honour alignment."""
        if tag.__class__ is not str or not tag:
            raise InvalidRequest(f"kmalloc: tag must be a non-empty string, got {tag!r}")
        if size.__class__ is not int or size <= 0:
            raise InvalidRequest(f"kmalloc({size!r}) for '{tag}': size must be a positive int")
        if size > self._max_request:
            raise InvalidRequest(
                f"kmalloc({size}) for '{tag}': larger than the whole heap ({self.size} bytes)"
            )
        if align.__class__ is not int or align <= 0 or align & (align - 1) or align > MAX_ALIGN:
            raise InvalidRequest(
                f"kmalloc({size}, align={align!r}) for '{tag}': alignment must be a power of two"
                f" up to {MAX_ALIGN}"
            )
        assert isinstance(size, int) and isinstance(tag, str) and isinstance(align, int)
        n = _block_size(size)
        if align <= GRANULE:
            if len(self._shapes) >= _SHAPE_CACHE_LIMIT:
                self._shapes.clear()
            self._shapes[size] = _shape(n, size)
            return self.kmalloc(size, tag, GRANULE, site)
        for a, s in sorted(self.free_blocks(), key=lambda block: block[1]):
            p = (a + s - n + HEADER) & -align
            if s >= n and p - HEADER >= a:
                return self._claim(a, s, p - HEADER, n, size, tag, align, site)
        raise self._out_of_memory(size, tag, align)

    def _carve_binned(self, i: int, n: int, head: bytes) -> int:
        """Take the top n bytes of a block from bin `_sizes[i]`; returns the used block start."""
        sizes = self._sizes
        s = sizes[i]
        bins = self._bins
        bin_ = bins[s]
        a = bin_.popitem()[0]
        if not bin_:
            del bins[s]
            del sizes[i]
        e = a + s
        b = e - n
        rest = s - n
        free_end = self._free_end
        del free_end[e]
        if rest:
            self._free_start[a] = rest
            free_end[b] = a
            other = bins.get(rest)
            if other is None:
                bins[rest] = {a: None}
                insort(sizes, rest)
            else:
                other[a] = None
        else:
            del self._free_start[a]
        self._carve_writes(a, rest, b, head)
        return b

    def _carve_writes(self, a: int, rest: int, b: int, head: bytes) -> None:
        """Guest writes for a carve: the shrunk free block's tags, then the new block's header."""
        mv = self._mv
        if mv is not None:
            if rest:
                _FREE_HEAD.pack_into(mv, a, HEAD_MAGIC, rest)
                _FOOT_THEN_HEAD.pack_into(mv, b - FOOTER, rest, FOOT_MAGIC, head)
            else:
                _HEAD_BYTES.pack_into(mv, b, head)
            return
        if rest:
            self._write_free(a, rest)
        self._memory.write(b, head)

    def _claim(
        self, a: int, s: int, b: int, n: int, size: int, tag: str, align: int, site: str
    ) -> int:
        """Turn [b, b + n) of free block [a, a + s) into a used block; the pieces stay free."""
        self._remove_free(a, s)
        for start, length in ((a, b - a), (b + n, a + s - b - n)):
            if length:
                self._add_free(start, length)
                self._write_free(start, length)
        shape = self._write_used(b, n, size)
        self._live[b + HEADER] = (b, n, size, tag, site, self._now(), align, *shape[1:])
        self._used += n
        self._peak = max(self._peak, self._used)
        self._allocs += 1
        return b + HEADER

    def _set_used(self, rec: _Record, n: int, size: int) -> None:
        """Rewrite a live block in place with a new block size and requested size."""
        b = rec[0]
        shape = self._write_used(b, n, size)
        self._live[b + HEADER] = (b, n, size, *rec[3:7], *shape[1:])

    def _write_used(self, b: int, n: int, size: int) -> _Shape:
        shape = _shape(n, size)
        self._put(b, shape[1])
        self._put(b + HEADER + size, shape[2])
        return shape

    def _release(self, b: int, n: int) -> None:
        """Make [b, b + n) free, merging it with free neighbours (found through the mirror).

        The bin updates are written out rather than calling _remove_free/_add_free: this runs
        on every kfree and each avoided call is a measurable share of it.
        """
        free_start = self._free_start
        free_end = self._free_end
        bins = self._bins
        base = self.base
        end = b + n
        if b == self._top_end:
            start = base  # merges with the top block (or, at base, becomes it)
        else:
            start = free_end.pop(b, None)
            if start is None:
                start = b
            else:
                size = b - start
                del free_start[start]
                bin_ = bins[size]
                del bin_[start]
                if not bin_:
                    del bins[size]
                    del self._sizes[bisect_left(self._sizes, size)]
        size = free_start.pop(end, None)
        if size is not None:
            bin_ = bins[size]
            del bin_[end]
            if not bin_:
                del bins[size]
                del self._sizes[bisect_left(self._sizes, size)]
            end += size
            del free_end[end]
        size = end - start
        if start == base:
            self._top_end = end
        else:
            free_start[start] = size
            free_end[end] = start
            bin_ = bins.get(size)
            if bin_ is None:
                bins[size] = {start: None}
                insort(self._sizes, size)
            else:
                bin_[start] = None
        mv = self._mv
        if mv is not None:
            _FREE_HEAD.pack_into(mv, start, HEAD_MAGIC, size)
            _FOOT.pack_into(mv, end - FOOTER, size, FOOT_MAGIC)
        else:
            self._write_free(start, size)

    def _add_free(self, start: int, size: int) -> None:
        """Enter a free block in the mirror (no guest write, no coalescing)."""
        if start == self.base:
            self._top_end = start + size
            return
        self._free_start[start] = size
        self._free_end[start + size] = start
        bin_ = self._bins.get(size)
        if bin_ is None:
            self._bins[size] = {start: None}
            insort(self._sizes, size)
        else:
            bin_[start] = None

    def _remove_free(self, start: int, size: int) -> None:
        if start == self.base:
            self._top_end = self.base
            return
        del self._free_start[start]
        del self._free_end[start + size]
        bin_ = self._bins[size]
        del bin_[start]
        if not bin_:
            del self._bins[size]
            del self._sizes[bisect_left(self._sizes, size)]

    def _free_size_at(self, start: int) -> int | None:
        """The mirror's size for a free block starting at `start`, or None."""
        if start == self.base:
            return (self._top_end - start) or None
        return self._free_start.get(start)

    def _write_free(self, start: int, size: int) -> None:
        self._put(start, _FREE_HEAD.pack(HEAD_MAGIC, size))
        self._put(start + size - FOOTER, _FOOT.pack(size, FOOT_MAGIC))

    def _check_used(self, rec: _Record) -> HeapProblem | None:
        """What is wrong with a live block in guest memory, or None if it is intact."""
        b, n, req, tag, site = rec[:5]
        return _used_block_problem(b, self._get(b, n), 0, n, req, tag, site)

    def _bad_pointer(self, ptr: object, op: str) -> HeapError | None:
        """Classify a pointer that is not live: None for the null pointer, else the error."""
        if ptr.__class__ is not int:
            return BadPointer(f"{op}({ptr!r}): not an address")
        assert isinstance(ptr, int)
        if ptr == 0:
            return None
        if not self.base + HEADER <= ptr < self.end:
            return BadPointer(f"{op}({ptr:#x}): outside the heap [{self.base:#x}, {self.end:#x})")
        if ptr % GRANULE:
            return BadPointer(f"{op}({ptr:#x}): misaligned, never returned by kmalloc")
        for p, rec in self._live.items():
            if rec[0] <= ptr < rec[0] + rec[1]:
                return BadPointer(
                    f"{op}({ptr:#x}): not the start of a block; inside '{rec[3]}' block "
                    f"{rec[0]:#x} (payload {p:#x}, size {rec[2]})"
                )
        old = self._freed.get(ptr) or self._freed_older.get(ptr)
        if old is not None:
            return DoubleFree(
                f"{op}({ptr:#x}): double free of '{old[3]}' block {old[0]:#x} size {old[2]}"
                + (f" allocated at {old[4]}" if old[4] else "")
            )
        return BadPointer(f"{op}({ptr:#x}): inside free memory, never returned by kmalloc")

    def _out_of_memory(self, size: int, tag: str, align: int = GRANULE) -> OutOfMemory:
        stats = self.memstats()
        return OutOfMemory(
            f"kmalloc({size}, align={align}) for '{tag}': no free block fits "
            f"(free {stats.free} bytes, largest block {stats.largest_free})"
        )

    def _put(self, address: int, data: bytes) -> None:
        if self._mv is not None:
            self._mv[address : address + len(data)] = data
        else:
            self._memory.write(address, data)

    def _get(self, address: int, size: int) -> bytes:
        if self._mv is not None:
            return self._mv[address : address + size].tobytes()
        return self._memory.read(address, size)


def _allocation(ptr: int, rec: _Record) -> Allocation:
    b, n, size, tag, site, t, align = rec[:7]
    return Allocation(ptr, size, tag, site, t, align, b, n)


def _used_block_problem(
    b: int, data: bytes | memoryview, off: int, n: int, req: int, tag: str, site: str
) -> HeapProblem | None:
    """The first thing wrong with the used block of size n at data[off:] (address b), or None.

    Checks are ordered so the report names the likely culprit: the canaries first (an underrun
    or overrun of this block), then the header and footer words.
    """

    def problem(what: str) -> HeapProblem:
        return HeapProblem(b, what, tag, req, site)

    front = bytes(data[off + 16 : off + HEADER])
    if front != _FRONT_CANARY:
        first = next(i for i, byte in enumerate(front) if byte != CANARY_BYTE)
        return problem(f"underrun: front canary damaged at payload start -{HEADER - 16 - first}")
    fill_start = off + HEADER + req
    fill = bytes(data[fill_start : off + n - FOOTER])
    if fill.count(CANARY_BYTE) != len(fill):
        first = next(i for i, byte in enumerate(fill) if byte != CANARY_BYTE)
        return problem(f"overrun: back canary damaged at payload end +{first}")
    magic, sf, stored_req, check = _HEAD_WORDS.unpack_from(data, off)
    if magic != HEAD_MAGIC:
        return problem(f"header magic {magic:#010x}, expected {HEAD_MAGIC:#010x}")
    if sf != n | USED or check != sf ^ _M32:
        return problem(f"header size word {sf:#x} (check {check:#x}), expected {n | USED:#x}")
    if stored_req != req:
        return problem(f"header says requested size {stored_req}, heap recorded {req}")
    foot_sf, foot_magic = _FOOT.unpack_from(data, off + n - FOOTER)
    if foot_magic != FOOT_MAGIC or foot_sf != n | USED:
        return problem(f"footer ({foot_sf:#x}, {foot_magic:#010x}) disagrees with the header")
    return None


class _Walk:
    """One memcheck pass over a snapshot of the heap region."""

    def __init__(self, heap: KernelHeap, data: bytes | memoryview) -> None:
        self.heap = heap
        self.data = data
        self.problems: list[HeapProblem] = []
        self.used = 0
        self.free = 0

    def report(self, address: int, what: str) -> None:
        """A problem with a free block or the bookkeeping (no tag: no one owns it)."""
        self.problems.append(HeapProblem(address, what))

    def run(self) -> None:
        heap = self.heap
        base = heap.base
        live_by_block = {rec[0]: rec for rec in heap._live.values()}
        address = base
        prev_free = False
        while address < heap.end:
            off = address - base
            rec = live_by_block.get(address)
            size = self.check_block(address, off, rec, prev_free)
            if size is None:
                return  # the chain is broken here and the mirror cannot bridge it
            prev_free = rec is None and heap._free_size_at(address) == size
            address += size
        if address != heap.end:
            self.report(address, f"block sizes overrun the region end {heap.end:#x}")
            return
        self.check_mirror(live_by_block)

    def check_block(
        self, address: int, off: int, rec: _Record | None, prev_free: bool
    ) -> int | None:
        """Check the block at `address`; returns its size (from memory, or the mirror when the
        header is damaged) or None when the walk cannot continue."""
        heap = self.heap
        data = self.data
        if heap.end - address < GRANULE:
            self.report(address, "truncated block at the region end")
            return None
        magic, sf, req, check = _HEAD_WORDS.unpack_from(data, off)
        if rec is not None:
            self.used += 1
            n = rec[1]
            problem = _used_block_problem(address, data, off, n, rec[2], rec[3], rec[4])
            if problem is not None:
                self.problems.append(problem)
            return n
        free_size = heap._free_size_at(address)
        header_ok = magic == HEAD_MAGIC and (not sf & USED or check == sf ^ _M32)
        size = sf & ~(GRANULE - 1)
        if header_ok and sf & USED:
            self.report(address, "used block in memory that the heap never allocated")
            size_ok = size >= OVERHEAD and address + size <= heap.end
            return size if size_ok else free_size
        if not header_ok or size != free_size:
            if free_size is None:
                self.report(address, f"no valid header (magic {magic:#010x}, word {sf:#x})")
                return None
            self.report(address, f"free block header damaged (expected size {free_size})")
            self.free += 1
            return free_size
        self.free += 1
        if address != heap.base and address not in heap._bins.get(size, {}):
            self.report(address, "free block missing from its size bin")
        foot_sf, foot_magic = _FOOT.unpack_from(data, off + size - FOOTER)
        if foot_magic != FOOT_MAGIC or foot_sf != size:
            self.report(address, f"free block footer ({foot_sf:#x}, {foot_magic:#010x}) wrong")
        if prev_free:
            self.report(address, "two adjacent free blocks (coalescing missed)")
        return size

    def check_mirror(self, live_by_block: dict[int, _Record]) -> None:
        heap = self.heap
        listed = len(heap.free_blocks())
        if self.free != listed:
            self.report(heap.base, f"free list has {listed} blocks, memory holds {self.free}")
        binned = sum(len(b) for b in heap._bins.values())
        if binned != len(heap._free_start) or heap._sizes != sorted(heap._bins):
            self.report(heap.base, "size bins disagree with the free block list")
        used = sum(rec[1] for rec in live_by_block.values())
        if used != heap._used:
            self.report(heap.base, f"used byte count {heap._used} != sum of used blocks {used}")


# ----------------------------------------------------------------- shell formatters


def format_memstats(stats: HeapStats) -> list[str]:
    kib = 1024
    return [
        f"heap   total {stats.total // kib:>8} KiB   used {stats.used // kib:>8} KiB   "
        f"free {stats.free // kib:>8} KiB",
        f"       requested {stats.requested} bytes in {stats.live} live allocations, "
        f"peak used {stats.peak_used // kib} KiB",
        f"       largest free block {stats.largest_free} bytes in {stats.free_blocks} free "
        f"blocks, fragmentation {stats.fragmentation:.1%}",
        f"       {stats.allocations} allocations, {stats.frees} frees",
    ]


def format_memleak(groups: Iterable[LeakGroup], per_tag: int = 5) -> list[str]:
    lines = []
    for group in groups:
        lines.append(f"{group.tag}: {group.count} live, {group.bytes} bytes")
        for a in group.allocations[:per_tag]:
            site = f" at {a.site}" if a.site else ""
            lines.append(f"  {a.address:#010x} {a.size:>8} bytes  t={a.time_ns} ns{site}")
        if group.count > per_tag:
            lines.append(f"  ... {group.count - per_tag} more")
    return lines or ["no live allocations"]


def format_memcheck(result: MemcheckResult) -> list[str]:
    head = (
        f"memcheck: {result.blocks} blocks ({result.used_blocks} used, "
        f"{result.free_blocks} free): "
        + ("OK" if result.ok else f"{len(result.problems)} problems")
    )
    return [head] + [f"  {problem.describe()}" for problem in result.problems]
