"""Host-side disk tools: make the OS disk image, and list, copy in, copy out and delete files on
its first partition through the same FAT code the kernel runs (kernel/fs/fat.py).

Disk layout made by `create_disk`: sector 0 holds the MBR (the boot image's code, if given,
and the partition table); sectors 1..2047 hold the rest of the boot image (the 32-bit entry
stub); partition 1 starts at sector 2048 (1 MiB, aligned) and fills the disk, formatted FAT16
(type 0x0E) or FAT32 (type 0x0C) from 512 MiB up, with the directories in `SKELETON`.

The functions raise `DiskToolError`, `FsError`, `BlockDeviceError` or `OSError` (the host side)
with a message; the click group `disk` (mounted by the main CLI as `tk disk`) turns them into
one-line click errors. `tk disk create` never replaces an existing file without --force, and
gives each disk a fresh volume serial; with `--with NAMES --repo DIR` it installs Debian
packages (and their Depends) from a host directory of .deb files, as the guest's `pkg` would.
"""

from __future__ import annotations

import os
import secrets
import time
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
from tradekernel.kernel.pkg.database import DatabaseError
from tradekernel.kernel.pkg.manager import PackageManager, PkgError
from tradekernel.kernel.pkg.source import PackageSource

PARTITION_START = 2048  # sectors: room for the MBR and a stub of up to 1023.5 KiB before it
MIN_SIZE_MB = 4
FAT32_FROM_MB = 512
DEFAULT_SIZE_MB = 64
SKELETON = ("/bin", "/etc", "/home", "/tmp")
MAX_PUT_DEPTH = 32  # `tk disk put` of a directory: deeper trees are refused (a loop, likely)
VOLUME_LABEL = "TRADEKERNEL"
OS_DISK_MB = 16
# Fixed stamps: the same programs always make the same OS disk, byte for byte.
OS_BUILD_TIME = datetime(2026, 1, 1, 0, 0, 0)
OS_VOLUME_ID = 0x54524B31  # "TRK1": the scratch OS disk's fixed serial
# The OS has one user, root (uid and gid 0, as every system call says): the files programs
# look names up in (busybox's id, whoami, ls -l; glibc's getpwuid), in their standard format.
USER_DATABASE = {
    "/etc/passwd": b"root:x:0:0:root:/:/bin/sh\n",  # home: HOME=/ (proc/process.py)
    "/etc/group": b"root:x:0:\n",
}


class DiskToolError(Exception):
    """A request the tools refuse (bad size, boot image too large, missing host file)."""


