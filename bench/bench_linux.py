"""Debian's busybox-static i386 inside the OS against the same binary run natively by the host.

    python bench/bench_linux.py [--rounds N] [--mib M]

Boots the OS (real-time clock) with busybox on the disk and, from the host, times the wall
seconds from typing a command to the next prompt; a run of `busybox true` (load and start
the binary once) is subtracted. The host runs the same i386 binary with the same script in the
same run. Figures:
- fork + exec rounds per second: `busybox sh -c` loop of N `./busybox true` (each a fork, an
  execve of the 2 MB static binary and a wait4);
- gzip throughput: `busybox gzip -c` of M MiB of text to /dev/null (compute-bound);
- tcc: Debian's i386 tcc (installed by pkg from tests/pkg/debs/toolchain) compiling a 500-line
  C file to an object, against the same tcc binary run by the host with its own ld.so;
and each as a ratio inside/host (issue 20's target: >= 0.25 for compute-bound work).
The ceiling for the gzip figure: the same busybox gzip on a bare Unicorn engine (bare_i386.py:
no machine, no kernel), plain and with no-execute data pages (what Unicorn 2.1.4 needs to keep
guest stores on its fast path, docs/UNICORN.md), and counted with `--clock counted`.
Each command's output is checked (the loop's count, gzip's byte count), so a run that crashed
is an error, not a figure. `--clock counted` (the default) runs the machine on its counted
clock: on the real-time clock a page fault whose CR2 Unicorn overwrites between the delivery
and the trap stub's read kills fork-heavy loops (see the linux helper's report, issue 20).
Needs tests/pkg/debs and tests/pkg/debs/toolchain (setup.sh) and dpkg-deb.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bare_i386 import run as bare_run  # noqa: E402  (bench/, the script's own folder)

from tests.pkg.conftest import DEBS, busybox_deb  # noqa: E402
from tests.system.harness import SECOND, BootedPc, close_pc  # noqa: E402
from tradekernel.disktool import create_os_disk, install_packages, open_volume  # noqa: E402

TOOLCHAIN = DEBS / "toolchain"
C_FUNCTIONS = 100  # five lines each: the 500-line C file tcc compiles
CPU_SECONDS: dict[str, float] = {}  # the emulator's CPU time per command: steadier than wall


def text_blob(size: int) -> bytes:
    """Words from a small vocabulary, seeded: compressible like real text."""
    rng = random.Random(20)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(500)]  # fmt: skip
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[:size])


def c_source() -> str:
    """C_FUNCTIONS small functions with loops and arithmetic, and a main calling them."""
    body = [
        f"int f{n}(int x) {{\n    int s = {n};\n"
        f"    for (int i = 0; i < x; i++) s += i * {n % 7 + 1};\n    return s ^ x;\n}}\n"
        for n in range(C_FUNCTIONS)
    ]
    calls = " + ".join(f"f{n}(3)" for n in range(C_FUNCTIONS))
    return "".join(body) + f"int main(void) {{ return ({calls}) & 0x7f; }}\n"


def inside(tk: BootedPc, line: str, expect: str = "") -> float:
    """Wall seconds for `line`; its output must be `expect` (one line) or nothing."""
    start, cpu = time.perf_counter(), time.process_time()
    printed = tk.output(line, 3600 * SECOND)
    took = time.perf_counter() - start
    CPU_SECONDS[line] = time.process_time() - cpu
    if printed != ([expect] if expect else []):
        sys.exit(f"bench_linux: {line!r} printed {printed!r}, expected {expect!r}")
    return took


def native(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the child's, user + system) and the output of `command` run
    natively by the host."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env={}, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, run.stdout.strip()


def host(busybox: Path, script: str, cwd: Path) -> tuple[float, float, str]:
    """The same script run natively by the host's Linux (see `native`)."""
    return native([str(busybox), "sh", "-c", script], cwd)


