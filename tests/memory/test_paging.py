"""Paging: the x86 entry bits in guest memory, walks, user copies, faults, fork, teardown."""

from __future__ import annotations

import pytest

from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.paging import (
    ADDRESS_MASK,
    PF_I,
    PF_P,
    PF_RSVD,
    PF_U,
    PF_W,
    PTE_A,
    PTE_COW,
    PTE_D,
    PTE_P,
    PTE_RW,
    PTE_US,
    USER_BASE,
    Paging,
    PagingError,
    UserMemoryFault,
    UserStringTooLong,
    copy_from_user,
    copy_to_user,
    describe_fault_code,
    read_user_string,
)

RAM = 8 << 20
FIRST_FRAME = 0x500000  # after a 4 MiB heap at 1 MiB
TEXT = 0x08048000


class Harness:
    def __init__(self, memory):
        self.memory = memory
        self.frames = FrameAllocator(FIRST_FRAME, RAM)
        self.invalidations: list[tuple[int, int | None]] = []
        self.paging = Paging(
            memory,
            self.frames,
            kernel_map_end=RAM,
            invalidate=lambda cr3, vaddr: self.invalidations.append((cr3, vaddr)),
        )

    def u32(self, address: int) -> int:
        return int.from_bytes(self.memory.read(address, 4), "little")


@pytest.fixture
def hw(memory):
    return Harness(memory)


@pytest.fixture
def space(hw):
    return hw.paging.create_address_space()


def test_kernel_region_is_an_identity_map_for_the_supervisor_only(hw, space):
    # Directory slots 0-1 cover 8 MiB; the entries are exactly P|RW (no U/S).
    for index in range(2):
        pde = hw.u32(space.cr3 + 4 * index)
        assert pde & 0xFFF == PTE_P | PTE_RW
    assert hw.u32(space.cr3 + 4 * 2) == 0
    assert space.entry(0xB8000) == 0xB8000 | PTE_P | PTE_RW
    assert space.translate(0x100123).physical == 0x100123
    assert space.translate(0x100123, write=True).ok
    user = space.translate(0x100123, user=True)
    assert not user.ok and user.error_code == PF_P | PF_U and user.reason == "supervisor page"
    null = space.translate(0x10)
    assert not null.ok and null.error_code == 0 and null.reason == "page not present"


def test_kernel_tables_are_shared_between_spaces(hw, space):
    other = hw.paging.create_address_space()
    assert other.cr3 != space.cr3
    for index in range(2):
        assert hw.u32(other.cr3 + 4 * index) == hw.u32(space.cr3 + 4 * index)


def test_map_writes_exact_entries_and_translates(hw, space):
    frame = hw.frames.alloc()
    space.map(TEXT, frame, writable=True, user=True)
    assert space.entry(TEXT) == frame | PTE_P | PTE_RW | PTE_US
    pde = hw.u32(space.cr3 + 4 * (TEXT >> 22))
    assert pde & 0xFFF == PTE_P | PTE_RW | PTE_US
    assert space.translate(TEXT + 0x123, write=True, user=True).physical == frame + 0x123
    missing = space.translate(TEXT + 0x1000, write=True, user=True)
    assert missing.error_code == PF_W | PF_U and not missing.ok
    assert list(space.mapped_pages()) == [(TEXT, frame | PTE_P | PTE_RW | PTE_US)]


def test_map_refuses_mistakes(hw, space):
    frame = hw.frames.alloc()
    for vaddr in (0x100000, TEXT + 1, 0xC0000000, "x"):
        with pytest.raises(PagingError):
            space.map(vaddr, frame)
    with pytest.raises(PagingError):
        space.map(TEXT, frame + 5)
    space.map(TEXT, frame)
    with pytest.raises(PagingError, match="already mapped"):
        space.map(TEXT, hw.frames.alloc())
    with pytest.raises(PagingError, match="not mapped"):
        space.unmap(TEXT + 0x1000)


def test_protect_changes_bits_keeps_accessed_dirty_and_invalidates(hw, space):
    space.map_new(TEXT)
    copy_to_user(space, TEXT, b"hi")  # sets A and D, as the CPU would
    assert space.entry(TEXT) & (PTE_A | PTE_D) == PTE_A | PTE_D
    hw.invalidations.clear()
    space.protect(TEXT, writable=False)
    assert space.entry(TEXT) & (PTE_RW | PTE_A | PTE_D) == PTE_A | PTE_D
    assert hw.invalidations == [(space.cr3, TEXT)]
    assert space.translate(TEXT, write=True, user=True).reason == "read-only page"
    space.protect(TEXT, user=False)
    assert space.translate(TEXT, user=True).reason == "supervisor page"
    space.protect(TEXT, writable=True, user=True)
    assert space.translate(TEXT, write=True, user=True).ok


