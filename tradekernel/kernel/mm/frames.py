"""The physical frame allocator: 4 KiB frames of guest RAM above the kernel area.

Contract
--------
* Frames are handed out by physical address (a multiple of 4096), lowest first on a fresh
  allocator, and carry a reference count: `alloc()` returns a frame with count 1, `ref()` adds
  a sharer (shared memory, copy-on-write after fork), `free()` drops one and the frame returns
  to the pool when the count reaches 0.
* Exhaustion raises `OutOfFrames` (errno ENOMEM); freeing a frame that is not allocated, not
  4 KiB aligned or outside the managed range raises `BadFrame` (errno EINVAL). Neither leaves
  the allocator changed, so the kernel can report the error and go on.
* The allocator does not touch guest memory: whoever maps a frame for someone else zeroes it
  (page tables are zeroed by paging, user pages by whoever maps them).

The managed range is [first_frame, ram_size) rounded inward to whole frames; everything below
(IVT, stub, VGA, BIOS, heap) belongs to the kernel and is never handed out.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from tradekernel.hypercall import EINVAL

FRAME_SIZE = 4096
FRAME_SHIFT = 12
ENOMEM = 12
MAX_REFCOUNT = 0xFFFF_FFFF


class FrameError(Exception):
    errno = EINVAL


class OutOfFrames(FrameError, MemoryError):
    """Every frame is in use."""

    errno = ENOMEM


class BadFrame(FrameError):
    """An address that is not an allocated frame of this allocator."""


@dataclass(frozen=True)
class FrameStats:
    total: int  # frames managed
    used: int
    free: int
    shared: int  # frames with more than one reference

    @property
    def total_bytes(self) -> int:
        return self.total * FRAME_SIZE


class FrameAllocator:
    """A free stack of frame numbers plus one reference count per frame."""

    def __init__(self, first_frame: int, ram_size: int) -> None:
        first = (first_frame + FRAME_SIZE - 1) >> FRAME_SHIFT
        last = ram_size >> FRAME_SHIFT  # exclusive
        if first_frame < 0 or last <= first:
            raise ValueError(
                f"no whole frame between {first_frame:#x} and the end of RAM {ram_size:#x}"
            )
        self.first = first << FRAME_SHIFT
        self.end = last << FRAME_SHIFT
        self._first_number = first
        self._refcounts = array("I", bytes(4 * (last - first)))
        self._free = list(range(last - 1, first - 1, -1))  # lowest on top of the stack

    def alloc(self) -> int:
        """A free frame's physical address, its reference count set to 1."""
        if not self._free:
            raise OutOfFrames(f"out of physical frames: all {len(self._refcounts)} in use")
        number = self._free.pop()
        self._refcounts[number - self._first_number] = 1
        return number << FRAME_SHIFT

    def ref(self, frame: int) -> int:
        """Add a reference to an allocated frame; returns the new count."""
        index = self._index(frame, "ref")
        count = self._refcounts[index]
        if count >= MAX_REFCOUNT:
            raise BadFrame(f"ref({frame:#x}): reference count would overflow")
        self._refcounts[index] = count + 1
        return count + 1

    def free(self, frame: int) -> int:
        """Drop one reference; the frame is free again when this returns 0."""
        index = self._index(frame, "free")
        count = self._refcounts[index] - 1
        self._refcounts[index] = count
        if count == 0:
            self._free.append(frame >> FRAME_SHIFT)
        return count

    def refcount(self, frame: int) -> int:
        """The frame's reference count (0 if it is free); BadFrame outside the managed range."""
        return self._refcounts[self._slot(frame, "refcount")]

    def owns(self, frame: int) -> bool:
        """Whether `frame` is a frame address inside the managed range (allocated or not)."""
        return frame % FRAME_SIZE == 0 and self.first <= frame < self.end

    @property
    def free_count(self) -> int:
        return len(self._free)

    def stats(self) -> FrameStats:
        total = len(self._refcounts)
        free = len(self._free)
        shared = sum(1 for count in self._refcounts if count > 1)
        return FrameStats(total=total, used=total - free, free=free, shared=shared)

    def _slot(self, frame: object, op: str) -> int:
        if frame.__class__ is not int:
            raise BadFrame(f"{op}({frame!r}): not a physical address")
        assert isinstance(frame, int)
        if not self.owns(frame):
            raise BadFrame(
                f"{op}({frame:#x}): not a 4 KiB frame in [{self.first:#x}, {self.end:#x})"
            )
        return (frame >> FRAME_SHIFT) - self._first_number

    def _index(self, frame: int, op: str) -> int:
        index = self._slot(frame, op)
        if self._refcounts[index] == 0:
            raise BadFrame(f"{op}({frame:#x}): frame is not allocated")
        return index
