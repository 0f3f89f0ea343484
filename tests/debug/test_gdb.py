"""Real gdb drives the GDB stub (tradekernel/emu/gdbstub.py) over TCP on loopback.

Each scenario boots a PC, attaches a stub on a free port, starts `gdb -batch` with a script of
commands, runs the machine until gdb has exited, and reads what gdb printed: the stop
locations, registers and values come from gdb's own decoding of our packets, so a wrong
register layout, a stop reported at the wrong place or a missed watchpoint shows up as a
wrong line of gdb output. The ring-3 program (debugme.c) is built here with -O0 -g against
the project libc and copied onto the disk with mtools, the way a user would.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.debug.userprog import build, symbol
from tests.peers import peer
from tests.system.harness import BootedPc, close_pc
from tests.system.test_files import mcopy_in
from tradekernel import memmap
from tradekernel.emu.gdbstub import GdbStub
from tradekernel.ui.keymap import text_to_key_events

HERE = Path(__file__).resolve().parent
WALL_LIMIT_S = 120  # a hung stub or gdb fails the test instead of hanging it


def gdb_path() -> str:
    return peer("gdb")


def build_debugme(tmp_path: Path) -> Path:
    return build("debugme", tmp_path)


def source_line(marker: str) -> int:
    lines = (HERE / "debugme.c").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if marker in line)


def run_gdb(tk: BootedPc, stub: GdbStub, commands: list[str], binary: Path | None = None,
            during=None) -> str:  # noqa: ANN001 - during(gdb process), run on a thread
    """Run gdb with `commands` against the stub while the machine runs; gdb's output."""
    args = [gdb_path(), "-batch", "-nx"]
    if binary is not None:
        args.append(str(binary))
    args += ["-ex", "set architecture i386", "-ex", f"target remote 127.0.0.1:{stub.address[1]}"]
    for command in commands:
        args += ["-ex", command]
    gdb = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(gdb.stdout.read()), daemon=True)
    reader.start()
    helper = None
    if during is not None:
        helper = threading.Thread(target=during, args=(gdb,), daemon=True)
        helper.start()
    try:
        tk.stop = tk.machine.run(wall_timeout_s=WALL_LIMIT_S, until=lambda: gdb.poll() is not None)
    finally:
        if gdb.poll() is None:
            gdb.kill()
        gdb.wait()
        reader.join(10)
        if helper is not None:
            helper.join(10)
    text = output[0] if output else ""
    assert tk.stop.reason != "timeout", f"gdb did not finish:\n{text}"
    return text


def test_break_in_the_entry_stub_by_address_before_the_first_instruction(tmp_path: Path) -> None:
    """-S: held at the reset vector until gdb says continue; a hardware breakpoint at the
    32-bit entry stops there in flat protected mode; `kill` powers the machine off."""
    tk = BootedPc(tmp_path)
    stub = GdbStub(tk.machine, port=0, wait=True)
    try:
        out = run_gdb(tk, stub, [
            "info registers eip cs",
            f"hbreak *{memmap.STUB_BASE:#x}",  # Z1 (the CLI test sets Z0 at the same place)
            "continue",
            "info registers eip cs ss eflags cr0",
            "stepi",
            "info registers eip",
            "kill",
        ])  # fmt: skip
    finally:
        stub.close()
        close_pc(tk)
    assert "eip            0xfff0" in out and "cs             0xf000" in out, out
    assert f"Breakpoint 1, 0x{memmap.STUB_BASE:08x} in ?? ()" in out, out
    assert "cs             0x8 " in out, out  # the stub's flat ring-0 code segment
    assert "cr0            0x60000011" in out, out  # PE set, paging not yet
    # the first instruction ran, and only it
    eips = [line.split()[1] for line in out.splitlines() if line.startswith("eip ")]
    assert eips[1] == hex(memmap.STUB_BASE) and int(eips[2], 16) > memmap.STUB_BASE, out
    assert tk.stop is not None and tk.stop.reason == "poweroff"


@pytest.fixture
def booted_with_debugme(tmp_path: Path):  # noqa: ANN201
    binary = build_debugme(tmp_path)
    tk = BootedPc(tmp_path)
    mcopy_in(tk.disk, binary.read_bytes(), "/bin/debugme", tmp_path)
    tk.boot()
    stub = GdbStub(tk.machine, port=0, wait=True)  # held at the prompt until gdb continues
    yield tk, stub, binary
    stub.close()
    close_pc(tk)


