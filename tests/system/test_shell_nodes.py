"""The shell's own ls, cat and hexdump on what the VFS serves besides FAT (/dev, /proc), typed
at the prompt of a booted PC: the listing, /proc's text, the one line for a node the shell
cannot read (the tty), and the cap on a node that never ends."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.system.harness import BootedPc
from tests.system.test_files import PARTITION_OFFSET
from tradekernel.kernel.fs.vfs import S_IFCHR, FileStat, OpenFile
from tradekernel.kernel.shell.files import NODE_READ_LIMIT


@pytest.fixture(scope="module")
def tk(tmp_path_factory: pytest.TempPathFactory) -> BootedPc:
    booted = BootedPc(tmp_path_factory.mktemp("shell-nodes")).boot()
    booted.pc.kernel.vfs.mount("/endless", EndlessFs())
    return booted


class EndlessFile(OpenFile):
    """A device whose kernel-side reads never end (as /dev/zero's), in 'x' bytes."""

    def read_data(self, count: int) -> bytes:
        return b"x" * count

    def stat(self) -> FileStat:
        return FileStat(S_IFCHR | 0o444, rdev=(99 << 8) | 7)


class EndlessFs:
    """A filesystem of one endless node, /x (a vfs.Filesystem, for the shell's read cap)."""

    def open(self, path: str, flags: int) -> OpenFile:
        if path != "/x":
            raise OSError(errno.ENOENT, path)
        return EndlessFile()

    def stat(self, path: str) -> FileStat:
        return self.open(path, 0).stat()


def test_ls_lists_the_device_nodes(tk: BootedPc) -> None:
    assert tk.output("ls /dev") == ["console  market   null     random   tty      urandom  zero"]
    long = tk.output("ls -l /dev")
    assert long[0].startswith("crw--w----       4, 1 ") and long[0].endswith(" console")
    assert long[-1].startswith("crw-rw-rw-       1, 5 ") and long[-1].endswith(" zero")
    assert len(long) == 7  # with market, the ring-3 strategies' node
    assert tk.output("ls /dev/zero") == ["/dev/zero"]
    assert tk.output("ls /dev/nope") == ["ls: /dev/nope: no such file or directory"]


def test_ls_lists_proc(tk: BootedPc) -> None:
    names = tk.output("ls /proc")[0].split()
    assert {"cpuinfo", "meminfo", "uptime", "self"} <= set(names)


def test_cat_prints_proc_files(tk: BootedPc) -> None:
    meminfo = tk.output("cat /proc/meminfo")
    assert meminfo[0].startswith("MemTotal:") and meminfo[0].endswith(" kB")
    assert len(meminfo) == 8
    total = int(meminfo[0].split()[1])
    frames = tk.pc.kernel.processes.mm.frames.stats().total
    assert total == frames * 4
    assert "model name\t: TradeKernel emulated i686 (Unicorn)" in "\n".join(
        tk.output("cat /proc/cpuinfo")
    )


def test_the_tty_gets_one_line_naming_it(tk: BootedPc) -> None:
    lines = tk.output("cat /dev/tty")
    assert len(lines) == 1 and lines[0].startswith("cat: /dev/tty: a device the shell cannot")
    assert tk.output("hexdump /dev/console")[0].startswith("hexdump: /dev/console: a device")
    assert tk.output("cat /dev") == ["cat: /dev: is a directory"]


def test_an_endless_node_is_cut_at_the_limit_and_says_so(tk: BootedPc) -> None:
    assert tk.output("hexdump /endless/x") == [
        "00000000  78 78 78 78 78 78 78 78  78 78 78 78 78 78 78 78  |xxxxxxxxxxxxxxxx|",
        "*",
        f"{NODE_READ_LIMIT:08x}",
        f"hexdump: /endless/x: stopped after {NODE_READ_LIMIT} bytes (use -n)",
    ]
    assert tk.output("hexdump -s 5 -n 3 /endless/x") == [
        f"00000005  {'78 78 78':<23}  {'':<23}  |xxx|",
        "00000008",
    ]
    assert tk.output("cat /endless/x > /endless.txt") == [
        f"cat: /endless/x: stopped after {NODE_READ_LIMIT} bytes (the shell's limit)"
    ]
    assert tk.pc.kernel.fs.read_file("/endless.txt") == b"x" * NODE_READ_LIMIT


def test_fat_paths_are_read_as_before(tk: BootedPc) -> None:
    assert "etc/" in tk.output("ls /")[0].split()
    head = tk.pc.kernel.fs.read_file("/etc/passwd")[:4]
    assert tk.output("hexdump -n 4 /etc/passwd")[0].startswith(f"00000000  {head[0]:02x} ")
    passwd = tk.pc.kernel.fs.read_file("/etc/passwd").decode()
    assert tk.output("cat /etc/passwd") == passwd.splitlines()


def test_hexdump_of_dev_zero_prints_zeros(tk: BootedPc) -> None:
    assert tk.output("hexdump -n 16 /dev/zero") == [
        "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
        "00000010",
    ]
    assert tk.output("hexdump /dev/zero")[-1].startswith("hexdump: /dev/zero: stopped after")
    assert tk.output("cat /dev/null") == []


def test_without_a_disk_dev_and_proc_are_still_there(tmp_path: Path) -> None:
    pc = BootedPc(tmp_path)
    with open(pc.disk, "r+b") as image:  # wipe the partition's boot sector: no FAT volume
        image.seek(PARTITION_OFFSET)
        image.write(bytes(512))
    pc.boot()
    assert pc.output("ls") == ["ls: no filesystem is mounted"]
    assert pc.output("ls /dev") == ["console  market   null     random   tty      urandom  zero"]
    assert pc.output("cat /proc/uptime")[0].count(".") == 2


def test_more_pages_nodes_too(tk: BootedPc) -> None:
    assert tk.output("more /proc/meminfo") == tk.output("cat /proc/meminfo")
    assert tk.output("less /dev/tty")[0].startswith("more: /dev/tty: a device the shell cannot")


def test_cd_into_proc_then_relative_names_read_it(tk: BootedPc) -> None:
    assert tk.output("cd /proc") == []
    assert tk.output("pwd") == ["/proc"]
    assert tk.output("cat uptime")[0].count(".") == 2
    assert tk.output("cd meminfo") == ["cd: meminfo: not a directory"]
    assert tk.output("touch /tmp/t") == []  # a FAT change elsewhere keeps the cwd in /proc
    assert tk.output("pwd") == ["/proc"]
    assert tk.output("cd ..") == []
    assert tk.output("pwd") == ["/"]


def test_a_running_process_is_read_through_proc(tk: BootedPc) -> None:
    started = tk.output("run nap 60000 &")[0]  # "[PID] nap (job %N)"
    pid = started[1 : started.index("]")]
    try:
        assert f"{pid}/" in tk.output("ls /proc")[0].split()
        status = tk.output(f"cat /proc/{pid}/status")
        assert status[:2] == ["Name:\tnap", "State:\tS (sleeping)"]
        long = tk.output(f"ls -l /proc/{pid}")
        assert any(line.startswith("lrwxrwxrwx") and line.endswith(" exe -> /bin/nap")
                   for line in long)  # fmt: skip
        assert tk.output(f"ls /proc/{pid}/fd") == ["0  1  2"]
        assert tk.output(f"hexdump /proc/{pid}/cmdline")[0].endswith("|nap.60000.|")
    finally:
        tk.output("kill %1")
    assert f"{pid}/" not in tk.output("ls /proc")[0].split()


def test_cp_copies_a_proc_file_whole_or_not_at_all(tk: BootedPc) -> None:
    assert tk.output("cp /proc/cpuinfo /tmp") == []
    assert tk.pc.kernel.fs.read_file("/tmp/cpuinfo").decode().splitlines() == tk.output(
        "cat /proc/cpuinfo"
    )
    assert tk.output("cp /endless/x /tmp/e") == [
        "cp: /endless/x: file too large (the shell copies at most 65536 bytes of a device)"
    ]
    assert not tk.pc.kernel.fs.exists("/tmp/e")
    assert tk.output("cp /dev/tty /tmp/t")[0].startswith("cp: /dev/tty: a device the shell")


def test_output_redirected_to_a_device_is_written_through_the_vfs(tk: BootedPc) -> None:
    assert tk.output("echo dropped > /dev/null") == []
    assert tk.output("echo dropped >> /dev/null") == []
    assert tk.output("echo shown > /dev/tty") == ["shown"]
    assert tk.output("echo mixed in >> /dev/urandom") == []
    assert tk.output("echo no > /proc/uptime") == [
        "sh: /proc/uptime: permission denied (read-only)"
    ]
    assert not tk.pc.kernel.fs.exists("/dev")  # nothing was made on the FAT volume


def test_ls_of_the_root_shows_the_mount_points_as_directories(tk: BootedPc) -> None:
    names = " ".join(tk.output("ls /")).split()
    assert {"bin/", "dev/", "etc/", "proc/"} <= set(names) and names.count("dev/") == 1
    long = {line.split()[-1]: line for line in tk.output("ls -l /")}
    assert long["dev/"].startswith("drwxr-xr-x      <DIR> ")
    assert long["proc/"].startswith("dr-xr-xr-x      <DIR> ")
    assert long["endless/"].startswith("??????????          ? ")  # a root with no status
    assert tk.output("ls /dev")[0].startswith("console  market")  # the mount, not a FAT dir


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("du /dev/null", "du: /dev/null: not on a disk: /dev is served by the kernel"),
        ("du -s /proc", "du: /proc: not on a disk: /proc is served by the kernel"),
        ("edit /dev/null", "edit: /dev/null: not on a disk: /dev is served by the kernel"),
        ("edit /proc/uptime", "edit: /proc/uptime: not on a disk: /proc is served by the kernel"),
        ("mv /dev/null /x", "mv: /dev/null: not on a disk: /dev is served by the kernel"),
        ("mv /etc/passwd /dev/null", "mv: /dev/null: not on a disk: /dev is served by the kernel"),
        ("rm /proc/uptime", "rm: /proc/uptime: not on a disk: /proc is served by the kernel"),
        ("touch /dev/new", "touch: /dev/new: not on a disk: /dev is served by the kernel"),
    ],
)
def test_disk_commands_on_nodes_say_so_in_one_line(tk: BootedPc, line: str, expected: str) -> None:
    assert tk.output(line) == [expected]
    assert tk.pc.kernel.fs.exists("/etc/passwd")  # mv left the source where it was


