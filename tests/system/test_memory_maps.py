"""mmap/munmap/mprotect, System V shared memory, the filesystem's names and the tty's ioctls
from ring 3, a fork bomb, and real-time against normal scheduling, all through the shell.
The programs are images/programs/{mmaptest,shmring,fileops,forkbomb,spin}.c."""

from __future__ import annotations

import re

import pytest

from tests.system.harness import BootedPc
from tests.system.test_ipc import output_of
from tests.system.test_processes import command_while_busy, frames_used
from tradekernel.ui.keymap import text_to_key_events

SECOND = 1_000_000_000
MS = 1_000_000


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def serial_output_of(tk: BootedPc, line: str, virtual_ns: int = 10 * SECOND) -> list[str]:
    """What a command printed, read from the serial console: longer than a screen."""
    start = len(tk.serial)
    tk.command(line, virtual_ns)
    text = tk.serial[start:].decode("cp437").replace("\r", "")
    return [row for row in text.split("\n")[1:-1] if row]


def last_lines(tk: BootedPc) -> list[str]:
    return [line for line in tk.lines() if line]


def test_anonymous_mappings_and_segments_behave_as_on_linux(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    lines = serial_output_of(tk, "mmaptest")
    assert [line for line in lines if not line.endswith(" ok")] == ["mmaptest: 0 failures"]
    assert len(lines) == 26  # 25 checks and the count
    assert frames_used(tk) == baseline  # mappings and segments gave their frames back
    assert output_of(tk, "ipcs") == ["no shared-memory segments"]


def test_a_write_to_a_page_made_read_only_kills_only_the_writer(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    lines = serial_output_of(tk, "mmaptest protect")
    assert "mmaptest: read-only page reads 1; writing it" in lines
    assert not any("FAIL" in line for line in lines)
    assert re.fullmatch(
        r"mmaptest\[\d+\]: segmentation fault at 0x4[0-9a-f]{7} \(user write to a read-only "
        r"page\), eip 0x080[0-9a-f]{5}",
        lines[-1],
    )
    assert output_of(tk, "echo still here") == ["still here"]
    assert frames_used(tk) == baseline


@pytest.mark.parametrize("kind", ["", "-m "])
def test_a_ring_in_shared_memory_carries_every_word(tk: BootedPc, kind: str) -> None:
    lines = output_of(tk, f"shmring {kind}20000", 30 * SECOND)
    assert re.fullmatch(r"shmring: consumer got 20000 words, checksum [0-9a-f]+ ok", lines[0])
    label = "mmap MAP_SHARED" if kind else "System V segment"
    assert lines[1] == f"shmring: {label}, consumer exit 0"


def test_unrelated_processes_meet_in_a_segment_by_its_key(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    tk.command("shmring produce 77 5000 &")
    command_while_busy(tk, "ipcs")
    segment = last_lines(tk)[-2].split()
    assert segment[1:4] == ["0x0000004d", "4112", "1"]  # key 77, one attachment: the producer
    command_while_busy(tk, "shmring consume 77 5000")
    assert re.fullmatch(r"shmring: consumer got 5000 words, checksum [0-9a-f]+ ok",
                        last_lines(tk)[-2])  # fmt: skip
    tk.run_to_stop(100 * MS)  # the producer sees the ring drained, detaches and exits
    assert output_of(tk, "ipcs") == ["no shared-memory segments"]
    assert frames_used(tk) == baseline


def test_system_calls_on_names_and_the_tty(tk: BootedPc) -> None:
    lines = output_of(tk, "fileops")
    assert lines[-1] == "fileops: console 80x25, 0 failures"
    assert not any(line.endswith("FAIL") for line in lines)
    assert output_of(tk, "ls /tmp/fileops") == ["kept.txt"]
    assert output_of(tk, "cat /tmp/fileops/kept.txt") == ["kept"]


def test_a_fork_bomb_is_contained(tk: BootedPc) -> None:
    baseline = frames_used(tk)
    before = tk.prompts_seen()
    tk.type("forkbomb\n")
    tk.run_until(lambda: "forkbomb: fork: EAGAIN, the process table is full" in tk.text(),
                 2 * SECOND)  # fmt: skip
    assert tk.prompts_seen() == before
    for event in (("lctrl", True), ("c", True), ("c", False), ("lctrl", False)):
        tk.machine.channels.send("keyboard-key", event)
        tk.run_to_stop(20 * MS)
    tk.run_until(lambda: tk.prompts_seen() > before, SECOND)
    assert output_of(tk, "ps")[2:] == []  # the kernel line and the header only
    assert output_of(tk, "hello") == ["hello, world"]
    assert frames_used(tk) == baseline


def test_the_shell_can_start_programs_while_a_fork_bomb_fills_the_table(tk: BootedPc) -> None:
    tk.command("forkbomb &")
    pid = re.findall(r"\[(\d+)\] forkbomb", tk.text())[-1]
    tk.run_until(lambda: "EAGAIN" in tk.text(), 2 * SECOND)
    command_while_busy(tk, "hello")
    assert "hello, world" in tk.lines()
    command_while_busy(tk, f"kill -KILL {pid}")  # its children are orphans and go on
    start = len(tk.serial)
    command_while_busy(tk, "ps")
    table = tk.serial[start:].decode("cp437").splitlines()
    assert not any(line.split()[:1] == [pid] for line in table)
    assert sum(line.endswith(" forkbomb") for line in table) == 60  # 64 less the reserve


def type_fast(tk: BootedPc, line: str) -> None:
    """A command typed while spinning processes hold the CPU: two keys a time slice (at most
    12 bytes, within the keyboard's 16-byte FIFO), each burst drained by one IRQ1."""
    before = tk.prompts_seen()
    text = line + "\n"
    for start in range(0, len(text), 2):
        for event in text_to_key_events(text[start : start + 2]):
            tk.machine.channels.send("keyboard-key", event)
        tk.run_to_stop(MS)
    tk.run_until(lambda: tk.prompts_seen() > before, SECOND)


def cpu_seconds(tk: BootedPc, *pids: str) -> list[float]:
    type_fast(tk, "ps")
    rows = {line.split()[0]: line.split() for line in tk.lines() if line.split()}
    return [float(rows[pid][5].rstrip("s")) for pid in pids]


def test_a_real_time_spin_starves_a_normal_one_and_not_the_reverse(tk: BootedPc) -> None:
    tk.command("spin &")
    normal = re.findall(r"\[(\d+)\] spin", tk.text())[-1]
    type_fast(tk, "spin &")
    rt = re.findall(r"\[(\d+)\] spin", tk.text())[-1]
    type_fast(tk, f"chrt -f 10 {rt}")
    start = cpu_seconds(tk, normal, rt)
    tk.run_to_stop(100 * MS)
    end = cpu_seconds(tk, normal, rt)
    assert end[0] - start[0] <= 0.002  # the normal spin got nothing
    assert end[1] - start[1] >= 0.09  # the real-time one nearly all of it
    type_fast(tk, f"chrt -o 0 {rt}")
    start = cpu_seconds(tk, normal, rt)
    tk.run_to_stop(100 * MS)
    end = cpu_seconds(tk, normal, rt)
    assert min(end[0] - start[0], end[1] - start[1]) >= 0.03  # both normal again: shared
