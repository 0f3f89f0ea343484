"""The VFS without a machine (kernel/fs/vfs.py, fatfile.py, devfs.py, pipe.py; proc/fdtable.py):
the mount table resolves paths to the right filesystem, descriptors share one open file
description (offset included) across dup and fork and the last one closes it, FAT files seek
and stat, directories list for getdents64, /dev's nodes behave as Linux's, and pipe ends
report poll readiness. Real FAT (in memory) and real page tables (user copies) underneath."""

from __future__ import annotations

import errno
import struct
from datetime import datetime

import pytest

from tests.memory.conftest import PlainMemory
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.devfs import TIOCGWINSZ, TTY_TERMIOS, DevFs, RandomSource, TtyFile
from tradekernel.kernel.fs.fat import FatFs, mkfs
from tradekernel.kernel.fs.fatfile import FatVolume
from tradekernel.kernel.fs.pipe import Pipe
from tradekernel.kernel.fs.vfs import (
    O_CREAT,
    O_DIRECTORY,
    O_RDONLY,
    O_WRONLY,
    S_IFCHR,
    S_IFREG,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
    MountTable,
    OpenFile,
    Poll,
)
from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.paging import AddressSpace, Paging, copy_from_user, copy_to_user
from tradekernel.kernel.proc.fdtable import FileTable

RAM = 8 << 20
FIRST_FRAME = 0x500000
BUFFER = 0x08048000  # one user page the tests read into
NOW = datetime(2024, 5, 17, 13, 45, 22)


class Caller:
    """A process as files see it: its address space."""

    def __init__(self, aspace: AddressSpace) -> None:
        self.aspace = aspace


class Screen:
    """The console's write side, recorded."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


class Terminal:
    """The process layer's side of a tty read: answers with a fixed line."""

    def tty_read(self, process: Caller, buffer: int, count: int) -> int:
        data = b"line\n"[:count]
        copy_to_user(process.aspace, buffer, data)
        return len(data)

    def tty_pending(self, process: Caller) -> int:
        return 7

    random = RandomSource(b"test seed")
    termios = TTY_TERMIOS


class NoSleep:
    """A Sleeper for calls that must never sleep in these tests."""

    def __init__(self) -> None:
        self.broken: list[Caller] = []

    def block(self, process, cancel=None) -> int:  # noqa: ANN001
        raise AssertionError("nothing here should sleep")

    def wake(self, process, token: int, result: int) -> None:  # noqa: ANN001
        raise AssertionError("nothing here sleeps")

    def asleep(self, process, token: int) -> bool:  # noqa: ANN001
        return False

    def broken_pipe(self, process) -> None:  # noqa: ANN001
        self.broken.append(process)


class Counted(OpenFile):
    """An open file that counts how often it is closed."""

    closes = 0

    def close(self) -> None:
        self.closes += 1


@pytest.fixture
def caller() -> Caller:
    paging = Paging(PlainMemory(RAM), FrameAllocator(FIRST_FRAME, RAM), kernel_map_end=RAM,
                    invalidate=lambda cr3, vaddr: None)  # fmt: skip
    aspace = paging.create_address_space()
    aspace.map_new(BUFFER)
    return Caller(aspace)


@pytest.fixture
def volume() -> FatFs:
    device = MemoryBlockDevice(8 << 20)
    mkfs(device, fat_type=16, now=lambda: NOW)
    fs = FatFs(device, now=lambda: NOW)
    fs.mkdir("/docs")
    fs.write_file("/data.txt", b"abcdefgh")
    return fs


@pytest.fixture
def screen() -> Screen:
    return Screen()


@pytest.fixture
def fat(volume: FatFs) -> FatVolume:
    return FatVolume(volume)


@pytest.fixture
def dev(screen: Screen) -> DevFs:
    return DevFs(screen, Terminal())


@pytest.fixture
def mounts(fat: FatVolume, dev: DevFs) -> MountTable:
    table = MountTable()
    table.mount("/", fat)
    table.mount("/dev", dev)
    return table


def read(file: OpenFile, caller: Caller, count: int) -> bytes:
    size = file.read(caller, BUFFER, count)
    assert size is not None and size >= 0
    return copy_from_user(caller.aspace, BUFFER, size)


def test_paths_resolve_to_the_longest_mount_point(
    mounts: MountTable, fat: FatVolume, dev: DevFs
) -> None:
    assert mounts.resolve("/dev/tty") == (dev, "/tty")
    assert mounts.resolve("/dev") == (dev, "/")
    assert mounts.resolve("/device") == (fat, "/device")  # a whole component, not a prefix
    assert mounts.resolve("/docs/a.txt") == (fat, "/docs/a.txt")
    assert mounts.resolve("/") == (fat, "/")
    assert mounts.stat("/dev").is_dir and mounts.stat("/docs").is_dir
    with pytest.raises(OSError) as error:
        mounts.rename("/data.txt", "/dev/data")
    assert error.value.errno == errno.EXDEV
    with pytest.raises(OSError) as error:
        mounts.mount("/dev", DevFs(Screen(), Terminal()))
    assert error.value.errno == errno.EBUSY


