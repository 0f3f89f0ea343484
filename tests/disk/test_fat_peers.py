"""fat.py against real FAT implementations: fsck.fat must accept everything we write, mtools
must read back exactly what we wrote, and we must read what mkfs.fat and mtools wrote."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.disk.conftest import fsck, mkfs_fat, mount, mtools, need, our_volume
from tradekernel.kernel.fs.fat import FatFs

NAMES = [
    "a.txt",
    "README.TXT",
    "Long File Name.data",
    "x",
    "with space",
    "mixed.Case.name.tar.gz",
    "UPPER",
    "notes_2024-05-17.log",
    "a_rather_long_file_name_that_needs_several_long_name_entries.bin",
    "~tilde",
    "dot.at.end.x",
    "Ünïcode-名前.txt",
]


def _mcopy_all(image: Path, offset: int = 0) -> dict[str, bytes]:
    """Every file in the volume, as mtools reads it, keyed by lower-cased path."""
    with tempfile.TemporaryDirectory() as out:
        mtools("mcopy", image, "-s", "-n", "::/", out, offset=offset)
        root = Path(out)
        return {
            "/" + str(p.relative_to(root)).lower(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file()
        }


@pytest.mark.parametrize("fat_type,size_mb", [(12, 2), (16, 16), (32, 40)])
def test_mkfs_is_accepted_by_fsck_and_mtools(tmp_path: Path, fat_type: int, size_mb: int) -> None:
    image = our_volume(tmp_path / "v.img", size_mb, fat_type, label="MYDISK")
    fsck(image)
    info = mtools("minfo", image).decode()
    assert f"FAT{fat_type}" in info.replace(" ", "")
    assert "MYDISK" in mtools("mlabel", image, "-s", "::").decode()
    device, fs = mount(image)
    assert fs.fat_type == fat_type
    assert fs.statfs().label == "MYDISK"
    fs.close()
    device.close()


@pytest.mark.parametrize("fat_type,size_mb", [(12, 2), (16, 16), (32, 40)])
def test_files_we_write_read_back_through_mtools(
    tmp_path: Path, fat_type: int, size_mb: int
) -> None:
    image = our_volume(tmp_path / "v.img", size_mb, fat_type)
    device, fs = mount(image)
    payload = bytes(range(256)) * 40  # 10240 bytes: several clusters
    fs.mkdir("/etc")
    fs.mkdir("/etc/A Long Directory")
    fs.write_file("/etc/A Long Directory/Some Long File.txt", payload)
    fs.write_file("/etc/hosts", b"127.0.0.1 localhost\n")
    fs.write_file("/README.TXT", b"short name only")
    fs.close()
    device.close()
    fsck(image)
    assert mtools("mtype", image, "::/etc/hosts") == b"127.0.0.1 localhost\n"
    assert mtools("mtype", image, "::/etc/A Long Directory/Some Long File.txt") == payload
    listing = mtools("mdir", image, "-b", "::/etc").decode()
    assert "A Long Directory" in listing and "hosts" in listing
    assert "README   TXT        15" in mtools("mdir", image, "::/").decode()


@pytest.mark.parametrize(
    "options,fat_type,size_mb",
    [
        (("-F", "12"), 12, 2),
        (("-F", "16"), 16, 16),
        (("-F", "32", "-s", "1"), 32, 40),
    ],
)
def test_volumes_made_by_mkfs_fat_and_files_made_by_mtools(
    tmp_path: Path, options: tuple[str, ...], fat_type: int, size_mb: int
) -> None:
    image = mkfs_fat(tmp_path / "m.img", size_mb, *options, "-n", "PEER")
    host = tmp_path / "host.bin"
    host.write_bytes(b"mtools wrote this\n" * 500)
    mtools("mmd", image, "::/Program Files")
    mtools("mmd", image, "::/Program Files/sub")
    mtools("mcopy", image, str(host), "::/Program Files/sub/Data File.bin")
    mtools("mcopy", image, str(host), "::/SHORT.BIN")
    device, fs = mount(image)
    assert fs.fat_type == fat_type
    assert sorted(fs.listdir("/")) == ["Program Files", "SHORT.BIN"]
    assert fs.read_file("/program files/SUB/data file.bin") == host.read_bytes()
    assert fs.stat("/SHORT.BIN").size == host.stat().st_size
    # ...and our changes on their volume stay acceptable to them.
    fs.write_file("/Program Files/sub/ours.txt", b"ours")
    fs.rename("/SHORT.BIN", "/Program Files/moved.bin")
    fs.remove("/Program Files/sub/Data File.bin")
    fs.close()
    device.close()
    fsck(image)
    assert mtools("mtype", image, "::/Program Files/moved.bin") == host.read_bytes()
    assert mtools("mtype", image, "::/Program Files/sub/ours.txt") == b"ours"


def _path(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def _apply_random_operations(fs: FatFs, data: st.DataObject) -> tuple[set, dict]:
    """Random operations on `fs` mirrored in a model; every result is checked as it happens."""
    dirs: set[tuple[str, ...]] = {()}
    files: dict[tuple[str, ...], bytes] = {}
    blobs = st.binary(max_size=3000)

    def free_name(parent: tuple[str, ...]) -> tuple[str, ...] | None:
        used = {p[-1].casefold() for p in (*dirs, *files) if p and p[:-1] == parent}
        choices = [n for n in NAMES if n.casefold() not in used]
        return parent + (data.draw(st.sampled_from(choices)),) if choices else None

    for _ in range(data.draw(st.integers(1, 14))):
        op = data.draw(
            st.sampled_from(
                [
                    "mkdir",
                    "write",
                    "write",
                    "append",
                    "write_at",
                    "truncate",
                    "delete",
                    "rename",
                    "rmdir",
                ]
            )
        )
        parent = data.draw(st.sampled_from(sorted(dirs)))
        existing = sorted(files)
        if op in ("append", "write_at", "truncate", "delete", "rename") and not existing:
            op = "write"
        if op == "mkdir":
            target = free_name(parent)
            if target:
                fs.mkdir(_path(target))
                dirs.add(target)
        elif op == "write":
            overwrite = existing and data.draw(st.booleans())
            target = data.draw(st.sampled_from(existing)) if overwrite else free_name(parent)
            if target:
                blob = data.draw(blobs)
                fs.write_file(_path(target), blob)
                files[target] = blob
        elif op == "append":
            target, blob = data.draw(st.sampled_from(existing)), data.draw(blobs)
            with fs.open(_path(target), "a") as handle:
                handle.write(blob)
            files[target] += blob
        elif op == "write_at":
            target, blob = data.draw(st.sampled_from(existing)), data.draw(blobs)
            offset = data.draw(st.integers(0, len(files[target]) + 600))
            with fs.open(_path(target), "r+") as handle:
                handle.seek(offset)
                handle.write(blob)
            old = files[target].ljust(offset, b"\0") if blob else files[target]
            files[target] = old[:offset] + blob + old[offset + len(blob) :]
        elif op == "truncate":
            target = data.draw(st.sampled_from(existing))
            length = data.draw(st.integers(0, len(files[target]) + 1000))
            fs.truncate(_path(target), length)
            files[target] = files[target][:length].ljust(length, b"\0")
        elif op == "delete":
            target = data.draw(st.sampled_from(existing))
            fs.remove(_path(target))
            del files[target]
        elif op == "rename":
            source = data.draw(st.sampled_from(existing))
            target = free_name(parent)
            if target:
                fs.rename(_path(source), _path(target))
                files[target] = files.pop(source)
        elif op == "rmdir" and parent:
            empty = not any(p[: len(parent)] == parent and p != parent for p in (*dirs, *files))
            if empty:
                fs.rmdir(_path(parent))
                dirs.discard(parent)
            else:
                with pytest.raises(OSError):
                    fs.rmdir(_path(parent))
    return dirs, files


@pytest.mark.parametrize("fat_type,size_mb", [(12, 2), (16, 8), (32, 34)])
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_operations_leave_a_volume_fsck_and_mtools_agree_with(
    tmp_path: Path, fat_type: int, size_mb: int, data: st.DataObject
) -> None:
    need("fsck.fat")
    need("mcopy")
    # A fresh file per example: a failed example's unclosed image must not touch the next one.
    image = our_volume(Path(tempfile.mkdtemp(dir=tmp_path)) / "r.img", size_mb, fat_type)
    device, fs = mount(image)
    try:
        dirs, files = _apply_random_operations(fs, data)
        for parts, blob in files.items():
            assert fs.read_file(_path(parts)) == blob
        fs.close()
    finally:
        device.close()
    fsck(image)
    seen = _mcopy_all(image)
    assert seen == {_path(p).lower(): blob for p, blob in files.items()}
    # A fresh mount reads the same tree.
    device, fs = mount(image, read_only=True)
    found_dirs = {()}
    for top, subdirs, _ in fs.walk("/"):
        base = tuple(p for p in top.split("/") if p)
        found_dirs.update(base + (name,) for name in subdirs)
    assert {tuple(x.casefold() for x in d) for d in found_dirs} == {
        tuple(x.casefold() for x in d) for d in dirs
    }
    device.close()
