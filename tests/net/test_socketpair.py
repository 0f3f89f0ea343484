"""socketpair(2) from a ring-3 C program on the booted OS (tests/net/programs/sockpair.c, built
here with gcc against the project's libc the way images/programs/build.py builds the others):
messages both ways, Linux's refusals, 1 MiB from a forked child through the pair with blocking
reads and writes checked byte by byte, end of stream when the writer is gone, EPIPE with
MSG_NOSIGNAL and SIGPIPE for a plain write. No network card is needed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "images" / "programs" / "lib"
SOURCE = Path(__file__).with_name("programs") / "sockpair.c"


def build(tmp_path: Path) -> bytes:
    import sys

    sys.path.insert(0, str(ROOT / "images" / "programs"))
    from build import COMMON_FLAGS  # type: ignore[import-not-found]

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the test program")
    target = tmp_path / "sockpair"
    subprocess.run([gcc, *COMMON_FLAGS, "-I", str(LIB), "-T", str(LIB / "user.ld"),
                    str(LIB / "crt0.S"), str(LIB / "libc.c"), str(SOURCE), "-o", str(target)],
                   check=True, timeout=120)  # fmt: skip
    return target.read_bytes()


def test_a_socketpair_carries_bytes_both_ways_and_ends_like_linux(tmp_path: Path) -> None:
    program = build(tmp_path)
    booted = BootedPc(tmp_path).boot()  # no network card: socketpair needs none
    try:
        booted.pc.kernel.fs.write_file("/bin/sockpair", program)
        lines = booted.output("sockpair", 60 * SECOND)
        assert lines == [
            "socketpair 0",
            "read 4 ping",
            "recv 4 pong",
            "inet -95 dgram -95 proto -93",
            f"got {1 << 20} wrong 0 end 0 child 0",
            "nosignal -32",
        ], lines
    finally:
        close_pc(booted)