def test_without_a_disk_only_dev_answers(screen: Screen) -> None:
    table = MountTable()
    table.mount("/dev", DevFs(screen, Terminal()))
    assert table.stat("/dev/null").mode & S_IFCHR
    with pytest.raises(OSError) as error:
        table.open("/data.txt", O_RDONLY)
    assert error.value.errno == errno.ENODEV


def test_dup_and_fork_share_one_offset(mounts: MountTable, caller: Caller) -> None:
    parent = FileTable()
    parent.install(3, mounts.open("/data.txt", O_RDONLY))
    (duplicate,) = parent.free()
    parent.install(duplicate, parent.get(3))  # dup
    child = parent.forked()
    assert read(child.get(3), caller, 3) == b"abc"
    assert read(parent.get(duplicate), caller, 2) == b"de"  # the same description moved on
    assert parent.get(3).seek(0, SEEK_CUR) == 5
    separate = mounts.open("/data.txt", O_RDONLY)  # a second open: its own offset
    assert read(separate, caller, 2) == b"ab"


def test_the_last_descriptor_closes_the_file() -> None:
    file = Counted()
    parent = FileTable()
    parent.install(0, file)
    parent.install(1, file)
    child = parent.forked()
    assert file.references == 4
    parent.close_all()
    child.close(0)
    assert file.closes == 0
    child.close(1)
    assert (file.closes, file.references) == (1, 0)
    with pytest.raises(OSError) as error:
        child.get(1)
    assert error.value.errno == errno.EBADF


def test_descriptors_run_out_with_emfile() -> None:
    table = FileTable()
    file = Counted()
    for fd in table.free(32):
        table.install(fd, file)
    with pytest.raises(OSError) as error:
        table.free()
    assert error.value.errno == errno.EMFILE
    with pytest.raises(OSError) as error:
        table.install(32, file)
    assert error.value.errno == errno.EBADF


def test_a_fat_file_seeks_from_its_end_and_reports_its_size(mounts: MountTable) -> None:
    file = mounts.open("/data.txt", O_RDONLY)
    assert file.seek(-2, SEEK_END) == 6
    assert file.seek(1, SEEK_CUR) == 7
    stat = file.stat()
    assert stat.mode & S_IFREG and stat.size == 8
    with pytest.raises(OSError) as error:
        file.seek(-9, SEEK_END)
    assert error.value.errno == errno.EINVAL


def test_writes_through_the_vfs_reach_the_volume(
    mounts: MountTable, volume: FatFs, caller: Caller
) -> None:
    table = FileTable()
    table.install(0, mounts.open("/docs/new.txt", O_WRONLY | O_CREAT))
    assert table.get(0).write(caller, b"hello") == 5
    table.close(0)
    assert volume.read_file("/docs/new.txt") == b"hello"
    mounts.unlink("/docs/new.txt")
    with pytest.raises(OSError) as error:
        mounts.unlink("/docs")
    assert error.value.errno == errno.EISDIR


def test_directories_open_for_getdents_only(mounts: MountTable) -> None:
    root = mounts.open("/", O_RDONLY | O_DIRECTORY)
    assert {name for name, _ in root.directory_entries()} >= {"docs", "data.txt"}
    assert dict(root.directory_entries())["docs"] is True
    assert root.seek(1, SEEK_SET) == 1 and root.seek(0, SEEK_CUR) == 1
    for path, flags, code in (
        ("/docs", O_WRONLY, errno.EISDIR),
        ("/data.txt", O_DIRECTORY, errno.ENOTDIR),
        ("/missing", O_DIRECTORY, errno.ENOENT),
        ("/dev/null", O_DIRECTORY, errno.ENOTDIR),
        ("/dev", O_WRONLY, errno.EISDIR),
    ):
        with pytest.raises(OSError) as error:
            mounts.open(path, flags)
        assert error.value.errno == code, path


def test_dev_lists_its_nodes(mounts: MountTable) -> None:
    dev = mounts.open("/dev", O_RDONLY | O_DIRECTORY)
    assert dev.directory_entries() == [
        ("console", False), ("null", False), ("random", False), ("tty", False),
        ("urandom", False), ("zero", False),
    ]  # fmt: skip
    assert mounts.stat("/dev/null").rdev == (1 << 8) | 3
    assert mounts.stat("/dev/urandom").rdev == (1 << 8) | 9
    assert mounts.stat("/dev/zero").rdev == (1 << 8) | 5
    for change in (lambda: mounts.mkdir("/dev/x"), lambda: mounts.unlink("/dev/null"),
                   lambda: mounts.open("/dev/new", O_WRONLY | O_CREAT)):  # fmt: skip
        with pytest.raises(OSError) as error:
            change()
        assert error.value.errno == errno.EROFS
    with pytest.raises(OSError) as error:
        mounts.open("/dev/nope", O_RDONLY)
    assert error.value.errno == errno.ENOENT


