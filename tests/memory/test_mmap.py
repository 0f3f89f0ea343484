"""kernel/mm/mmap.py on real page tables without a CPU: mmap/munmap/mprotect rules, System V
segments, and a property test that random mappings, forks and exits never lose or leak a
frame and keep every segment's attachment count true."""

from __future__ import annotations

import errno as E
import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.memory.conftest import make_memory
from tests.memory.test_paging import FIRST_FRAME, RAM
from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.mmap import (
    IPC_CREAT,
    IPC_RMID,
    IPC_STAT,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    MMAP_BASE,
    PROT_READ,
    PROT_WRITE,
    SHMID_DS64,
    MemoryMaps,
    ProcessMaps,
)
from tradekernel.kernel.mm.paging import PAGE_SIZE, PTE_P, PTE_RW, PTE_SHARED, Paging

RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
IPC_64 = 0x100


@dataclass(eq=False)
class FakeProcess:
    pid: int
    aspace: object
    maps: ProcessMaps = field(default_factory=ProcessMaps)


class World:
    def __init__(self) -> None:
        self.memory = make_memory("view", RAM)
        self.frames = FrameAllocator(FIRST_FRAME, RAM)
        self.paging = Paging(self.memory, self.frames, kernel_map_end=RAM,
                             invalidate=lambda cr3, vaddr: None)  # fmt: skip
        self.maps = MemoryMaps(self.frames, self.memory, lambda: 1_700_000_000)
        self.pids = itertools.count(1)
        self.free_at_start = self.frames.free_count

    def spawn(self) -> FakeProcess:
        return FakeProcess(next(self.pids), self.paging.create_address_space())

    def fork(self, parent: FakeProcess) -> FakeProcess:
        child = FakeProcess(next(self.pids), parent.aspace.clone())
        self.maps.forked(parent, child)
        return child

    def exit(self, process: FakeProcess) -> None:
        self.maps.released(process)
        process.aspace.teardown()


def test_anonymous_private_mapping_is_zeroed_writable_and_goes_away() -> None:
    world = World()
    process = world.spawn()
    address = world.maps.mmap(process, 0, 3 * PAGE_SIZE + 1, RW, ANON, -1, 0)
    assert address == MMAP_BASE
    entries = [process.aspace.entry(address + n * PAGE_SIZE) for n in range(4)]
    assert all(entry & PTE_P and entry & PTE_RW for entry in entries)
    assert not any(entry & PTE_SHARED for entry in entries)
    assert world.frames.free_count == world.free_at_start - 4 - 1 - 1  # 4 pages, table, dir
    assert world.maps.munmap(process, address + PAGE_SIZE, PAGE_SIZE) == 0
    assert [(r.start, r.end) for r in process.maps.regions] == [
        (address, address + PAGE_SIZE), (address + 2 * PAGE_SIZE, address + 4 * PAGE_SIZE),
    ]  # fmt: skip
    second = world.maps.mmap(process, 0, PAGE_SIZE, RW, ANON, -1, 0)
    assert second == address + PAGE_SIZE  # the hole is reused
    world.exit(process)
    assert world.frames.free_count == world.free_at_start


def test_argument_errors_are_linuxs() -> None:
    world = World()
    process = world.spawn()
    maps = world.maps
    assert maps.mmap(process, 0, 0, RW, ANON, -1, 0) == -E.EINVAL
    assert maps.mmap(process, 0, PAGE_SIZE, RW, MAP_ANONYMOUS, -1, 0) == -E.EINVAL  # no type
    assert maps.mmap(process, 0, PAGE_SIZE, RW, MAP_PRIVATE, 3, 0) == -E.ENODEV  # a file
    assert maps.mmap(process, 0, PAGE_SIZE, RW, MAP_PRIVATE, 0xFFFF_FFFF, 0) == -E.EBADF
    assert maps.mmap(process, 0x1234, PAGE_SIZE, RW, ANON | MAP_FIXED, -1, 0) == -E.EINVAL
    assert maps.mmap(process, 0, RAM, RW, ANON, -1, 0) == -E.ENOMEM  # more than is free
    assert maps.munmap(process, 0x1001, PAGE_SIZE) == -E.EINVAL
    assert maps.mprotect(process, MMAP_BASE, PAGE_SIZE, PROT_READ) == -E.ENOMEM  # unmapped
    assert world.frames.free_count == world.free_at_start - 1  # only the directory


def test_mprotect_and_prot_none_reach_the_page_table() -> None:
    world = World()
    process = world.spawn()
    address = world.maps.mmap(process, 0, PAGE_SIZE, PROT_READ, ANON, -1, 0)
    assert not process.aspace.entry(address) & PTE_RW
    assert world.maps.mprotect(process, address, PAGE_SIZE, RW) == 0
    assert process.aspace.entry(address) & PTE_RW
    assert world.maps.mprotect(process, address, PAGE_SIZE, 0) == 0
    assert not process.aspace.translate(address, user=True).ok  # PROT_NONE: supervisor only


