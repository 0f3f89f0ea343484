"""Frame time of the pygame text renderer (headless): a screen that changes every frame and a
mostly static one (one row changes, the cursor blinks). Target: under 16 ms per frame.

Run: SDL_VIDEODRIVER=dummy .venv/bin/python bench/bench_render.py
"""

from __future__ import annotations

import os
import random
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from tradekernel.devices.base import Board  # noqa: E402
from tradekernel.devices.vga import VGA  # noqa: E402
from tradekernel.emu.bus import Channels, MmioBus, PortBus  # noqa: E402
from tradekernel.emu.clock import Clock  # noqa: E402
from tradekernel.ui.render import Renderer  # noqa: E402

FRAMES = 300
SCREEN_BYTES = 4000


class Ram:
    def __init__(self) -> None:
        self.data = bytearray(1 << 20)

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address : address + len(data)] = data


def measure(name: str, mutate) -> None:
    memory = Ram()
    board = Board(PortBus(), MmioBus(), Clock(), Channels(), memory)
    vga = VGA()
    vga.attach(board)
    renderer = Renderer()
    rng = random.Random(1)
    times = []
    for frame in range(FRAMES):
        mutate(memory, rng, frame)
        start = time.perf_counter()
        renderer.render(vga.text_screen(), frame / 60)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"{name:<28} median {statistics.median(times):6.2f} ms   p99 {p99:6.2f} ms")


def full_change(memory: Ram, rng: random.Random, frame: int) -> None:
    # random characters and colours (no blink bit), a different screen every frame
    cells = bytes(rng.randrange(256) if i % 2 == 0 else rng.randrange(128) for i in range(4000))
    memory.write(0xB8000, cells)


def mostly_static(memory: Ram, rng: random.Random, frame: int) -> None:
    if frame == 0:
        memory.write(0xB8000, bytes(b for _ in range(2000) for b in (ord("x"), 0x07)))
    line = f"tick {frame:06d}".encode().ljust(80)
    memory.write(0xB8000 + 24 * 160, bytes(b for c in line for b in (c, 0x1F)))


if __name__ == "__main__":
    measure("full screen changes", full_change)
    measure("one row changes", mostly_static)
