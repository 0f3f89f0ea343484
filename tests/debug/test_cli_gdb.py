"""`tk boot --gdb`, `-s` and `-S` from the command line, with real gdb on the other end."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.debug.test_gdb import gdb_path
from tradekernel import memmap
from tradekernel.emu.gdbstub import parse_address

TK = [sys.executable, "-m", "tradekernel.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_boot_with_gdb_and_S_waits_for_gdb_and_kill_powers_off(tmp_path: Path) -> None:
    port = free_port()
    tk = subprocess.Popen(
        [*TK, "boot", "--headless", "--net", "none", "--timeout", "120", "--gdb", f":{port}",
         "-S"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        gdb = None
        for _ in range(200):  # until tk listens (imports and the disk take a moment)
            gdb = subprocess.run(
                [gdb_path(), "-batch", "-nx", "-ex", "set architecture i386",
                 "-ex", f"target remote 127.0.0.1:{port}", "-ex", "info registers eip cs",
                 "-ex", f"break *{memmap.STUB_BASE:#x}", "-ex", "continue", "-ex", "kill"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if "Connection refused" not in gdb.stderr + gdb.stdout:
                break
        assert gdb is not None
        out = gdb.stdout + gdb.stderr
        assert "eip            0xfff0" in out, out  # held at the reset vector
        assert f"Breakpoint 1, 0x{memmap.STUB_BASE:08x} in ?? ()" in out, out
        assert tk.wait(timeout=60) == 0  # gdb's kill is a clean power-off
    finally:
        if tk.poll() is None:
            tk.kill()
            tk.wait()


def test_bad_gdb_options_are_one_line_errors(tmp_path: Path) -> None:
    for args, message in (
        (["-S"], "-S waits for a GDB"),
        (["--gdb", ":notaport"], "the port must be a number"),
        (["--gdb", ":1234", "-s"], "not both"),
    ):
        result = subprocess.run(
            [*TK, "boot", "--headless", "--net", "none", *args],
            capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_address_forms() -> None:
    assert parse_address(":1234") == ("127.0.0.1", 1234)
    assert parse_address("1234") == ("127.0.0.1", 1234)
    assert parse_address("tcp::1234") == ("127.0.0.1", 1234)
    assert parse_address("0.0.0.0:4321") == ("0.0.0.0", 4321)
