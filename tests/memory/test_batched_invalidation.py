"""A system call that changes many pages (mprotect, munmap, mmap over a range) asks the machine
for one TLB flush per address space, not one per page (Paging.batched_invalidation): every
request is a CR3 reload the entry stub makes, and ld.so's mprotects of whole libraries made
thousands per program start. Single-page changes outside a batch still invalidate at once."""

from __future__ import annotations

from tests.memory.conftest import make_memory
from tests.memory.test_mmap import ANON, RW, FakeProcess
from tests.memory.test_paging import FIRST_FRAME, RAM
from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.mmap import MAP_FIXED, PROT_READ, MemoryMaps
from tradekernel.kernel.mm.paging import PAGE_SIZE, PTE_RW, Paging

PAGES = 64


def _world() -> tuple[Paging, MemoryMaps, list[tuple[int, int | None]]]:
    asked: list[tuple[int, int | None]] = []
    memory = make_memory("view", RAM)
    frames = FrameAllocator(FIRST_FRAME, RAM)
    paging = Paging(memory, frames, kernel_map_end=RAM,
                    invalidate=lambda cr3, vaddr: asked.append((cr3, vaddr)))  # fmt: skip
    return paging, MemoryMaps(frames, memory, lambda: 0), asked


def test_a_range_call_flushes_once_and_the_pages_change() -> None:
    paging, maps, asked = _world()
    process = FakeProcess(1, paging.create_address_space())
    start = maps.mmap(process, 0, PAGES * PAGE_SIZE, RW, ANON, -1, 0)
    assert start > 0 and asked == []  # new pages: nothing cached to drop
    pages = range(start, start + PAGES * PAGE_SIZE, PAGE_SIZE)
    assert maps.mprotect(process, start, PAGES * PAGE_SIZE, PROT_READ) == 0
    assert all(not process.aspace.entry(page) & PTE_RW for page in pages)
    assert asked == [(process.aspace.cr3, None)]
    asked.clear()
    again = maps.mmap(process, start, PAGES * PAGE_SIZE, RW, ANON | MAP_FIXED, -1, 0)
    assert again == start and asked == [(process.aspace.cr3, None)]  # the old pages went
    asked.clear()
    assert maps.munmap(process, start, PAGES * PAGE_SIZE) == 0
    assert asked == [(process.aspace.cr3, None)]
    assert all(process.aspace.entry(page) == 0 for page in pages)


def test_outside_a_batch_each_change_invalidates_its_page() -> None:
    paging, maps, asked = _world()
    process = FakeProcess(1, paging.create_address_space())
    start = maps.mmap(process, 0, 2 * PAGE_SIZE, RW, ANON, -1, 0)
    process.aspace.protect(start, writable=False)
    process.aspace.unmap(start + PAGE_SIZE)
    assert asked == [(process.aspace.cr3, start), (process.aspace.cr3, start + PAGE_SIZE)]