def fresh_volume_id() -> int:
    """A FAT volume serial from the clock and randomness, as mkfs.fat makes one (seconds and
    microseconds mixed), so two disks made the same second still differ."""
    stamp = time.time_ns() // 1000
    return ((stamp // 1_000_000) << 20 ^ stamp % 1_000_000 ^ secrets.randbits(32)) & 0xFFFFFFFF


def create_disk(
    path: str | os.PathLike[str],
    size_mb: int,
    boot_image: bytes | None = None,
    now: Callable[[], datetime] = datetime.now,
    volume_id: int | None = None,
) -> PartitionEntry:
    """Write a fresh MBR disk of `size_mb` MiB at `path`; returns partition 1's entry.

    `boot_image` is the MBR sector (its first 440 bytes of code are kept; the partition table
    is ours) followed by the stub sectors, which go from sector 1 on. `volume_id` is the FAT
    serial (default: a fresh one)."""
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
            volume_id=fresh_volume_id() if volume_id is None else volume_id,
            now=now,
        )
        with FatFs(partition, now=now) as fs:
            for directory in SKELETON:
                fs.mkdir(directory)
    return entry


def create_os_disk(
    path: str | os.PathLike[str], size_mb: int = OS_DISK_MB, volume_id: int = OS_VOLUME_ID
) -> PartitionEntry:
    """A bootable TradeKernel disk: the MBR and stub, the skeleton, the user programs in /bin,
    /etc/passwd and /etc/group with root.
    With the default serial the same programs give the same image, byte for byte (the scratch
    disk of a deterministic run); `tk disk create` gives each disk a fresh one."""
    entry = create_disk(
        path, size_mb, boot_image(), now=lambda: OS_BUILD_TIME, volume_id=volume_id
    )
    with ImageFile(path) as disk, FatFs(open_partition(disk, 1), now=lambda: OS_BUILD_TIME) as fs:
        for name, data in user_programs().items():
            fs.write_file(f"/bin/{name}", data)
        for name, data in USER_DATABASE.items():
            fs.write_file(name, data)
    return entry


class _BuiltIndex:
    """A host repository whose Packages index was built just now from its .deb files (a plain
    directory of them, such as `apt-get download` leaves): a kernel/pkg PackageSource."""

    def __init__(self, source: PackageSource, index: bytes) -> None:
        self._source, self._index = source, index
        self.location = source.location

    def index(self) -> bytes:
        return self._index

    def fetch(self, filename: str, limit: int) -> bytes:
        return self._source.fetch(filename, limit)


def install_packages(
    image: str | os.PathLike[str], repo: Path, names: list[str], say: Callable[[str], None]
) -> list[str]:
    """Install `names` and their Depends into the image, as the guest's `pkg install` does
    (checksums checked before anything is written), from `repo`: a host directory of .deb
    files, with its Packages index (`tk repo add`) or without (one is built from the .debs).
    Returns what was installed, in order."""
    from tradekernel import repotool  # it uses open_volume from here: imported when needed

    if not repo.is_dir():
        raise DiskToolError(f"{repo}: no such package directory")
    source: PackageSource = repotool.HostDirectorySource(repo)
    if not (repo / "Packages").is_file():
        try:
            source = _BuiltIndex(source, repotool.build_index(repo).encode("utf-8"))
        except repotool.RepoError as error:
            raise DiskToolError(str(error)) from None
    try:
        with open_volume(image) as fs:
            return PackageManager(fs).install(names, source, say)
    except (PkgError, DatabaseError) as error:
        raise DiskToolError(str(error)) from None


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
    """Copy a host file, or a directory with everything in it, into the image; `target` may
    be an existing directory there (the copy goes inside it). Returns bytes copied."""
    source_path = Path(source)
    if not source_path.exists():
        raise DiskToolError(f"{source}: no such host file")
    if not (source_path.is_file() or source_path.is_dir()):
        raise DiskToolError(f"{source}: not a regular file or directory")
    with open_volume(image) as fs:
        if fs.exists(target) and fs.stat(target).is_dir:
            target = target.rstrip("/") + "/" + source_path.name
        return _put_tree(fs, source_path, target, depth=0)


def write_files(fs: FatFs, files: dict[str, bytes]) -> None:
    """Write `files` (absolute path -> bytes) onto a mounted volume, making each one's folder
    if it has none yet (a backtest's strategy and data, a test's fixtures)."""
    for path, data in files.items():
        folder = path.rsplit("/", 1)[0]
        if folder and not fs.exists(folder):
            fs.mkdir(folder)
        fs.write_file(path, data)


def _put_tree(fs: FatFs, source: Path, target: str, depth: int) -> int:
    if source.is_symlink() and source.is_dir():
        raise DiskToolError(f"{source}: a symbolic link to a directory (not followed)")
    if not source.is_dir():
        data = source.read_bytes()
        fs.write_file(target, data)
        return len(data)
    if depth >= MAX_PUT_DEPTH:
        raise DiskToolError(f"{source}: directories nested deeper than {MAX_PUT_DEPTH}")
    if not fs.exists(target):
        fs.mkdir(target)
    elif not fs.stat(target).is_dir:
        raise DiskToolError(f"{target}: exists in the image and is not a directory")
    copied = 0
    for child in sorted(source.iterdir()):
        copied += _put_tree(fs, child, target.rstrip("/") + "/" + child.name, depth + 1)
    return copied


def make_directory(image: str | os.PathLike[str], path: str, parents: bool = False) -> None:
    """Make a directory in the image; with `parents`, its missing parents too and no error if
    it exists (as mkdir -p)."""
    with open_volume(image) as fs:
        if not parents:
            fs.mkdir(path)
            return
        so_far = ""
        for part in [part for part in path.split("/") if part]:
            so_far += "/" + part
            if not fs.exists(so_far):
                fs.mkdir(so_far)
            elif not fs.stat(so_far).is_dir:
                raise DiskToolError(f"{so_far}: exists and is not a directory")


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
    except OSError as exc:  # the host side: a missing directory, no permission, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(f"{where}{exc.strerror or exc}") from exc


def _format_stat(stat: Stat, long: bool) -> str:
    name = stat.name + ("/" if stat.is_dir else "")
    if not long:
        return name
    stamp = stat.mtime.strftime("%Y-%m-%d %H:%M") if stat.mtime else "-" * 16
    kind = "d" if stat.is_dir else "-"
    return f"{kind} {stat.size:>10} {stamp}  {name}"


@click.group("disk", context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--force", is_flag=True, help="Replace PATH if it exists (its contents are lost).")
@click.option(
    "--with",
    "packages",
    multiple=True,
    help="Debian packages to install (NAME[,NAME...], repeatable), with their Depends, from "
    "--repo",
)
@click.option(
    "--repo",
    "repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of i386 .deb files for --with (a Packages index is built if it has none)",
)
def create_command(
    path: str,
    size_mb: int,
    boot_path: str | None,
    force: bool,
    packages: tuple[str, ...],
    repo: Path | None,
) -> None:
    """Create a bootable, partitioned disk image with a fresh FAT filesystem."""
    names = [name for group in packages for name in group.split(",") if name.strip()]
    names = [name.strip() for name in names]
    if names and repo is None:
        raise click.ClickException("--with needs --repo DIR (a directory of .deb files)")
    if os.path.lexists(path) and not force:
        raise click.ClickException(
            f"{path} already exists: not replaced (--force replaces it and all it holds)"
        )
    if boot_path:
        boot = Path(boot_path).read_bytes()
        entry = _run(lambda: create_disk(path, size_mb, boot))
    else:
        entry = _run(lambda: create_os_disk(path, size_mb, volume_id=fresh_volume_id()))
    assert isinstance(entry, PartitionEntry)
    kind = "FAT32" if entry.type == PART_FAT32_LBA else "FAT16"
    click.echo(f"{path}: {size_mb} MiB, partition 1 {kind} at sector {entry.start_lba}")
    if names and repo is not None:
        try:
            _run(lambda: install_packages(path, repo, names, click.echo))
        except click.ClickException:
            os.unlink(path)  # not the disk asked for: none rather than one without them
            raise


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
    """Copy SOURCE on the host (a file, or a directory and all in it) to TARGET in the image."""
    _run(lambda: put_file(image, source, target))


@disk.command("mkdir")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("path")
@click.option("-p", "parents", is_flag=True, help="make missing parents; no error if it exists")
def mkdir_command(image: str, path: str, parents: bool) -> None:
    """Make a directory in the image."""
    _run(lambda: make_directory(image, path, parents))


@disk.command("rm")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("path")
def rm_command(image: str, path: str) -> None:
    """Delete a file or an empty directory from the image."""
    _run(lambda: remove(image, path))
