"""Key press to character visible in VGA memory, through the whole path: host key event ->
8042 -> IRQ1 -> kernel keyboard driver -> tty echo -> VGA text buffer.

    python bench/bench_keys.py [--samples N]

For each sample a key is pressed at the shell prompt (from the host side, as the window or the
terminal does) and the machine runs until the character is in VGA memory at the cursor; then
Backspace removes it. Prints median and p99 of the wall time and of the virtual time, in the
real-time and the deterministic clock. Target (issue 3): median < 2 ms wall.
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
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
