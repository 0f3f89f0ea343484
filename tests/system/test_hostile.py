"""Hostile ring-3 programs (issue 15, images/programs/hostile.c): each attack the kernel once
stopped on, run from the booted shell; the machine must answer as Linux would and go on."""

from __future__ import annotations

import re
from pathlib import Path

from tests.system.harness import BootedPc

SECOND = 1_000_000_000
MIB = 1 << 20


def memcheck_ok(tk: BootedPc) -> bool:
    return any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))


def test_lseek_and_fstat_on_a_regular_file(tmp_path: Path) -> None:
    """Cause 1: fstat and lseek on a FAT file, as stdio does, answer the file's size."""
    tk = BootedPc(tmp_path).boot()
    size = len(tk.pc.kernel.read_file("/bin/hello"))
    first = chr(tk.pc.kernel.read_file("/bin/hello")[1])
    printed = tk.output("hostile seek /bin/hello")
    assert printed == [
        f"fstat=0 size={size} fstat64=0 size64={size} lseek_end={size} lseek_set=1 read=1:{first}"
    ]


def test_int3_is_a_breakpoint_trap(tmp_path: Path) -> None:
    """Cause 11: int3 in ring 3 is SIGTRAP (Linux's "Trace/breakpoint trap"), not #GP."""
    tk = BootedPc(tmp_path).boot()
    printed = tk.output("hostile int3")
    assert len(printed) == 1 and printed[0].startswith("hostile[")
    assert "trace/breakpoint trap" in printed[0], printed
    assert "int3: survived" not in printed


def test_a_huge_writev_is_capped_per_call(tmp_path: Path) -> None:
    """Cause 3: 1024 iovecs of 1 MiB move at most MAX_IO (1 MiB) in one call, for writev and
    readv alike, and the host does not allocate the gigabyte."""
    import resource

    tk = BootedPc(tmp_path).boot()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    printed = tk.output("hostile writev", virtual_ns=20 * SECOND)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert printed == [f"writev={MIB}", f"readv={MIB}", "writev_overflow=-22"]
    assert grown_kib < 64 * 1024, f"the host grew by {grown_kib} KiB"
