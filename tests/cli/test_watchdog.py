"""The watchdog: whatever a kernel service does, `tk boot` ends on SIGTERM, Ctrl-C or
--timeout, restores what it changed, removes its scratch disk and says where it was stuck.
The kernel stand-in (hung_kernel_tk.py) loops for ever in a hypercall once the prompt is up."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tradekernel.ui.supervisor import EXIT_HUNG

from .conftest import PROMPT

DRIVER = "hung_kernel_tk.py"
ENDS_WITHIN_S = 15.0  # grace is 1 s in the driver; the rest is start-up on a busy machine


def _hang(booted) -> object:  # noqa: ANN001
    process = booted(driver=DRIVER)
    process.wait_for(PROMPT)
    process.type(b"echo never\n")  # the key's IRQ reaches the stuck service
    return process


def test_sigterm_ends_a_machine_stuck_in_a_kernel_service(booted, scratch_dir: Path) -> None:  # noqa: ANN001
    process = _hang(booted)
    time.sleep(1.5)  # stuck by now, and the hung warning has had its second
    process.signal(signal.SIGTERM)
    code, _out, err = process.finish(timeout=ENDS_WITHIN_S)
    assert code == EXIT_HUNG, err
    lines = err.decode().strip().splitlines()
    assert any("has not responded" in line and "stuck_kernel_service" in line for line in lines)
    assert "never returned" in lines[-1] and "stuck_kernel_service" in lines[-1]
    assert "signal SIGTERM" in lines[-1]
    assert "Traceback" not in err.decode()
    assert list(scratch_dir.iterdir()) == []  # the scratch disk went with it


def test_timeout_is_honoured_while_a_kernel_service_never_returns(booted, scratch_dir: Path) -> None:  # noqa: ANN001, E501
    process = booted("--timeout", "4", driver=DRIVER)
    process.wait_for(PROMPT)
    process.type(b"echo never\n")
    started = time.monotonic()
    code, _out, err = process.finish(timeout=ENDS_WITHIN_S)
    assert code == EXIT_HUNG, err
    assert "after timeout" in err.decode()
    assert time.monotonic() - started < 4 + ENDS_WITHIN_S
    assert list(scratch_dir.iterdir()) == []
