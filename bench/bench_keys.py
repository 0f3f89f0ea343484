"""Key press to character visible in VGA memory, through the whole path: host key event ->
8042 -> IRQ1 -> kernel keyboard driver -> tty echo -> VGA text buffer.

    python bench/bench_keys.py [--samples N] [--lines N]

For each sample a key is pressed at the shell prompt (from the host side, as the window or the
terminal does) and the machine runs until the character is in VGA memory at the cursor; then
Backspace removes it. Prints median and p99 of the wall time and of the virtual time, in the
real-time and the deterministic clock. Target (issue 3): median < 2 ms wall.

Then piped input (issue 17 item 2): `tk boot --headless` reading N `echo` lines from a pipe,
each typed once the guest has taken the one before it (ui/pipe.py); prints the wall time from
start to power-off at the end of input and the lines per second, checking every line arrived.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tradekernel import memmap
from tradekernel.disktool import create_os_disk
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.session import make_pc

PROMPT = "tk:/> "


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(deterministic: bool, samples: int, disk: Path) -> tuple[list[float], list[int]]:
    pc = make_pc(PcConfig(disk=disk, deterministic=deterministic, read_only=True))
    machine, vga = pc.machine, pc.vga
    ram = machine.cpu.ram

    def screen_has_prompt() -> bool:
        return PROMPT.rstrip().encode() in bytes(ram[memmap.VGA_TEXT_BASE : 0xB8000 + 4000 : 2])

    machine.run(wall_timeout_s=30, until=lambda: pc.kernel is not None and screen_has_prompt())
    machine.run(wall_timeout_s=1, until=lambda: machine.halted)
    walls: list[float] = []
    virtuals: list[int] = []
    for index in range(samples):
        letter = "abcdefghijklmnopqrstuvwxyz"[index % 26]
        code = ord(letter)
        row, col = divmod(vga.cursor_location, memmap.VGA_TEXT_COLUMNS)
        cell = memmap.VGA_TEXT_BASE + 2 * (row * memmap.VGA_TEXT_COLUMNS + col)
        start_virtual = machine.clock.now_ns()
        start_wall = time.perf_counter()
        machine.post(lambda key=letter: machine.channels.send("keyboard-key", (key, True)))
        machine.run(wall_timeout_s=5, until=lambda cell=cell, code=code: ram[cell] == code)
        walls.append(time.perf_counter() - start_wall)
        virtuals.append(machine.clock.now_ns() - start_virtual)
        for event in ((letter, False), ("backspace", True), ("backspace", False)):
            machine.post(lambda event=event: machine.channels.send("keyboard-key", event))
        machine.run(wall_timeout_s=5, until=lambda cell=cell: ram[cell] == 0x20)
    machine.close()
    return walls, virtuals


def piped(lines: int, deterministic: bool, scratch: Path) -> tuple[float, bool]:
    """(wall seconds from start to power-off, every line printed) for `lines` piped echos."""
    script = "".join(f"echo piped {number}\n" for number in range(lines)).encode()
    command = [str(Path(sys.executable).with_name("tk")), "boot", "--headless", "--timeout", "300"]
    start = time.perf_counter()
    result = subprocess.run(
        command + (["--deterministic"] if deterministic else []),
        input=script, capture_output=True, env={**os.environ, "TMPDIR": str(scratch)},
        check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    printed = [line for line in result.stdout.decode().splitlines() if line.startswith("piped")]
    return wall, result.returncode == 0 and printed == [f"piped {n}" for n in range(lines)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for deterministic in (False, True):
            wall, whole = piped(args.lines, deterministic, Path(scratch))
            clock = "deterministic" if deterministic else "real-time"
            print(
                f"piped input, {clock:13}  {args.lines} lines in {wall:6.2f} s wall "
                f"(boot and power-off included): {args.lines / wall:6.1f} lines/s, "
                f"{'all arrived' if whole else 'LINES LOST'}"
            )
    with tempfile.TemporaryDirectory() as scratch:
        disk = Path(scratch) / "disk.img"
        create_os_disk(disk)
        for deterministic in (False, True):
            walls, virtuals = measure(deterministic, args.samples, disk)
            clock = "deterministic" if deterministic else "real-time"
            wall_median = statistics.median(walls) * 1e3
            print(
                f"key -> VGA, {clock:13}  wall median {wall_median:6.3f} ms  "
                f"p99 {percentile(walls, 0.99) * 1e3:6.3f} ms  |  virtual median "
                f"{statistics.median(virtuals) / 1e3:9.1f} us  p99 "
                f"{percentile(virtuals, 0.99) / 1e3:9.1f} us  ({len(walls)} keys)"
                + ("" if deterministic else f"  target median < 2 ms: "
                   f"{'met' if wall_median < 2 else 'MISSED'}")
            )  # fmt: skip


if __name__ == "__main__":
    main()
