"""/dev through the whole path: a ring-3 program (/bin/cat, started with `run`: the shell's own
`cat` reads the FAT volume) opens device nodes by name (open(2) -> the mount table ->
fs/devfs.py), reads them, and the screen shows what it printed."""

from __future__ import annotations

import pytest

from tests.system.harness import BootedPc
from tests.system.test_ipc import output_of


@pytest.fixture(scope="module")
def tk(tmp_path_factory):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path_factory.mktemp("devfs")).boot()


def test_dev_null_reads_nothing(tk: BootedPc) -> None:
    assert output_of(tk, "run cat /dev/null") == []
    with_null = output_of(tk, "run cat /etc/instruments.toml /dev/null /etc/instruments.toml")
    alone = output_of(tk, "run cat /etc/instruments.toml")
    assert alone and with_null == alone + alone


def test_missing_nodes_and_directories_fail_as_on_linux(tk: BootedPc) -> None:
    assert output_of(tk, "run cat /dev/nope") == ["cat: /dev/nope: error 2"]  # ENOENT
    assert output_of(tk, "run cat /dev") == ["cat: /dev: error 9"]  # EBADF: a directory
