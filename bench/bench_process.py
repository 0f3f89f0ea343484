"""Processes: system calls and context switches from ring-3 programs on the booted OS.

    python bench/bench_process.py [--calls N]

Runs images/programs/sysbench in the real-time clock and times, from the host, the interval
between the Enter that starts it and its result line; the same run with one call is
subtracted (loading and starting the program). Figures:
- getpid round trips per second (the paravirtual fast path: the call runs in Unicorn's trap);
- sched_yield round trips per second with one process (in the `int 0x80` trap: the
  scheduler keeps it running, no switch);
- context switches per second: a process and its fork yielding to each other (the kernel's
  count; two processes typed one after the other, as this bench once did, also timed the
  first one's lone yields before the second started, and read about a third of the rate);
- pipe throughput: `pipetest BYTES` (a forked child writes, the parent reads and sums);
- shared-memory throughput: `shmring WORDS` (4-byte words through a 1024-word ring in a
  System V segment, producer and forked consumer yielding when full or empty);
- fork + execve + exit + wait4 rounds per second: `exectest ROUNDS`.
Targets (issue 6): >= 300k system calls/s, >= 20k context switches/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import deque
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.keymap import text_to_key_events
from tradekernel.ui.session import make_pc

PROMPT = b"tk:/> "


def timed_run(disk: Path, lines: list[str], results: int, marker: bytes = b"calls (") -> float:
    """Boot, type `lines`, and return the seconds from the last Enter to the `results`-th
    `marker` on the serial console."""
    pc = make_pc(PcConfig(disk=disk, read_only=True))
    machine = pc.machine
    serial = bytearray()
    machine.channels.listen("com1-tx", serial.extend)
    keys = deque()
    for line in lines:
        keys.extend(text_to_key_events(line + "\n"))
    lines_keys = list(keys)
    last_enter = len(keys) - 1 - list(reversed(keys)).index(("enter", True))
    started: list[float] = []

    def feed() -> bool:
        if not keys or PROMPT not in serial:
            return False
        if len(keys) == len(lines_keys) - last_enter:
            started.append(time.perf_counter())
        machine.channels.send("keyboard-key", keys.popleft())
        return True

    machine.feed_when_idle(feed)
    machine.run(wall_timeout_s=300, until=lambda: serial.count(marker) >= results)
    elapsed = time.perf_counter() - started[0]
    machine.close()
    if serial.count(marker) < results:
        raise SystemExit(f"{lines[-1]} did not finish: {serial.decode(errors='replace')[-300:]}")
    return elapsed


def rate(disk: Path, lines: list[str], results: int, baseline: list[str], calls: int,
         marker: bytes = b"calls (") -> float:  # fmt: skip
    run = min(timed_run(disk, lines, results, marker) for _ in range(3))
    base = min(timed_run(disk, baseline, results, marker) for _ in range(3))
    return calls / max(1e-9, run - base)


def switch_rate(disk: Path, yields: int) -> float:
    """`sysbench pingpong N`: a process and its fork each yield N times, so every yield
    switches. Context switches per second from the kernel's own count of context changes
    over the wall time from the Enter to the result line."""
    pc = make_pc(PcConfig(disk=disk, read_only=True))
    machine = pc.machine
    serial = bytearray()
    machine.channels.listen("com1-tx", serial.extend)
    machine.run(wall_timeout_s=30, until=lambda: PROMPT in serial)
    processes = pc.kernel.processes
    keys = deque(text_to_key_events(f"sysbench pingpong {yields}\n"))
    mark: list[tuple[int, float]] = []

    def feed() -> bool:
        if not keys:
            return False
        if keys[0] == ("enter", True):
            mark.append((processes.context_switches, time.perf_counter()))
        machine.channels.send("keyboard-key", keys.popleft())
        return True

    machine.feed_when_idle(feed)
    machine.run(wall_timeout_s=300, until=lambda: b"calls (" in serial)
    elapsed = time.perf_counter() - mark[0][1]
    switches = processes.context_switches - mark[0][0]
    machine.close()
    return switches / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    n = args.calls
    print(f"host load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as scratch:
        disk = Path(scratch) / "disk.img"
        create_os_disk(disk)
        getpid = rate(disk, [f"sysbench getpid {n}"], 1, ["sysbench getpid 1"], n)
        print(f"getpid round trips from ring 3 {getpid:>12,.0f} /s  target >= 300,000: "
              f"{'met' if getpid >= 300_000 else 'MISSED'}")  # fmt: skip
        yields = n // 10
        one = rate(disk, [f"sysbench yield {yields}"], 1, ["sysbench yield 1"], yields)
        print(f"sched_yield round trips (one task) {one:>10,.0f} /s")
        switches = switch_rate(disk, yields)
        print(f"context switches (pingpong)      {switches:>11,.0f} /s  target >= 20,000: "
              f"{'met' if switches >= 20_000 else 'MISSED'}")  # fmt: skip
        size = 16 << 20
        pipe = rate(disk, [f"pipetest {size}"], 1, ["pipetest 1"], size, b"checksum")
        print(f"pipe throughput (pipetest)        {pipe / 1e6:>11,.1f} MB/s")
        words = n * 2
        ring = rate(disk, [f"shmring {words}"], 1, ["shmring 1"], words, b"consumer exit")
        print(f"shared-memory ring (shmring)      {ring * 4 / 1e6:>11,.1f} MB/s  "
              f"({ring:,.0f} words/s; {ring * 4 / pipe:.1f}x the pipe)")  # fmt: skip
        rounds = max(10, n // 1000)
        spawns = rate(disk, [f"exectest {rounds}"], 1, ["exectest 1"], rounds - 1, b"spawns done")
        print(f"fork+execve+exit+wait4            {spawns:>11,.0f} /s")


if __name__ == "__main__":
    main()
