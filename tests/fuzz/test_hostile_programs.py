"""Hostile ring-3 programs: seeded runs of `hostile fuzz SEED N` (images/programs/hostile.c),
each making N system calls with random numbers (the table's and unknown ones) and hostile
arguments: pointers into kernel space, page 0, its own read-only text, buffers that straddle
the end of a mapping, huge and negative sizes, bad descriptors, paths under /tmp/fz. Forks
are allowed (each child makes at most 20 more calls); calls that would end the program,
block on the console or disarm its 5 s alarm watchdog are skipped.

Asserted: the machine never stops and shows no oops, internal error or traceback (the
harness checks after every case), the shell answers after every case; at the end no process
is left, no file on the volume is open, nothing is left on the kernel heap, memcheck is clean
and every frame is free again (but those of the System V shared-memory segments the cases
created: they live until removed, as on Linux). One boot runs every case, so a leak or a
damaged kernel structure carries over to the next case and is caught there.
TK_FUZZ_PROGRAMS, TK_FUZZ_CALLS and TK_FUZZ_SEED change the count, the calls per case and the
first seed (CI runs the same cases)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tests.system.harness import BootedPc

CASES = int(os.environ.get("TK_FUZZ_PROGRAMS", "100"))
FIRST_SEED = int(os.environ.get("TK_FUZZ_SEED", "1"))
CALLS = int(os.environ.get("TK_FUZZ_CALLS", "800"))  # system calls per case
SECOND = 1_000_000_000


def test_hostile_programs_never_stop_the_machine(tmp_path: Path) -> None:
    started = time.monotonic()
    tk = BootedPc(tmp_path, ram_mib=8).boot()
    kernel = tk.pc.kernel
    assert tk.output("mkdir /tmp/fz") == []
    tk.output("hello")  # the first program's page tables and caches, before the baseline
    free_frames = kernel.mm.frames.free_count
    finished = 0
    for seed in range(FIRST_SEED, FIRST_SEED + CASES):
        printed = tk.output(f"hostile fuzz {seed} {CALLS}", virtual_ns=30 * SECOND)
        finished += f"fuzz {seed}: done" in printed
        tk.run_to_stop(SECOND // 10)  # the forked children finish or their watchdogs fire
        assert tk.output("echo alive") == ["alive"], f"seed {seed}"
    # Without it the test passes when `hostile fuzz` makes no call at all (a usage line, a
    # missing program): some cases end early (a watchdog, a fatal signal), not every one.
    assert finished, f"no case of hostile fuzz made its {CALLS} calls: {printed}"
    tk.run_to_stop(6 * SECOND)  # every watchdog has fired by now
    assert not kernel.processes.table, [(p.name, p.state) for p in kernel.processes.table.values()]
    assert not kernel.fs.busy()  # every file the cases opened was closed with its last holder
    assert kernel.mm.heap.memstats().live == 0  # no kernel stack or FPU area of the dead kept
    assert any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))
    assert tk.output("hello") == ["hello, world"]
    kept = sum(len(segment.frames) for segment in kernel.processes.maps.segments.values())
    assert kernel.mm.frames.free_count + kept == free_frames  # System V segments outlive us
    assert kernel.klog.oopses == 0
    print(f"{CASES} hostile programs x {CALLS} calls ({finished} ran to the end) in "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
