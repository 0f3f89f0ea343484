#!/usr/bin/env python3
"""Build the guest binaries from source, reproducibly.

    python images/build.py            # nasm -> tradekernel/data/*.bin,
                                      # gcc -> tradekernel/data/programs/
    python images/build.py --check    # rebuild into a temporary folder and compare with the tree

The outputs are committed, so users need no toolchain; a test rebuilds and compares them. The
OS disk is not committed: `disktool.create_os_disk` lays it out from these binaries in ~15 ms,
the same bytes every time (fixed timestamps), whenever a boot or a test needs one.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

DATA = ROOT / "tradekernel" / "data"
SOURCES = {"bios.bin": "bios.asm", "boot.bin": "boot.asm", "stub.bin": "stub.asm"}


def _load_programs_build():  # noqa: ANN202 - the module images/programs/build.py
    spec = importlib.util.spec_from_file_location("programs_build", HERE / "programs" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PROGRAMS = _load_programs_build()
PROGRAMS_BIN: Path = _PROGRAMS.BIN
build_programs = _PROGRAMS.build_programs


def assemble(out_dir: Path) -> None:
    nasm = shutil.which("nasm")
    if nasm is None:
        sys.exit("build: nasm not found (apt-get install nasm)")
    for binary, source in SOURCES.items():
        subprocess.run([nasm, "-f", "bin", str(HERE / source), "-o", str(out_dir / binary)],
                       check=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a rebuild with the tree")
    args = parser.parse_args()
    if not args.check:
        assemble(DATA)
        programs = build_programs(PROGRAMS_BIN)
        print(f"built {', '.join(SOURCES)} and {len(programs)} programs")
        return
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        assemble(out)
        programs = build_programs(out / "programs")
        differ = [
            name for name in SOURCES if (out / name).read_bytes() != (DATA / name).read_bytes()
        ]
        differ += [
            f"programs/{program.name}"
            for program in programs
            if program.read_bytes() != (PROGRAMS_BIN / program.name).read_bytes()
        ]
        if differ:
            sys.exit(f"build: committed files differ from a rebuild: {', '.join(differ)}")
        print("build: the committed binaries match a rebuild")


if __name__ == "__main__":
    main()
