"""32-bit two-level x86 paging: page directories and tables in guest RAM, walked by the CPU.

Virtual layout (every address space)
------------------------------------
    0x00000000-0x07FFFFFF  kernel: identity map of physical RAM (up to `kernel_map_end`),
                           supervisor-only, read/write; page 0 left unmapped to catch null
                           pointers. Its page tables are shared: every page directory holds the
                           same PDEs 0-31, so a kernel mapping exists in all spaces at once.
    0x08000000-0xBFFFFFFF  user space (USER_BASE..USER_TOP): Linux i386 static ELFs load at
                           0x08048000, the stack grows down from USER_TOP. Per-process tables.
    0xC0000000-0xFFFFFFFF  unused (reserved for the kernel; never mapped for users).

The entries use the exact x86 bits (P, R/W, U/S, PWT, PCD, A, D, PS, G) because Unicorn's MMU
walks these tables when CR3 points at a page directory. Two available bits are ours: bit 9
marks a copy-on-write page (read-only in hardware, made writable by copying on the first write
fault), bit 10 a shared mapping (fork shares it writable instead of copying it).

Contract
--------
* `AddressSpace.map()` takes over one reference of the frame it is given (a fresh
  `FrameAllocator.alloc()` frame, or one the caller `ref()`ed to share it); `unmap()`,
  `teardown()` and copy-on-write drop it. Frames outside the allocator's range (device memory)
  are mapped but never freed.
* Whenever a present entry changes or goes, `invalidate(cr3, vaddr)` is called (vaddr None: the
  whole space) so the machine can `invlpg` or reload CR3; what the CPU caches is its business.
  Inside `Paging.batched_invalidation()` that call comes once per space, at the end.
* User memory is reached only through `copy_from_user`, `copy_to_user` and `read_user_string`,
  which walk the tables the way the CPU would for a ring-3 access (U/S on both levels, R/W for
  writes) and raise `UserMemoryFault` (errno EFAULT) instead of touching anything they should
  not. A copy checks every page before moving a byte, so a fault leaves memory unchanged.
* Mistakes by the kernel itself (unaligned address, mapping twice, kernel range) raise
  `PagingError` (errno EINVAL); nothing here crashes on bad input.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tradekernel.hypercall import EFAULT, EINVAL
from tradekernel.kernel.mm.frames import FRAME_SIZE, FrameAllocator, OutOfFrames
from tradekernel.kernel.mm.heap import GuestMemory, guest_view

# Entry bits (Intel SDM vol. 3, 4.3: 32-bit paging).
PTE_P = 1 << 0  # present
PTE_RW = 1 << 1  # writable
PTE_US = 1 << 2  # user accessible
PTE_PWT = 1 << 3  # write-through
PTE_PCD = 1 << 4  # cache disable
PTE_A = 1 << 5  # accessed (set by the CPU)
PTE_D = 1 << 6  # dirty (set by the CPU; PTE only)
PDE_PS = 1 << 7  # 4 MiB page (PDE; needs CR4.PSE). In a PTE this bit is PAT.
PTE_G = 1 << 8  # global (needs CR4.PGE)
PTE_COW = 1 << 9  # software (AVL): copy-on-write page
PTE_SHARED = 1 << 10  # software (AVL): shared mapping, stays shared and writable across fork
ADDRESS_MASK = 0xFFFF_F000
LARGE_PAGE_MASK = 0xFFC0_0000

# Page-fault error code bits (pushed by #PF).
PF_P = 1 << 0  # 0: page not present, 1: protection violation
PF_W = 1 << 1  # the access was a write
PF_U = 1 << 2  # the access came from ring 3
PF_RSVD = 1 << 3  # a reserved bit was set in a paging entry
PF_I = 1 << 4  # instruction fetch

PAGE_SIZE = FRAME_SIZE
ENTRIES = 1024
USER_BASE = 0x0800_0000
USER_TOP = 0xC000_0000
USER_STACK_PAGES = 32  # a program's stack below USER_TOP: 128 KiB mapped at exec (no growth)
KERNEL_PDES = USER_BASE >> 22  # directory entries shared by every address space
ENAMETOOLONG = 36

_U32 = struct.Struct("<I")
_BIG_ENDIAN_HOST = sys.byteorder == "big"  # tables are little endian; arrays are native
_ZERO_PAGE = bytes(PAGE_SIZE)

Invalidate = Callable[[int, int | None], None]


class PagingError(Exception):
    """A kernel-side misuse: bad address, double map, unmap of nothing, dead address space."""

    errno = EINVAL


class UserMemoryFault(Exception):
    """A user pointer the kernel may not follow: unmapped, supervisor-only, or read-only for a
    write. Carries the faulting address and errno EFAULT for the system call's result."""

    errno = EFAULT

    def __init__(self, address: int, reason: str) -> None:
        super().__init__(f"bad user address {address:#010x}: {reason}")
        self.address = address
        self.reason = reason


