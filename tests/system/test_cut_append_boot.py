"""The boot after a power cut during a log append (the log's chain one cluster longer than its
size, fs/fat.py): the system disk comes back writable, the boot line says what was repaired,
and fsck.fat finds the volume clean with no fsck run in between."""

from __future__ import annotations

from pathlib import Path

from tests.system.harness import BootedPc
from tests.system.test_files import fsck
from tradekernel.disktool import create_os_disk, open_volume

LOG = "/var/log/app.log"  # a log no service of the boot rewrites


def test_the_boot_after_a_cut_append_repairs_it_and_stays_writable(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        fs.mkdir("/var")
        fs.mkdir("/var/log")
        fs.write_file(LOG, b"#1 acknowledged\n" * 100)
        chain = fs._fat.chain(fs.stat(LOG).first_cluster)  # noqa: SLF001 - the cut's state
        extra = fs._fat.allocate(1, near=chain[-1] + 1)  # noqa: SLF001
        fs._fat.set(chain[-1], extra[0])  # noqa: SLF001 - linked, the size not yet written
        fs._commit_fat()  # noqa: SLF001
    tk = BootedPc(tmp_path, disk=disk).boot()
    [line] = [line for line in tk.serial.decode("cp437").splitlines() if line.startswith("disk:")]
    assert line.startswith("disk: FAT16 on partition 1: ") and line.endswith(
        f"; repaired {LOG}: freed the cluster past its 1600 bytes (a cut append)"
    ), line
    fsck(disk, tmp_path)  # clean straight after the boot: no fsck run in between
    assert tk.output(f"cat {LOG}")[-1] == "#1 acknowledged"
    assert tk.output("echo written > /after.txt") == []  # writable
    assert tk.pc.kernel.fs.read_file("/after.txt") == b"written\n"
    fsck(disk, tmp_path)
