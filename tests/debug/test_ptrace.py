"""ptrace (system call 26, kernel/proc/ptrace.py) from a ring-3 tracer, checked against Linux.

tests/debug/ptracetest.c is one static i386 binary: it forks, its child asks for PTRACE_TRACEME
and execs the program again, and the tracer walks through the exec stop, GETREGS, PEEKTEXT and
PEEKDATA (the new image's stack and code), three SINGLESTEPs, POKEDATA, an `int3` written with
POKETEXT, SETREGS back onto the breakpoint, a signal-delivery stop it suppresses, and the exit;
then it ATTACHes to a spinning child that never asked (a SIGSTOP stop), PEEKs it, DETACHes
(a PEEK then fails with ESRCH) and kills it.
The same binary runs on the host's Linux kernel first: what the guest prints must equal what
Linux printed, line for line (both print only values that do not depend on the kernel: no
PIDs, no stack addresses).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.debug.userprog import build
from tests.system.harness import BootedPc, close_pc
from tests.system.test_files import mcopy_in

KERNEL_REPORT = re.compile(r"ptracet\[\d+\]: ")


def host_transcript(binary: Path) -> list[str]:
    result = subprocess.run([str(binary), str(binary)], capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    if "not traced" not in result.stdout:
        pytest.skip(f"the host cannot run i386 programs: {result.stderr.strip()}")
    if "getregs: 0" not in result.stdout:
        pytest.skip(f"the host refuses ptrace here:\n{result.stdout}")
    return result.stdout.splitlines()


def test_a_ring3_tracer_sees_what_it_sees_on_linux(tmp_path: Path) -> None:
    binary = build("ptracetest", tmp_path)
    expected = host_transcript(binary)
    assert "breakpoint: eip = marker + 1" in expected and "end: exited with 7" in expected
    tk = BootedPc(tmp_path)
    try:
        mcopy_in(tk.disk, binary.read_bytes(), "/bin/ptracet", tmp_path)
        tk.boot()
        printed = tk.output("ptracet /bin/ptracet", 20 * 1_000_000_000)
    finally:
        close_pc(tk)
    # the kernel's own line for a death by a signal ("ptracet[3]: killed") is not the program's
    printed = [line for line in printed if not KERNEL_REPORT.match(line)]
    assert printed == expected, "\n".join(printed)