def test_null_and_zero(mounts: MountTable, caller: Caller) -> None:
    null = mounts.open("/dev/null", O_RDONLY)
    assert null.read(caller, BUFFER, 100) == 0
    assert null.write(caller, b"gone") == 4
    zero = mounts.open("/dev/zero", O_RDONLY)
    copy_to_user(caller.aspace, BUFFER, b"\xff" * 4096)
    assert read(zero, caller, 4096) == bytes(4096)


def test_tty_and_console_are_the_terminal(
    mounts: MountTable, caller: Caller, screen: Screen
) -> None:
    for path in ("/dev/tty", "/dev/console"):
        tty = mounts.open(path, O_WRONLY)
        assert isinstance(tty, TtyFile)
        assert tty.write(caller, b"hi ") == 3
        assert read(tty, caller, 100) == b"line\n"
        assert tty.ioctl(caller, TIOCGWINSZ, BUFFER) == 0
        assert struct.unpack("<HH", copy_from_user(caller.aspace, BUFFER, 4)) == (25, 80)
    assert screen.text == "hi hi "
    with pytest.raises(OSError) as error:
        mounts.open("/dev/null", O_RDONLY).ioctl(caller, TIOCGWINSZ, BUFFER)
    assert error.value.errno == errno.ENOTTY


def test_pipe_ends_report_readiness(caller: Caller) -> None:
    sleeper = NoSleep()
    read_end, write_end = Pipe(sleeper).ends()
    assert read_end.poll() == Poll(0)  # empty, a writer exists: a read would sleep
    assert write_end.poll() == Poll.OUT
    assert write_end.write(caller, b"xy") == 2
    assert read_end.poll() == Poll.IN
    write_end.close()  # what the last descriptor's release does
    assert read_end.poll() == Poll.IN | Poll.HUP
    assert read(read_end, caller, 10) == b"xy"
    assert read_end.read(caller, BUFFER, 10) == 0  # end of file
    other_read, other_write = Pipe(sleeper).ends()
    other_read.close()
    assert other_write.poll() == Poll.OUT | Poll.ERR
    assert other_write.write(caller, b"z") == -errno.EPIPE and sleeper.broken == [caller]


def test_a_relative_path_is_enoent_not_an_endless_walk_to_the_root(mounts: MountTable) -> None:
    """/proc/PID/fd/N of a pipe links to "anon_inode:[Pipe]": stat or open through it must
    fail, not loop in resolve (posixpath.dirname of a relative name never reaches "/")."""
    for path in ("anon_inode:[Pipe]", ""):
        with pytest.raises(OSError) as error:
            mounts.stat(path)
        assert error.value.errno == errno.ENOENT


def test_the_kernel_writes_nodes_and_fat_files_through_write_data(
    mounts: MountTable, screen: Screen, volume: FatFs
) -> None:
    """write_data is the shell's `> FILE`: a device or a FAT file, never a file that waits."""
    assert mounts.open("/dev/null", O_WRONLY).write_data(b"gone") == 4
    assert mounts.open("/dev/tty", O_WRONLY).write_data(b"shown") == 5
    assert "shown" in screen.text
    log = mounts.open("/log.txt", O_WRONLY | O_CREAT)
    assert log.write_data(b"kept") == 4
    log.close()
    assert volume.read_file("/log.txt") == b"kept"
    with pytest.raises(OSError) as error:
        mounts.open("/dev", O_RDONLY).write_data(b"x")
    assert error.value.errno == errno.EINVAL


def test_mount_points_are_found_by_path_and_by_directory(mounts: MountTable) -> None:
    assert mounts.mount_point("/dev/null") == "/dev"
    assert mounts.mount_point("/dev") == "/dev"
    assert mounts.mount_point("/device") == "/"
    assert mounts.points_in("/") == ["dev"]
    assert mounts.points_in("/dev") == []


def test_closing_a_file_flushes_the_drive_only_if_the_handle_could_write(
    volume: FatFs, fat: FatVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[int] = []
    monkeypatch.setattr(volume.device, "flush", lambda: flushes.append(1))
    fat.open("/data.txt", O_RDONLY).close()
    assert flushes == []  # a file only read changed nothing: no cache flush, no host fsync
    writer = fat.open("/new.txt", O_WRONLY | O_CREAT)
    writer.write_data(b"kept")
    writer.close()
    assert flushes == [1]
    assert volume.read_file("/new.txt") == b"kept"
