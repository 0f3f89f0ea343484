#!/usr/bin/env python3
"""Build the guest binaries and the default disk image from source, reproducibly.

    python images/build.py            # nasm -> tradekernel/data/*.bin, gcc -> images/programs/bin,
                                      # then images/tradekernel.img with the programs in /bin
    python images/build.py --check    # rebuild into a temporary folder and compare with the tree

The outputs are committed, so users need no toolchain; a test rebuilds and compares them.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def _load_programs_build():  # noqa: ANN202 - the module images/programs/build.py
    spec = importlib.util.spec_from_file_location("programs_build", HERE / "programs" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PROGRAMS = _load_programs_build()
PROGRAMS_BIN: Path = _PROGRAMS.BIN
build_programs = _PROGRAMS.build_programs

# Fixed timestamps make the FAT image byte-for-byte reproducible.
BUILD_TIME = datetime(2026, 1, 1, 0, 0, 0)


def assemble(out_dir: Path) -> None:
    nasm = shutil.which("nasm")
    if nasm is None:
        sys.exit("build: nasm not found (apt-get install nasm)")
    for binary, source in SOURCES.items():
        subprocess.run([nasm, "-f", "bin", str(HERE / source), "-o", str(out_dir / binary)],
                       check=True)  # fmt: skip


def make_disk(path: Path, data_dir: Path, programs: list[Path]) -> None:
    sys.path.insert(0, str(ROOT))
    from tradekernel.disktool import create_disk
    from tradekernel.firmware import SECTOR, STUB_SECTORS_OFFSET
    from tradekernel.kernel.blockdev import ImageFile, open_partition
    from tradekernel.kernel.fat import FatFs

    mbr = bytearray((data_dir / "boot.bin").read_bytes())
    stub = (data_dir / "stub.bin").read_bytes()
    sectors = -(-len(stub) // SECTOR)
    mbr[STUB_SECTORS_OFFSET : STUB_SECTORS_OFFSET + 2] = sectors.to_bytes(2, "little")
    create_disk(path, DISK_MB, bytes(mbr) + stub, now=lambda: BUILD_TIME)
    # The user programs go to /bin (disktool's put_file, but with the fixed clock).
    with ImageFile(path) as disk, FatFs(open_partition(disk, 1), now=lambda: BUILD_TIME) as fs:
        for program in programs:
            fs.write_file(f"/bin/{program.name}", program.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a rebuild with the tree")
    args = parser.parse_args()
    if not args.check:
        assemble(DATA)
        programs = build_programs(PROGRAMS_BIN)
        make_disk(HERE / DISK_NAME, DATA, programs)
        print(f"built {', '.join(SOURCES)}, {len(programs)} programs and {DISK_NAME}")
        return
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        assemble(out)
        programs = build_programs(out / "bin")
        make_disk(out / DISK_NAME, out, programs)
        differ = [
            name for name in SOURCES if (out / name).read_bytes() != (DATA / name).read_bytes()
        ]
        differ += [
            f"programs/bin/{program.name}"
            for program in programs
            if program.read_bytes() != (PROGRAMS_BIN / program.name).read_bytes()
        ]
        if (out / DISK_NAME).read_bytes() != (HERE / DISK_NAME).read_bytes():
            differ.append(DISK_NAME)
        if differ:
            sys.exit(f"build: committed files differ from a rebuild: {', '.join(differ)}")
        print("build: the committed binaries match a rebuild")


if __name__ == "__main__":
    main()
