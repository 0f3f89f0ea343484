"""Property test: the heap against a model of live allocations and their contents; every
OutOfMemory must be justified: the model shows no free block where the request fits."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tradekernel.kernel.mm.heap import KernelHeap, OutOfMemory

BASE = 0x100000
# A small heap runs out often (each OutOfMemory is then judged by the model); a larger one
# mostly does not, and exercises long free lists.
HEAP_SIZES = st.sampled_from([4 * 1024, 8 * 1024, 32 * 1024])
# The block layout the heap documents: 16 bytes of header words and a 16-byte front canary
# before the payload, at least 8 canary bytes and an 8-byte footer after it, every block a
# multiple of 16 bytes and 16-byte aligned.
GRANULE = 16
FRONT = 32
BACK = 8 + 8


def block_size(size: int) -> int:
    return -(-(FRONT + size + BACK) // GRANULE) * GRANULE


def free_gaps(live: dict[int, int], heap_size: int) -> list[tuple[int, int]]:
    """(start, size) of the space no live block covers; live maps payload -> requested size.
    The heap coalesces free neighbours, so these are exactly its free blocks."""
    gaps, cursor = [], BASE
    for p in sorted(live):
        start = p - FRONT
        if start > cursor:
            gaps.append((cursor, start - cursor))
        cursor = start + block_size(live[p])
    if cursor < BASE + heap_size:
        gaps.append((cursor, BASE + heap_size - cursor))
    return gaps


def fits(gaps: list[tuple[int, int]], size: int, align: int) -> bool:
    """Whether some free block can hold a `size`-byte payload aligned to `align`: the
    highest aligned payload whose block ends inside the gap must start inside it too."""
    n, align = block_size(size), max(align, GRANULE)
    return any((start + gap - n + FRONT) // align * align - FRONT >= start for start, gap in gaps)


sizes = st.integers(min_value=1, max_value=3000)
aligns = st.sampled_from([16, 16, 16, 8, 32, 64, 512, 4096])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), sizes, aligns),
        st.tuples(st.just("free"), st.integers(0, 1000)),
        st.tuples(st.just("realloc"), st.integers(0, 1000), sizes),
    ),
    max_size=60,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations, kind=st.sampled_from(["view", "plain"]), heap_size=HEAP_SIZES)
def test_heap_matches_a_model(make_memory, ops, kind, heap_size):
    memory = make_memory(kind, BASE + heap_size)
    heap = KernelHeap(memory, itertools.count().__next__, BASE, heap_size)
    model: dict[int, tuple[int, int, bytes]] = {}  # ptr -> (size, align, contents)
    stamp = 0
    for op in ops:
        stamp += 1
        if op[0] == "alloc":
            _, size, align = op
            try:
                p = heap.kmalloc(size, f"t{stamp % 3}", align=align)
            except OutOfMemory:
                gaps = free_gaps({q: m[0] for q, m in model.items()}, heap_size)
                assert not fits(gaps, size, align), f"OutOfMemory for {size}/{align}: {gaps}"
                event("kmalloc: OutOfMemory, justified")
                continue
            assert p % max(align, 16) == 0
            contents = bytes([stamp % 251]) * size
            memory.write(p, contents)
            model[p] = (size, align, contents)
        elif model:
            p = sorted(model)[op[1] % len(model)]
            size, align, contents = model.pop(p)
            if op[0] == "free":
                heap.kfree(p)
            else:
                new_size = op[2]
                try:
                    q = heap.krealloc(p, new_size)
                except OutOfMemory:
                    model[p] = (size, align, contents)
                    # justified only if it could neither grow in place nor move
                    gaps = free_gaps({q: m[0] for q, m in model.items()}, heap_size)
                    end = p - FRONT + block_size(size)
                    after = next((gap for start, gap in gaps if start == end), 0)
                    assert block_size(new_size) > block_size(size) + after, (p, new_size, gaps)
                    assert not fits(gaps, new_size, align), (p, new_size, align, gaps)
                    event("krealloc: OutOfMemory, justified")
                    continue
                assert q % max(align, 16) == 0
                kept = min(size, new_size)
                assert memory.read(q, kept) == contents[:kept]
                contents = bytes([stamp % 251]) * new_size
                memory.write(q, contents)
                model[q] = (new_size, align, contents)
        # the model's free space is the heap's, block for block (so it can judge OutOfMemory)
        live = {p: m[0] for p, m in model.items()}
        assert free_gaps(live, heap_size) == sorted(heap.free_blocks())
        spans = sorted((p, p + size) for p, (size, _, _) in model.items())
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, "live allocations overlap"
    for p, (size, _, contents) in model.items():
        assert memory.read(p, size) == contents
        assert heap.allocation(p).size == size
    result = heap.memcheck()
    assert result.ok, result.problems
    assert result.used_blocks == len(model) == heap.memstats().live
    for p in list(model):
        heap.kfree(p)
    result = heap.memcheck()
    assert result.ok and result.blocks == 1 and heap.memstats().largest_free == heap_size