class UserStringTooLong(Exception):
    """No NUL within the limit `read_user_string` was given."""

    errno = ENAMETOOLONG


@dataclass(frozen=True)
class Translation:
    """The result of a page walk: `physical` when the access is allowed, else the #PF error
    code the CPU would push and the reason in words."""

    vaddr: int
    physical: int | None
    error_code: int | None
    reason: str
    pte: int  # the final entry (PTE, or the PDE for a 4 MiB page; 0 if none)

    @property
    def ok(self) -> bool:
        return self.physical is not None


@dataclass(frozen=True)
class PageFaultInfo:
    """What the fault handler learns about one #PF."""

    vaddr: int
    error_code: int
    kind: str  # see FAULT_KINDS
    text: str
    resolved: bool  # True when handled here (copy-on-write): the instruction can be restarted


FAULT_KINDS = ("cow", "not-present", "read-only", "supervisor", "reserved-bit", "other")


@dataclass(frozen=True)
class PagingStats:
    frames_total: int
    frames_used: int
    frames_free: int
    frames_shared: int
    page_tables: int  # tables and directories in use, kernel ones included
    address_spaces: int
    faults: dict[str, int]


def describe_fault_code(error_code: int) -> str:
    """Decode a #PF error code alone, e.g. "user write to a not-present page".

    P=1 on a user write can mean read-only or supervisor; `AddressSpace.explain_fault` looks
    at the tables and says which.
    """
    who = "user" if error_code & PF_U else "kernel"
    if error_code & PF_I:
        what = f"{who} instruction fetch from"
    elif error_code & PF_W:
        what = f"{who} write to"
    else:
        what = f"{who} read of"
    if error_code & PF_RSVD:
        return f"{what} a page whose paging entry has a reserved bit set"
    if not error_code & PF_P:
        return f"{what} a not-present page"
    if error_code & PF_U and error_code & PF_W:
        return f"{what} a read-only or supervisor page"
    if error_code & PF_U:
        return f"{what} a supervisor page"
    return f"{what} a read-only page"


class _Phys:
    """Word and page access to guest physical memory (memoryview fast path or plain protocol)."""

    def __init__(self, memory: GuestMemory, end: int) -> None:
        self.memory = memory
        self.view = guest_view(memory, end)

    def read_u32(self, address: int) -> int:
        if self.view is not None:
            return _U32.unpack_from(self.view, address)[0]
        return _U32.unpack(self.memory.read(address, 4))[0]

    def write_u32(self, address: int, value: int) -> None:
        if self.view is not None:
            _U32.pack_into(self.view, address, value)
        else:
            self.memory.write(address, _U32.pack(value))

    def read(self, address: int, size: int) -> bytes:
        if self.view is not None:
            return self.view[address : address + size].tobytes()
        return self.memory.read(address, size)

    def write(self, address: int, data: bytes) -> None:
        if self.view is not None:
            self.view[address : address + len(data)] = data
        else:
            self.memory.write(address, data)

    def entries(self, table: int) -> array:
        """The 1024 entries of a table or directory, read in one access."""
        words = array("I")
        words.frombytes(self.read(table, PAGE_SIZE))
        if _BIG_ENDIAN_HOST:
            words.byteswap()
        return words

    def write_entries(self, table: int, words: array) -> None:
        if _BIG_ENDIAN_HOST:
            words = array("I", words)
            words.byteswap()
        self.write(table, words.tobytes())


