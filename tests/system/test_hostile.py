"""Hostile ring-3 programs (issue 15, images/programs/hostile.c): each attack the kernel once
stopped on, run from the booted shell; the machine must answer as Linux would and go on."""

from __future__ import annotations

import re
from pathlib import Path

from tests.system.harness import BootedPc
from tests.system.test_elf_rejections import elf, load
from tradekernel.disktool import create_os_disk, open_volume

SECOND = 1_000_000_000
MIB = 1 << 20
MIN_RAM_MIB = 2  # the machine's smallest memory (emu/pc.py)


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


def test_running_out_of_frames_is_enomem_never_a_stop(tmp_path: Path) -> None:
    """Cause 2: on the smallest machine, brk is refused, mmap is ENOMEM, fork and execve fail
    with ENOMEM when no frame is left; after the hog exits everything is free again."""
    tk = BootedPc(tmp_path, ram_mib=MIN_RAM_MIB).boot()
    frames = tk.pc.kernel.mm.frames
    free_before = frames.free_count
    printed = tk.output("hostile hog", virtual_ns=60 * SECOND)
    assert re.fullmatch(r"brk: refused after \d+ KiB", printed[0]), printed
    assert re.fullmatch(r"mmap: -12 after \d+ KiB", printed[1]), printed
    assert printed[2:] == ["fork: ENOMEM", "execve: -12"], printed
    assert tk.output("hello") == ["hello, world"]
    assert memcheck_ok(tk)
    assert frames.free_count == free_before  # the hog's frames all came back


def test_an_elf_larger_than_memory_is_refused_before_the_host_allocates(tmp_path: Path) -> None:
    """Cause 2: a p_memsz of 2 GiB (a valid file otherwise) is ENOMEM, bounded by the guest's
    free frames before anything is allocated, host side or guest side."""
    import resource

    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        fs.write_file("/bin/huge", elf(segments=[load(memsz=2 << 30, flags=7)]))
    tk = BootedPc(tmp_path, disk=disk).boot()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    printed = tk.output("huge")
    assert len(printed) == 1
    assert re.fullmatch(r"run: /bin/huge: needs 2097280 KiB of memory, \d+ KiB free", printed[0])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024
    assert tk.output("hello") == ["hello, world"]


def test_with_memory_full_programs_and_pipelines_fail_and_the_shell_says_so(
    tmp_path: Path,
) -> None:
    """Cause 2: while a background program holds every frame, starting a program or a
    pipeline fails with a line from the shell; a fork bomb meets ENOMEM/EAGAIN; once the
    holder is killed, everything runs again."""
    tk = BootedPc(tmp_path, ram_mib=MIN_RAM_MIB).boot()
    tk.command("hostile hold &")
    tk.run_to_stop(SECOND)
    assert tk.pc.kernel.mm.frames.free_count == 0
    printed = tk.output("hello")
    assert len(printed) == 1 and printed[0].startswith("run: /bin/hello: "), printed
    assert "KiB free" in printed[0] or "out of" in printed[0], printed
    printed = tk.output("hello | wc")
    assert len(printed) == 1 and printed[0].startswith("sh: /bin/hello: "), printed
    tk.output("kill -9 %1")
    assert tk.output("hello | wc") == ["1 2 13"]
    assert memcheck_ok(tk)


def test_a_fork_bomb_on_the_smallest_machine_is_refused_and_killed(tmp_path: Path) -> None:
    """Cause 2: a fork bomb in 2 MiB runs out of frames and table slots: forks fail, the
    machine goes on; killing the job gives every frame back."""
    tk = BootedPc(tmp_path, ram_mib=MIN_RAM_MIB).boot()
    frames = tk.pc.kernel.mm.frames
    free_before = frames.free_count
    tk.command("forkbomb &")
    tk.run_to_stop(2 * SECOND)
    bombs = [p for p in tk.pc.kernel.processes.table.values() if p.name == "forkbomb"]
    assert len(bombs) > 1
    tk.output("kill -9 %1", virtual_ns=20 * SECOND)
    tk.run_to_stop(SECOND)
    assert not tk.pc.kernel.processes.table
    assert tk.output("hello") == ["hello, world"]
    assert memcheck_ok(tk)
    assert frames.free_count == free_before
