"""`tk repo`: the host side of the package manager (kernel/pkg).

  tk repo add DIR PKG.deb...   copy .deb files into DIR and rebuild DIR/Packages and
                               DIR/Packages.gz from every .deb there (control fields plus
                               Filename, Size, SHA256, as Debian's archive writes them)
  tk repo put IMAGE DIR [TO]   copy a repository directory into a disk image (default TO:
                               /var/cache/pkg, where `pkg install` looks)
  tk repo install IMAGE DIR PKG...
                               install packages from DIR into a disk image on the host, with
                               the guest's own package manager (for a ready-made userland)
  tk repo serve DIR            serve DIR over HTTP (http.server) for the guest, which will reach
                               the host at 10.0.2.2 once it has a network

Contract: a .deb that cannot be read is refused with one line naming it and the index is left
as it was (the kernel's own reader, kernel/pkg/deb.py, unpacks it in memory first, so what the
index lists the guest can unpack). The index is sorted by package and version: the same files always
give the same bytes.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import sys
from pathlib import Path

import click

from tradekernel.disktool import open_volume
from tradekernel.kernel.fs.fat import FsError
from tradekernel.kernel.pkg.control import format_paragraph
from tradekernel.kernel.pkg.database import DatabaseError, makedirs
from tradekernel.kernel.pkg.deb import DebError, read_deb
from tradekernel.kernel.pkg.manager import PackageManager, PkgError
from tradekernel.kernel.pkg.params import (
    DEFAULT_REPO,
    MAX_DEB_BYTES,
    MAX_INDEX_BYTES,
    MAX_UNPACKED_BYTES,
)
from tradekernel.kernel.pkg.source import SourceError

DEFAULT_PORT = 8080
# Fields of the .deb's control paragraph the index repeats, in Debian's order; then ours.
INDEX_FIELDS = (
    "Package", "Source", "Version", "Installed-Size", "Maintainer", "Architecture", "Replaces",
    "Provides", "Pre-Depends", "Depends", "Recommends", "Suggests", "Conflicts", "Breaks",
    "Description", "Homepage", "Section", "Priority",
)  # fmt: skip


class RepoError(Exception):
    pass


def index_entry(path: Path, filename: str) -> dict[str, str]:
    """The Packages paragraph for one .deb file."""
    size = path.stat().st_size
    if size > MAX_DEB_BYTES:
        raise RepoError(f"{path}: {size} bytes, more than the guest accepts ({MAX_DEB_BYTES})")
    data = path.read_bytes()
    try:
        control = read_deb(data, MAX_UNPACKED_BYTES).control  # all of it must unpack
    except DebError as error:
        raise RepoError(f"{path}: {error}") from None
    entry = {name: control[name] for name in INDEX_FIELDS if name in control}
    entry.update(Filename=filename, Size=str(size), SHA256=hashlib.sha256(data).hexdigest())
    return entry


def build_index(directory: Path) -> str:
    """Packages text for every .deb in `directory` (not its subdirectories)."""
    entries = [index_entry(path, path.name) for path in sorted(directory.glob("*.deb"))]
    entries.sort(key=lambda e: (e["Package"], e["Version"]))
    return "\n".join(format_paragraph(entry) for entry in entries)


def write_index(directory: Path) -> int:
    """Write Packages and Packages.gz (reproducible: no name or time in the gzip header)."""
    text = build_index(directory).encode("utf-8")
    (directory / "Packages").write_bytes(text)
    with open(directory / "Packages.gz", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
            packed.write(text)
    return text.count(b"\nPackage: ") + text.startswith(b"Package: ")


def add(directory: Path, debs: list[Path]) -> int:
    """Check each .deb, copy it in, rebuild the index; the number of packages indexed."""
    for deb in debs:
        index_entry(deb, deb.name)  # refuse a bad file before anything changes
    directory.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        if deb.resolve() != (directory / deb.name).resolve():
            shutil.copyfile(deb, directory / deb.name)
    return write_index(directory)


def put(image: Path, directory: Path, target: str) -> int:
    """Copy the repository's files into the image under `target`; the number of files."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    with open_volume(image) as fs:
        makedirs(fs, target)
        for path in files:
            fs.write_file(f"{target.rstrip('/')}/{path.name}", path.read_bytes())
    return len(files)


class HostDirectorySource:
    """A repository directory on the host, as a kernel/pkg PackageSource."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location = str(directory)

    def _read(self, name: str, limit: int) -> bytes:
        path = self.directory / name
        try:  # `name` is the index's Filename: outside input (ValueError: a NUL byte in it)
            if path.resolve().parent != self.directory.resolve():
                raise SourceError(f"{name}: outside the repository {self.directory}")
            if path.stat().st_size > limit:
                raise SourceError(f"{path}: more than the limit of {limit} bytes")
            return path.read_bytes()
        except OSError as error:
            raise SourceError(f"{path}: {error.strerror or error}") from None
        except ValueError as error:
            raise SourceError(f"{name!r}: {error}") from None

    def index(self) -> bytes:
        return self._read("Packages", MAX_INDEX_BYTES)

    def fetch(self, filename: str, limit: int) -> bytes:
        return self._read(filename, limit)


def install_into_image(image: Path, directory: Path, names: list[str]) -> list[str]:
    """Install `names` (and their Depends) from a host repository into the image's volume."""
    with open_volume(image) as fs:
        return PackageManager(fs).install(names, HostDirectorySource(directory), click.echo)


@click.group("repo")
def repo() -> None:
    """Package repositories for the guest's `pkg` command."""


@repo.command("add")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("debs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def add_command(directory: Path, debs: tuple[Path, ...]) -> None:
    """Add .deb files to DIRECTORY and rebuild its Packages index."""
    try:
        count = add(directory, list(debs))
    except (RepoError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{directory}/Packages: {count} package{'s' * (count != 1)}")


@repo.command("put")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("target", default=DEFAULT_REPO)
def put_command(image: Path, directory: Path, target: str) -> None:
    """Copy a repository directory into a disk image (default: where `pkg` looks)."""
    if not (directory / "Packages").is_file():
        raise click.ClickException(f"{directory}: no Packages index (run `tk repo add` first)")
    try:
        count = put(image, directory, target)
    except (FsError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{image}:{target}: {count} files")


@repo.command("install")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("names", nargs=-1, required=True)
def install_command(image: Path, directory: Path, names: tuple[str, ...]) -> None:
    """Install packages from DIRECTORY into a disk image, as `pkg install` would."""
    try:
        install_into_image(image, directory, list(names))
    except (PkgError, DatabaseError, FsError, OSError) as error:
        raise click.ClickException(str(error)) from None


@repo.command("serve")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="0: any free port")  # fmt: skip
@click.option("--bind", default="127.0.0.1", show_default=True, help="address to listen on")
def serve_command(directory: Path, port: int, bind: str) -> None:
    """Serve DIRECTORY over HTTP (plain http.server) until Ctrl-C."""
    if not (directory / "Packages").is_file():
        raise click.ClickException(f"{directory}: no Packages index (run `tk repo add` first)")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=os.fspath(directory)
    )
    try:
        server = http.server.ThreadingHTTPServer((bind, port), handler)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {bind}:{port}: {error.strerror}") from None
    port = server.server_address[1]  # the one the system chose for --port 0
    click.echo(
        f"serving {directory} at http://{bind}:{port}/ (the guest will reach it as"
        f" http://10.0.2.2:{port}/ once it has a network; until then copy the directory in"
        " with `tk repo put`). Ctrl-C stops.",
    )
    sys.stdout.flush()
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")
