"""`tk boot --profile FILE` on the host: the perf-style table on stderr at power-off and the
profile in FILE, folded stacks (or speedscope JSON for FILE.json); an unwritable FILE is one
line and exit 1 before anything boots."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import run_tk


def test_boot_profile_writes_folded_stacks_and_prints_the_table(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "run.folded"
    args = ["boot", "--headless", "--deterministic", "--net", "none", "--profile", str(out)]
    result = run_tk(args, scratch, stdin=b"spin 20\n", timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    table = result.stderr.decode()
    assert re.search(r"^\s+[\d.]+%\s+\d+\s+\d+\s+spin\s+main$", table, re.MULTILINE), table
    assert f"profile written to {out}" in table
    folded = dict(line.rsplit(" ", 1) for line in out.read_text().splitlines())
    spin = next(key for key in folded if key.startswith("guest;spin["))
    assert spin.endswith("];main") and int(folded[spin]) > 0
    assert int(folded["kernel;hypercall_kernel_entry"]) > 0  # host ns in the kernel entry
    assert any(key.startswith("kernel;hypercall_kernel_entry;syscall_") for key in folded)


def test_boot_profile_as_speedscope_json(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "run.json"
    args = ["boot", "--headless", "--deterministic", "--net", "none", "--profile", str(out)]
    result = run_tk(args, scratch, stdin=b"hello\n", timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(out.read_text())
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    for profile in document["profiles"]:
        assert len(profile["samples"]) == len(profile["weights"])
        assert profile["endValue"] == sum(profile["weights"])
        for stack in profile["samples"]:
            assert all(0 <= index < len(document["shared"]["frames"]) for index in stack)


def test_an_unwritable_profile_path_is_one_line_before_booting(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_tk(["boot", "--headless", "--profile", str(tmp_path / "no" / "p")], scratch)
    assert result.returncode == 1
    assert (
        result.stderr.decode().strip() == f"Error: --profile {tmp_path / 'no' / 'p'}: no "
        f"directory {tmp_path / 'no'}"
    )
