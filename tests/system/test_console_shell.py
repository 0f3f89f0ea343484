"""Console and shell scenarios on the booted machine: programs by path, builtins in pipelines,
the pager, type-ahead, characters outside ASCII, the input line under asynchronous output."""

from __future__ import annotations

import pytest

from tests.system.harness import BootedPc


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def test_a_path_runs_the_program(tk: BootedPc) -> None:
    assert tk.output("/bin/hello") == ["hello, world"]
    assert tk.output("./bin/hello a") == ["hello, world"]
    tk.output("cd /bin")
    assert tk.output("./hello") == ["hello, world"]
    assert tk.output("../bin/hello") == ["hello, world"]
    assert tk.output("./nothere") == ["sh: ./nothere: no such file or directory"]
