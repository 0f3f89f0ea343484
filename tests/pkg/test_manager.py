"""Install and remove on a FAT volume in memory: Debian's busybox-static, dependencies, refusals
that leave every byte of the volume as it was, and power loss cut at every write."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.pkg.conftest import (
    FIXED_NOW,
    busybox_deb,
    fsck,
    make_deb,
    new_volume,
    put_repo,
    repair,
)
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.fat import FatFs
from tradekernel.kernel.pkg.database import Database
from tradekernel.kernel.pkg.deb import read_deb
from tradekernel.kernel.pkg.manager import PackageManager, PkgError
from tradekernel.kernel.pkg.source import DirectorySource


def install(fs: FatFs, *names: str, repo: str = "/repo") -> list[str]:
    said: list[str] = []
    PackageManager(fs).install(list(names), DirectorySource(fs, repo), said.append)
    fs.flush()
    return said


def test_busybox_static_installs_lists_and_removes(tmp_path: Path) -> None:
    device, fs = new_volume()
    deb = busybox_deb()
    put_repo(fs, tmp_path / "repo", [deb])
    said = install(fs, "busybox-static")
    assert said[-1].startswith("installed busybox-static 1:1.35.0")
    entries = read_deb(deb.read_bytes(), 64 << 20).entries
    for entry in entries:
        if entry.kind == "file":
            assert fs.read_file(entry.path) == entry.data, entry.path
    db = Database(fs)
    assert list(db.installed()) == ["busybox-static"]
    listed = {r.path: r for r in db.files("busybox-static")}
    assert listed["/bin/busybox"].mode == 0o755 and listed["/bin/busybox"].kind == "f"
    fsck(bytes(device.data), tmp_path)
    PackageManager(fs).remove(["busybox-static"], lambda _: None)
    fs.flush()
    assert not fs.exists("/bin") and not fs.exists("/usr")
    assert db.installed() == {}
    fsck(bytes(device.data), tmp_path)


def test_dependencies_first_alternatives_and_versions(tmp_path: Path) -> None:
    _, fs = new_volume()
    debs = [
        make_deb(tmp_path, "libold", "0.9", files={"/lib/libold.so": b"old"}),
        make_deb(tmp_path, "libfoo", "1.0", files={"/lib/libfoo.so": b"old"}),
        make_deb(tmp_path, "libfoo", "2.1", files={"/lib/libfoo.so": b"new"}),
        make_deb(tmp_path, "app", depends="libnone | libfoo (>= 2), libold (<< 1)"),
    ]
    put_repo(fs, tmp_path / "repo", debs)
    said = install(fs, "app")
    assert [line for line in said if line.startswith("installed")] == [
        "installed libfoo 2.1",
        "installed libold 0.9",
        "installed app 1.0",
    ]
    assert fs.read_file("/lib/libfoo.so") == b"new"
    with pytest.raises(PkgError, match="libfoo: app depends on it; remove app first"):
        PackageManager(fs).remove(["libfoo"], lambda _: None)


def _refused(fs: FatFs, device: MemoryBlockDevice, names: list[str], message: str) -> None:
    before = bytes(device.data)
    with pytest.raises(PkgError, match=message) as caught:
        install(fs, *names)
    assert "\n" not in str(caught.value)
    assert bytes(device.data) == before, "a refused install wrote to the volume"


def test_refusals_write_nothing(tmp_path: Path) -> None:
    device, fs = new_volume()
    good = make_deb(tmp_path, "good", files={"/bin/good": b"g"})
    amd64 = make_deb(tmp_path, "wide", arch="amd64")
    needy = make_deb(tmp_path, "needy", depends="ghost (>= 1)")
    clash = make_deb(tmp_path, "clash", files={"/bin/good": b"c"})
    perl = make_deb(tmp_path, "perl", files={"/man/Foo::Bar.3pm": b"m", "/man/a": b"a"})
    put_repo(fs, tmp_path / "repo", [good, amd64, needy, clash, perl])
    _refused(fs, device, ["perl"], "character ':' is not allowed in a FAT name")
    _refused(fs, device, ["wide"], "wide: only for amd64, this machine runs i386")
    _refused(fs, device, ["needy"], "needy depends on ghost \\(>= 1\\), which no repository")
    _refused(fs, device, ["nothing"], "nothing: no such package in the repository")
    # A .deb that is not what the index says: damaged in the repository.
    data = bytearray(fs.read_file(f"/repo/{good.name}"))
    data[-100] ^= 0xFF
    fs.write_file(f"/repo/{good.name}", bytes(data))
    fs.flush()
    _refused(fs, device, ["good"], "good: good_1.0_i386.deb: bad checksum")
    fs.write_file(f"/repo/{good.name}", good.read_bytes())
    fs.flush()
    install(fs, "good")
    _refused(fs, device, ["clash"], "clash: /bin/good is already installed by good")


def test_a_corrupt_deb_with_a_matching_checksum(tmp_path: Path) -> None:
    device, fs = new_volume()
    good = make_deb(tmp_path, "good")
    put_repo(fs, tmp_path / "repo", [good])
    data = bytearray(good.read_bytes())
    data[-200:] = bytes(200)  # the end of data.tar.xz is gone
    index = fs.read_file("/repo/Packages").decode()  # an index that vouches for the damage
    index = re.sub(r"SHA256: \w+", f"SHA256: {hashlib.sha256(data).hexdigest()}", index)
    fs.write_file(f"/repo/{good.name}", bytes(data))
    fs.write_file("/repo/Packages", index.encode())
    fs.flush()
    _refused(fs, device, ["good"], "good_1.0_i386.deb: data.tar.xz: corrupt compressed data")


def test_a_deb_for_another_machine_behind_an_i386_index_entry(tmp_path: Path) -> None:
    device, fs = new_volume()
    wide = make_deb(tmp_path, "wide", arch="amd64")
    put_repo(fs, tmp_path / "repo", [wide])
    text = fs.read_file("/repo/Packages").replace(b"Architecture: amd64", b"Architecture: i386")
    fs.write_file("/repo/Packages", text)
    fs.flush()
    _refused(fs, device, ["wide"], "built for amd64, this machine runs i386")


def test_symlinks_to_package_files_are_copies_others_are_recorded(tmp_path: Path) -> None:
    _, fs = new_volume()
    deb = make_deb(
        tmp_path,
        "links",
        files={"/bin/tool": b"\x7fELF tool"},
        links={"/bin/sh": "tool", "/usr/bin/tool": "../../bin/tool", "/bin/away": "/nowhere"},
    )
    put_repo(fs, tmp_path / "repo", [deb])
    install(fs, "links")
    assert fs.read_file("/bin/sh") == fs.read_file("/usr/bin/tool") == b"\x7fELF tool"
    assert not fs.exists("/bin/away")
    lines = [r.line() for r in Database(fs).files("links") if r.kind == "l"]
    assert sorted(lines) == [
        "l 0777 /bin/away -> /nowhere",
        "l 0777 /bin/sh -> tool (copy)",
        "l 0777 /usr/bin/tool -> ../../bin/tool (copy)",
    ]


class PowerCut(BaseException):
    """The machine lost power (not an error anything may catch)."""


class CutDevice(MemoryBlockDevice):
    """A volume whose power goes after `writes` block writes."""

    def __init__(self, data: bytes, writes: int) -> None:
        super().__init__(data)
        self.left = writes

    def write_blocks(self, lba: int, data: bytes) -> None:
        if self.left == 0:
            raise PowerCut
        self.left -= 1
        super().write_blocks(lba, data)


def test_power_loss_at_every_write_leaves_all_or_nothing(tmp_path: Path) -> None:
    device, fs = new_volume()
    deb = make_deb(
        tmp_path,
        "multi",
        files={f"/opt/multi/part{i}": bytes([i]) * 3000 for i in range(6)},
        links={"/bin/multi": "../opt/multi/part0"},
    )
    put_repo(fs, tmp_path / "repo", [deb])
    start = bytes(device.data)
    full = [f"/opt/multi/part{i}" for i in range(6)] + ["/bin/multi"]
    cut = repairs = 0
    outcomes = set()
    while True:
        cut_device = CutDevice(start, cut)
        volume = FatFs(cut_device, now=lambda: FIXED_NOW)
        try:
            install(volume, "multi")
            finished = True
        except PowerCut:
            finished = False
        # Boot again: a fresh mount of what reached the disk, then recovery. Power lost between
        # the two FAT copies' writes leaves them different: the kernel mounts such a volume
        # read-only until fsck.fat has repaired it (kernel/fs/fat.py), so repair it as a user
        # would, then boot.
        again = FatFs(MemoryBlockDevice(bytes(cut_device.data)), now=lambda: FIXED_NOW)
        if again.read_only:
            repaired = repair(bytes(cut_device.data), tmp_path)
            again = FatFs(MemoryBlockDevice(repaired), now=lambda: FIXED_NOW)
            repairs += 1
        PackageManager(again).recover(lambda _: None)
        again.flush()
        present = [path for path in full if again.exists(path)]
        installed = Database(again).is_installed("multi")
        if installed:
            assert present == full and again.read_file("/opt/multi/part5") == bytes([5]) * 3000
        else:
            assert present == [] and not again.exists("/opt"), f"cut at write {cut}: {present}"
        outcomes.add(installed)
        if finished:
            break
        cut += 1
    assert cut > 20 and repairs > 0 and outcomes == {False, True}, (cut, repairs)
    fsck(bytes(again.device.data), tmp_path)


def test_case_twins_keep_the_first_and_stay_recorded(tmp_path: Path) -> None:
    """FAT holds one of two names that differ only in case (linux-libc-dev has xt_DSCP.h and
    xt_dscp.h): the first in the archive is written, or the twin it only wraps with an
    #include, the other is recorded as not stored, one line says how many and where the list
    is, and `remove` leaves a clean volume."""
    device, fs = new_volume()
    files = {
        "/usr/include/xt/xt_MARK.h": b"#include <xt/xt_mark.h>\n",  # a wrapper: its twin kept
        "/usr/include/xt/xt_mark.h": b"struct mark;\n",
        "/usr/include/xt/xt_DSCP.h": b"DSCP\n",
        "/usr/include/xt/xt_dscp.h": b"dscp\n",
        "/usr/include/xt/plain.h": b"plain\n",
    }
    deb = make_deb(tmp_path, "hdrs", files=files)
    put_repo(fs, tmp_path / "repo", [deb])
    said = install(fs, "hdrs")
    archive = [e.path for e in read_deb(deb.read_bytes(), 1 << 20).entries if e.kind == "file"]
    assert archive.index("/usr/include/xt/xt_DSCP.h") < archive.index("/usr/include/xt/xt_dscp.h")
    assert archive.index("/usr/include/xt/xt_MARK.h") < archive.index("/usr/include/xt/xt_mark.h")
    kept = {p.casefold(): p for p in ["/usr/include/xt/xt_mark.h", "/usr/include/xt/xt_DSCP.h"]}
    kept["/usr/include/xt/plain.h"] = "/usr/include/xt/plain.h"
    for path in kept.values():
        assert fs.read_file(path) == files[path]
    stored = sorted(p.rsplit("/", 1)[1] for p in kept.values())
    assert sorted(fs.listdir("/usr/include/xt")) == stored
    notes = [line for line in said if "case" in line]
    assert notes == [
        "hdrs: 2 files differ from another only in case, which FAT cannot hold apart: one of"
        " each is kept, the others are listed as not stored in /var/lib/pkg/info/hdrs.list"
    ]
    records = Database(fs).files("hdrs")
    twins = {r.path: r.target for r in records if r.kind == "c"}
    assert twins == {p: kept[p.casefold()] for p in archive if kept[p.casefold()] != p}
    fsck(bytes(device.data), tmp_path)
    PackageManager(fs).remove(["hdrs"], lambda _: None)
    fs.flush()
    assert not fs.exists("/usr")
    fsck(bytes(device.data), tmp_path)
