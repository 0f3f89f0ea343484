#!/usr/bin/env python3
"""Build the ring-3 user programs (static ELF32 i386) from C with the host gcc.

    python images/programs/build.py          # -> tradekernel/data/programs/<name>

Every program but linux_hello links the project libc (lib/) with lib/user.ld (text R-X at
0x08048000, data RW- on its own pages). linux_hello is built the way any static Linux i386
binary is, with no project code, to show that Linux's own system-call ABI is what the kernel
speaks. The binaries are committed as package data (disktool.create_os_disk puts them in /bin);
the flags make them reproducible (no build id, no host paths).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = HERE.parents[1] / "tradekernel" / "data" / "programs"
LIB = HERE / "lib"
PROGRAMS = (
    "hello",
    "spin",
    "crash",
    "wild",
    "divzero",
    "illegal",
    "badptr",
    "info",
    "cat",
    "sysbench",
    "yes",
    "head",
    "wc",
    "forktest",
    "pipetest",
    "exectest",
    "sigtest",
    "stoptest",
    "nointr",
    "mmaptest",
    "shmring",
    "forkbomb",
    "fileops",
    "fpu",
    "nap",
    "hostile",
    "httpget",
    "tcpecho",
    "mcast",
    "nettest",
    "pollmix",
    "nc",
    "mdtaker",
    "httpd",
)
RAW_PROGRAMS = ("linux_hello",)
COMMON_FLAGS = [
    "-m32", "-march=i386", "-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-no-pie",
    "-O2", "-Wall", "-Wextra", "-fno-asynchronous-unwind-tables", "-fno-stack-protector",
    "-Wl,--build-id=none", "-ffile-prefix-map=" + str(HERE) + "=.",
]  # fmt: skip


def build_programs(out_dir: Path) -> list[Path]:
    """Compile every program into `out_dir`; returns the binaries in a stable order."""
    gcc = shutil.which("gcc")
    if gcc is None:
        sys.exit("build: gcc not found (apt-get install gcc gcc-multilib)")
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for name in PROGRAMS:
        target = out_dir / name
        subprocess.run(
            [gcc, *COMMON_FLAGS, "-I", str(LIB), "-T", str(LIB / "user.ld"),
             str(LIB / "crt0.S"), str(LIB / "libc.c"), str(HERE / f"{name}.c"), "-o", str(target)],
            check=True, cwd=HERE,
        )  # fmt: skip
        built.append(target)
    for name in RAW_PROGRAMS:
        target = out_dir / name
        subprocess.run(
            [gcc, *COMMON_FLAGS, "-Wl,-Ttext=0x08048000", str(HERE / f"{name}.c"), "-o",
             str(target)],
            check=True, cwd=HERE,
        )  # fmt: skip
        built.append(target)
    return built


def main() -> None:
    built = build_programs(BIN)
    print(f"built {', '.join(path.name for path in built)} in {BIN}")


if __name__ == "__main__":
    main()
