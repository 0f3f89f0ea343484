"""`tk disk create --with NAMES --repo DIR`: a disk made with Debian packages installed from a
plain directory of .deb files (Depends resolved, files recorded), checked by fsck.fat and by
booting it; bad requests are one line and leave no half-made install."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from tests.disk.conftest import fsck
from tests.pkg.conftest import busybox_deb, make_deb
from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel.disktool import PARTITION_START, disk, open_volume
from tradekernel.kernel.drivers.blockdev import BLOCK_SIZE
from tradekernel.kernel.pkg.database import Database


def test_disk_created_with_packages_from_a_plain_deb_directory(tmp_path: Path) -> None:
    debs = tmp_path / "debs"
    debs.mkdir()
    shutil.copy(busybox_deb(), debs)
    make_deb(debs, "hello", depends="busybox-static", files={"/bin/greet": b"#!/bin/sh\n"})
    image = tmp_path / "os.img"
    result = CliRunner().invoke(
        disk, ["create", str(image), "--size", "32", "--with", "hello", "--repo", str(debs)]
    )
    assert result.exit_code == 0, result.output
    assert not (debs / "Packages").exists()  # the index was built in memory, not written
    with open_volume(image, read_only=True) as fs:
        assert sorted(Database(fs).installed()) == ["busybox-static", "hello"]
        assert fs.read_file("/bin/greet") == b"#!/bin/sh\n"
        assert fs.stat("/bin/busybox").size > 1 << 20
        assert fs.read_file("/etc/passwd").startswith(b"root:x:0:0:")
    fsck(image, PARTITION_START * BLOCK_SIZE)
    tk = BootedPc(tmp_path, disk=image).boot()
    try:
        assert tk.output("busybox echo installed at creation", 60 * SECOND) == [
            "installed at creation"
        ]
    finally:
        close_pc(tk)


def test_bad_requests_are_one_line(tmp_path: Path) -> None:
    debs = tmp_path / "debs"
    debs.mkdir()
    make_deb(debs, "good")
    runner = CliRunner()
    image = str(tmp_path / "os.img")
    result = runner.invoke(disk, ["create", image, "--with", "good"])
    assert result.output == "Error: --with needs --repo DIR (a directory of .deb files)\n"
    assert not Path(image).exists()
    result = runner.invoke(disk, ["create", image, "--with", "nope", "--repo", str(debs)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: nope: no such package in the repository"
    assert not Path(image).exists()  # the disk without what was asked is not left behind
    result = runner.invoke(
        disk, ["create", image, "--force", "--with", "good", "--repo", str(tmp_path / "none")]
    )
    missing = f"Error: {tmp_path / 'none'}: no such package directory"
    assert result.output.splitlines()[-1] == missing
    (debs / "broken.deb").write_bytes(b"!<arch>\nnot really")
    arguments = ["create", image, "--force", "--with", "good", "--repo", str(debs)]
    result = runner.invoke(disk, arguments)
    assert result.exit_code == 1 and "broken.deb" in result.output.splitlines()[-1]
