"""Host-side disk tools: make the OS disk image, and list, copy in, copy out and delete files on
its first partition through the same FAT code the kernel runs (kernel/fs/fat.py).

Disk layout made by `create_disk`: sector 0 holds the MBR (the boot image's code, if given,
and the partition table); sectors 1..2047 hold the rest of the boot image (the 32-bit entry
stub); partition 1 starts at sector 2048 (1 MiB, aligned) and fills the disk, formatted FAT16
(type 0x0E) or FAT32 (type 0x0C) from 512 MiB up, with the directories in `SKELETON`.

The functions raise `DiskToolError`, `FsError` or `BlockDeviceError` with a message; the click
group `disk` (mounted by the main CLI as `tk disk`) turns them into click errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click

from tradekernel.firmware import boot_image, user_programs
from tradekernel.kernel.drivers.blockdev import (
    BLOCK_SIZE,
    MBR_CODE_SIZE,
    PART_FAT16_LBA,
    PART_FAT32_LBA,
    BlockDeviceError,
    ImageFile,
    PartitionEntry,
    build_mbr,
    open_partition,
)
from tradekernel.kernel.fs.fat import FatFs, FsError, IsDirectory, Stat, mkfs

PARTITION_START = 2048  # sectors: room for the MBR and a stub of up to 1023.5 KiB before it
MIN_SIZE_MB = 4
FAT32_FROM_MB = 512
DEFAULT_SIZE_MB = 64
SKELETON = ("/bin", "/etc", "/home", "/tmp")
VOLUME_LABEL = "TRADEKERNEL"
OS_DISK_MB = 16
# Fixed stamps: the same programs always make the same OS disk, byte for byte.
OS_BUILD_TIME = datetime(2026, 1, 1, 0, 0, 0)


class DiskToolError(Exception):
    """A request the tools refuse (bad size, boot image too large, missing host file)."""


def create_disk(
    path: str | os.PathLike[str],
    size_mb: int,
    boot_image: bytes | None = None,
    now: Callable[[], datetime] = datetime.now,
) -> PartitionEntry:
    """Write a fresh MBR disk of `size_mb` MiB at `path`; returns partition 1's entry.

    `boot_image` is the MBR sector (its first 440 bytes of code are kept; the partition table
    is ours) followed by the stub sectors, which go from sector 1 on."""
    if size_mb < MIN_SIZE_MB:
        raise DiskToolError(f"disk size {size_mb} MiB is too small (at least {MIN_SIZE_MB} MiB)")
    if size_mb > 2 * 1024 * 1024:
        raise DiskToolError(f"disk size {size_mb} MiB is too large for an MBR (2 TiB)")
    boot_code, stub = b"", b""
    if boot_image is not None:
        if len(boot_image) < BLOCK_SIZE or boot_image[510:512] != b"\x55\xaa":
            raise DiskToolError("boot image must start with a 512-byte sector ending in 55 aa")
        boot_code, stub = boot_image[:MBR_CODE_SIZE], boot_image[BLOCK_SIZE:]
        if len(stub) > (PARTITION_START - 1) * BLOCK_SIZE:
            raise DiskToolError(
                f"boot stub is {len(stub)} bytes; at most {(PARTITION_START - 1) * BLOCK_SIZE} "
                "fit before partition 1"
            )
        stub += bytes(-len(stub) % BLOCK_SIZE)
    total = size_mb * 1024 * 1024 // BLOCK_SIZE
    fat32 = size_mb >= FAT32_FROM_MB
    entry = PartitionEntry(
        number=1,
        type=PART_FAT32_LBA if fat32 else PART_FAT16_LBA,
        start_lba=PARTITION_START,
        sector_count=total - PARTITION_START,
        bootable=boot_image is not None,
    )
    mbr = build_mbr([entry], boot_code, disk_signature=0x544B4400)
    with open(path, "wb") as handle:
        handle.truncate(total * BLOCK_SIZE)
        handle.write(mbr + stub)
    with ImageFile(path) as disk:
        partition = open_partition(disk, 1)
        mkfs(
            partition,
            fat_type=32 if fat32 else 16,
            label=VOLUME_LABEL,
            hidden_sectors=PARTITION_START,
            now=now,
        )
        with FatFs(partition, now=now) as fs:
            for directory in SKELETON:
                fs.mkdir(directory)
    return entry


def create_os_disk(path: str | os.PathLike[str], size_mb: int = OS_DISK_MB) -> PartitionEntry:
    """A bootable TradeKernel disk: the MBR and stub, the skeleton, the user programs in /bin."""
    entry = create_disk(path, size_mb, boot_image(), now=lambda: OS_BUILD_TIME)
    with ImageFile(path) as disk, FatFs(open_partition(disk, 1), now=lambda: OS_BUILD_TIME) as fs:
        for name, data in user_programs().items():
            fs.write_file(f"/bin/{name}", data)
    return entry


@contextmanager
def open_volume(image: str | os.PathLike[str], read_only: bool = False) -> Iterator[FatFs]:
    """The FAT filesystem on partition 1 of `image`, flushed and closed on exit."""
    if not Path(image).is_file():
        raise DiskToolError(f"{image}: no such disk image")
    with ImageFile(image, read_only=read_only) as disk:
        fs = FatFs(open_partition(disk, 1), read_only=read_only)
        try:
            yield fs
        finally:
            fs.close()


def list_dir(image: str | os.PathLike[str], path: str = "/") -> list[Stat]:
    """Entries of a directory in the image (or the one entry, if `path` is a file)."""
    with open_volume(image, read_only=True) as fs:
        stat = fs.stat(path)
        return fs.scandir(path) if stat.is_dir else [stat]


def get_file(image: str | os.PathLike[str], source: str, target: str | os.PathLike[str]) -> int:
    """Copy a file out of the image; `target` may be a host directory. Returns bytes copied."""
    with open_volume(image, read_only=True) as fs:
        stat = fs.stat(source)
        if stat.is_dir:
            raise IsDirectory(f"{source}: is a directory")
        data = fs.read_file(source)
    destination = Path(target)
    if destination.is_dir():
        destination = destination / stat.name
    destination.write_bytes(data)
    return len(data)


def put_file(image: str | os.PathLike[str], source: str | os.PathLike[str], target: str) -> int:
    """Copy a host file into the image; `target` may be a directory there. Returns bytes."""
    source_path = Path(source)
    if not source_path.is_file():
        raise DiskToolError(f"{source}: no such host file")
    data = source_path.read_bytes()
    with open_volume(image) as fs:
        if fs.exists(target) and fs.stat(target).is_dir:
            target = target.rstrip("/") + "/" + source_path.name
        fs.write_file(target, data)
    return len(data)


def remove(image: str | os.PathLike[str], path: str) -> None:
    """Delete a file, or an empty directory, from the image."""
    with open_volume(image) as fs:
        if fs.stat(path).is_dir:
            fs.rmdir(path)
        else:
            fs.remove(path)


# --------------------------------------------------------------------------- click
def _run(action: Callable[[], object]) -> object:
    try:
        return action()
    except (DiskToolError, FsError, BlockDeviceError) as exc:
        message = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise click.ClickException(str(message)) from exc


def _format_stat(stat: Stat, long: bool) -> str:
    name = stat.name + ("/" if stat.is_dir else "")
    if not long:
        return name
    stamp = stat.mtime.strftime("%Y-%m-%d %H:%M") if stat.mtime else "-" * 16
    kind = "d" if stat.is_dir else "-"
    return f"{kind} {stat.size:>10} {stamp}  {name}"


@click.group("disk")
def disk() -> None:
    """Make the OS disk image and move files in and out of it."""


@disk.command("create")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--size", "size_mb", default=DEFAULT_SIZE_MB, show_default=True, help="MiB")
@click.option(
    "--boot",
    "boot_path",
    type=click.Path(exists=True, dir_okay=False),
    help="MBR sector + stub sectors to place before partition 1 (default: TradeKernel's own, "
    "with the user programs in /bin)",
)
def create_command(path: str, size_mb: int, boot_path: str | None) -> None:
    """Create a bootable, partitioned disk image with a fresh FAT filesystem."""
    if boot_path:
        boot = Path(boot_path).read_bytes()
        entry = _run(lambda: create_disk(path, size_mb, boot))
    else:
        entry = _run(lambda: create_os_disk(path, size_mb))
    assert isinstance(entry, PartitionEntry)
    kind = "FAT32" if entry.type == PART_FAT32_LBA else "FAT16"
    click.echo(f"{path}: {size_mb} MiB, partition 1 {kind} at sector {entry.start_lba}")


@disk.command("ls")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("path", default="/")
@click.option("-l", "long", is_flag=True, help="sizes and modification times")
def ls_command(image: str, path: str, long: bool) -> None:
    """List a directory of the image."""
    stats = _run(lambda: list_dir(image, path))
    assert isinstance(stats, list)
    for stat in stats:
        click.echo(_format_stat(stat, long))


@disk.command("get")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("source")
@click.argument("target", type=click.Path())
def get_command(image: str, source: str, target: str) -> None:
    """Copy SOURCE from the image to TARGET on the host."""
    _run(lambda: get_file(image, source, target))


@disk.command("put")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("source", type=click.Path())
@click.argument("target")
def put_command(image: str, source: str, target: str) -> None:
    """Copy SOURCE on the host to TARGET in the image."""
    _run(lambda: put_file(image, source, target))


@disk.command("rm")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("path")
def rm_command(image: str, path: str) -> None:
    """Delete a file or an empty directory from the image."""
    _run(lambda: remove(image, path))