class Paging:
    """The paging service: the shared kernel tables, every address space's frames, fault counts.

    `kernel_map_end` is how much physical RAM the kernel region identity-maps (at most
    USER_BASE); the caller passes min(RAM, USER_BASE) or just the kernel area plus heap.
    """

    def __init__(
        self,
        memory: GuestMemory,
        frames: FrameAllocator,
        kernel_map_end: int,
        invalidate: Invalidate | None = None,
        null_guard: bool = True,
    ) -> None:
        if not 0 < kernel_map_end <= USER_BASE or kernel_map_end % PAGE_SIZE:
            raise PagingError(
                f"kernel_map_end {kernel_map_end:#x} must be page aligned, in (0, {USER_BASE:#x}]"
            )
        self.frames = frames
        self.kernel_map_end = kernel_map_end
        self._phys = _Phys(memory, frames.end)
        self._invalidate_now = invalidate or (lambda cr3, vaddr: None)
        self._batch: set[int] | None = None  # spaces to invalidate at the batch's end
        self._faults: Counter[str] = Counter()
        self._tables = 0
        self._spaces = 0
        self.kernel_pdes: list[int] = []  # PDE values for directory slots 0..len-1
        for pde_index in range((kernel_map_end + (4 << 20) - 1) >> 22):
            table = self._new_table()
            words = array("I", bytes(PAGE_SIZE))
            for slot in range(ENTRIES):
                physical = (pde_index << 22) | (slot << 12)
                if physical < kernel_map_end and not (null_guard and physical == 0):
                    words[slot] = physical | PTE_P | PTE_RW
            self._phys.write_entries(table, words)
            self.kernel_pdes.append(table | PTE_P | PTE_RW)

    def _invalidate(self, cr3: int, vaddr: int | None) -> None:
        if self._batch is None:
            self._invalidate_now(cr3, vaddr)
        else:
            self._batch.add(cr3)

    @contextmanager
    def batched_invalidation(self) -> Iterator[None]:
        """Inside, the entries a system call changes (an mprotect or munmap of a range) are
        invalidated once per space at the end, not once per page: the CPU runs no guest code
        in between, and each invalidation costs the machine a CR3 reload request."""
        if self._batch is not None:  # nested: the outer batch issues them
            yield
            return
        self._batch = set()
        try:
            yield
        finally:
            spaces, self._batch = self._batch, None
            for cr3 in spaces:
                self._invalidate_now(cr3, None)

    def create_address_space(self) -> AddressSpace:
        """A new space holding only the kernel mappings; its CR3 value is `.cr3`."""
        return AddressSpace(self)

    def record_fault(self, kind: str) -> None:
        """Count one page fault of `kind` (one of FAULT_KINDS) for pgstats."""
        self._faults[kind if kind in FAULT_KINDS else "other"] += 1

    def pgstats(self) -> PagingStats:
        frame_stats = self.frames.stats()
        return PagingStats(
            frames_total=frame_stats.total,
            frames_used=frame_stats.used,
            frames_free=frame_stats.free,
            frames_shared=frame_stats.shared,
            page_tables=self._tables,
            address_spaces=self._spaces,
            faults={kind: self._faults[kind] for kind in FAULT_KINDS},
        )

    def _new_table(self) -> int:
        """A zeroed frame for a page table or directory."""
        table = self.frames.alloc()
        self._phys.write(table, _ZERO_PAGE)
        self._tables += 1
        return table

    def _free_table(self, table: int) -> None:
        self.frames.free(table)
        self._tables -= 1


