"""Shared helpers for the package-manager tests: the real Debian package setup.sh fetched,
tiny packages built by the real dpkg-deb, FAT volumes in memory, repositories on them."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.peers import peer
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice
from tradekernel.kernel.fs.fat import FatFs, mkfs
from tradekernel.kernel.pkg.database import makedirs
from tradekernel.repotool import build_index

DEBS = Path(__file__).parent / "debs"
FIXED_NOW = datetime(2026, 1, 2, 3, 4, 5)
VOLUME_BYTES = 16 << 20


def dpkg_deb() -> str:
    """dpkg-deb, the real peer that builds and lists packages."""
    return peer("dpkg-deb")


def busybox_deb() -> Path:
    found = sorted(DEBS.glob("busybox-static_*_i386.deb"))
    if not found:
        pytest.fail(f"no busybox-static i386 .deb in {DEBS}: run setup.sh (it downloads it)")
    return found[-1]


def make_deb(
    where: Path,
    name: str,
    version: str = "1.0",
    arch: str = "i386",
    depends: str = "",
    files: dict[str, bytes] | None = None,
    links: dict[str, str] | None = None,
    compression: str = "xz",
) -> Path:
    """A .deb built by dpkg-deb from `files` (path -> bytes) and `links` (path -> target)."""
    root = where / f"{name}_{version}_{arch}"
    (root / "DEBIAN").mkdir(parents=True)
    control = f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
    control += "Maintainer: Test <test@example.org>\n"
    control += f"Depends: {depends}\n" if depends else ""
    control += f"Description: test package {name}\n longer text about {name}\n"
    (root / "DEBIAN" / "control").write_text(control)
    for path, data in (files or {f"/usr/share/{name}/README": name.encode()}).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if path.startswith("/bin/"):
            target.chmod(0o755)
    for path, target_name in (links or {}).items():
        link = root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target_name)
    out = where / f"{name}_{version}_{arch}.deb"
    subprocess.run(
        [dpkg_deb(), "--root-owner-group", f"-Z{compression}", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def new_volume() -> tuple[MemoryBlockDevice, FatFs]:
    device = MemoryBlockDevice(VOLUME_BYTES)
    mkfs(device, fat_type=16, now=lambda: FIXED_NOW)
    return device, FatFs(device, now=lambda: FIXED_NOW)


def put_repo(fs: FatFs, host_dir: Path, debs: list[Path], where: str = "/repo") -> None:
    """A repository on the volume: the .debs and the Packages index `tk repo` would write."""
    host_dir.mkdir(exist_ok=True)
    for deb in debs:
        (host_dir / deb.name).write_bytes(deb.read_bytes())
    makedirs(fs, where)
    fs.write_file(f"{where}/Packages", build_index(host_dir).encode())
    for deb in debs:
        fs.write_file(f"{where}/{deb.name}", deb.read_bytes())
    fs.flush()


def fsck(data: bytes, tmp_path: Path) -> None:
    image = tmp_path / "volume.img"
    image.write_bytes(data)
    result = subprocess.run([peer("fsck.fat"), "-n", str(image)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def repair(data: bytes, tmp_path: Path) -> bytes:
    """What `fsck.fat -a` (automatic repair) makes of a volume."""
    image = tmp_path / "repair.img"
    image.write_bytes(data)
    result = subprocess.run([peer("fsck.fat"), "-a", str(image)], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return image.read_bytes()