def figure(what: str, amount: float, inside_s: tuple[float, float],
           host_s: tuple[float, float]) -> str:  # fmt: skip
    """One line: `amount` per second inside and on the host, and the ratio, by wall-clock time
    and by CPU time (steadier on a shared host)."""
    (wall, cpu), (host_wall, host_cpu) = inside_s, host_s
    return (f"{what}: inside {amount / wall:9.2f}   host {amount / host_wall:9.2f}   ratio "
            f"{host_wall / wall:.3f}   | by CPU time: inside {amount / cpu:9.2f}   host "
            f"{amount / host_cpu:9.2f}   ratio {host_cpu / cpu:.3f}")  # fmt: skip


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
        (where / "big.c").write_text(c_source())
        with open_volume(disk) as fs:
            fs.write_file("/bin/busybox", busybox.read_bytes())
            fs.write_file("/data.txt", (where / "data.txt").read_bytes())
            fs.write_file("/big.c", (where / "big.c").read_bytes())
        install_packages(disk, TOOLCHAIN, ["tcc"], lambda line: None)
        tools = where / "tools"
        for deb in TOOLCHAIN.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tools)], check=True)
        loop = f"i=0; while [ $i -lt {args.rounds} ]; do ./busybox true; i=$((i+1)); done"
        loop += "; echo $i"  # the count it reached: a crashed round shows
        gzip = "gzip -c data.txt | wc -c"  # applets of the shell's own binary
        host_loop = host(busybox, loop, busybox.parent)[:2]
        *host_gzip, packed = host(busybox, gzip, where)
        libraries = f"{tools}/lib/i386-linux-gnu:{tools}/usr/lib/i386-linux-gnu"
        tcc = [f"{tools}/usr/bin/tcc", "-c", "big.c", "-o", "big.o"]
        host_tcc = native([f"{tools}/lib/ld-linux.so.2", "--library-path", libraries, *tcc],
                          where)[:2]  # fmt: skip
        data, elf = (where / "data.txt").read_bytes(), busybox.read_bytes()
        bare = {}
        for name, nx, counted in (("plain", False, False), ("NX data pages", True, False),
                                  ("counted", False, True)):  # fmt: skip
            if counted and args.clock != "counted":
                continue
            done = bare_run(elf, ["busybox", "gzip", "-c"], data, nx=nx, counted=counted)
            if str(len(done.output)) != packed:
                sys.exit(f"bench_linux: bare gzip gave {len(done.output)} bytes, not {packed}")
            bare[name] = done.cpu_seconds
        tk = BootedPc(where, disk=disk, deterministic=args.clock == "counted").boot()
        try:
            tk.output("cd /bin")
            bases = [(inside(tk, "busybox true"), CPU_SECONDS["busybox true"]) for _ in range(3)]
            base, base_cpu = min(wall for wall, _ in bases), min(cpu for _, cpu in bases)
            os_loop = inside(tk, f"busybox sh -c '{loop}'", str(args.rounds)) - base
            loop_cpu = CPU_SECONDS[f"busybox sh -c '{loop}'"] - base_cpu
            tk.output("cd /")
            os_gzip = inside(tk, f"busybox sh -c '{gzip}'", packed) - base
            gzip_cpu = CPU_SECONDS[f"busybox sh -c '{gzip}'"] - base_cpu
            os_tcc = inside(tk, "/usr/bin/tcc -c big.c -o big.o")
            tcc_cpu = CPU_SECONDS["/usr/bin/tcc -c big.c -o big.o"]
        finally:
            close_pc(tk)
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs (a shared host: figures are noisy)")
    print(figure("fork+exec rounds/s", args.rounds, (os_loop, loop_cpu), host_loop))
    print(figure(f"gzip of {args.mib} MiB, MiB/s", args.mib, (os_gzip, gzip_cpu), host_gzip))
    for name, seconds in bare.items():
        print(f"  the same gzip on a bare Unicorn engine, {name}: {args.mib / seconds:9.2f} "
              f"MiB per CPU second   ratio to the host by CPU time "
              f"{host_gzip[1] / seconds:.3f}")  # fmt: skip
    lines = c_source().count("\n")
    print(figure(f"tcc -c of {lines} lines, compiles/s", 1, (os_tcc, tcc_cpu), host_tcc))


if __name__ == "__main__":
    main()
