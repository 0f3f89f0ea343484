"""Property test: the heap against a model of live allocations and their contents."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradekernel.kernel.mm.heap import KernelHeap, OutOfMemory

BASE = 0x100000
SIZE = 32 * 1024

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
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations, kind=st.sampled_from(["view", "plain"]))
def test_heap_matches_a_model(make_memory, ops, kind):
    memory = make_memory(kind, BASE + SIZE)
    heap = KernelHeap(memory, itertools.count().__next__, BASE, SIZE)
    model: dict[int, tuple[int, int, bytes]] = {}  # ptr -> (size, align, contents)
    stamp = 0
    for op in ops:
        stamp += 1
        if op[0] == "alloc":
            _, size, align = op
            try:
                p = heap.kmalloc(size, f"t{stamp % 3}", align=align)
            except OutOfMemory:
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
                    continue
                assert q % max(align, 16) == 0
                kept = min(size, new_size)
                assert memory.read(q, kept) == contents[:kept]
                contents = bytes([stamp % 251]) * new_size
                memory.write(q, contents)
                model[q] = (new_size, align, contents)
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
    assert result.ok and result.blocks == 1 and heap.memstats().largest_free == SIZE
