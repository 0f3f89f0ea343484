"""`snapshot save NAME`: the whole machine saved as NAME.tksnap, in `tk boot --save-state`'s
format, to the directory the host gave with `tk boot --snapshot-dir`.

The kernel asks as a driver would, through the host's snapshot port (emu/snapshot.py
SnapshotRequests): the name's bytes to NAME_PORT, SAVE to SNAPSHOT_PORT, then it reads the
status there every POLL_NS of virtual time until the host has saved between two slices. The
file goes to the host, not to this machine's disk: the snapshot names the disk image by its
SHA-256, which writing the snapshot onto that disk would change. An unclaimed port reads 0xFF:
no --snapshot-dir. The prompt waits for the answer; in a machine loaded from the snapshot the
same wait ends with the status reading IDLE, and the command says the machine was restored
from it.

Imports: shell (Output, UsageError) only; the ports are the kernel's.
"""

from __future__ import annotations

import re

from tradekernel.kernel.shell.shell import Output, Shell, UsageError

SNAPSHOT_PORT, NAME_PORT = 0x5C00, 0x5C01  # as emu/snapshot.py's host end
IDLE, BUSY, SAVED, FAILED, ABSENT = 0, 1, 2, 3, 0xFF
CLEAR, SAVE = 0, 1
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")  # what the host accepts
POLL_NS = 1_000_000


class SnapshotCommand:
    def __init__(self, kernel) -> None:  # noqa: ANN001 - tradekernel.kernel.main.Kernel
        self.kernel = kernel
        self.ports = kernel.ports

    def register(self, shell: Shell) -> None:
        shell.register("snapshot", self._snapshot, "snapshot save NAME",
                       "save the machine to NAME.tksnap in the host's --snapshot-dir")  # fmt: skip

    def _snapshot(self, args: list[str], out: Output) -> int:
        if len(args) != 2 or args[0] != "save":
            raise UsageError("snapshot save NAME")
        name = args[1]
        if not NAME.fullmatch(name):
            raise UsageError(f"{name!r}: a name is up to 64 letters, digits, '.', '_', '-'")
        status = self.ports.read(SNAPSHOT_PORT, 1)
        if status == ABSENT:
            out.error("snapshot: this machine takes no snapshots (tk boot --snapshot-dir DIR)")
            return 1
        if status == BUSY:
            out.error("snapshot: another snapshot is being saved")
            return 1
        self.ports.write(SNAPSHOT_PORT, 1, CLEAR)
        for byte in name.encode():
            self.ports.write(NAME_PORT, 1, byte)
        self.ports.write(SNAPSHOT_PORT, 1, SAVE)
        self.kernel.shell.suspend_prompt()
        self._poll(name)
        return 0

    def _poll(self, name: str) -> None:
        status = self.ports.read(SNAPSHOT_PORT, 1)
        if status == BUSY:
            self.kernel.call_at(self.kernel.clock.now_ns() + POLL_NS, lambda: self._poll(name))
            return
        out = self.kernel.shell.out
        if status == SAVED:
            out.line(f"snapshot {name}: saved ({name}.tksnap on the host)")
        elif status == FAILED:
            out.error(f"snapshot {name}: the host could not save it (its log says why)")
        else:
            out.line(f"snapshot {name}: this machine was restored from it")
        self.kernel.shell.resume()
