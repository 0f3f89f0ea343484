"""A data floppy used from the booted OS: `mount fd0 /a` reads a diskette mkfs.fat and mtools made,
the OS writes files and directories on it through the floppy controller and ISA DMA, `umount`
writes it out, and then fsck.fat finds it clean and mtools reads what the OS wrote. A
write-protected diskette mounts read-only and is never written; one that is not FAT, or no
diskette at all, is refused in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.peers import peer
from tests.system.harness import PROMPT, BootedPc
from tradekernel.emu.pc import floppy_disk

FLOPPY_KIB = 1440


def make_floppy(path: Path) -> Path:
    subprocess.run([peer("mkfs.fat"), "-C", "-n", "DATA", str(path), str(FLOPPY_KIB)],
                   check=True, capture_output=True)  # fmt: skip
    source = path.parent / "hello.txt"
    source.write_bytes(b"hello from mtools\n")
    subprocess.run([peer("mcopy"), "-i", str(path), str(source), "::HELLO.TXT"], check=True)
    subprocess.run([peer("mmd"), "-i", str(path), "::TOOLS"], check=True)
    return path


def insert(tk: BootedPc, path: Path, read_only: bool = False) -> None:
    tk.pc.fdc.insert(floppy_disk(path, read_only))


def run(tk: BootedPc, line: str) -> list[str]:
    """The lines a command printed (between its own line and the next prompt)."""
    tk.command(line)
    lines = [text for text in tk.lines() if text]
    start = len(lines) - 1 - lines[::-1].index(PROMPT + line)
    return lines[start + 1 : -1]


def fsck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([peer("fsck.fat"), "-n", "-v", str(path)], capture_output=True,
                          text=True)  # fmt: skip


def mtype(path: Path, name: str) -> bytes:
    return subprocess.run([peer("mtype"), "-i", str(path), name], capture_output=True,
                          check=True).stdout  # fmt: skip


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    booted = BootedPc(tmp_path).boot()
    booted.command("mkdir /a")
    return booted


def test_the_os_reads_and_writes_a_data_floppy_that_peers_then_read(
    tk: BootedPc, tmp_path: Path
) -> None:
    image = make_floppy(tmp_path / "data.img")
    insert(tk, image)
    assert run(tk, "mount fd0 /a") == ["fd0 on /a: FAT12, 1422 of 1423 KiB free"]
    assert run(tk, "mount") == ["ata0p1 on / type vfat", "fd0 on /a type vfat (rw)"]
    assert run(tk, "cat /a/hello.txt") == ["hello from mtools"]
    assert run(tk, "ls /a") == ["HELLO.TXT  TOOLS/"]
    assert run(tk, "echo written by the OS > /a/new.txt") == []
    assert run(tk, "mkdir /a/TOOLS/deep") == []
    assert run(tk, "cp /a/hello.txt /a/TOOLS/deep/copy.txt") == []
    assert run(tk, "echo from the hard disk > /hd.txt") == []
    assert run(tk, "mv /hd.txt /a/TOOLS") == []  # across volumes: copied, then removed
    assert run(tk, "ls /a/TOOLS") == ["deep/   hd.txt"]
    assert not tk.pc.kernel.fs.exists("/hd.txt")
    df = run(tk, "df")
    assert df[1].startswith("ata0p1      FAT16") and df[1].endswith("%  /")
    assert df[2].startswith("fd0         FAT12       1423") and df[2].endswith("%  /a")
    assert run(tk, "umount /a") == []
    assert run(tk, "ls /a") == []  # the root volume's own empty /a again
    checked = fsck(image)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert mtype(image, "::NEW.TXT") == b"written by the OS\n"
    assert mtype(image, "::TOOLS/DEEP/COPY.TXT") == b"hello from mtools\n"
    assert mtype(image, "::TOOLS/HD.TXT") == b"from the hard disk\n"
    assert run(tk, "mount fd0 /a") == ["fd0 on /a: FAT12, 1420 of 1423 KiB free"]
    assert run(tk, "cat /a/TOOLS/deep/copy.txt") == ["hello from mtools"]


def test_a_write_protected_diskette_mounts_read_only_and_is_never_written(
    tk: BootedPc, tmp_path: Path
) -> None:
    image = make_floppy(tmp_path / "ro.img")
    image.chmod(0o444)
    before = image.read_bytes()
    insert(tk, image)
    assert run(tk, "mount fd0 /a") == [
        "fd0 on /a: FAT12, 1422 of 1423 KiB free; read-only: write-protected"
    ]
    assert run(tk, "mount")[-1] == "fd0 on /a type vfat (ro)"
    assert run(tk, "echo x > /a/x.txt") == ["sh: /a/x.txt: read-only file system"]
    assert run(tk, "mkdir /a/new") == ["mkdir: /a/new: read-only file system"]
    assert run(tk, "rm /a/hello.txt") == ["rm: /a/hello.txt: read-only file system"]
    assert run(tk, "cat /a/hello.txt") == ["hello from mtools"]
    assert run(tk, "umount /a") == []
    assert image.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            bytes(FLOPPY_KIB * 1024),
            "mount: fd0: not a FAT diskette: bad boot sector signature: bytes 510-511 are 0000,"
            " expected 55aa",
        ),
        (None, "mount: fd0: no diskette in drive A: (or none it can read)"),
    ],
)
def test_a_diskette_that_is_not_fat_or_none_is_refused_in_one_line(
    tk: BootedPc, tmp_path: Path, content: bytes | None, message: str
) -> None:
    if content is not None:
        image = tmp_path / "blank.img"
        image.write_bytes(content)
        insert(tk, image)
    assert "".join(run(tk, "mount fd0 /a")) == message  # one message (wrapped at 80 columns)
    if content is not None:
        assert image.read_bytes() == content
    assert run(tk, "ls /a") == []  # nothing was mounted
    assert run(tk, "umount /a") == ["umount: /a: not mounted"]


def test_mount_needs_a_directory_and_one_drive(tk: BootedPc, tmp_path: Path) -> None:
    insert(tk, make_floppy(tmp_path / "d.img"))
    assert run(tk, "mount fd0 /nowhere") == [
        "mount: /nowhere: not a directory to mount on (mkdir it first)"
    ]
    assert run(tk, "mount hd1 /a") == ["mount: hd1: no such device (drive A: is fd0)"]
    run(tk, "mount fd0 /a")
    tk.command("mkdir /b")
    assert run(tk, "mount fd0 /b") == ["mount: fd0 is already mounted on /a"]
    assert run(tk, "rmdir /a") == ["rmdir: /a: device or resource busy (a mount point)"]
    assert run(tk, "umount fd0") == []
    assert run(tk, "rmdir /a") == []
