"""The OS's own debugger (`debug PROG`, kernel/shell/debug.py on kernel/proc/ptrace.py) finds
the bug in tests/debug/buggy.c, typed at the keyboard and read off the console like a user.

buggy computes the notional of two prices; find() runs one slot past the book and returns a
null pointer for a price the book does not hold, and notional() dereferences it. The session
breaks at notional by name (prologue skipped), shows the registers, the argument on the stack
(x), the frame-pointer backtrace, steps one instruction, steps over the call to find (next),
stops on the write of a global (watch, by single stepping), and then continues into the crash:
SIGSEGV at the load through EAX = 0, inside notional called from main. Addresses come from the
binary's own symbols (nm), so a wrong stop address, register or frame fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.debug.userprog import build, symbol
from tests.system.harness import ANY_PROMPT, SECOND, BootedPc, close_pc
from tests.system.test_files import mcopy_in
from tradekernel.ui.keymap import text_to_key_events

TDB = b"(tdb) "


def session_line(tk: BootedPc, line: str, virtual_ns: int = 10 * SECOND) -> list[str]:
    """Type a debugger command; what it printed up to the next (tdb) or shell prompt."""
    start = len(tk.serial)

    def prompted() -> bool:
        rest = bytes(tk.serial[start:])
        return TDB in rest.split(b"\n", 1)[-1] or ANY_PROMPT.search(rest) is not None

    tk.type(line + "\n")
    tk.run_until(prompted, virtual_ns)
    text = bytes(tk.serial[start:]).decode("cp437").replace("\r\n", "\n")
    printed = text.split("\n", 1)[1] if "\n" in text else ""
    return printed.split("(tdb) ")[0].splitlines()


@pytest.fixture
def buggy(tmp_path: Path):  # noqa: ANN201
    binary = build("buggy", tmp_path)
    tk = BootedPc(tmp_path)
    mcopy_in(tk.disk, binary.read_bytes(), "/bin/buggy", tmp_path)
    tk.boot()
    yield tk, binary
    close_pc(tk)


def address(value: int) -> str:
    return f"{value:#010x}"


def test_debug_finds_the_null_pointer_in_buggy(buggy) -> None:
    tk, binary = buggy
    notional, main, start = (symbol(binary, name) for name in ("notional", "main", "_start"))
    filled = symbol(binary, "filled")
    out = session_line(tk, "debug buggy")
    assert f"stopped at the entry point, {address(start)} <_start>" in out, out
    assert any(line.startswith(f"=> {address(start)} <_start>:  xor ebp, ebp") for line in out)

    out = session_line(tk, "break notional")
    assert out == [f"Breakpoint 1 at {address(notional + 3)} <notional+0x3>"], out
    out = session_line(tk, "continue")
    assert f"Breakpoint 1, {address(notional + 3)} <notional+0x3>" in out, out
    regs = "\n".join(session_line(tk, "regs"))
    assert f"eip    {address(notional + 3)}" in regs and "cs     0x0000001b" in regs, regs
    argument = session_line(tk, "x/1x $ebp+8")
    assert argument[0].endswith(":  0x00000066"), argument  # notional(102)
    trace = session_line(tk, "bt")
    assert trace[0] == f"#0  {address(notional + 3)} <notional+0x3>", trace
    assert trace[1].startswith("#1  0x") and "<main+0x" in trace[1], trace
    assert "<_start+0x" in trace[2] and len(trace) == 3, trace

    out = session_line(tk, "step")
    assert out == [f"=> {address(notional + 6)} <notional+0x6>:  push dword ptr [ebp + 8]"], out
    out = session_line(tk, "next")
    assert "call" in out[0], out
    out = session_line(tk, "next")  # over find()
    assert out[0].startswith(f"=> {address(notional + 0xE)} <notional+0xe>:  add esp, 4"), out
    eax = "\n".join(session_line(tk, "regs")).split("eax    ")[1].split()[0]
    assert int(eax, 16) == symbol(binary, "book") + 8, eax  # &book[1]: found

    out = session_line(tk, f"watch {filled:#x}")
    assert out[0].startswith(f"Watchpoint 2: {address(filled)}") and "= 0x0" in out[0], out
    out = session_line(tk, "continue")
    assert f"Watchpoint 2: {address(filled)}" in out[0] and "old 0x0  new 0x1" in out[0], out
    assert out[1].startswith(f"=> {address(notional + 0x1F)} <notional+0x1f>"), out
    session_line(tk, "delete 2")

    out = session_line(tk, "continue")  # the second call: notional(105)
    assert f"Breakpoint 1, {address(notional + 3)} <notional+0x3>" in out, out
    assert "buggy: notional of 102 is 2040" in tk.text()
    assert session_line(tk, "x/1x $ebp+8")[0].endswith(":  0x00000069"), "105"
    out = session_line(tk, "continue")
    assert any(
        f"Program received SIGSEGV (segmentation fault) at {address(notional + 0x22)}" in line
        for line in out
    ), out
    assert any("mov edx, dword ptr [eax]" in line for line in out), out
    regs = "\n".join(session_line(tk, "regs"))
    assert "eax    0x00000000" in regs, regs  # the bug: find() gave a null pointer
    trace = session_line(tk, "bt")
    assert trace[0].startswith(f"#0  {address(notional + 0x22)}") and "<main+0x" in trace[1]
    assert int(trace[1].split()[1], 16) > main
    out = session_line(tk, "continue")  # SIGSEGV is delivered: the program dies of it
    assert any("Program terminated with SIGSEGV" in line for line in out), out
    assert tk.output("echo alive") == ["alive"]


def test_ctrl_c_stops_a_running_program_and_quit_kills_it(tmp_path: Path) -> None:
    """`spin` runs under the debugger; Ctrl-C stops it with SIGINT inside main's loop (the
    debugger keeps SIGINT: the program does not die of it), a continue runs it on, and quit
    kills it and gives the shell back."""
    tk = BootedPc(tmp_path)
    try:
        tk.boot()
        assert any("stopped at the entry point" in line for line in session_line(tk, "debug spin"))
        ctrl_c = text_to_key_events("\x03")
        channels = tk.machine.channels
        for _ in range(2):
            start = len(tk.serial)
            tk.type("continue\n")
            tk.run_to_stop(50_000_000)  # it spins: no prompt for 50 ms of virtual time
            assert TDB not in bytes(tk.serial[start:]).split(b"continue", 1)[1]
            # as a window does: a spinning guest never idles, where the harness types
            tk.machine.post(lambda: [channels.send("keyboard-key", e) for e in ctrl_c])
            tk.run_until(lambda at=start: TDB in bytes(tk.serial[at:]).split(b"continue", 1)[1])
            out = bytes(tk.serial[start:]).decode("cp437")
            assert "Program received SIGINT (interrupt) at 0x" in out and "<main+0x" in out, out
        assert session_line(tk, "quit")[0] == "killed"
        assert tk.output("ps")[-1].endswith("[kernel]")  # spin is gone
    finally:
        close_pc(tk)
