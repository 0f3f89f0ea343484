"""Shared helpers for the disk tests: fresh FAT volumes, and the real peers (dosfstools'
fsck.fat and mkfs.fat, mtools) that check what our code writes and write what it must read."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.peers import peer
from tradekernel.kernel.drivers.blockdev import ImageFile
from tradekernel.kernel.fs.fat import FatFs, mkfs

FIXED_NOW = datetime(2024, 5, 17, 13, 45, 22)
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_LOWER_CASE": "0", "TZ": "UTC"}


def need(tool: str) -> str:
    """The path of a peer tool; a missing peer fails the test (tests/peers.py says why)."""
    return peer(tool)


def fsck(image: Path | str, offset: int = 0) -> str:
    """Run `fsck.fat -n` (no changes) on the volume at byte `offset`; fail on any complaint."""
    tool = need("fsck.fat")
    target = Path(image)
    if offset:
        target = Path(str(image) + ".part")
        with open(image, "rb") as src, open(target, "wb") as dst:
            src.seek(offset)
            while chunk := src.read(1 << 20):  # sparse copy: zero chunks become holes
                if chunk.count(0) == len(chunk):
                    dst.seek(len(chunk), os.SEEK_CUR)
                else:
                    dst.write(chunk)
            dst.truncate()
    result = subprocess.run([tool, "-n", "-v", str(target)], capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"fsck.fat found errors:\n{output}"
    return output


def mtools(command: str, image: Path | str, *args: str, offset: int = 0) -> bytes:
    tool = need(command)
    spec = f"{image}@@{offset}" if offset else str(image)
    result = subprocess.run([tool, "-i", spec, *args], capture_output=True, env=MTOOLS_ENV)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def mkfs_fat(path: Path, size_mb: int, *options: str) -> Path:
    tool = need("mkfs.fat")
    with open(path, "wb") as handle:
        handle.truncate(size_mb * 1024 * 1024)
    subprocess.run([tool, *options, str(path)], check=True, capture_output=True)
    return path


def our_volume(path: Path, size_mb: int, fat_type: int | None = None, **kwargs: object) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size_mb * 1024 * 1024)
    with ImageFile(path) as device:
        mkfs(device, fat_type=fat_type, now=lambda: FIXED_NOW, **kwargs)  # type: ignore[arg-type]
    return path


def mount(path: Path, read_only: bool = False) -> tuple[ImageFile, FatFs]:
    device = ImageFile(path, read_only=read_only)
    return device, FatFs(device, read_only=read_only, now=lambda: FIXED_NOW)


@pytest.fixture
def fat16_image(tmp_path: Path) -> Path:
    return our_volume(tmp_path / "fat16.img", 16, 16, label="TESTVOL")
