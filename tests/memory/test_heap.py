"""The kernel heap against guest memory: allocation rules, debugging checks, bad input."""

from __future__ import annotations

import pytest

from tradekernel.kernel.mm.heap import (
    HEADER,
    BadPointer,
    DoubleFree,
    HeapCorruption,
    InvalidRequest,
    KernelHeap,
    OutOfMemory,
    format_memcheck,
    format_memleak,
    format_memstats,
    heap_size_for_ram,
)

BASE = 0x100000
SIZE = 64 * 1024


@pytest.fixture
def heap(memory, clock) -> KernelHeap:
    return KernelHeap(memory, clock, BASE, SIZE)


def test_fresh_heap_is_one_free_block_in_guest_memory(heap, memory):
    result = heap.memcheck()
    assert result.ok and result.blocks == 1 and result.free_blocks == 1
    stats = heap.memstats()
    assert (stats.total, stats.used, stats.free, stats.largest_free) == (SIZE, 0, SIZE, SIZE)
    assert stats.fragmentation == 0.0
    # The boundary tags really are in guest memory: magic at the base, footer at the end.
    assert memory.read(BASE, 4) == (0x4B484254).to_bytes(4, "little")
    assert memory.read(BASE + SIZE - 8, 4) == SIZE.to_bytes(4, "little")


def test_allocations_are_aligned_disjoint_and_hold_their_bytes(heap, memory):
    pointers = {}
    for i, size in enumerate([1, 7, 16, 100, 255, 4000]):
        p = heap.kmalloc(size, "test")
        assert p % 16 == 0 and BASE < p < BASE + SIZE
        memory.write(p, bytes([i + 1]) * size)
        pointers[p] = (size, i + 1)
    spans = sorted((p, p + size) for p, (size, _) in pointers.items())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    for p, (size, fill) in pointers.items():
        assert memory.read(p, size) == bytes([fill]) * size
    assert heap.memcheck().ok


def test_freeing_coalesces_back_to_one_block(heap):
    pointers = [heap.kmalloc(48 + i, "t") for i in range(20)]
    for p in pointers[::2] + pointers[1::2]:
        heap.kfree(p)
    result = heap.memcheck()
    assert result.ok and result.blocks == 1
    assert heap.memstats().largest_free == SIZE


def test_best_fit_picks_the_smallest_hole(heap):
    holes = {}
    for size in (512, 128, 256):
        allocation = heap.allocation(heap.kmalloc(size, "hole"))
        holes[size] = range(allocation.block, allocation.block + allocation.block_size)
        heap.kmalloc(16, "fence")
    for hole in holes.values():
        heap.kfree(hole.start + HEADER)
    # A 100-byte request fits all three holes; best fit carves it from the 128-byte one.
    fit = heap.allocation(heap.kmalloc(100, "fit"))
    assert fit.block in holes[128] and fit.block + fit.block_size - 1 in holes[128]
    assert heap.memcheck().ok


@pytest.mark.parametrize("align", [32, 64, 256, 4096])
def test_aligned_allocations(heap, align):
    pointers = [heap.kmalloc(40, "dma", align=align) for _ in range(3)]
    assert all(p % align == 0 for p in pointers)
    assert heap.allocation(pointers[0]).align == align
    assert heap.memcheck().ok
    for p in pointers:
        heap.kfree(p)
    assert heap.memcheck().blocks == 1


def test_krealloc_in_place_and_moving_keeps_contents(heap, memory):
    above = heap.kmalloc(400, "above")
    p = heap.kmalloc(100, "buf")  # carved just below `above`
    heap.kfree(above)  # so the block after p is free
    memory.write(p, bytes(range(100)))
    assert heap.krealloc(p, 40) == p  # shrink in place
    assert memory.read(p, 40) == bytes(range(40))
    assert heap.krealloc(p, 300) == p  # grow into the free block after it
    assert memory.read(p, 40) == bytes(range(40))
    assert heap.memcheck().ok
    moved = heap.krealloc(p, 2000)  # more than p's block and its free neighbour
    assert moved != p and memory.read(moved, 40) == bytes(range(40))
    assert heap.allocation(moved).tag == "buf" and heap.allocation(moved).size == 2000
    assert heap.allocation(p) is None
    assert heap.memcheck().ok


