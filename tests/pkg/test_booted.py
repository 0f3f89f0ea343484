"""`pkg` in the booted OS, on the OS disk image, checked from the host by fsck.fat and mtools:
install from a repository directory on the disk, list/files/info/search/remove, a bad
checksum that leaves the image byte for byte, and the emulator killed mid-install."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import peer
from tests.pkg.booted import INSTALL_NS, boot_with_pkg
from tests.pkg.conftest import busybox_deb, repair
from tradekernel.disktool import create_os_disk, open_volume
from tradekernel.kernel.pkg.database import Database
from tradekernel.kernel.pkg.deb import read_deb
from tradekernel.repotool import add, put

PARTITION_OFFSET = 1048576  # partition 1 starts at sector 2048
# Sector writes after pkg says "unpacking" at which the emulator is killed: inside busybox's
# 2 MB, and among the last writes (the records are on the disk, the journal not yet removed).
# The whole install makes about 4,365 (tests/pkg/booted.py prints the count).
KILL_AT_WRITES = (2500, 4340)
REPO = "/var/cache/pkg"


def disk_with_repo(tmp_path: Path) -> Path:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    add(tmp_path / "repo", [busybox_deb()])
    put(disk, tmp_path / "repo", REPO)
    return disk


def fsck_disk(disk: Path) -> None:
    """fsck.fat -n on partition 1 finds nothing wrong (after a power cut too: the next
    writable mount reclaims clusters a cut write left allocated)."""
    part = disk.with_suffix(".part")
    with open(disk, "rb") as src:
        src.seek(PARTITION_OFFSET)
        part.write_bytes(src.read())
    result = subprocess.run([peer("fsck.fat"), "-n", str(part)], capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output


def mtype(disk: Path, path: str) -> bytes:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    result = subprocess.run(
        [peer("mtype"), "-i", f"{disk}@@{PARTITION_OFFSET}", f"::{path}"],
        capture_output=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_install_query_remove_and_a_bad_checksum(tmp_path: Path) -> None:
    disk = disk_with_repo(tmp_path)
    with open_volume(disk) as fs:  # a second repository whose index lies about the checksum
        fs.mkdir("/bad")
        index = re.sub(  # one hex digit of the SHA256 changed
            rb"SHA256: (.)",
            lambda m: b"SHA256: " + (b"1" if m.group(1) == b"0" else b"0"),
            fs.read_file(f"{REPO}/Packages"),
        )
        fs.write_file("/bad/Packages", index)
        deb_name = busybox_deb().name
        fs.write_file(f"/bad/{deb_name}", fs.read_file(f"{REPO}/{deb_name}"))
    tk = boot_with_pkg(tmp_path, disk)
    tk.pc.flush()
    before = disk.read_bytes()
    refused = tk.output("pkg install --repo /bad busybox-static", INSTALL_NS)
    tk.pc.flush()
    assert any("bad checksum" in line for line in refused), refused
    assert disk.read_bytes() == before, "a refused install changed the disk image"

    installed = tk.output("pkg install busybox-static", INSTALL_NS)
    assert installed[-1].startswith("installed busybox-static 1:1.35.0"), installed
    assert tk.output("pkg list")[0].split()[:3] == [
        "busybox-static",
        "1:1.35.0-4+deb12u1+b1",
        "i386",
    ]
    assert "/bin/busybox" in tk.output("pkg files busybox-static")
    assert "Status: installed" in tk.output("pkg info busybox-static")
    assert tk.output("pkg search rescue shell")[0].startswith("busybox-static")
    tk.pc.flush()
    fsck_disk(disk)
    entries = read_deb(busybox_deb().read_bytes(), 64 << 20).entries
    busybox = next(e for e in entries if e.path == "/bin/busybox")
    assert mtype(disk, "/bin/busybox") == busybox.data

    assert tk.output("pkg remove busybox-static", INSTALL_NS) == ["removed busybox-static"]
    assert tk.output("pkg list") == []
    tk.pc.flush()
    fsck_disk(disk)
    with open_volume(disk, read_only=True) as fs:
        assert not fs.exists("/bin/busybox") and not fs.exists("/usr/share/doc/busybox-static")


@pytest.mark.parametrize("kill_at", KILL_AT_WRITES)
def test_emulator_killed_mid_install_boots_to_all_or_nothing(tmp_path: Path, kill_at: int) -> None:
    disk = disk_with_repo(tmp_path)
    child = subprocess.run(
        [sys.executable, "-m", "tests.pkg.booted", str(disk), "pkg install busybox-static",
         str(kill_at)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=600,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    with open_volume(disk, read_only=True) as fs:
        assert fs.exists("/var/lib/pkg/journal"), "the kill did not land inside the install"
        damaged = fs.read_only_reason
    if damaged:  # power lost between the two FAT copies: fsck.fat repairs before the boot
        disk.write_bytes(repair(disk.read_bytes(), tmp_path))
    tk = boot_with_pkg(tmp_path, disk)  # registering pkg runs the recovery, as at boot
    listed = tk.output("pkg list")
    tk.pc.flush()
    fsck_disk(disk)
    with open_volume(disk, read_only=True) as fs:
        assert not fs.exists("/var/lib/pkg/journal")
        installed = Database(fs).is_installed("busybox-static")
        assert not installed and listed == [], listed  # the journal was there: rolled back
        assert not fs.exists("/bin/busybox") and not fs.exists("/usr/share/doc/busybox-static")
    assert tk.output("pkg install busybox-static", INSTALL_NS)[-1].startswith("installed")
