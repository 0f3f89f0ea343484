"""Processes through the whole path: shell -> ELF loader -> ring 3 -> int 0x80 -> VGA, faults
contained, IRQ0 preemption, Ctrl-C and kill. The programs are images/programs/*.c, on the
disk image's /bin."""

from __future__ import annotations

import re

import pytest

from tests.system.harness import PROMPT, BootedPc
from tradekernel.ui.keymap import text_to_key_events

MS = 1_000_000
SECOND_NS = 1_000_000_000


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def type_while_busy(tk: BootedPc, text: str) -> None:
    """Type with a process hogging the CPU: the harness feeds keys only to an idle machine,
    so each key goes straight to the keyboard and the machine runs 20 ms of virtual time."""
    for char in text:
        for event in text_to_key_events(char):
            tk.machine.channels.send("keyboard-key", event)
        tk.run_to_stop(20 * MS)


def command_while_busy(tk: BootedPc, line: str) -> None:
    before = tk.prompts_seen()
    type_while_busy(tk, line + "\n")
    tk.run_until(lambda: tk.prompts_seen() > before, 2_000 * MS)


def frames_used(tk: BootedPc) -> int:
    tk.command("pgstats")
    used = [int(m.group(1)) for m in re.finditer(r"(\d+) used", tk.text())]
    return used[-1]


def test_hello_prints_and_the_prompt_returns(tk: BootedPc) -> None:
    tk.command("hello")
    tk.command("run hello")
    lines = [line for line in tk.lines() if line]
    assert lines[-5:] == [PROMPT + "hello", "hello, world", PROMPT + "run hello", "hello, world",
                          PROMPT.rstrip()]  # fmt: skip


def test_crash_is_killed_and_the_shell_goes_on(tk: BootedPc) -> None:
    tk.command("crash")
    tk.command("echo ok")
    text = tk.text().replace("\n", "")  # the report wraps at 80 columns
    assert re.search(r"crash\[\d+\]: segmentation fault at 0xc0001000 \(.*\), eip 0x0804", text)
    assert "crash: still alive?" not in text
    assert "ok" in tk.lines()


def test_a_fault_before_any_system_call_is_delivered(tk: BootedPc) -> None:
    """The first thing `wild` does is fault: the fault must still reach the kernel as #PF
    (Unicorn's stale previous-exception word once turned it into an endless re-run)."""
    tk.command("wild")
    text = tk.text().replace("\n", "")
    assert re.search(r"wild\[\d+\]: segmentation fault at 0x50000000 \(user write", text)


def test_programs_loaded_into_reused_frames_run_their_own_code(tk: BootedPc) -> None:
    """Frames freed by one program are reused for the next program's code; the CPU must not
    run what it translated from their earlier contents."""
    for _ in range(7):
        tk.command("hello")
    tk.command("badptr")
    assert tk.lines().count("syscall 999 = -38") == 1
    tk.command("hello")
    assert tk.lines()[-2:] == ["hello, world", PROMPT.rstrip()]


def test_cpu_exceptions_get_linux_wording(tk: BootedPc) -> None:
    tk.command("divzero")
    tk.command("illegal")
    tk.command("illegal cli")
    tk.command("illegal out")
    text = tk.text().replace("\n", "")
    assert re.search(r"divzero\[\d+\]: floating point exception", text)
    assert re.search(r"illegal\[\d+\]: illegal instruction", text)
    assert len(re.findall(r"illegal\[\d+\]: segmentation fault \(general protection\)", text)) == 2
    assert "did not fault" not in text


def test_bad_pointers_give_efault(tk: BootedPc) -> None:
    tk.command("badptr")
    lines = tk.lines()
    for call in ("write(kernel address)", "write(unmapped)", "uname(NULL)", "nanosleep(bad)"):
        assert f"{call} = -14" in lines
    assert "syscall 999 = -38" in lines


def test_plain_linux_binary_runs(tk: BootedPc) -> None:
    tk.command("linux_hello")
    assert "hello from a plain Linux binary" in tk.lines()


def test_process_facts_from_system_calls(tk: BootedPc) -> None:
    tk.command("info first")
    lines = tk.lines()
    assert "argc=2 argv[0]=info argv[1]=first" in lines
    assert "uname: TradeKernel 0.1.0 i686" in lines
    assert "setpriority(5)=0 nice=5" in lines
    assert "malloc: ok" in lines and "slept >= 20 ms" in lines
    assert any(re.fullmatch(r"pid=\d+ ppid=0", line) for line in lines)


