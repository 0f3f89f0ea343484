"""The profiler: symbols agree with binutils' `nm`, and one boot-to-shell scenario profiles a
real program (`prof`), reads the counters (`vmstat`, `top`), the persistent log (`log`) and the
audit log (`audit`); with the profiler off no wrapper or timer is left anywhere."""

from __future__ import annotations

import json
import re
import subprocess
from importlib import resources
from pathlib import Path

from tests.peers import peer
from tests.system.harness import BootedPc
from tests.system.test_processes import type_while_busy
from tradekernel.kernel.obs.symbols import Symbols

MS = 1_000_000


def program(name: str) -> bytes:
    return resources.files("tradekernel").joinpath("data", "programs", name).read_bytes()


def test_symbols_agree_with_nm(tmp_path: Path) -> None:
    path = tmp_path / "sysbench"
    path.write_bytes(program("sysbench"))
    listing = subprocess.run(
        [peer("nm"), "-n", "-S", "--defined-only", str(path)], capture_output=True, text=True
    ).stdout
    symbols = Symbols.from_elf(path.read_bytes())
    checked = 0
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "Tt":
            address, size = int(parts[0], 16), int(parts[1], 16)
            assert symbols.function(address) == parts[3]
            assert symbols.name(address + size - 1) == f"{parts[3]}+{size - 1:#x}" or size == 1
            checked += 1
    assert checked > 20
    assert Symbols.from_elf(b"\x7fELF\x01" + bytes(60)).names == ()  # damaged: no symbols
    assert Symbols.from_elf(program("sysbench")[:200]).names == ()  # cut short: none either


def test_prof_vmstat_top_log_and_audit_in_the_os(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path).boot()
    kernel = tk.pc.kernel
    syscalls = kernel.syscall_entry.syscalls
    table_before = dict(syscalls.table)
    irqs_before = dict(kernel._irq_handlers)
    tk.command("buy AAPL 10 @100 -o alice")
    tk.command("sell AAPL 4 @100 -o bob")
    tk.command("nap 1 100000 &")  # system calls every millisecond (and a line each)
    tk.command("spin 1000 &")  # and the CPU busy
    before, start = tk.prompts_seen(), len(tk.serial)
    type_while_busy(tk, "prof -o /p.json 0.1\n")
    tk.run_until(lambda: tk.prompts_seen() > before, 2_000 * MS)
    text = bytes(tk.serial[start:]).decode("cp437").replace("\r\n", "\n")
    rows = re.findall(r"^\s+([\d.]+)%\s+(\d+)\s+(\d+)\s+spin\s+(\S+)$", text, re.MULTILINE)
    assert rows == [(rows[0][0], rows[0][1], rows[0][2], "main")], text  # symbolised
    assert float(rows[0][0]) > 80.0  # spin had the CPU; nap sleeps
    samples = int(re.search(r"# (\d+) samples in 0\.1\d\d s", text).group(1))
    assert 90 <= samples <= 101
    nanosleep = r"^\s+[\d.]+%\s+[\d.]+\s+[\d.]+\s+(\d+)\s+[\d.]+\s+syscall nanosleep$"
    assert int(re.search(nanosleep, text, re.MULTILINE).group(1)) >= 1  # spin delays its wake
    document = json.loads(kernel.fs.read_file("/p.json"))
    frames = [frame["name"] for frame in document["shared"]["frames"]]
    guest, services = document["profiles"]
    assert guest["type"] == "sampled" and sum(guest["weights"]) == samples
    assert ["spin[2]", "main"] in [[frames[i] for i in stack] for stack in guest["samples"]]
    assert any(frames[stack[-1]] == "syscall nanosleep" for stack in services["samples"])
    assert services["unit"] == "nanoseconds"
    # off again: the original handlers are back (the last sampling timer, already armed,
    # fires once more and does not re-arm: checked after vmstat below)
    assert syscalls.table == table_before and kernel._irq_handlers == irqs_before

    before = tk.prompts_seen()
    type_while_busy(tk, "kill %2\n")
    tk.run_until(lambda: tk.prompts_seen() > before, 1_000 * MS)
    rows = [line.split() for line in tk.output("vmstat 1 2") if line[:2].strip().isdigit()]
    assert len(rows) == 2, rows  # since boot, then over one second (procps: COUNT rows)
    assert not any("_tick" in repr(work) for *_, work in kernel._timers)
    interrupts, switches, calls = (float(v) for v in rows[-1][4:7])
    assert 900 <= calls and 900 <= interrupts and 900 <= switches, rows  # nap, every ms
    tk.command("kill %1")  # nap
    tk.type("top\n")
    tk.run_to_stop(1200 * MS)  # two refreshes
    lines = tk.lines()
    heap = re.fullmatch(r"mem: heap ([\d.]+)/4096 KiB, frames (\d+)/(\d+) \(4 KiB each\)", lines[2])
    assert heap and 0 < int(heap.group(2)) < int(heap.group(3))  # the heap is empty when idle
    assert lines[3] == "net: rx 0.0 KiB/s (0 pkt/s), tx 0.0 KiB/s (0 pkt/s)"  # no card here
    tk.type("q")
    tk.run_to_stop(100 * MS)
    vm = tk.output("vmstat -s")
    assert any(line.split()[1:] == ["system", "calls"] for line in vm)
    assert int(next(line.split()[0] for line in vm if line.endswith(" interrupts on IRQ 0"))) > 0

    audit = tk.output("audit -n 3")
    assert (
        audit[-4:-1]
        == [
            line
            for line in audit
            if re.match(r"#\d+ \d+ (accepted|partially_filled|filled) ", line)
        ][-3:]
    )
    assert audit[-1] == "audit: 6 records written this boot, next #7"  # 2 submitted too
    log = tk.output("log --subsystem log")
    assert len(log) == 1 and log[0].endswith("info    log: boot: TradeKernel 0.1.0 at 2026-01-02 "
                                             "09:30:00")  # fmt: skip
    assert tk.output("log --level bogus")[0].startswith("log: unknown log level 'bogus'")


def test_log_follows_new_entries_until_q(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path).boot()
    klog = tk.pc.kernel.klog
    klog.warning("test", "before the follow")
    tk.command("echo ready")
    before = tk.prompts_seen()
    tk.type("log -f --subsystem test\n")
    tk.run_to_stop(50 * MS)
    shown = [line for line in tk.lines() if line]
    assert shown[-1].endswith("warning test: before the follow"), shown  # the backlog
    klog.info("test", "while following")  # as a service logs, from inside the kernel
    klog.info("other", "not this subsystem")
    tk.type("x")  # any key enters the kernel; only q leaves
    tk.run_to_stop(50 * MS)
    shown = [line for line in tk.lines() if line]
    assert shown[-1].endswith("info    test: while following")
    assert not any("not this subsystem" in line for line in shown)
    assert tk.prompts_seen() == before
    tk.type("q")
    tk.run_until(lambda: tk.prompts_seen() > before, 100 * MS)
    klog.info("test", "after leaving")
    tk.command("echo done")
    assert "after leaving" not in tk.text()
    assert tk.output("log -f > /f.txt")[0] == (
        "log: -f prints to the console; it cannot be redirected or piped"
    )
