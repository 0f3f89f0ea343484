"""Issue 15 item 2: running out of physical frames gives every resource back. On the smallest
machine `hostile hog` takes every frame by brk, mmap and fork until each fails (brk refused,
mmap and fork ENOMEM, execve -12); afterwards not only the frames but the kernel heap is as
it was: a failed fork or execve frees the kernel stack and FPU area it had taken."""

from __future__ import annotations

import re
from pathlib import Path

from tests.system.harness import SECOND, BootedPc

MIN_RAM_MIB = 2  # the machine's smallest memory (emu/pc.py)


def test_failed_forks_and_execs_give_back_their_kernel_memory(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path, ram_mib=MIN_RAM_MIB).boot()
    kernel = tk.pc.kernel
    tk.output("hello")  # the first program's one-time costs, before the baseline
    frames, heap = kernel.mm.frames.free_count, kernel.mm.heap.memstats()
    printed = tk.output("hostile hog", virtual_ns=60 * SECOND)
    assert printed[2:] == ["fork: ENOMEM", "execve: -12"], printed
    assert tk.output("hello") == ["hello, world"]
    after = kernel.mm.heap.memstats()
    assert (after.live, after.used) == (heap.live, heap.used), (heap, after)
    assert kernel.mm.frames.free_count == frames
    assert any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))
