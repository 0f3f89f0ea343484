"""Host signals to a real `tk boot`: each powers the machine off cleanly, removes the scratch
disk and gives exit 128 + N; scratch disks of processes that are gone are removed at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tradekernel.ui.session import remove_stale_scratch_disks, scratch_disk
from tradekernel.ui.supervisor import EXIT_SIGNAL_BASE

from .conftest import PROMPT, run_tk


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_powers_off_and_removes_the_scratch_disk(booted, scratch_dir: Path, number) -> None:  # noqa: ANN001, E501
    process = booted()
    process.wait_for(PROMPT)
    assert len(list(scratch_dir.glob("tradekernel-*.img"))) == 1
    process.signal(number)
    code, _out, err = process.finish()
    assert code == EXIT_SIGNAL_BASE + number, err
    assert b"Traceback" not in err and b"Aborted" not in err
    assert list(scratch_dir.iterdir()) == []


def test_a_signal_during_start_up_still_removes_the_scratch_disk(scratch_dir: Path) -> None:
    """SIGTERM as soon as the disk exists, before the machine runs (the fast path of
    `timeout` on a loaded machine)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SIGNAL_AT_DISK],
        env={**os.environ, "TMPDIR": str(scratch_dir)},
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_SIGNAL_BASE + signal.SIGTERM, err
    assert list(scratch_dir.iterdir()) == []


# `tk boot` that sends itself SIGTERM the moment its scratch disk has been made.
_SIGNAL_AT_DISK = """
import os, signal
from tradekernel import cli
from tradekernel.ui import session
made = session.scratch_disk
def scratch_disk(*args):
    path = made(*args)
    os.kill(os.getpid(), signal.SIGTERM)
    return path
session.scratch_disk = scratch_disk
cli.main(["boot", "--headless"])
"""


def test_stale_scratch_disks_are_removed_at_start(scratch_dir: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = scratch_dir / f"tradekernel-{gone.stdout.strip()}-abcd1234.img"
    stale.write_bytes(b"\0" * 512)
    ours = scratch_disk(scratch_dir)  # this process is alive: its disk stays
    unrelated = scratch_dir / "tradekernel-notes.img"  # not a scratch name: never touched
    unrelated.write_bytes(b"x")
    assert remove_stale_scratch_disks(scratch_dir) == [stale]
    assert sorted(scratch_dir.iterdir()) == sorted([ours, unrelated])


def test_tk_boot_removes_stale_scratch_disks(scratch_dir: Path) -> None:
    stale = scratch_dir / "tradekernel-999999999-abcd1234.img"  # above any pid_max
    stale.write_bytes(b"\0" * 512)
    result = run_tk(["boot", "--headless"], scratch_dir, stdin=b"shutdown\n")
    assert result.returncode == 0, result.stderr
    assert list(scratch_dir.iterdir()) == []


def test_sigterm_to_the_window_front_end(scratch_dir: Path) -> None:
    """The window's loop ends on the supervisor's stop: power off, exit 143, no scratch disk
    (SDL leaves a handler that is already installed alone)."""
    from .conftest import TK, tk_env

    process = subprocess.Popen(
        [str(TK), "boot", "--timeout", "60"], env=tk_env(scratch_dir), stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while not list(scratch_dir.glob("tradekernel-*.img")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)  # the window is up and the machine running
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_SIGNAL_BASE + signal.SIGTERM, err
    assert list(scratch_dir.iterdir()) == []