def test_resources_return_after_a_crash(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    for _ in range(3):
        tk.command("crash")
    assert frames_used(tk) == baseline
    tk.command("memleak")
    assert "no live allocations" in tk.lines()


def test_background_spin_ps_and_kill(tk: BootedPc) -> None:
    tk.command("spin &")
    match = re.search(r"\[(\d+)\] spin", tk.text())
    assert match is not None
    pid = match.group(1)
    tk.run_to_stop(50 * MS)  # spin has the CPU; IRQ0 and the keyboard still get through
    command_while_busy(tk, "ps")
    fields = next(line.split() for line in tk.lines() if line.split()[:1] == [pid])
    assert fields[0] == pid and fields[2] == "R" and fields[3:5] == ["TS", "0"]
    assert fields[5] != "0.000s"  # it has been charged CPU time
    command_while_busy(tk, f"kill {pid}")
    assert f"spin[{pid}]: terminated" in tk.lines()
    tk.command("ps")
    assert not any(line.split()[-1:] == ["spin"] for line in tk.lines()[-4:])


def test_ctrl_c_ends_a_foreground_program(tk: BootedPc) -> None:
    before = tk.prompts_seen()
    tk.type("spin\n")
    tk.run_to_stop(100 * MS)
    assert tk.prompts_seen() == before  # spin holds the foreground
    for event in (("lctrl", True), ("c", True), ("c", False), ("lctrl", False)):
        tk.machine.channels.send("keyboard-key", event)
        tk.run_to_stop(20 * MS)
    tk.run_until(lambda: tk.prompts_seen() > before, 1_000 * MS)
    tk.command("echo after")
    assert "^C" in tk.text() and "after" in tk.lines()


def test_a_burst_of_keys_arrives_in_one_interrupt_while_a_process_runs(tk: BootedPc) -> None:
    tk.command("spin &")
    tk.run_to_stop(20 * MS)
    for event in text_to_key_events("ab&cd"):  # 13 bytes queue in the keyboard's FIFO
        tk.machine.channels.send("keyboard-key", event)
    tk.run_to_stop(MS)  # one slice: the driver drains what queued behind the first byte
    assert PROMPT + "ab&cd" in tk.lines()


def test_system_calls_stay_exact_under_real_time_preemption(tmp_path) -> None:  # noqa: ANN001
    """Thousands of slow-path system calls (sched_yield through the IDT) while the slice timer
    stops the CPU at random points: every call must return 0 exactly once (a stop that landed
    after an exception delivered in the hook used to repeat `int 0x80` with EAX clobbered)."""
    from collections import deque

    from tradekernel.disktool import create_os_disk
    from tradekernel.emu.pc import PcConfig
    from tradekernel.ui.session import make_pc

    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    pc = make_pc(PcConfig(disk=disk))  # real time: the slice timer is on
    serial = bytearray()
    pc.machine.channels.listen("com1-tx", serial.extend)
    keys = deque(text_to_key_events("sysbench yield 3000\n"))

    def feed() -> bool:
        if not keys or PROMPT.encode() not in serial:
            return False
        pc.machine.channels.send("keyboard-key", keys.popleft())
        return True

    pc.machine.feed_when_idle(feed)
    try:
        pc.machine.run(wall_timeout_s=60, until=lambda: b"calls (" in serial)
    finally:
        pc.machine.close()
    assert "sysbench: 3000 calls (0)" in serial.decode()


def test_an_irq_raised_during_another_is_taken_in_the_same_kernel_entry(tk: BootedPc) -> None:
    """IRQ5 (unused) raised from inside the IRQ1 handler, while a process holds the CPU: the
    kernel polls the PIC after its EOI and runs IRQ5's handler before it leaves, at the same
    virtual time, instead of after the iret (the deterministic clock's slice end)."""
    kernel, clock = tk.pc.kernel, tk.machine.clock
    line = tk.machine.board.irq(5)
    seen: list[tuple[str, int]] = []
    keyboard = kernel._irq_handlers[1]

    def on_keyboard(irq: int) -> None:
        seen.append(("irq1", clock.now_ns()))
        line.raise_()
        keyboard(irq)

    def on_irq5(_irq: int) -> None:
        seen.append(("irq5", clock.now_ns()))
        line.lower()

    kernel._irq_handlers[1] = on_keyboard
    kernel.on_irq(5, on_irq5)
    tk.command("spin &")
    tk.run_to_stop(20 * MS)
    seen.clear()
    for event in text_to_key_events("x"):
        tk.machine.channels.send("keyboard-key", event)
    tk.run_to_stop(MS)
    assert seen[0][0] == "irq1" and ("irq5", seen[0][1]) in seen


def test_a_line_typed_while_a_program_runs_goes_to_the_shell_after_it(tk: BootedPc) -> None:
    before = tk.prompts_seen()
    tk.type("spin 40\n")
    tk.run_until(lambda: not tk._keys, SECOND_NS)  # the Enter is in
    tk.run_to_stop(10 * MS)
    text = "echo typed ahead\n"
    for start in range(0, len(text), 2):  # two keys a slice: within the keyboard's FIFO
        for event in text_to_key_events(text[start : start + 2]):
            tk.machine.channels.send("keyboard-key", event)
        tk.run_to_stop(MS)
    assert tk.prompts_seen() == before  # spin still holds the foreground
    tk.run_until(lambda: tk.prompts_seen() >= before + 2, 5 * SECOND_NS)
    lines = [line for line in tk.lines() if line]
    start = lines.index("spin: 40 million iterations done")
    assert lines[start + 1 :] == [PROMPT + "echo typed ahead", "typed ahead", PROMPT.rstrip()]