def test_a_programs_output_redirected_to_a_device(tk: BootedPc) -> None:
    passwd = tk.pc.kernel.fs.read_file("/etc/passwd").decode().splitlines()
    assert tk.output("cat /etc/passwd > /dev/null") == []
    assert tk.output("cat /etc/passwd >> /dev/null") == []
    assert tk.output("cat /etc/passwd > /dev/tty") == passwd
    assert tk.output("wc < /dev/null") == ["0 0 0"]
    assert tk.output("cat /etc/passwd > /proc/uptime") == [
        "sh: /proc/uptime: permission denied (read-only)"
    ]


def test_cp_writes_a_file_into_a_device(tk: BootedPc) -> None:
    passwd = tk.pc.kernel.fs.read_file("/etc/passwd").decode().splitlines()
    assert tk.output("cp /etc/passwd /dev/null") == []
    assert tk.output("cp /etc/passwd /dev/tty") == passwd
    assert tk.output("cp /etc/passwd /proc/uptime") == [
        "cp: /proc/uptime: permission denied (read-only)"
    ]
    assert tk.output("cp /etc /dev/null") == ["cp: /etc: is a directory"]
    assert tk.output("cp /nope /dev/null") == ["cp: /nope: no such file or directory"]
    assert tk.output("cp /etc/passwd /dev/market") == [
        "cp: /dev/market: invalid argument (the kernel cannot write this kind of file)"
    ]
