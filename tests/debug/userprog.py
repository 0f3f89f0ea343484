"""Builds the ring-3 test programs of tests/debug (C sources here) against the project libc,
-O0 -g with frame pointers, the way a user builds a program to debug; and copies one onto a
PC's disk with mtools."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers import peer

HERE = Path(__file__).resolve().parent
LIB = HERE.parents[1] / "images" / "programs" / "lib"
USER_FLAGS = [
    "-m32", "-march=i386", "-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-no-pie",
    "-O0", "-g", "-fno-omit-frame-pointer", "-fno-asynchronous-unwind-tables",
    "-fno-stack-protector", "-Wl,--build-id=none",
]  # fmt: skip


def build(name: str, tmp_path: Path) -> Path:
    """tests/debug/NAME.c built as tmp_path/NAME (a static i386 ELF that also runs on Linux)."""
    target = tmp_path / name
    subprocess.run(
        [peer("gcc"), *USER_FLAGS, "-I", str(LIB), "-T", str(LIB / "user.ld"),
         str(LIB / "crt0.S"), str(LIB / "libc.c"), str(HERE / f"{name}.c"), "-o", str(target)],
        check=True,
    )  # fmt: skip
    return target


def symbol(binary: Path, name: str) -> int:
    """`name`'s address, from nm."""
    out = subprocess.run([peer("nm"), str(binary)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(f" {name}"))
