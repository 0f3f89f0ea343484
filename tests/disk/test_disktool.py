"""Host disk tools: a fresh OS disk image, and files in and out of it, checked by real peers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.disk.conftest import fsck, mtools, need
from tradekernel.disktool import (
    PARTITION_START,
    DiskToolError,
    create_disk,
    disk,
    get_file,
    list_dir,
    put_file,
    remove,
)
from tradekernel.kernel.drivers.blockdev import ImageFile, read_partitions

OFFSET = PARTITION_START * 512


def boot_image() -> bytes:
    mbr = bytearray(512)
    mbr[:4] = b"\xfa\x31\xc0\x8e"
    mbr[446:510] = b"\xee" * 64  # whatever the build left here is replaced by our table
    mbr[510:] = b"\x55\xaa"
    return bytes(mbr) + b"STUB" * 1000  # 4000 bytes: 8 sectors once padded


def test_create_lays_out_mbr_stub_and_a_clean_fat16_partition(tmp_path: Path) -> None:
    image = tmp_path / "os.img"
    entry = create_disk(image, 16, boot_image())
    raw = image.read_bytes()
    assert len(raw) == 16 << 20
    assert raw[:4] == b"\xfa\x31\xc0\x8e" and raw[510:512] == b"\x55\xaa"
    assert raw[512 : 512 + 4000] == b"STUB" * 1000
    with ImageFile(image, read_only=True) as device:
        assert read_partitions(device) == [entry]
    assert entry.start_lba == 2048 and entry.type == 0x0E and entry.bootable
    fsck(image, OFFSET)
    listing = mtools("mdir", image, "-b", "::/", offset=OFFSET).decode()
    assert {line.strip("/ ").split("/")[-1] for line in listing.split()} >= {"bin", "etc", "home"}


def test_large_disks_get_fat32(tmp_path: Path) -> None:
    image = tmp_path / "big.img"
    entry = create_disk(image, 520)
    assert entry.type == 0x0C
    fsck(image, OFFSET)


def test_put_get_ls_rm_round_trip(tmp_path: Path) -> None:
    image = tmp_path / "os.img"
    create_disk(image, 8)
    host = tmp_path / "strategy.cfg"
    host.write_bytes(b"symbol=ACME\nqty=100\n" * 300)
    assert put_file(image, host, "/etc") == host.stat().st_size  # into a directory
    put_file(image, host, "/home/copy with long name.cfg")
    names = {s.name: s.size for s in list_dir(image, "/etc")}
    assert names == {"strategy.cfg": host.stat().st_size}
    out = tmp_path / "out"
    out.mkdir()
    get_file(image, "/home/copy with long name.cfg", out)
    assert (out / "copy with long name.cfg").read_bytes() == host.read_bytes()
    remove(image, "/etc/strategy.cfg")
    remove(image, "/tmp")
    assert list_dir(image, "/etc") == []
    fsck(image, OFFSET)
    assert mtools("mtype", image, "::/home/copy with long name.cfg", offset=OFFSET) == (
        host.read_bytes()
    )


def test_cli_commands_and_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    image = tmp_path / "cli.img"
    result = runner.invoke(disk, ["create", str(image), "--size", "8"])
    assert result.exit_code == 0, result.output
    assert "FAT16" in result.output
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    assert runner.invoke(disk, ["put", str(image), str(note), "/home/note.txt"]).exit_code == 0
    result = runner.invoke(disk, ["ls", str(image), "/home", "-l"])
    assert result.exit_code == 0 and "note.txt" in result.output and "6" in result.output
    got = tmp_path / "got.txt"
    assert runner.invoke(disk, ["get", str(image), "/home/note.txt", str(got)]).exit_code == 0
    assert got.read_text() == "hello\n"
    assert runner.invoke(disk, ["rm", str(image), "/home/note.txt"]).exit_code == 0
    for args, words in [
        (["ls", str(image), "/nope"], "no such file"),
        (["get", str(image), "/home", str(got)], "is a directory"),
        (["rm", str(image), "/etc/missing"], "no such file"),
        (["put", str(image), str(tmp_path / "absent"), "/x"], "no such host file"),
        (["ls", str(tmp_path / "nothing.img")], "no such disk image"),
        (["ls", str(note)], "MBR"),
        (["create", str(tmp_path / "tiny.img"), "--size", "1"], "too small"),
    ]:
        result = runner.invoke(disk, args)
        assert result.exit_code == 1, (args, result.output)
        assert words in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_oversized_boot_stub_is_refused(tmp_path: Path) -> None:
    too_big = boot_image()[:512] + bytes(2048 * 512)
    with pytest.raises(DiskToolError, match="fit before partition 1"):
        create_disk(tmp_path / "x.img", 8, too_big)


def test_create_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    runner = CliRunner()
    precious = tmp_path / "mine.img"
    precious.write_bytes(b"the user's data")
    result = runner.invoke(disk, ["create", str(precious), "--size", "8"])
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert precious.read_bytes() == b"the user's data"
    result = runner.invoke(disk, ["create", str(precious), "--size", "8", "--force"])
    assert result.exit_code == 0, result.output
    fsck(precious, OFFSET)


def test_host_side_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    image = tmp_path / "d.img"
    assert runner.invoke(disk, ["create", str(image), "--size", "8"]).exit_code == 0
    for args, words in [
        (["create", "/nonexistent/dir/x.img"], "/nonexistent/dir/x.img: No such file"),
        (["get", str(image), "/bin/hello", "/nonexistent/x"], "/nonexistent/x: No such file"),
    ]:
        result = runner.invoke(disk, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip().splitlines() == [f"Error: {words} or directory"]


def test_each_created_disk_gets_its_own_volume_serial(tmp_path: Path) -> None:
    serials = set()
    for number in range(3):
        image = tmp_path / f"d{number}.img"
        assert CliRunner().invoke(disk, ["create", str(image), "--size", "8"]).exit_code == 0
        info = subprocess.run(
            [need("minfo"), "-i", f"{image}@@{OFFSET}", "::"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (serial,) = re.findall(r"serial number: ([0-9A-F]+)", info)
        serials.add(serial)
    assert len(serials) == 3


def test_mkdir_and_put_of_a_whole_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    image = tmp_path / "d.img"
    assert runner.invoke(disk, ["create", str(image), "--size", "8"]).exit_code == 0
    assert runner.invoke(disk, ["mkdir", str(image), "/data"]).exit_code == 0
    result = runner.invoke(disk, ["mkdir", str(image), "/data"])
    assert result.exit_code == 1 and "exists" in result.output
    assert runner.invoke(disk, ["mkdir", str(image), "-p", "/data/a/b"]).exit_code == 0
    tree = tmp_path / "strategies"
    (tree / "momentum" / "params").mkdir(parents=True)
    (tree / "readme.txt").write_text("top\n")
    (tree / "momentum" / "run.cfg").write_text("window=20\n" * 100)
    (tree / "momentum" / "params" / "long file name.toml").write_text("x = 1\n")
    result = runner.invoke(disk, ["put", str(image), str(tree), "/home"])
    assert result.exit_code == 0, result.output
    fsck(image, OFFSET)
    assert mtools("mtype", image, "::/home/strategies/readme.txt", offset=OFFSET) == b"top\n"
    assert mtools(
        "mtype", image, "::/home/strategies/momentum/params/long file name.toml", offset=OFFSET
    ) == b"x = 1\n"
    assert get_size(image, "/home/strategies/momentum/run.cfg") == 1000
    assert {s.name for s in list_dir(image, "/data/a")} == {"b"}


def get_size(image: Path, path: str) -> int:
    (stat,) = list_dir(image, path)
    return stat.size
