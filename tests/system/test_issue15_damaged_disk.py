"""Issue 15 item 4 on the booted OS: filesystem damage the mount checks cannot see stops only the
damaged file or directory. The system disk is damaged byte by byte after it is made (a
directory whose cluster chain loops, /etc/instruments.toml pointing at a free cluster, a /bin
entry pointing past the volume); the machine boots, says what is damaged where, and every
command over the damage answers in lines (no RecursionError, no internal error: the harness
fails the test on either) while the rest of the volume works."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from tests.system.harness import BootedPc
from tradekernel.disktool import create_os_disk, open_volume
from tradekernel.kernel.fs.fat import FatFs
from tradekernel.kernel.trading.instruments import DEFAULT_INSTRUMENTS_TOML


def _entry_offset(fs: FatFs, path: str) -> int:
    """Byte offset in the image of the 8.3 directory entry of `path`."""
    parent, entry = fs._existing(path)  # noqa: SLF001 - where the damage goes
    byte = entry.index * 32
    return (fs.device.start + parent.sectors[byte // 512]) * 512 + byte % 512


def _fat_offsets(fs: FatFs, cluster: int) -> list[int]:
    """Byte offsets in the image of `cluster`'s entry in each FAT copy (FAT16)."""
    layout = fs.layout
    assert layout.fat_type == 16
    return [
        (fs.device.start + layout.reserved_sectors + copy * layout.fat_sectors) * 512 + 2 * cluster
        for copy in range(layout.fat_count)
    ]


def damaged_disk(tmp_path: Path) -> Path:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    patches: list[tuple[int, bytes]] = []
    with open_volume(disk) as fs:
        fs.mkdir("/d")
        fs.mkdir("/d/loop")
        fs.write_file("/d/loop/x.txt", b"x" * 3000)
        fs.write_file("/d/fine.txt", b"fine\n")
        fs.write_file("/bin/junk", b"j" * 100)
        fs.write_file("/etc/instruments.toml", DEFAULT_INSTRUMENTS_TOML.encode())
        fs.flush()
        loop = fs.stat("/d/loop").first_cluster
        patches += [(offset, struct.pack("<H", loop)) for offset in _fat_offsets(fs, loop)]
        free = fs.layout.cluster_count  # the last cluster: free on a fresh, mostly empty disk
        patches.append((_entry_offset(fs, "/etc/instruments.toml") + 26, struct.pack("<H", free)))
        patches.append((_entry_offset(fs, "/bin/junk") + 26, struct.pack("<H", 0xFFF0)))
    with disk.open("r+b") as image:
        for offset, data in patches:
            image.seek(offset)
            image.write(data)
    return disk


def test_damage_is_named_and_contained_on_the_booted_os(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path, disk=damaged_disk(tmp_path)).boot()
    boot = bytes(tk.serial).decode("cp437").splitlines()
    assert any(line.startswith("trading: /etc/instruments.toml:") and "using defaults" in line
               for line in boot), boot  # fmt: skip
    assert tk.output("hello") == ["hello, world"]  # /bin is looked up past its bad entry
    assert tk.output("cat /d/fine.txt") == ["fine"]
    loop = "structure needs cleaning (damaged /d/loop: chain is cross-linked or loops at cluster"
    for command in ("ls /d/loop", "du /d", "cp -r /d /tmp/copy", "rm -r /d"):
        name, path = command.split()[0], command.split()[-2 if command.startswith("cp") else -1]
        (line,) = tk.output(command)
        assert line.startswith(f"{name}: {path}: {loop}"), line
    (line,) = tk.output("cat /bin/junk")
    assert line.startswith("cat: /bin/junk: structure needs cleaning (damaged /bin/junk: "), line
    assert tk.output("ls /d") == ["fine.txt  loop/"]  # the rest of the directory is usable
    assert "junk" in " ".join(tk.output("ls /bin"))
    assert any(line.startswith("AAPL") for line in tk.output("instruments"))
    assert any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))
    assert tk.output("echo alive") == ["alive"]