def test_unmap_frees_the_frame_and_invalidates(hw, space):
    frame = space.map_new(TEXT)
    assert hw.frames.refcount(frame) == 1
    hw.invalidations.clear()
    assert space.unmap(TEXT) == frame
    assert hw.frames.refcount(frame) == 0
    assert hw.invalidations == [(space.cr3, TEXT)]
    assert space.entry(TEXT) == 0


def test_copies_cross_page_boundaries(hw, space):
    first = space.map_new(TEXT)
    second = space.map_new(TEXT + 0x1000)
    data = bytes(range(200))
    copy_to_user(space, TEXT + 0x1000 - 50, data)
    assert hw.memory.read(first + 0x1000 - 50, 50) == data[:50]
    assert hw.memory.read(second, 150) == data[50:]
    assert copy_from_user(space, TEXT + 0x1000 - 50, 200) == data
    assert copy_from_user(space, TEXT, 0) == b""


def test_faults_on_bad_user_memory_touch_nothing(hw, space):
    space.map_new(TEXT)
    space.map_new(TEXT + 0x2000)  # a hole at TEXT + 0x1000
    kernel_only = space.map_new(TEXT + 0x3000, user=False)
    read_only = space.map_new(TEXT + 0x4000, writable=False)
    cases = [
        (TEXT + 0x0F00, 0x200, "page not present"),
        (TEXT + 0x3000, 4, "supervisor page"),
        (0x100000, 4, "outside user space"),
        (0xBFFFFFF0, 0x20, "outside user space"),
    ]
    for vaddr, size, reason in cases:
        with pytest.raises(UserMemoryFault, match=reason) as error:
            copy_to_user(space, vaddr, b"\xee" * size)
        assert error.value.errno == 14
        with pytest.raises(UserMemoryFault):
            copy_from_user(space, vaddr, size)
    assert hw.memory.read(kernel_only, 8) == bytes(8)
    # The partial copy before the hole did not happen either.
    assert copy_from_user(space, TEXT + 0x0F00, 0x100) == bytes(0x100)
    with pytest.raises(UserMemoryFault, match="read-only page"):
        copy_to_user(space, TEXT + 0x4000, b"x")
    assert copy_from_user(space, TEXT + 0x4000, 4) == bytes(4)
    assert hw.memory.read(read_only, 1) == b"\0"


def test_read_user_string(hw, space):
    space.map_new(TEXT)
    space.map_new(TEXT + 0x1000)
    copy_to_user(space, TEXT + 0x1000 - 3, b"/bin/sh\0")
    assert read_user_string(space, TEXT + 0x1000 - 3, 256) == b"/bin/sh"
    # Ends exactly at the last byte of the mapped range: fine.
    copy_to_user(space, TEXT + 0x2000 - 3, b"ab\0")
    assert read_user_string(space, TEXT + 0x2000 - 3, 4096) == b"ab"
    copy_to_user(space, TEXT + 0x2000 - 3, b"abc")
    with pytest.raises(UserMemoryFault, match="not present"):
        read_user_string(space, TEXT + 0x2000 - 3, 4096)
    with pytest.raises(UserStringTooLong):
        read_user_string(space, TEXT + 0x2000 - 3, 3)


def test_teardown_returns_every_frame(hw):
    baseline = hw.frames.stats().used
    space = hw.paging.create_address_space()
    for page in range(5):
        space.map_new(TEXT + page * 0x1000)
    space.map_new(0xBFFFF000)  # the stack, in another table
    shared = space.map_new(0x40000000)
    other = hw.paging.create_address_space()
    hw.frames.ref(shared)
    other.map(0x50000000, shared, shared=True)
    space.teardown()
    assert hw.frames.refcount(shared) == 1  # still mapped in `other`
    other.teardown()
    assert hw.frames.stats().used == baseline
    assert hw.paging.pgstats().address_spaces == 0
    with pytest.raises(PagingError, match="torn down"):
        space.map_new(TEXT)


