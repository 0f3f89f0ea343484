"""Mutated market-data files replayed by the booted OS: the FIX, ITCH and CSV seeds of
tests/trading/test_feed_fuzz.py (huge numbers, 5000-digit tags, bad headers already in them),
each mutated by the same seeded mutator, written to the disk and replayed with `feed FILE`,
every other case `--pace`d so its messages run in the kernel's timer callbacks.

Asserted: the machine never stops and shows no oops, internal error or traceback (the harness
checks after every case; a feed error escaping a timer callback would be an oops), the shell
answers after every case, the desk still takes an order at the end, memcheck is clean, and
the kernel logged no oops. TK_FUZZ_FEEDS and TK_FUZZ_SEED change the count and the seed."""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

from tests.system.harness import SECOND, BootedPc
from tests.trading.test_feed_fuzz import SEEDS, _mutate
from tradekernel.disktool import create_os_disk, open_volume

CASES = int(os.environ.get("TK_FUZZ_FEEDS", "60"))
SEED = int(os.environ.get("TK_FUZZ_SEED", "15"))


def test_mutated_feed_files_never_stop_the_machine(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    names = sorted(SEEDS)
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    cases = []
    with open_volume(disk) as fs:
        fs.mkdir("/feeds")
        for case in range(CASES):
            name = names[case % len(names)]
            path = f"/feeds/{case}{Path(name).suffix}"
            fs.write_file(path, _mutate(rng, SEEDS[name]))
            cases.append((path, case % 2 == 1))
    tk = BootedPc(tmp_path, disk=disk).boot()
    kernel = tk.pc.kernel
    summaries = 0
    for path, paced in cases:
        where = f"{path} (seed {SEED}{', paced' if paced else ''})"
        printed = tk.output(f"feed {path}" + (" --pace" if paced else ""), virtual_ns=10 * SECOND)
        summaries += any(line.startswith(f"feed {path}: ") for line in printed)
        tk.run_to_stop(SECOND // 2)  # paced messages run in timer callbacks meanwhile
        assert tk.output("echo alive") == ["alive"], where
    assert summaries >= CASES // 2, summaries  # the feeds were read and replayed
    assert any("ACCEPTED" in line or "FILLED" in line for line in tk.output("buy AAPL 1 @100"))
    assert any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))
    assert kernel.klog.oopses == 0
    print(f"feed fuzz: {CASES} files in {time.monotonic() - started:.1f} s")