def test_kcalloc_zeroes_the_payload(heap, memory):
    p = heap.kmalloc(64, "dirty")
    memory.write(p, b"\xaa" * 64)
    heap.kfree(p)
    q = heap.kcalloc(8, 8, "clean")
    assert memory.read(q, 64) == bytes(64)
    with pytest.raises(InvalidRequest):
        heap.kcalloc(1 << 20, 1 << 20, "huge")


@pytest.mark.parametrize(
    "size, align, tag",
    [(0, 16, "t"), (-5, 16, "t"), (SIZE, 16, "t"), (1.5, 16, "t"), (True, 16, "t"),
     (8, 3, "t"), (8, 8192, "t"), (8, 16, ""), (8, 16, None)],
)  # fmt: skip
def test_bad_requests_raise_invalid_request(heap, size, align, tag):
    with pytest.raises(InvalidRequest):
        heap.kmalloc(size, tag, align=align)
    assert heap.memcheck().ok and heap.memstats().live == 0


def test_out_of_memory_is_reported_and_harmless(heap):
    p = heap.kmalloc(SIZE // 2, "big")
    with pytest.raises(OutOfMemory, match="'big2'"):
        heap.kmalloc(SIZE // 2, "big2")
    heap.kfree(p)
    assert heap.kmalloc(SIZE // 2, "big2")


def test_kfree_null_is_a_no_op(heap):
    heap.kfree(0)
    assert heap.memstats().frees == 0


@pytest.mark.parametrize(
    "make_pointer, message",
    [
        (lambda p: p + 8, "misaligned"),
        (lambda p: p + 16, "not the start of a block"),
        (lambda p: 0x50000, "outside the heap"),
        (lambda p: BASE + 1024, "never returned"),
        (lambda p: "p", "not an address"),
    ],
)
def test_foreign_pointers_are_refused(heap, make_pointer, message):
    p = heap.kmalloc(64, "owner")
    with pytest.raises(BadPointer, match=message):
        heap.kfree(make_pointer(p))
    assert heap.memcheck().ok and heap.allocation(p) is not None


def test_double_free_names_the_block(heap):
    p = heap.kmalloc(24, "net", site="net/arp.py:42")
    heap.kfree(p)
    with pytest.raises(DoubleFree, match=r"'net'.*size 24.*net/arp.py:42"):
        heap.kfree(p)
    with pytest.raises(DoubleFree):
        heap.krealloc(p, 10)
    assert heap.memcheck().ok


def test_overrun_into_the_back_canary_is_caught_at_free(heap, memory):
    heap.kmalloc(32, "other")
    p = heap.kmalloc(20, "fs", site="fs/fat.py:7")
    memory.write(p + 20, b"\x00")  # one byte past the end
    result = heap.memcheck()
    assert not result.ok
    problem = result.problems[0]
    assert (problem.address, problem.tag, problem.size) == (p - HEADER, "fs", 20)
    assert "overrun" in problem.what and "payload end +0" in problem.what
    with pytest.raises(HeapCorruption, match=r"'fs'.*fs/fat.py:7.*overrun"):
        heap.kfree(p)
    # The block was released anyway; the heap is consistent again.
    assert heap.memcheck().ok


def test_underrun_into_the_front_canary_is_caught(heap, memory):
    p = heap.kmalloc(64, "tty")
    memory.write(p - 2, b"\x00\x00")
    problem = heap.memcheck().problems[0]
    assert problem.tag == "tty" and "underrun" in problem.what and "start -2" in problem.what
    with pytest.raises(HeapCorruption, match="'tty'.*underrun"):
        heap.kfree(p)


def test_smashed_header_and_footer_are_named(heap, memory):
    a = heap.kmalloc(64, "a")
    b = heap.kmalloc(64, "b")
    memory.write(b - HEADER + 4, b"\xff\xff\xff\xff")  # size word of b's header
    problems = heap.memcheck().problems
    assert problems[0].tag == "b" and "size word" in problems[0].what
    with pytest.raises(HeapCorruption):
        heap.krealloc(b, 10)  # refused, block untouched
    assert heap.allocation(b) is not None
    memory.write(a - HEADER + 4, b"\x00\x00\x00\x00")
    assert heap.memcheck().problems[0].tag in {"a", "b"}


def test_stray_write_over_a_free_block_header(heap, memory):
    p = heap.kmalloc(64, "x")
    heap.kmalloc(64, "y")
    heap.kfree(p)
    memory.write(p - HEADER, b"\x00" * 8)
    result = heap.memcheck()
    assert not result.ok and "free block header damaged" in result.problems[0].what


def test_memleak_groups_by_tag_oldest_first(heap):
    first = heap.kmalloc(10, "proc", site="proc.py:1")
    heap.kmalloc(20, "net")
    second = heap.kmalloc(30, "proc")
    groups = heap.memleak()
    assert [g.tag for g in groups] == ["proc", "net"]
    assert [a.address for a in groups[0].allocations] == [first, second]
    assert (
        groups[0].bytes == 40
        and groups[0].allocations[0].time_ns < groups[1].allocations[0].time_ns
    )
    lines = format_memleak(groups)
    assert lines[0].startswith("proc: 2 live, 40 bytes") and "proc.py:1" in lines[1]


def test_stats_count_peak_and_fragmentation(heap):
    pointers = [heap.kmalloc(100, "s") for _ in range(10)]
    peak = heap.memstats().used
    for p in pointers[::2]:
        heap.kfree(p)
    stats = heap.memstats()
    assert (stats.allocations, stats.frees, stats.live) == (10, 5, 5)
    assert stats.peak_used == peak and stats.used < peak
    assert stats.requested == 500
    assert 0.0 < stats.fragmentation < 1.0
    assert stats.fragmentation == pytest.approx(1 - stats.largest_free / stats.free)
    assert any("fragmentation" in line for line in format_memstats(stats))
    assert format_memcheck(heap.memcheck())[0].endswith("OK")


def test_plain_and_view_memories_produce_identical_bytes(make_memory):
    memories = [make_memory("plain", 2 << 20), make_memory("view", 2 << 20)]
    for memory in memories:
        heap = KernelHeap(memory, lambda: 0, BASE, SIZE)
        a = heap.kmalloc(33, "a")
        b = heap.kmalloc(70, "b", align=128)
        heap.krealloc(a, 90)
        heap.kfree(b)
        heap.kcalloc(3, 5, "c")
    assert memories[0].data == memories[1].data


def test_heap_size_policy():
    assert heap_size_for_ram(32 << 20) == 4 << 20
    assert heap_size_for_ram(256 << 20) == 32 << 20
    assert heap_size_for_ram(2 << 20) == 512 << 10  # the smallest machine: half is left for frames


def test_constructor_rejects_a_bad_region(memory, clock):
    with pytest.raises(ValueError):
        KernelHeap(memory, clock, BASE + 3, SIZE)
    with pytest.raises(ValueError):
        KernelHeap(memory, clock, BASE, 100)


def test_works_on_the_machines_memory_object():
    from tradekernel.emu.memory import GuestMemory

    memory = GuestMemory(memoryview(bytearray(2 << 20)))
    heap = KernelHeap(memory, lambda: 0, BASE, SIZE)
    p = heap.kmalloc(100, "machine", align=64)
    memory.write(p, b"x" * 100)
    heap.kfree(heap.kmalloc(7, "machine"))
    assert heap.memcheck().ok and memory.read(p, 100) == b"x" * 100
