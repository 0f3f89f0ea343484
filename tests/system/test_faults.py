"""Bad things the OS must survive or report: a kernel-mode fault (panic screen, CPU parked),
a corrupt filesystem (mount error shown, the shell still works)."""

from __future__ import annotations

from pathlib import Path

from tests.system.harness import PROMPT, BootedPc
from tradekernel.disktool import create_os_disk
from tradekernel.emu.cpu import EIP

PARTITION_OFFSET = 2048 * 512
KERNEL_CODE = 0x20000  # identity-mapped kernel memory, free after boot


def test_kernel_page_fault_shows_the_panic_screen_and_stops(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path, expect=("MACHINE STOPPED",)).boot()
    machine = tk.machine

    def fault_in_kernel_mode() -> None:
        code = b"\xa1\x10\x00\x00\x00\xeb\xfe"  # mov eax, [0x10] (page 0 is unmapped); jmp $
        machine.cpu.ram[KERNEL_CODE : KERNEL_CODE + len(code)] = code
        machine.cpu.write(EIP, KERNEL_CODE)
        machine.halted = False

    machine.post(fault_in_kernel_mode)
    stop = tk.run_to_stop()
    text = "".join(line.ljust(80) for line in tk.lines())  # rows joined: wrapped lines whole
    assert "KERNEL PANIC: page fault at 0x00000010: kernel read of a not-present page" in text
    assert "(error code 0x0), eip 0x00020000 in kernel" in text
    assert "0x00020000: mov eax, dword ptr [0x10]" in text
    assert stop.reason == "crash" and "halted with interrupts disabled" in stop.report
    assert any("kernel panic" in line for line in tk.log)


def test_corrupt_filesystem_is_reported_and_the_shell_still_works(tmp_path: Path) -> None:
    disk = tmp_path / "corrupt.img"
    create_os_disk(disk)
    with disk.open("r+b") as image:
        image.seek(PARTITION_OFFSET + 11)  # the BPB: bytes per sector, cluster size, ...
        image.write(bytes(20))
    before = disk.read_bytes()
    tk = BootedPc(tmp_path, disk=disk).boot()
    mount_line = next(line for line in tk.lines() if line.startswith("disk: "))
    assert mount_line.startswith("disk: cannot mount partition 1:")
    tk.command("ls")
    assert "ls: no filesystem is mounted" in tk.text()
    tk.command("echo still alive")
    assert "still alive" in tk.lines()
    assert [line for line in tk.lines() if line][-1] == PROMPT.rstrip()
    tk.type("shutdown\n")
    assert tk.run_to_stop().reason == "poweroff"
    assert disk.read_bytes() == before  # nothing was written to the broken filesystem


def test_killed_mid_run_leaves_a_disk_fsck_accepts(tmp_path: Path) -> None:
    """SIGKILL while the OS writes files: the kernel's write order (clusters before
    directory entries, both FAT copies) must leave a filesystem fsck.fat calls clean."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.disk.conftest import fsck

    disk = tmp_path / "victim.img"
    create_os_disk(disk)
    script = "mkdir data\n" + "".join(
        f"echo {'x' * 60} line {n} >> data/log{n % 7}.txt\n" for n in range(400)
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tradekernel.cli", "boot", "--headless", "--disk", str(disk)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=dict(os.environ, SDL_VIDEODRIVER="dummy"),
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(script.encode())
    process.stdin.flush()
    deadline = time.monotonic() + 60
    seen = b""
    while seen.count(b">> data/log") < 60 and time.monotonic() < deadline:
        seen += process.stdout.read1(4096)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert seen.count(b">> data/log") >= 60, "the OS never got going"
    fsck(disk, offset=PARTITION_OFFSET)


def test_fat_copies_that_disagree_mount_read_only_and_say_why(tmp_path: Path) -> None:
    disk = tmp_path / "mismatch.img"
    create_os_disk(disk)
    with disk.open("r+b") as image:
        image.seek(PARTITION_OFFSET + 14)
        reserved = int.from_bytes(image.read(2), "little")
        image.seek(PARTITION_OFFSET + 22)
        fat_sectors = int.from_bytes(image.read(2), "little")
        image.seek(PARTITION_OFFSET + (reserved + fat_sectors) * 512 + 6)  # FAT 2, cluster 3
        image.write(b"\x77\x77")
    before = disk.read_bytes()
    tk = BootedPc(tmp_path, disk=disk).boot()
    mount_line = "".join(line.ljust(80) for line in tk.lines() if line)
    assert "mounted read-only:" in mount_line
    tk.command("mkdir newdir")
    assert any(line.startswith("mkdir: newdir:") for line in tk.lines())
    tk.type("shutdown\n")
    assert tk.run_to_stop().reason == "poweroff"
    assert disk.read_bytes() == before
