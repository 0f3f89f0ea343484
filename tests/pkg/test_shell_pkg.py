"""The `pkg` shell command on a volume in memory: its output lines, usage errors, and one line
per failure (no traceback); the recovery that registering runs at boot."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.pkg.conftest import make_deb, new_volume, put_repo
from tradekernel.kernel.fs.fat import FatFs
from tradekernel.kernel.pkg.database import JOURNAL
from tradekernel.kernel.shell.pkg import register
from tradekernel.kernel.shell.shell import Output, UsageError


class Captured(Output):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []

    def write(self, text: str, fg: int | None = None, bg: int | None = None) -> None:
        self.lines.extend(text.splitlines())

    def error(self, text: str) -> None:
        self.errors.append(text)


class FakeShell:
    """What register() uses of the shell: its table, its output, its path resolver."""

    def __init__(self) -> None:
        self.out = Captured()
        self.commands: dict[str, object] = {}

    def register(self, name: str, handler, usage: str, help_text: str) -> None:  # noqa: ANN001
        self.commands[name] = handler

    def resolve_path(self, path: str) -> str:
        return path if path.startswith("/") else "/" + path


def shell_on(fs: FatFs) -> FakeShell:
    shell = FakeShell()
    register(shell, SimpleNamespace(fs=fs))  # type: ignore[arg-type]
    return shell


def run(shell: FakeShell, *args: str) -> tuple[int, list[str], list[str]]:
    out = Captured()
    status = shell.commands["pkg"](list(args), out)
    return status, out.lines, out.errors


def test_commands_and_their_lines(tmp_path: Path) -> None:
    _, fs = new_volume()
    debs = [make_deb(tmp_path, "hello", "2.0-1", files={"/bin/hello": b"hi"})]
    put_repo(fs, tmp_path / "repo", debs, "/var/cache/pkg")
    shell = shell_on(fs)
    assert run(shell, "search", "hello") == (
        0,
        ["hello                    2.0-1                test package hello"],
        [],
    )
    status, lines, _ = run(shell, "install", "hello")
    assert status == 0 and lines == ["unpacking hello 2.0-1 (1 files)", "installed hello 2.0-1"]
    assert run(shell, "list")[1] == ["hello                    2.0-1                    i386"]
    assert run(shell, "files", "hello")[1] == ["/bin/hello"]
    info = run(shell, "info", "hello")[1]
    assert info[0] == "Status: installed" and "Version: 2.0-1" in info
    assert run(shell, "install", "hello")[1] == ["hello is already installed"]
    assert run(shell, "remove", "hello") == (0, ["removed hello"], [])
    assert run(shell, "files", "hello") == (1, [], ["pkg: hello: not installed"])
    assert run(shell, "install", "--repo", "/nowhere", "hello")[2] == [
        "pkg: repository /nowhere: cannot read /nowhere/Packages (/nowhere: no such file or"
        " directory)"
    ]
    for bad in ([], ["frobnicate"], ["install"], ["install", "--repo"], ["list", "-x"]):
        with pytest.raises(UsageError):
            run(shell, *bad)


def test_registering_rolls_back_an_interrupted_install(tmp_path: Path) -> None:
    _, fs = new_volume()
    fs.mkdir("/var")
    fs.mkdir("/var/lib")
    fs.mkdir("/var/lib/pkg")
    fs.mkdir("/opt")
    fs.write_file("/opt/half", b"half written")
    fs.write_file(JOURNAL, b"install half\nd /opt\nf /opt/half\nend\n")
    shell = shell_on(fs)
    assert shell.out.lines == ["pkg: rolled back the interrupted install of half"]
    assert not fs.exists("/opt") and not fs.exists(JOURNAL)


@pytest.mark.parametrize("left_mib", [1, 3])  # stopped while inflating / by the cluster count
def test_no_room_is_one_line_and_nothing_written(tmp_path: Path, left_mib: int) -> None:
    device, fs = new_volume()
    big = make_deb(tmp_path, "big", files={"/big": bytes(range(256)) * 16384})  # 4 MiB
    put_repo(fs, tmp_path / "repo", [big], "/var/cache/pkg")
    free = fs.statfs().free_bytes
    fs.write_file("/filler", bytes(free - (left_mib << 20)))
    fs.flush()
    shell = shell_on(fs)
    before = bytes(device.data)
    status, _, errors = run(shell, "install", "big")
    assert status == 1 and len(errors) == 1
    assert errors[0].startswith("pkg: ") and "KiB free" in errors[0], errors
    assert bytes(device.data) == before


def test_a_read_only_volume_is_refused_in_one_line(tmp_path: Path) -> None:
    device, fs = new_volume()
    put_repo(fs, tmp_path / "repo", [make_deb(tmp_path, "hello")], "/var/cache/pkg")
    shell = shell_on(FatFs(device, read_only=True))
    assert run(shell, "install", "hello") == (1, [], ["pkg: the disk is read-only: mounted so"])