def test_shared_anonymous_memory_survives_fork_as_the_same_frames() -> None:
    world = World()
    parent = world.spawn()
    address = world.maps.mmap(parent, 0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
    child = world.fork(parent)
    assert child.aspace.entry(address) & PTE_RW  # not copy-on-write
    frame = parent.aspace.translate(address, write=True, user=True).physical
    assert child.aspace.translate(address, write=True, user=True).physical == frame


def test_a_segment_lives_until_removed_and_last_detached() -> None:
    world = World()
    a, b = world.spawn(), world.spawn()
    shmid = world.maps.shmget(a, 77, 5000, IPC_CREAT | 0o600)
    assert world.maps.shmget(b, 77, 4096, 0) == shmid
    assert world.maps.shmget(b, 77, 9000, 0) == -E.EINVAL  # larger than the segment
    assert world.maps.shmget(b, 78, 4096, 0) == -E.ENOENT
    first, second = world.maps.shmat(a, shmid, 0, 0), world.maps.shmat(b, shmid, 0, 0)
    stat = SHMID_DS64.unpack(world.maps.shmctl(a, shmid, IPC_STAT | IPC_64))
    assert stat[0] == 77 and stat[11] == 5000 and stat[20] == 2  # key, size, attachments
    assert world.maps.shmctl(a, shmid, IPC_STAT) == -E.EINVAL  # only the IPC_64 layout
    assert world.maps.shmctl(a, shmid, IPC_RMID) == 0
    assert world.maps.shmget(b, 77, 4096, 0) == -E.ENOENT  # a removed key is gone
    assert world.maps.shmdt(a, first) == 0
    assert shmid in world.maps.segments  # b still has it
    world.exit(b)  # an exit detaches
    assert shmid not in world.maps.segments
    assert world.maps.shmdt(a, first) == -E.EINVAL
    assert second == first  # each in its own space, at the same lowest free address
    world.exit(a)
    assert world.frames.free_count == world.free_at_start


operation = st.one_of(
    st.tuples(st.just("mmap"), st.integers(0, 3), st.integers(1, 5 * PAGE_SIZE), st.booleans()),
    st.tuples(st.just("munmap"), st.integers(0, 3), st.integers(0, 40), st.integers(1, 6)),
    st.tuples(st.just("shmget"), st.integers(0, 3), st.integers(1, 3), st.integers(1, 9000)),
    st.tuples(st.just("shmat"), st.integers(0, 3), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("shmdt"), st.integers(0, 3), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("fork"), st.integers(0, 3), st.just(0), st.just(False)),
    st.tuples(st.just("exit"), st.integers(0, 3), st.just(0), st.just(False)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(operation, max_size=40))
def test_random_mappings_forks_and_exits_keep_every_frame_accounted(operations) -> None:
    world = World()
    maps = world.maps
    processes = [world.spawn()]
    for kind, who, a, b in operations:
        process = processes[who % len(processes)]
        if kind == "mmap":
            flags = (MAP_SHARED if b else MAP_PRIVATE) | MAP_ANONYMOUS
            assert maps.mmap(process, 0, a, RW, flags, -1, 0) >= MMAP_BASE
        elif kind == "munmap":
            assert maps.munmap(process, MMAP_BASE + a * PAGE_SIZE, b * PAGE_SIZE) == 0
        elif kind == "shmget":
            maps.shmget(process, a, b, IPC_CREAT | 0o600)
        elif kind == "shmat":
            shmid = maps.shmget(process, a, 1, 0)
            if shmid > 0:
                assert maps.shmat(process, shmid, 0, 0) >= MMAP_BASE
                if b:
                    maps.shmctl(process, shmid, IPC_RMID)
        elif kind == "shmdt":
            attached = [r.start for r in process.maps.regions if r.segment is not None]
            if attached:
                assert maps.shmdt(process, attached[a % len(attached)]) == 0
        elif kind == "fork" and len(processes) < 4:
            processes.append(world.fork(process))
        elif kind == "exit" and len(processes) > 1:
            processes.remove(process)
            world.exit(process)
        for each in processes:  # regions sorted, disjoint and fully mapped
            spans = [(r.start, r.end) for r in each.maps.regions]
            assert spans == sorted(spans)
            assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
            assert all(
                each.aspace.entry(page) & PTE_P
                for start, end in spans
                for page in range(start, end, PAGE_SIZE)
            )
        for segment in maps.segments.values():
            held = sum(r.segment is segment for p in processes for r in p.maps.regions)
            assert segment.attachments == held
    for process in processes:
        world.exit(process)
    for shmid in list(maps.segments):
        maps.shmctl(processes[0], shmid, IPC_RMID)
    assert maps.segments == {}
    assert world.frames.free_count == world.free_at_start


def test_shmat_with_no_frame_for_a_page_table_is_enomem_and_leaks_nothing() -> None:
    """Found by the hostile-program fuzzer: shmat took a reference to the segment's frame,
    then mapping it needed a page-table frame there was none of; that reference was never
    given back, so the frame outlived its segment."""
    world = World()
    a = world.spawn()
    shmid = world.maps.shmget(a, 5, 4096, IPC_CREAT | 0o600)
    hoard = [world.frames.alloc() for _ in range(world.frames.free_count)]
    assert world.maps.shmat(a, shmid, 0, 0) == -E.ENOMEM  # its page table has no frame
    for frame in hoard:
        world.frames.free(frame)
    assert world.maps.shmctl(a, shmid, IPC_RMID) == 0
    world.exit(a)
    assert shmid not in world.maps.segments
    assert world.frames.free_count == world.free_at_start
