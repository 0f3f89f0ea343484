#!/usr/bin/env python3
"""Assemble the sample boot sectors (images/samples/*.asm) into the committed *.bin files.

    python images/samples/build.py           # nasm -> images/samples/<name>.bin
    python images/samples/build.py --check   # rebuild into a temporary folder, compare

Each sample is one 512-byte sector ending in 0x55AA; *.inc files are shared includes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTOR = 512


def sample_sources() -> list[Path]:
    return sorted(HERE.glob("*.asm"))


def assemble(out_dir: Path) -> list[Path]:
    """Assemble every sample into out_dir; exits with a message if nasm is missing or fails."""
    nasm = shutil.which("nasm")
    if nasm is None:
        sys.exit("build: nasm not found (apt-get install nasm)")
    built = []
    for source in sample_sources():
        binary = out_dir / source.with_suffix(".bin").name
        result = subprocess.run(
            [nasm, "-f", "bin", "-I", f"{HERE}/", str(source), "-o", str(binary)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(f"build: nasm failed on {source.name}:\n{result.stderr}")
        data = binary.read_bytes()
        if len(data) != SECTOR or data[-2:] != b"\x55\xaa":
            sys.exit(f"build: {binary.name} is not a 512-byte sector ending in 0x55AA")
        built.append(binary)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a rebuild with the tree")
    args = parser.parse_args()
    if not args.check:
        built = assemble(HERE)
        print(f"built {', '.join(path.name for path in built)}")
        return
    with tempfile.TemporaryDirectory() as scratch:
        built = assemble(Path(scratch))
        differ = [
            path.name for path in built if path.read_bytes() != (HERE / path.name).read_bytes()
        ]
        if differ:
            sys.exit(f"build: committed samples differ from a rebuild: {', '.join(differ)}")
        print("build: the committed samples match a rebuild")


if __name__ == "__main__":
    main()
