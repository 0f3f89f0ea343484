"""Debian's busybox-static i386 inside the OS against the same binary run natively by the host.

    python bench/bench_linux.py [--rounds N] [--mib M]

Boots the OS (real-time clock) with busybox on the disk and, from the host, times the wall
seconds from typing a command to the next prompt; a run of `busybox true` (load and start
the binary once) is subtracted. The host runs the same i386 binary with the same script in the
same run. Figures:
- fork + exec rounds per second: `busybox sh -c` loop of N `./busybox true` (each a fork, an
  execve of the 2 MB static binary and a wait4);
- gzip throughput: `busybox gzip -c` of M MiB of text to /dev/null (compute-bound);
and each as a ratio inside/host (issue 20's target: >= 0.25 for compute-bound work).
Each command's output is checked (the loop's count, gzip's byte count), so a run that crashed
is an error, not a figure. `--clock counted` (the default) runs the machine on its counted
clock: on the real-time clock a page fault whose CR2 Unicorn overwrites between the delivery
and the trap stub's read kills fork-heavy loops (see the linux helper's report, issue 20).
Needs tests/pkg/debs (setup.sh) and dpkg-deb.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pkg.conftest import busybox_deb  # noqa: E402
from tests.system.harness import SECOND, BootedPc, close_pc  # noqa: E402
from tradekernel.disktool import create_os_disk, open_volume  # noqa: E402


def text_blob(size: int) -> bytes:
    """Words from a small vocabulary, seeded: compressible like real text."""
    rng = random.Random(20)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(500)]  # fmt: skip
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[:size])


def inside(tk: BootedPc, line: str, expect: str = "") -> float:
    """Wall seconds for `line`; its output must be `expect` (one line) or nothing."""
    start = time.perf_counter()
    printed = tk.output(line, 3600 * SECOND)
    took = time.perf_counter() - start
    if printed != ([expect] if expect else []):
        sys.exit(f"bench_linux: {line!r} printed {printed!r}, expected {expect!r}")
    return took


def host(busybox: Path, script: str, cwd: Path) -> tuple[float, str]:
    """Wall seconds and the output of the same script run natively by the host."""
    start = time.perf_counter()
    run = subprocess.run([str(busybox), "sh", "-c", script], cwd=cwd, env={}, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - start, run.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--clock", choices=("counted", "real"), default="counted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        subprocess.run(["dpkg-deb", "-x", str(busybox_deb()), str(where / "root")], check=True)
        busybox = where / "root" / "bin" / "busybox"
        (where / "data.txt").write_bytes(text_blob(args.mib << 20))
        disk = where / "disk.img"
        create_os_disk(disk, size_mb=64)
        with open_volume(disk) as fs:
            fs.write_file("/bin/busybox", busybox.read_bytes())
            fs.write_file("/data.txt", (where / "data.txt").read_bytes())
        loop = f"i=0; while [ $i -lt {args.rounds} ]; do ./busybox true; i=$((i+1)); done"
        loop += "; echo $i"  # the count it reached: a crashed round shows
        gzip = "gzip -c data.txt | wc -c"  # applets of the shell's own binary
        host_loop, _ = host(busybox, loop, busybox.parent)
        host_gzip, packed = host(busybox, gzip, where)
        tk = BootedPc(where, disk=disk, deterministic=args.clock == "counted").boot()
        try:
            tk.output("cd /bin")
            base = min(inside(tk, "busybox true") for _ in range(3))
            os_loop = inside(tk, f"busybox sh -c '{loop}'", str(args.rounds)) - base
            tk.output("cd /")
            os_gzip = inside(tk, f"busybox sh -c '{gzip}'", packed) - base
        finally:
            close_pc(tk)
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs (a shared host: figures are noisy)")
    print(f"fork+exec rounds/s: inside {args.rounds / os_loop:8.1f}   host "
          f"{args.rounds / host_loop:8.1f}   ratio {host_loop / os_loop:.3f}")  # fmt: skip
    print(f"gzip {args.mib} MiB MiB/s: inside {args.mib / os_gzip:8.2f}   host "
          f"{args.mib / host_gzip:8.2f}   ratio {host_gzip / os_gzip:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
