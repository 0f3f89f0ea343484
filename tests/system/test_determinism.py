"""Deterministic time, across the whole system: the same keystrokes on the same disk give the
same run bit for bit, with pipes, fork and execve, a background job preempted by the timer,
file writes and a paced feed on the machine clock. Two separate `tk boot --deterministic`
processes, each on a fresh copy of the same disk; their serial consoles, final screens, logs
and disk images must be equal byte for byte."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.system.harness import FAILURE_MARKS
from tradekernel.disktool import create_os_disk, open_volume

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "\n".join([
    "mkdir /data",
    'echo "ts_ns,symbol,bid,bid_qty,ask,ask_qty" > /data/q.csv',
    'echo "0,ESZ6,5000.00,10,5000.25,12" >> /data/q.csv',
    'echo "700000000,ESZ6,5000.25,3,5000.50,4" >> /data/q.csv',
    "feed /data/q.csv --pace",          # a paced replay: the second quote 0.7 s later
    "nap 300 3 &",                      # a background job waking on timers amid what follows
    "yes | head -n 3 | wc > /data/count.txt",   # a pipeline; yes dies of SIGPIPE
    "forktest",
    "exectest",                         # fork + execve of /bin/hello
    "pipetest 65536",
    "fileops",
    "nap 400 2",                        # sleeps on the machine clock: the feed moves on
    "book ESZ6",
    "buy ESZ6 2",
    "wait",
    "jobs",
    "cat /data/count.txt",
    "ls -l /data /tmp/fileops",
    "hexdump -C /data/count.txt",
    "uptime",
    "shutdown",
]) + "\n"  # fmt: skip


def run_once(folder: Path) -> tuple[subprocess.CompletedProcess, bytes]:
    """One `tk boot` process on a fresh OS disk in `folder`: (its result, the disk after)."""
    folder.mkdir()
    disk = folder / "disk.img"
    create_os_disk(disk)
    result = subprocess.run(
        [sys.executable, "-m", "tradekernel.cli", "boot", "--headless", "--deterministic",
         "--dump-screen", "--timeout", "60", "--disk", str(disk)],
        input=SCRIPT, capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=dict(os.environ, SDL_VIDEODRIVER="dummy"),
    )  # fmt: skip
    return result, disk.read_bytes()


def test_a_busy_session_runs_the_same_bit_for_bit(tmp_path: Path) -> None:
    (first, first_disk), (second, second_disk) = (run_once(tmp_path / n) for n in ("a", "b"))
    assert first.returncode == 0, first.stderr  # shutdown powered it off
    rows = first.stdout.removesuffix("\n").split("\n")
    out, screen = "\n".join(rows[:-25]), rows[-25:]  # the serial console, then --dump-screen
    assert screen[-3:] == ["tk:/> shutdown", "powering off.", ""]
    # the scenario did what it says (else two equal failures would prove nothing)
    assert "hello, world" in out and "exectest: child exit 0" in out
    assert "pipetest: 65536 bytes checksum 2013853976 child exit 0" in out
    assert "fileops: console 80x25, 0 failures" in out
    assert "3 3 6" in out.splitlines()  # cat /data/count.txt: wc's figures went to the file
    assert len(re.findall(r"^nap: 30000\d us$", out, re.M)) == 3  # slept 300 ms (+ a tick)
    assert re.search(r"Done +nap 300 3", out)
    assert re.search(r"ask +5,?000\.50 +4 ", out)  # the feed's second quote, paced
    assert not [
        (line, mark) for line in (out + first.stderr).splitlines()
        for mark, pattern in FAILURE_MARKS.items() if pattern.search(line)
    ]  # fmt: skip
    with open_volume(tmp_path / "a" / "disk.img", read_only=True) as fs:
        assert fs.read_file("/data/count.txt") == b"3 3 6\n"
        assert fs.exists("/tmp/fileops/kept.txt")
    # and the second process did exactly the same
    assert second.stdout == first.stdout
    assert second.stderr == first.stderr
    assert second.returncode == first.returncode
    assert second_disk == first_disk
