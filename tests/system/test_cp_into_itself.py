"""Issue 15, cause 10: `cp -r` refuses to copy a directory into itself, the root included (it
once copied / into /tmp/root until the disk filled), as GNU cp does."""

from __future__ import annotations

from pathlib import Path

from tests.system.harness import BootedPc


def test_cp_r_refuses_a_directory_into_itself(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path).boot()
    free = tk.pc.kernel.fs.statfs().free_bytes
    assert tk.output("cp -r / /tmp/root") == ["cp: /: cannot copy a directory into itself"]
    assert tk.output("cp -r / /tmp") == ["cp: /: cannot copy a directory into itself"]
    assert tk.output("cd /tmp") == []
    assert tk.output("cp -r .. sub") == ["cp: ..: cannot copy a directory into itself"]
    assert tk.output("ls /tmp") == []
    assert tk.pc.kernel.fs.statfs().free_bytes == free  # nothing was copied
    assert tk.output("mkdir /tmp/a") == []
    assert tk.output("cp -r /tmp/a /tmp/ab") == []  # a sibling whose name only starts alike
