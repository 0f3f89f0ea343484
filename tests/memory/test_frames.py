"""The physical frame allocator: range, exhaustion, reference counts, bad frames."""

from __future__ import annotations

import pytest

from tradekernel.kernel.mm.frames import FRAME_SIZE, BadFrame, FrameAllocator, OutOfFrames

FIRST = 0x500000


def test_range_is_rounded_inward_and_lowest_frames_come_first():
    frames = FrameAllocator(FIRST + 1, FIRST + 10 * FRAME_SIZE + 100)
    assert (frames.first, frames.end) == (FIRST + FRAME_SIZE, FIRST + 10 * FRAME_SIZE)
    assert frames.stats().total == 9
    assert [frames.alloc() for _ in range(3)] == [FIRST + FRAME_SIZE * i for i in (1, 2, 3)]


def test_exhaustion_raises_and_recovers():
    frames = FrameAllocator(FIRST, FIRST + 4 * FRAME_SIZE)
    taken = [frames.alloc() for _ in range(4)]
    assert len(set(taken)) == 4
    with pytest.raises(OutOfFrames) as error:
        frames.alloc()
    assert error.value.errno == 12
    assert frames.stats().free == 0
    frames.free(taken[2])
    assert frames.alloc() == taken[2]


def test_reference_counts_keep_shared_frames_alive():
    frames = FrameAllocator(FIRST, FIRST + 4 * FRAME_SIZE)
    frame = frames.alloc()
    assert frames.ref(frame) == 2 and frames.ref(frame) == 3
    assert frames.stats().shared == 1
    assert frames.free(frame) == 2 and frames.free(frame) == 1
    assert frames.stats().used == 1
    assert frames.free(frame) == 0
    assert frames.refcount(frame) == 0 and frames.stats().used == 0


@pytest.mark.parametrize("op", ["free", "ref"])
@pytest.mark.parametrize("address", [FIRST + 1, FIRST - FRAME_SIZE, FIRST + 64 * FRAME_SIZE, "x"])
def test_bad_frames_are_refused(op, address):
    frames = FrameAllocator(FIRST, FIRST + 4 * FRAME_SIZE)
    with pytest.raises(BadFrame):
        getattr(frames, op)(address)


def test_double_free_is_refused_without_damage():
    frames = FrameAllocator(FIRST, FIRST + 4 * FRAME_SIZE)
    frame = frames.alloc()
    frames.free(frame)
    with pytest.raises(BadFrame, match="not allocated"):
        frames.free(frame)
    assert frames.stats().free == 4
    assert len({frames.alloc() for _ in range(4)}) == 4


def test_constructor_rejects_an_empty_range():
    with pytest.raises(ValueError):
        FrameAllocator(FIRST, FIRST + 100)