def test_ring3_symbol_local_watchpoint_and_a_step_over_int_0x80(booted_with_debugme) -> None:
    """gdb with the program's symbols: a breakpoint by source line prints a local; a
    watchpoint on a global stops right after the store (old and new value); stepping the
    `int 0x80` of getpid lands on the next instruction with the pid in EAX; a read watchpoint
    stops where printf's argument is loaded; after `detach` the program finishes and prints
    what it computed (the watched store ran once)."""
    tk, stub, binary = booted_with_debugme
    tk.type("debugme\n")  # typed once gdb lets the machine go on
    line = source_line("BREAK-HERE")
    after = symbol(binary, "after_getpid")
    out = run_gdb(tk, stub, [
        f"break debugme.c:{line}",
        "continue",
        "print total",
        "print n",
        "watch counter",
        "continue",
        "print counter",
        "break getpid_site",
        "continue",
        "x/i $pc",
        "stepi",
        "print/x $eip",
        "print $eax",
        "info registers cs",
        "rwatch counter",
        "continue",
        "detach",
    ], binary)  # fmt: skip
    assert f"Breakpoint 1, square_sum (n=4) at {HERE / 'debugme.c'}:{line}" in out, out
    assert "$1 = 30" in out and "$2 = 4" in out, out
    assert "Hardware watchpoint 2: counter" in out, out
    assert "Old value = 0" in out and "New value = 30" in out, out
    assert "$3 = 30" in out, out
    # reported after the store, as x86 reports a data breakpoint: on the next statement
    stopped_at = out.split("New value = 30\n")[1].splitlines()[0]
    assert stopped_at.startswith("main () at"), out
    assert int(stopped_at.rsplit(":", 1)[1]) > source_line("WATCHED-STORE"), out
    assert "int    $0x80" in out, out
    assert f"$4 = {after:#x}" in out, out
    pid = int(out.split("$5 = ")[1].split()[0])
    assert pid > 0, out
    assert "cs             0x1b" in out, out  # still in ring 3 after the step
    assert "Hardware read watchpoint 4: counter\n\nValue = 30" in out, out  # printf's argument
    tk.run_until(lambda: "debugme: result" in tk.text())
    assert f"debugme: result 30 pid {pid} counter 30" in tk.text()
    tk.command("echo alive")  # detach left a working machine
    assert "alive" in tk.text()


def test_ctrl_c_stops_a_spinning_guest_in_real_time(tmp_path: Path) -> None:
    """A ring-3 busy loop under the real-time clock: gdb's Ctrl-C (SIGINT to gdb, which sends
    0x03) stops it in ring 3; registers read; a breakpoint at the stopped PC, inside code
    Unicorn has long translated, is hit on the loop's next round; detach lets it spin on;
    the shell still answers once the program is interrupted."""
    tk = BootedPc(tmp_path, deterministic=False)
    tk.boot()
    stub = GdbStub(tk.machine, port=0)
    tk.type("spin\n")

    def interrupt_later(gdb: subprocess.Popen) -> None:
        time.sleep(3)
        if gdb.poll() is None:
            gdb.send_signal(signal.SIGINT)

    try:
        out = run_gdb(
            tk, stub,
            ["continue", "info registers cs eip", "print $eflags",
             "break *$pc", "continue", "print $pc", "delete", "detach"],
            during=interrupt_later,
        )  # fmt: skip
        assert "received signal SIGINT" in out, out
        assert "cs             0x1b" in out, out  # stopped inside the spinning program
        eip = int(out.split("eip            ")[1].split()[0], 16)
        assert 0x08048000 <= eip < 0x08100000, out
        # a breakpoint in a loop that is already translated is hit on its next round
        assert f"Breakpoint 1, {eip:#010x} in ?? ()" in out, out
        assert f"(void (*)()) {eip:#x}" in out, out
        assert "[Inferior 1 (Remote target) detached]" in out, out
        ctrl_c = text_to_key_events("\x03")
        channels = tk.machine.channels  # as a window does: a spinning guest never idles
        tk.machine.post(lambda: [channels.send("keyboard-key", event) for event in ctrl_c])
        tk.run_until(lambda: tk.text().rstrip().endswith("tk:/>"), 30 * 1_000_000_000)
    finally:
        stub.close()
        close_pc(tk)
