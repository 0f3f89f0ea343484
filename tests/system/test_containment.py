"""The containment boundary (issue 15): a kernel service that raises stops only what called
it. A system call kills its caller (an oops in the kernel log, the process dead as by
SIGSEGV, its resources back); a timer callback or an IRQ handler is stopped and logged; every
other process and the shell go on, and `dmesg` shows the oops with its call trace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.system.harness import BootedPc

MS = 1_000_000
SIGSEGV = 11


@pytest.fixture
def tk(tmp_path: Path) -> BootedPc:
    return BootedPc(tmp_path, expect=("oops",)).boot()


def memcheck_ok(tk: BootedPc) -> bool:
    return any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))


def test_a_system_call_that_raises_kills_only_its_caller(tk: BootedPc) -> None:
    """uname (a call the trap fast path runs) forced to raise for `info`: info dies with an
    oops line; a background sleeper, the shell and later programs go on; memory comes back."""
    kernel = tk.pc.kernel
    table = kernel.syscall_entry.syscalls.table
    name, uname = table[122]

    def broken_uname(process, args):  # noqa: ANN001, ANN202
        if process.name == "info":
            raise KeyError("a bug in uname")
        return uname(process, args)

    tk.command("nap 10000 &")
    table[122] = (name, broken_uname)
    printed = tk.output("info")
    assert printed[0].startswith("argc=1")
    assert re.fullmatch(r"info\[\d+\]: kernel oops in system call 122 \(uname\): killed",
                        printed[-1]), printed  # fmt: skip
    assert not any(line.startswith("uname:") for line in printed)
    assert not any(p.name == "info" for p in kernel.processes.table.values())
    sleeper = [p for p in kernel.processes.table.values() if p.name == "nap"]
    assert len(sleeper) == 1 and sleeper[0].state.name == "SLEEPING"
    table[122] = (name, uname)
    assert any(line.startswith("uname: TradeKernel") for line in tk.output("info"))
    tk.output("kill -9 %1")
    assert memcheck_ok(tk)
    log = tk.output("dmesg")
    assert any("oops: system call 122 (uname) by info[" in line for line in log), log
    assert "KeyError: 'a bug in uname'" in "\n".join(log)
    assert any("Call Trace:" in line for line in log)
    assert any("broken_uname (test_containment.py:" in line for line in log)


def test_a_full_path_system_call_that_raises_releases_the_caller(tk: BootedPc) -> None:
    """nanosleep (full path, it may block) raising: the sleeper dies, its frames come back."""
    kernel = tk.pc.kernel
    table = kernel.syscall_entry.syscalls.table
    name, nanosleep = table[162]
    tk.output("hello")  # a first program's one-time costs, before the baseline
    free = kernel.mm.frames.free_count
    table[162] = (name, lambda p, a: 1 // 0)
    printed = tk.output("info")
    assert any("kernel oops in system call 162 (nanosleep)" in line for line in printed)
    table[162] = (name, nanosleep)
    assert any(line == "slept >= 20 ms" for line in tk.output("info"))
    tk.output("hello")  # the last one to die is released at the next kernel entry
    assert kernel.mm.frames.free_count == free  # both infos' frames came back
    assert memcheck_ok(tk)
    assert kernel.klog.oopses == 1


def test_a_timer_callback_that_raises_is_stopped_and_logged(tk: BootedPc) -> None:
    kernel = tk.pc.kernel
    ran = []

    def broken_timer() -> None:
        raise ValueError("a bug in a timer")

    now = kernel.clock.now_ns()
    kernel.call_at(now + 100 * MS, broken_timer)
    kernel.call_at(now + 200 * MS, lambda: ran.append("later timer"))
    tk.output("echo armed")  # the kernel's next idle programs the PIT for them
    tk.run_to_stop(300 * MS)
    assert ran == ["later timer"]
    assert any(line == "slept >= 20 ms" for line in tk.output("info"))
    log = "\n".join(tk.output("dmesg"))
    assert "oops: deferred work" in log and "broken_timer" in log
    assert "ValueError: a bug in a timer" in log


def test_an_irq_handler_that_raises_is_stopped_and_the_irq_ended(tk: BootedPc) -> None:
    """The keyboard handler raising after its work: the key still arrives, the interrupt is
    still acknowledged at the PIC (later keys arrive too), the oops is logged."""
    kernel = tk.pc.kernel
    keyboard = kernel._irq_handlers[1]

    def broken_keyboard(irq: int) -> None:
        keyboard(irq)
        raise RuntimeError("a bug in the keyboard handler")

    kernel._irq_handlers[1] = broken_keyboard
    printed = tk.output("echo still typing")
    assert printed[-1] == "still typing"
    assert tk.serial.count(b"kernel oops in irq 1 (broken_keyboard): stopped") == 1  # not per key
    kernel._irq_handlers[1] = keyboard
    log = tk.output("dmesg")
    assert any("oops: irq 1 broken_keyboard raised" in line for line in log)
    assert tk.output("echo done") == ["done"]


def test_dmesg_clears_with_c(tk: BootedPc) -> None:
    tk.pc.kernel.klog.info("test", "hello from the test")
    assert any(re.fullmatch(r"\[\s*\d+\.\d{6}\] info\s+test: hello from the test", line)
               for line in tk.output("dmesg -c"))  # fmt: skip
    assert not any("hello from the test" in line for line in tk.output("dmesg"))


def test_a_broken_kernel_invariant_in_a_system_call_panics(tmp_path: Path) -> None:
    """A frame's reference count found wrong is the kernel's own damage, not the caller's:
    it panics (the panic screen, the CPU parked), it is not contained as an oops."""
    from tradekernel.kernel.mm.frames import BadFrame

    tk = BootedPc(tmp_path, expect=("oops", "MACHINE STOPPED")).boot()
    table = tk.pc.kernel.syscall_entry.syscalls.table

    def broken(process, args):  # noqa: ANN001, ANN202
        raise BadFrame("free(0x1000): frame is not allocated")

    table[122] = ("uname", broken)
    tk.type("info\n")
    stop = tk.run_to_stop()
    text = "".join(line.ljust(80) for line in tk.lines())
    assert "KERNEL PANIC: BadFrame: free(0x1000): frame is not allocated" in text
    assert stop.reason == "crash" and "halted with interrupts disabled" in stop.report
    assert "kernel oops" not in text


def test_a_shell_command_that_raises_prints_one_line_and_logs_an_oops(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path, expect=("oops", "internal error")).boot()
    shell = tk.pc.kernel.shell

    def broken(args: list[str], out: object) -> int:
        raise KeyError("a bug in a command")

    shell.register("broken", broken, "broken", "raises")
    printed = tk.output("broken")
    assert printed == ["broken: internal error: KeyError: 'a bug in a command'"]
    log = "\n".join(tk.output("dmesg"))
    assert "oops: command broken" in log and "KeyError: 'a bug in a command'" in log
    assert tk.output("echo still here") == ["still here"]