class AddressSpace:
    """One page directory: the shared kernel PDEs plus this process's user tables."""

    def __init__(self, paging: Paging) -> None:
        self.paging = paging
        self._phys = paging._phys
        self._frames = paging.frames
        self.cr3 = paging._new_table()
        for index, pde in enumerate(paging.kernel_pdes):
            self._phys.write_u32(self.cr3 + 4 * index, pde)
        self.alive = True
        paging._spaces += 1

    # ----------------------------------------------------------------- mappings

    def map(
        self,
        vaddr: int,
        frame: int,
        writable: bool = True,
        user: bool = True,
        cache_disable: bool = False,
        write_through: bool = False,
        shared: bool = False,
    ) -> None:
        """Map the user-range page at `vaddr` to `frame`, taking over one reference to it.
        A `shared` mapping (shared memory) stays shared, not copied, in a fork's child."""
        self._check_user_page(vaddr, "map")
        if frame.__class__ is not int or frame % PAGE_SIZE or not 0 <= frame < 1 << 32:
            raise PagingError(f"map({vaddr:#x}, {frame!r}): frame must be a page address")
        slot = self._pte_slot(vaddr, create=True)
        assert slot is not None
        old = self._phys.read_u32(slot)
        if old & PTE_P:
            raise PagingError(f"map({vaddr:#x}): already mapped to {old & ADDRESS_MASK:#x}")
        entry = frame | PTE_P
        entry |= (PTE_RW if writable else 0) | (PTE_US if user else 0)
        entry |= (PTE_PCD if cache_disable else 0) | (PTE_PWT if write_through else 0)
        entry |= PTE_SHARED if shared else 0
        self._phys.write_u32(slot, entry)

    def map_new(
        self, vaddr: int, writable: bool = True, user: bool = True, shared: bool = False
    ) -> int:
        """Allocate a zeroed frame and map it at `vaddr`; returns the frame."""
        frame = self._frames.alloc()
        try:
            self._phys.write(frame, _ZERO_PAGE)
            self.map(vaddr, frame, writable, user, shared=shared)
        except Exception:
            self._frames.free(frame)
            raise
        return frame

    def unmap(self, vaddr: int) -> int:
        """Remove the mapping at `vaddr`, drop the frame's reference; returns the frame."""
        self._check_user_page(vaddr, "unmap")
        slot = self._pte_slot(vaddr, create=False)
        entry = self._phys.read_u32(slot) if slot is not None else 0
        if slot is None or not entry & PTE_P:
            raise PagingError(f"unmap({vaddr:#x}): not mapped")
        self._phys.write_u32(slot, 0)
        self.paging._invalidate(self.cr3, vaddr)
        frame = entry & ADDRESS_MASK
        self._release_frame(frame)
        return frame

    def protect(self, vaddr: int, writable: bool | None = None, user: bool | None = None) -> None:
        """Change R/W and/or U/S of a mapped page, keeping A/D. A page that shares its frame
        with another space (after fork) and is made writable becomes copy-on-write, so the
        other space never sees the writes; on a copy-on-write page `writable` says whether it
        becomes writable after the copy."""
        self._check_user_page(vaddr, "protect")
        slot = self._pte_slot(vaddr, create=False)
        entry = self._phys.read_u32(slot) if slot is not None else 0
        if slot is None or not entry & PTE_P:
            raise PagingError(f"protect({vaddr:#x}): not mapped")
        new = entry
        if writable is not None:
            if entry & PTE_COW:
                new = new if writable else new & ~PTE_COW
            elif writable and not entry & (PTE_RW | PTE_SHARED) and self._frame_shared(entry):
                new |= PTE_COW
            else:
                new = (new & ~PTE_RW) | (PTE_RW if writable else 0)
        if user is not None:
            new = (new & ~PTE_US) | (PTE_US if user else 0)
        if new != entry:
            self._phys.write_u32(slot, new)
            self.paging._invalidate(self.cr3, vaddr)

    def entry(self, vaddr: int) -> int:
        """The raw PTE for `vaddr` (the PDE for a 4 MiB page; 0 where no table exists)."""
        self._check_alive("entry")
        pde = self._phys.read_u32(self.cr3 + 4 * ((vaddr >> 22) & 0x3FF))
        if not pde & PTE_P:
            return 0
        if pde & PDE_PS:
            return pde
        return self._phys.read_u32((pde & ADDRESS_MASK) + 4 * ((vaddr >> 12) & 0x3FF))

    def translate(self, vaddr: int, write: bool = False, user: bool = False) -> Translation:
        """Walk the tables as the CPU would for this access (CR0.WP=1: the kernel may not
        write read-only pages either)."""
        self._check_alive("translate")
        vaddr &= 0xFFFF_FFFF
        pde = self._phys.read_u32(self.cr3 + 4 * (vaddr >> 22))
        code = (PF_W if write else 0) | (PF_U if user else 0)
        if not pde & PTE_P:
            return Translation(vaddr, None, code, "page not present (no page table)", 0)
        if pde & PDE_PS:
            entry = pde
            physical = (pde & LARGE_PAGE_MASK) | (vaddr & ~LARGE_PAGE_MASK)
            rights = pde
        else:
            entry = self._phys.read_u32((pde & ADDRESS_MASK) + 4 * ((vaddr >> 12) & 0x3FF))
            if not entry & PTE_P:
                return Translation(vaddr, None, code, "page not present", entry)
            physical = (entry & ADDRESS_MASK) | (vaddr & 0xFFF)
            rights = pde & entry
        code |= PF_P
        if user and not rights & PTE_US:
            return Translation(vaddr, None, code, "supervisor page", entry)
        if write and not rights & PTE_RW:
            reason = "copy-on-write page" if entry & PTE_COW else "read-only page"
            return Translation(vaddr, None, code, reason, entry)
        return Translation(vaddr, physical, None, "ok", entry)

    def mapped_pages(self) -> Iterator[tuple[int, int]]:
        """(vaddr, pte) for every present page in the user range, in address order."""
        for vaddr, _slot, entry in self._user_entries():
            yield vaddr, entry

    # ----------------------------------------------------------------- faults

    def explain_fault(self, vaddr: int, error_code: int) -> tuple[str, str]:
        """(kind, text) for a #PF at `vaddr`, refined by what the tables say."""
        text = describe_fault_code(error_code)
        if error_code & PF_RSVD:
            return "reserved-bit", text
        if not error_code & PF_P:
            return "not-present", text
        walk = self.translate(vaddr, write=bool(error_code & PF_W), user=bool(error_code & PF_U))
        who = text.split(" a ")[0]
        if walk.reason == "supervisor page":
            return "supervisor", f"{who} a supervisor page"
        if walk.reason == "copy-on-write page":
            return "cow", f"{who} a copy-on-write page"
        if walk.reason == "read-only page":
            return "read-only", f"{who} a read-only page"
        return "other", text

    def handle_fault(self, vaddr: int, error_code: int) -> PageFaultInfo:
        """The #PF handler's question: resolve a copy-on-write write, or say what went wrong.
        Counts the fault by kind either way."""
        kind, text = self.explain_fault(vaddr, error_code)
        resolved = False
        if kind == "cow":
            try:
                self._break_cow(vaddr & ~0xFFF)
                resolved = True
            except OutOfFrames:
                text += " (out of frames for the copy)"
        self.paging.record_fault(kind)
        return PageFaultInfo(vaddr, error_code, kind, text, resolved)

    # ----------------------------------------------------------------- lifetime

    def clone(self) -> AddressSpace:
        """A copy for fork: user pages shared copy-on-write (writable ones become read-only +
        COW in both spaces), read-only pages shared, every shared frame's count raised."""
        self._check_alive("clone")
        child = AddressSpace(self.paging)
        changed = False
        try:
            for vaddr, slot, entry in list(self._user_entries()):
                if entry & PTE_RW and not entry & PTE_SHARED:
                    entry = (entry & ~PTE_RW) | PTE_COW
                    self._phys.write_u32(slot, entry)
                    changed = True
                child_slot = child._pte_slot(vaddr, create=True)
                assert child_slot is not None
                frame = entry & ADDRESS_MASK
                if self._frames.owns(frame):
                    self._frames.ref(frame)
                child._phys.write_u32(child_slot, entry)
        except OutOfFrames:
            child.teardown()
            raise
        finally:
            if changed:
                self.paging._invalidate(self.cr3, None)
        return child

    def teardown(self) -> None:
        """Drop every user frame reference, free the user tables and the directory."""
        self._check_alive("teardown")
        directory = self._phys.entries(self.cr3)
        for pde_index in range(KERNEL_PDES, ENTRIES):
            pde = directory[pde_index]
            if not pde & PTE_P:
                continue
            for entry in self._phys.entries(pde & ADDRESS_MASK):
                if entry & PTE_P:
                    self._release_frame(entry & ADDRESS_MASK)
            self.paging._free_table(pde & ADDRESS_MASK)
        self.paging._invalidate(self.cr3, None)
        self.paging._free_table(self.cr3)
        self.paging._spaces -= 1
        self.alive = False

    # ----------------------------------------------------------------- internals

    def _check_alive(self, op: str) -> None:
        if not self.alive:
            raise PagingError(f"{op}: address space {self.cr3:#x} was torn down")

    def _check_user_page(self, vaddr: object, op: str) -> None:
        self._check_alive(op)
        if vaddr.__class__ is not int:
            raise PagingError(f"{op}({vaddr!r}): not an address")
        assert isinstance(vaddr, int)
        if vaddr % PAGE_SIZE or not USER_BASE <= vaddr < USER_TOP:
            raise PagingError(
                f"{op}({vaddr:#x}): not a page address in user space "
                f"[{USER_BASE:#x}, {USER_TOP:#x})"
            )

    def _pte_slot(self, vaddr: int, create: bool) -> int | None:
        """Physical address of the PTE for `vaddr`, making the table if asked; None if absent."""
        pde_slot = self.cr3 + 4 * (vaddr >> 22)
        pde = self._phys.read_u32(pde_slot)
        if not pde & PTE_P:
            if not create:
                return None
            table = self.paging._new_table()
            # Permissive PDE: the PTE decides (as Linux does for user tables).
            pde = table | PTE_P | PTE_RW | PTE_US
            self._phys.write_u32(pde_slot, pde)
        return (pde & ADDRESS_MASK) + 4 * ((vaddr >> 12) & 0x3FF)

    def _user_entries(self) -> Iterator[tuple[int, int, int]]:
        """(vaddr, PTE address, PTE) for every present user page, in address order."""
        directory = self._phys.entries(self.cr3)
        for pde_index in range(KERNEL_PDES, USER_TOP >> 22):
            pde = directory[pde_index]
            if not pde & PTE_P:
                continue
            table = pde & ADDRESS_MASK
            for slot, entry in enumerate(self._phys.entries(table)):
                if entry & PTE_P:
                    yield (pde_index << 22) | (slot << 12), table + 4 * slot, entry

    def _frame_shared(self, entry: int) -> bool:
        frame = entry & ADDRESS_MASK
        return self._frames.owns(frame) and self._frames.refcount(frame) > 1

    def _release_frame(self, frame: int) -> None:
        if self._frames.owns(frame):
            self._frames.free(frame)

    def _break_cow(self, page: int) -> None:
        """Give this space its own writable copy of a copy-on-write page (or just the write
        bit back when no one else shares the frame any more)."""
        slot = self._pte_slot(page, create=False)
        assert slot is not None
        entry = self._phys.read_u32(slot)
        frame = entry & ADDRESS_MASK
        if self._frames.owns(frame) and self._frames.refcount(frame) > 1:
            copy = self._frames.alloc()
            self._phys.write(copy, self._phys.read(frame, PAGE_SIZE))
            self._frames.free(frame)
            entry = (entry & 0xFFF & ~PTE_D) | copy
        entry = (entry & ~PTE_COW) | PTE_RW
        self._phys.write_u32(slot, entry)
        self.paging._invalidate(self.cr3, page)

    def _user_spans(self, vaddr: int, size: int, write: bool) -> list[tuple[int, int]]:
        """Physical (address, length) pieces of a user buffer, every page checked first."""
        if vaddr.__class__ is not int or size.__class__ is not int or size < 0:
            raise UserMemoryFault(0, f"bad buffer ({vaddr!r}, {size!r})")
        if size == 0:
            return []
        if not USER_BASE <= vaddr or vaddr + size > USER_TOP:
            raise UserMemoryFault(vaddr, "outside user space")
        self._check_alive("user access")
        # A page the CPU has already used this way (A, and D for a write, set in its PTE; A
        # in its PDE) is taken from the two table reads alone; any other page takes the
        # general walk, which sets those bits, breaks copy-on-write and says what is wrong.
        rights = PTE_P | PTE_US | (PTE_RW if write else 0)
        pde_bits = rights | PTE_A
        pte_bits = pde_bits | (PTE_D if write else 0)
        read_u32, directory = self._phys.read_u32, self.cr3
        spans = []
        address = vaddr
        end = vaddr + size
        while address < end:
            length = min(end, (address | 0xFFF) + 1) - address
            pde = read_u32(directory + 4 * (address >> 22))
            if pde & (pde_bits | PDE_PS) == pde_bits:
                pte = read_u32((pde & ADDRESS_MASK) + 4 * ((address >> 12) & 0x3FF))
                if pte & pte_bits == pte_bits:
                    spans.append(((pte & ADDRESS_MASK) | (address & 0xFFF), length))
                    address += length
                    continue
            walk = self.translate(address, write=write, user=True)
            if walk.reason == "copy-on-write page":
                self._break_cow(address & ~0xFFF)
                walk = self.translate(address, write=write, user=True)
            if walk.physical is None:
                raise UserMemoryFault(address, walk.reason)
            self._mark_used(address, write)
            spans.append((walk.physical, length))
            address += length
        return spans

    def _mark_used(self, vaddr: int, write: bool) -> None:
        """Set A (and D for a write) as the CPU would for the same access."""
        pde_slot = self.cr3 + 4 * (vaddr >> 22)
        pde = self._phys.read_u32(pde_slot)
        if not pde & PTE_A:
            self._phys.write_u32(pde_slot, pde | PTE_A)
        slot = (pde & ADDRESS_MASK) + 4 * ((vaddr >> 12) & 0x3FF)
        entry = self._phys.read_u32(slot)
        bits = PTE_A | (PTE_D if write else 0)
        if entry & bits != bits:
            self._phys.write_u32(slot, entry | bits)


