"""A long input line typed at the shell prompt: the line editor's cost per key as the line grows
(issue 15 item 10: a 10,000-character line took 38 s, the cost growing with its square).

    python bench/bench_typing.py [--length N] [--machine]

Without --machine: the kernel's tty and console drivers alone, on bare RAM (no CPU): keys
appended at the end of the line, and keys inserted at its start, timed per block of 1,000.
With --machine: the whole path on a booted deterministic PC (host key -> 8042 -> IRQ1 ->
keyboard driver -> tty -> VGA), each key fed when the 8042 has taken the previous one (the
front end's back-pressure rule); prints the wall time to type the line and check it arrived.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tradekernel.emu.bus import PortBus
from tradekernel.emu.memory import GuestMemory
from tradekernel.kernel.drivers.console import Console
from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.drivers.tty import Tty

BLOCK = 1000


def bench_tty(length: int) -> None:
    for where in ("end", "start"):
        console = Console(GuestMemory(memoryview(bytearray(1 << 20))), PortBus())
        console.clear()
        tty = Tty(console)
        tty.read_line("tk:/> ")
        if where == "start":
            home = Key(name="home")
        times = []
        start = time.perf_counter()
        for index in range(length):
            if where == "start":
                tty.on_key(home)
            tty.on_key(Key(char="x"))
            if (index + 1) % BLOCK == 0:
                now = time.perf_counter()
                times.append((now - start) / BLOCK)
                start = now
        per_key = " ".join(f"{t * 1e6:.0f}" for t in times)
        print(f"tty alone, keys at the {where:5} of the line: us per key by block of {BLOCK}: "
              f"{per_key}")  # fmt: skip


def bench_machine(length: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.system.harness import PROMPT, BootedPc  # the scripted PC of the system tests
    from tradekernel.ui.keymap import text_to_key_events

    with tempfile.TemporaryDirectory() as tmp:
        tk = BootedPc(Path(tmp)).boot()
        i8042 = tk.pc.keyboard
        events = [text_to_key_events(char) for char in "echo " + "x" * length + "\n"]
        fed = 0

        def feed() -> bool:
            nonlocal fed
            if fed == len(events) or i8042.keyboard.fifo or i8042.output is not None:
                return False
            for event in events[fed]:
                i8042.press(*event)
            fed += 1
            return True

        tk.machine.feed_when_idle(feed)
        before = tk.prompts_seen()
        start = time.perf_counter()
        tk.run_until(lambda: tk.prompts_seen() > before, 3600 * 1_000_000_000)
        elapsed = time.perf_counter() - start
        echoed = bytes(tk.serial).decode("cp437").count("x" * length)
        assert echoed >= 2, "the line did not arrive whole"  # the typed line and echo's output
        print(f"machine: a {length}-character line typed and run in {elapsed:.2f} s wall "
              f"({elapsed / length * 1e6:.0f} us per key); {PROMPT!r} back")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=10_000)
    parser.add_argument("--machine", action="store_true")
    args = parser.parse_args()
    if args.machine:
        bench_machine(args.length)
    else:
        bench_tty(args.length)


if __name__ == "__main__":
    main()
