"""Power loss: `tk boot --headless` is killed with SIGKILL in the middle of a burst of orders;
the disk it leaves passes fsck.fat, or needs only the one repair FAT's write order allows for a
cut append (a log's chain one step longer than its size: kernel/fs/fat.py); mtools reads the
audit log back up to its last complete record (every order acknowledged before the kill is in
it, numbered without a gap), and the next boot mounts the disk writable (its mount repairs a cut
append as fsck.fat -a would: fsck.fat then finds it clean, with no fsck run in between),
recovers the file and numbers on from the last good record."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

from tests.cli.conftest import TK, tk_env
from tests.peers import peer
from tests.system.harness import BootedPc
from tests.system.test_files import PARTITION_OFFSET, fsck, mtype
from tradekernel.disktool import create_os_disk
from tradekernel.kernel.trading.audit import read_records

PAIRS = 40  # buy and sell pairs typed; the kill comes after KILL_AFTER orders were answered
KILL_AFTER = 30
DEADLINE_S = 120.0


# What fsck.fat says of a log cut while it grew into a new cluster: the FAT marked the cluster,
# the directory entry's size was not yet written (fs/fat.py's module docstring).
CUT_APPEND = (
    re.compile(r"/var/log/(audit|kern)\.log"),
    re.compile(r"  File size is \d+ bytes, cluster chain length is > \d+ bytes\."),
    re.compile(r"  Truncating file to \d+ bytes\."),
)


def only_cut_appends(disk: Path, tmp_path: Path) -> None:
    """The volume is consistent, or fsck.fat's only findings are a cut append to a log (what
    the next boot's mount repairs by itself, as fsck.fat -a would)."""
    partition = tmp_path / "cut.img"
    with open(disk, "rb") as image:
        image.seek(PARTITION_OFFSET)
        partition.write_bytes(image.read())
    check = subprocess.run([peer("fsck.fat"), "-n", "-v", str(partition)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if check.returncode == 0:
        return
    lines = check.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("sectors total")) + 1
    findings = [line for line in lines[start:] if line and not line.startswith(
        ("Checking for unused clusters", "Leaving filesystem unchanged", str(partition)))]
    assert findings and all(any(p.fullmatch(line) for p in CUT_APPEND) for line in findings), (
        check.stdout)


def read_until(process: subprocess.Popen, marker: bytes) -> bytes:
    """stdout until `marker` appears (bounded in wall time)."""
    seen = b""
    end = time.monotonic() + DEADLINE_S
    fd = process.stdout.fileno()
    while marker not in seen:
        assert time.monotonic() < end, f"no {marker!r} in:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"tk ended early:\n{seen.decode(errors='replace')}"
            seen += chunk
    return seen


def test_sigkill_mid_session_leaves_the_audit_log_readable(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    script = "log -n 0\n" + "".join(  # `log` writes the boot's line to kern.log
        f"buy AAPL {n} @100 -o alice\nsell AAPL {n} @100 -o bob\n" for n in range(1, PAIRS + 1)
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process = subprocess.Popen(
        [str(TK), "boot", "--headless", "--disk", str(disk), "--net", "none", "--timeout", "300"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=tk_env(scratch),
    )
    try:
        process.stdin.write(script.encode())
        process.stdin.flush()  # stdin stays open: its end would shut the machine down cleanly
        read_until(process, f"#{KILL_AFTER + 1} ".encode())  # order 31 is being answered
        process.send_signal(signal.SIGKILL)  # no flush, no shutdown: the power cord
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    only_cut_appends(disk, tmp_path)  # consistent, or a log's cut append (left as it is)
    found = read_records(mtype(disk, "/var/log/audit.log"))
    records = found.records
    assert found.problem is None or found.problem.startswith("torn record")
    assert [r["rec"] for r in records] == list(range(1, len(records) + 1))
    accepted = [r["order_id"] for r in records if r["event"] == "accepted"]
    assert accepted[:KILL_AFTER] == list(range(1, KILL_AFTER + 1))  # answered before the kill
    fills = [r for r in records if r["event"] == "filled"]
    assert all(r["fill_price"] == 10_000 for r in fills) and len(fills) >= KILL_AFTER - 1
    assert b"info    log: boot: TradeKernel" in mtype(disk, "/var/log/kern.log")

    tk = BootedPc(tmp_path, disk=disk, deterministic=False).boot()  # the next boot
    assert "read-only" not in tk.text()  # a cut append is repaired by the mount itself
    fsck(disk, tmp_path)  # clean with no fsck.fat run in between
    shown = tk.output("audit -n 0")
    assert shown[-1] == f"audit: 0 records written this boot, next #{len(records) + 1}"
    tk.command("buy AAPL 1 @99 -o carol")
    first, second = tk.output("audit -n 2")[:2]
    assert first.startswith(f"#{len(records) + 1} ") and " submitted order " in first
    assert second.startswith(f"#{len(records) + 2} ") and " accepted order " in second
    assert len(tk.output("log --subsystem log")) == 2  # both boots, in the file