def copy_from_user(aspace: AddressSpace, vaddr: int, size: int) -> bytes:
    """`size` bytes of user memory at `vaddr`; UserMemoryFault if any page is not readable."""
    spans = aspace._user_spans(vaddr, size, write=False)
    return b"".join(aspace._phys.read(physical, length) for physical, length in spans)


def copy_to_user(aspace: AddressSpace, vaddr: int, data: bytes) -> None:
    """Write `data` at user address `vaddr`; UserMemoryFault (nothing written) if any page is
    not user-writable. Copy-on-write pages are copied first, as a user write would."""
    offset = 0
    for physical, length in aspace._user_spans(vaddr, len(data), write=True):
        aspace._phys.write(physical, bytes(data[offset : offset + length]))
        offset += length


def read_user_string(aspace: AddressSpace, vaddr: int, max_length: int) -> bytes:
    """The NUL-terminated string at `vaddr` (without the NUL), reading page by page so a string
    ending just before an unmapped page is fine. UserStringTooLong if no NUL within
    `max_length` bytes, UserMemoryFault on a bad page before the NUL."""
    if vaddr.__class__ is not int or max_length.__class__ is not int or max_length <= 0:
        raise UserMemoryFault(0, f"bad string pointer or limit ({vaddr!r}, {max_length!r})")
    pieces = []
    address = vaddr
    remaining = max_length
    while remaining > 0:
        chunk = min(remaining, PAGE_SIZE - (address & 0xFFF))
        data = copy_from_user(aspace, address, chunk)
        nul = data.find(b"\0")
        if nul >= 0:
            pieces.append(data[:nul])
            return b"".join(pieces)
        pieces.append(data)
        address += chunk
        remaining -= chunk
    raise UserStringTooLong(f"no NUL within {max_length} bytes at {vaddr:#010x}")
