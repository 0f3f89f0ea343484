"""Names and escape parameters a user writes are decoded text, and str.isdigit is true for
"²", which int() refuses: /proc's names and the console's escape parameters must not raise
ValueError past the system call (an oops that kills the writer)."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest

from tradekernel.emu.bus import PortBus
from tradekernel.emu.memory import GuestMemory
from tradekernel.kernel.drivers.console import Console
from tradekernel.kernel.fs.procfs import ProcFs
from tradekernel.kernel.fs.vfs import O_RDONLY


def test_console_escape_with_a_superscript_digit_is_a_zero_parameter() -> None:
    console = Console(GuestMemory(memoryview(bytearray(1 << 20))), PortBus())
    console.write("\x1b[\u00b2mok")  # as devfs decodes a user's write to /dev/console


@pytest.mark.parametrize("path", ["/\u00b2", "/\u00b2/stat", "/1/fd/\u00b2"])
def test_proc_names_with_a_superscript_digit_are_enoent(path: str) -> None:
    process = SimpleNamespace(
        files=SimpleNamespace(items=lambda: [(0, SimpleNamespace(path="/x"))])
    )
    proc = ProcFs(SimpleNamespace(table={1: process}))
    for call in (lambda: proc.stat(path), lambda: proc.open(path, O_RDONLY)):
        with pytest.raises(OSError) as error:
            call()
        assert error.value.errno == errno.ENOENT
