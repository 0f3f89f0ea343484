"""The booted OS (its kernel registers `pkg` once the disk is mounted, and finishes or rolls
back an install that power loss cut), for the booted scenarios.

Run as a program, `python -m tests.pkg.booted DISK LINE [KILL_AT]`, it boots DISK and types
LINE. Once pkg says it is unpacking, it counts the disk's sector writes; with KILL_AT it sends
itself SIGKILL just before write number KILL_AT (what was still in the emulator's buffers is
lost, as in a power cut), otherwise it prints `DONE <writes>` at the next prompt. A wall-clock
timer cannot aim: the whole install of busybox takes a fraction of a second."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.system.harness import SECOND, BootedPc

INSTALL_NS = 600 * SECOND  # a bound on virtual time, not an expected duration


def boot_with_pkg(tmp_path: Path, disk: Path) -> BootedPc:
    return BootedPc(tmp_path, disk=disk).boot()


def main(disk: str, line: str, kill_at: int | None) -> None:
    tk = boot_with_pkg(Path(disk).parent, Path(disk))
    backing = tk.pc.ide.backing(0)
    write_sectors = backing.write_sectors
    writes = 0

    def counted(lba: int, data: bytes) -> None:
        nonlocal writes
        if b"unpacking" in tk.serial:
            writes += 1
            if writes == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        write_sectors(lba, data)

    backing.write_sectors = counted
    tk.output(line, INSTALL_NS)
    tk.pc.flush()
    print(f"DONE {writes}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