def test_clone_is_copy_on_write(hw):
    baseline = hw.frames.stats().used
    parent = hw.paging.create_address_space()
    data_frame = parent.map_new(TEXT)
    parent.map_new(TEXT + 0x1000, writable=False)
    copy_to_user(parent, TEXT, b"parent")
    child = parent.clone()
    assert hw.frames.refcount(data_frame) == 2
    for space in (parent, child):
        assert space.entry(TEXT) & (PTE_RW | PTE_COW) == PTE_COW
        assert copy_from_user(space, TEXT, 6) == b"parent"
    # A user write in the child faults; the handler copies the page.
    info = child.handle_fault(TEXT, PF_P | PF_W | PF_U)
    assert info.resolved and info.kind == "cow"
    assert child.entry(TEXT) & ADDRESS_MASK != data_frame
    copy_to_user(child, TEXT, b"child!")
    assert copy_from_user(parent, TEXT, 6) == b"parent"
    # The parent is now the only owner: its fault just restores the write bit.
    assert parent.handle_fault(TEXT, PF_P | PF_W | PF_U).resolved
    assert parent.entry(TEXT) & ADDRESS_MASK == data_frame and parent.entry(TEXT) & PTE_RW
    # copy_to_user breaks copy-on-write by itself, as the user's own write would.
    grandchild = parent.clone()
    copy_to_user(grandchild, TEXT, b"grand!")
    assert copy_from_user(parent, TEXT, 6) == b"parent"
    # A read-only page stays read-only and shared; made writable, it is copied on first write.
    assert child.translate(TEXT + 0x1000, write=True, user=True).reason == "read-only page"
    child.protect(TEXT + 0x1000, writable=True)
    copy_to_user(child, TEXT + 0x1000, b"mine")
    assert copy_from_user(parent, TEXT + 0x1000, 4) == bytes(4)
    for space in (parent, child, grandchild):
        space.teardown()
    assert hw.frames.stats().used == baseline
    assert hw.paging.pgstats().faults["cow"] == 2


def test_fault_explanations_and_counters(hw, space):
    space.map_new(TEXT, writable=False)
    assert space.handle_fault(TEXT, PF_P | PF_W | PF_U).text == "user write to a read-only page"
    info = space.handle_fault(0x100000, PF_P | PF_U)
    assert (info.kind, info.text) == ("supervisor", "user read of a supervisor page")
    info = space.handle_fault(TEXT + 0x1000, PF_U | PF_I)
    assert info.kind == "not-present" and not info.resolved
    faults = hw.paging.pgstats().faults
    assert (faults["read-only"], faults["supervisor"], faults["not-present"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "code, text",
    [
        (0, "kernel read of a not-present page"),
        (PF_W, "kernel write to a not-present page"),
        (PF_P | PF_W, "kernel write to a read-only page"),
        (PF_U | PF_W, "user write to a not-present page"),
        (PF_P | PF_U, "user read of a supervisor page"),
        (PF_P | PF_U | PF_W, "user write to a read-only or supervisor page"),
        (PF_U | PF_I, "user instruction fetch from a not-present page"),
        (PF_P | PF_RSVD, "kernel read of a page whose paging entry has a reserved bit set"),
    ],
)
def test_describe_fault_code(code, text):
    assert describe_fault_code(code) == text


def test_pgstats_counts_tables(hw):
    before = hw.paging.pgstats()
    assert before.page_tables == 2  # the kernel's, for 8 MiB
    space = hw.paging.create_address_space()
    space.map_new(TEXT)
    stats = hw.paging.pgstats()
    assert stats.page_tables == 4 and stats.address_spaces == 1  # + directory + one table
    assert stats.frames_used == before.frames_used + 3


def test_paging_refuses_a_bad_kernel_map(hw):
    with pytest.raises(PagingError):
        Paging(hw.memory, hw.frames, kernel_map_end=USER_BASE + 0x1000)


def test_a_used_page_changed_afterwards_is_checked_again(hw, space):
    """Copies to pages already used (A/D set) take a shortcut: it must still see every later
    change of the page's rights, and a write to a page only read so far must set D."""
    frame = space.map_new(TEXT)
    copy_from_user(space, TEXT, 4)
    assert space.entry(TEXT) & (PTE_A | PTE_D) == PTE_A
    copy_to_user(space, TEXT, b"w")
    assert space.entry(TEXT) & (PTE_A | PTE_D) == PTE_A | PTE_D
    space.protect(TEXT, writable=False)
    with pytest.raises(UserMemoryFault, match="read-only page"):
        copy_to_user(space, TEXT, b"x")
    assert copy_from_user(space, TEXT, 1) == b"w"
    space.protect(TEXT, writable=True, user=False)
    with pytest.raises(UserMemoryFault, match="supervisor page"):
        copy_from_user(space, TEXT, 1)
    space.protect(TEXT, user=True)
    child = space.clone()
    copy_to_user(child, TEXT, b"c")  # copy-on-write: the parent's frame keeps its byte
    assert hw.memory.read(frame, 1) == b"w" and copy_from_user(child, TEXT, 1) == b"c"
    space.unmap(TEXT)
    with pytest.raises(UserMemoryFault, match="page not present"):
        copy_from_user(space, TEXT, 1)
    child.teardown()
