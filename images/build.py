#!/usr/bin/env python3
"""Build the guest binaries and the default disk image from source, reproducibly.

    python images/build.py            # nasm -> tradekernel/data/*.bin, then images/tradekernel.img
    python images/build.py --check    # rebuild into a temporary folder and compare with the tree

The outputs are committed, so users need no toolchain; a test rebuilds and compares them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "tradekernel" / "data"
SOURCES = {"bios.bin": "bios.asm", "boot.bin": "boot.asm", "stub.bin": "stub.asm"}
DISK_NAME = "tradekernel.img"
DISK_MB = 16
# Fixed timestamps make the FAT image byte-for-byte reproducible.
BUILD_TIME = datetime(2026, 1, 1, 0, 0, 0)


def assemble(out_dir: Path) -> None:
    nasm = shutil.which("nasm")
    if nasm is None:
        sys.exit("build: nasm not found (apt-get install nasm)")
    for binary, source in SOURCES.items():
        subprocess.run([nasm, "-f", "bin", str(HERE / source), "-o", str(out_dir / binary)],
                       check=True)  # fmt: skip


def make_disk(path: Path, data_dir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tradekernel.disktool import create_disk
    from tradekernel.firmware import SECTOR, STUB_SECTORS_OFFSET

    mbr = bytearray((data_dir / "boot.bin").read_bytes())
    stub = (data_dir / "stub.bin").read_bytes()
    sectors = -(-len(stub) // SECTOR)
    mbr[STUB_SECTORS_OFFSET : STUB_SECTORS_OFFSET + 2] = sectors.to_bytes(2, "little")
    create_disk(path, DISK_MB, bytes(mbr) + stub, now=lambda: BUILD_TIME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a rebuild with the tree")
    args = parser.parse_args()
    if not args.check:
        assemble(DATA)
        make_disk(HERE / DISK_NAME, DATA)
        print(f"built {', '.join(SOURCES)} and {DISK_NAME}")
        return
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        assemble(out)
        make_disk(out / DISK_NAME, out)
        differ = [
            name for name in SOURCES if (out / name).read_bytes() != (DATA / name).read_bytes()
        ]
        if (out / DISK_NAME).read_bytes() != (HERE / DISK_NAME).read_bytes():
            differ.append(DISK_NAME)
        if differ:
            sys.exit(f"build: committed files differ from a rebuild: {', '.join(differ)}")
        print("build: the committed binaries match a rebuild")


if __name__ == "__main__":
    main()
