"""The same disks under QEMU (SeaBIOS): our committed image must notice it is not on the
TradeKernel machine and say so, and a plain-PC boot sector must leave the same screen there
as on our BIOS. QEMU's screen is read through its monitor (pmemsave of 0xB8000)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.peers import peer
from tradekernel.disktool import create_os_disk
from tradekernel.ui.keymap import tap, with_modifier

from .bootrun import END_MARKER, boot, make_disk, sample
from .test_samples import (
    A20_OFF_ROWS,
    A20_ON_ROWS,
    DISK_TEXT,
    MEMORY_MIB,
    MEMORY_ROWS,
    OVERLAY_ROWS,
    PIT_HZ,
    TICK_DIVISOR,
    WAIT_TICKS,
    check_pc_memory_rules,
    parse_memory_rows,
)

OTHER_PC_MESSAGE = "This image needs the TradeKernel machine: run tk boot"
SCREEN_BYTES = 80 * 25 * 2
DEADLINE_S = 10.0
PROMPT = b"\r\n(qemu) "  # after a command's output (the echo redraws the line without it)
# SeaBIOS's boot-time tick count wraps once the day's thousandths of a tick pass 2**32 / 3
# (from about 21:50:34 UTC): measured at 22:25 and 22:59 UTC, its count was the expected one
# less 2**32 / 3000 ticks, within half a second. Our BIOS does not wrap (test_samples.py).
SEABIOS_TICK_WRAP = 2**32 / 3000


class Qemu:
    """One QEMU run: a scratch folder, the HMP monitor on a unix socket, the debug console
    (port 0xE9) in a file."""

    def __init__(self, disk: Path, scratch: Path, floppy: bool = False) -> None:
        """`floppy`: `disk` is a diskette in A: (booted), not the first hard disk."""
        self.scratch = scratch
        self.debug_log = scratch / "debugcon.log"
        monitor = scratch / "monitor.sock"
        self.process = subprocess.Popen(
            [peer("qemu-system-i386"), "-display", "none", "-net", "none",
             "-m", str(MEMORY_MIB), "-no-reboot",
             "-drive", f"file={disk},format=raw,snapshot=on" + (",if=floppy" if floppy else ""),
             "-boot", "a" if floppy else "c",
             "-debugcon", f"file:{self.debug_log}",
             "-monitor", f"unix:{monitor},server,nowait"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.monitor = self._connect(monitor)
        self._until_prompt()

    def _connect(self, path: Path) -> socket.socket:
        end = time.monotonic() + DEADLINE_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"QEMU exited: {self.process.stderr.read().decode()}")
            try:
                monitor = socket.socket(socket.AF_UNIX)
                monitor.settimeout(DEADLINE_S)
                monitor.connect(str(path))
                return monitor
            except (FileNotFoundError, ConnectionRefusedError):
                monitor.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    def _until_prompt(self) -> bytes:
        received = b""
        while not received.endswith(PROMPT):
            chunk = self.monitor.recv(4096)
            if not chunk:
                raise RuntimeError("QEMU closed its monitor")
            received += chunk
        return received

    def command(self, line: str) -> bytes:
        self.monitor.sendall(line.encode() + b"\n")
        return self._until_prompt()

    def memory(self, address: int, size: int) -> bytes:
        dump = self.scratch / "memory.bin"
        dump.unlink(missing_ok=True)
        self.command(f'pmemsave {address:#x} {size} "{dump}"')
        data = dump.read_bytes()
        assert len(data) == size, f"pmemsave wrote {len(data)} of {size} bytes"
        return data

    def screen(self) -> bytes:
        return self.memory(0xB8000, SCREEN_BYTES)

    def wait_for(self, condition: Callable[[], bool]) -> None:
        end = time.monotonic() + DEADLINE_S
        while not condition():
            if time.monotonic() > end:
                pytest.fail(
                    f"QEMU did not get there in {DEADLINE_S} s; screen:\n{rows(self.screen())}"
                )
            time.sleep(0.1)

    def close(self) -> None:
        self.monitor.close()
        self.process.kill()
        self.process.wait()
        self.process.stderr.close()


@contextmanager
def qemu(disk: Path, floppy: bool = False) -> Iterator[Qemu]:
    # A short folder of its own: unix socket paths are limited to about 100 characters.
    with tempfile.TemporaryDirectory(prefix="tkq") as scratch:
        run = Qemu(disk, Path(scratch), floppy)
        try:
            yield run
        finally:
            run.close()


def rows(cells: bytes) -> list[str]:
    return [cells[r * 160 : (r + 1) * 160 : 2].decode("cp437").rstrip() for r in range(25)]


def test_tradekernel_image_says_it_needs_the_tradekernel_machine(tmp_path):
    copy = tmp_path / "tradekernel.img"
    create_os_disk(copy)
    with qemu(copy) as vm:
        vm.wait_for(lambda: vm.debug_log.read_bytes() == OTHER_PC_MESSAGE.encode())
        cells = vm.screen()
    assert rows(cells)[2] == OTHER_PC_MESSAGE
    row = cells[2 * 160 : 3 * 160]
    assert set(row[1 : 2 * len(OTHER_PC_MESSAGE) : 2]) == {0x4F}  # white on red


def test_hello_sample_gives_the_same_screen_as_our_bios(tmp_path):
    image = make_disk(tmp_path / "hello.img", sample("hello"))
    ours = boot(image)
    with qemu(image) as vm:
        vm.wait_for(lambda: END_MARKER in rows(vm.screen())[16])
        cells = vm.screen()
        cursor = vm.memory(0x450, 2)  # BDA: page 0 cursor, column then row
    shown = range(0, 17)  # everything the sample drew
    assert rows(cells)[: shown.stop] == ours.rows[: shown.stop]
    assert cells[: shown.stop * 160] == ours.cells(shown)
    screen = ours.pc.vga.text_screen()
    assert (cursor[1], cursor[0]) == (screen.cursor_row, screen.cursor_col)


def test_disk_sample_reads_the_same_under_seabios(tmp_path):
    image = make_disk(tmp_path / "disk.img", sample("disk"), DISK_TEXT)
    ours = boot(image, read_only=True).rows
    with qemu(image) as vm:
        vm.wait_for(lambda: any(END_MARKER in row for row in rows(vm.screen())))
        theirs = rows(vm.screen())
    start = next(i for i, row in enumerate(theirs) if row.startswith("st="))
    theirs = theirs[start : start + 7]
    # Row 4 is AH=41h's CX: SeaBIOS also claims EDD (bit 2) and removable-drive functions.
    assert theirs[:4] + theirs[5:6] == ours[:4] + ours[5:6]
    assert theirs[6] == f"st=00 st=00 {END_MARKER}"  # QEMU's snapshot disk takes the writes


@pytest.mark.parametrize(
    ("our_keys", "qemu_keys"),
    [
        (with_modifier("lalt", "1"), ["alt-1"]),
        (with_modifier("lalt", "a"), ["alt-a"]),
        (with_modifier("lshift", "tab"), ["shift-tab"]),
        (with_modifier("lctrl", "enter"), ["ctrl-ret"]),
        (with_modifier("lctrl", "c"), ["ctrl-c"]),
        (with_modifier("lshift", "h"), ["shift-h"]),
        (tap("up"), ["up"]),
        (tap("f1"), ["f1"]),
        (tap("kp7"), ["kp_7"]),
        (tap("numlock") + tap("kp7"), ["num_lock", "kp_7"]),
        (tap("numlock") + tap("up"), ["num_lock", "up"]),
        (tap("kpstar"), ["kp_multiply"]),
        (tap("insert"), ["insert"]),
    ],
)
def test_keys_sample_reads_the_same_words_under_seabios(tmp_path, our_keys, qemu_keys):
    image = make_disk(tmp_path / "keys.img", sample("keys"))
    ours = boot(image, keys=[*our_keys, *tap("enter")]).rows[2]
    with qemu(image) as vm:
        vm.wait_for(lambda: "peek: empty" in rows(vm.screen())[1:])
        for key in qemu_keys:
            vm.command(f"sendkey {key}")
        # The ">" prompt comes after the whole "peek=... get=..." row has been written.
        vm.wait_for(lambda: any(row.startswith(">") for row in rows(vm.screen())))
        theirs = next(row for row in rows(vm.screen()) if row.startswith("peek="))
    assert theirs == ours


def test_memory_sample_a20_rows_are_seabios_rows(tmp_path):
    """What the A20 tests expect of our BIOS is what SeaBIOS does on QEMU."""
    image = make_disk(tmp_path / "memory.img", sample("memory"))
    with qemu(image) as vm:
        vm.wait_for(lambda: any(END_MARKER in row for row in rows(vm.screen())))
        theirs = rows(vm.screen())
    start = theirs.index(A20_ON_ROWS[0])
    expected = A20_ON_ROWS + A20_OFF_ROWS
    assert theirs[start : start + len(expected)] == expected


def test_memory_sample_rows_follow_the_rules_seabios_follows(tmp_path):
    """SeaBIOS lays memory out differently (a 1 KiB EBDA, ACPI tables at the top of RAM), so its
    rows are not ours; but both must pass the same PC rules, and the int 11h bits we report
    (video mode, x87, serial ports) must read as SeaBIOS's do on the same board."""
    image = make_disk(tmp_path / "memory.img", sample("memory"))
    with qemu(image) as vm:
        vm.wait_for(lambda: any(END_MARKER in row for row in rows(vm.screen())))
        theirs = rows(vm.screen())
    first = next(i for i, row in enumerate(theirs) if row.startswith("int12="))
    end = theirs.index(A20_ON_ROWS[0])
    check_pc_memory_rules(theirs[first:end], MEMORY_MIB << 20)
    shared_bits = 0x0030 | 0x0002 | 0x0E00  # video mode, x87, serial port count
    _, _, equipment, _ = parse_memory_rows(theirs[first:end])
    _, _, ours, _ = parse_memory_rows(MEMORY_ROWS)
    assert ours & shared_bits == equipment & shared_bits


def test_ticks_sample_follows_the_same_clock_rules_under_seabios(tmp_path):
    """The tick count a boot sector waits on, int 1Ah and the RTC, on QEMU's clock (the host's
    UTC time): the same rules test_samples.py checks on ours, with the start read from the
    host's clock instead of a fixed instant."""
    image = make_disk(tmp_path / "ticks.img", sample("ticks"))
    started = datetime.now(UTC)
    with qemu(image) as vm:
        vm.wait_for(lambda: any(END_MARKER in row for row in rows(vm.screen())))
        theirs = [row for row in rows(vm.screen()) if row][-5:]
    ended = datetime.now(UTC)
    first, last = (int(value, 16) for value in theirs[0].split()[1::2])
    assert last - first == WAIT_TICKS
    assert theirs[1] == f"int 1Ah/00 {last:08X} same, midnight=00"
    assert theirs[4] == END_MARKER
    shown = datetime.strptime(theirs[3][5:] + " " + theirs[2][5:], "%Y-%m-%d %H:%M:%S")
    shown = shown.replace(tzinfo=UTC)
    assert started - timedelta(seconds=2) <= shown <= ended + timedelta(seconds=1)
    midnight = shown.replace(hour=0, minute=0, second=0)
    # the count POST set from the RTC, then 18.2 ticks a second: within two seconds of it
    seconds = (shown - midnight).total_seconds() - WAIT_TICKS * TICK_DIVISOR / PIT_HZ
    expected = seconds * PIT_HZ / TICK_DIVISOR
    if expected >= SEABIOS_TICK_WRAP:
        expected -= SEABIOS_TICK_WRAP
    assert abs(first - expected) < 2 * PIT_HZ / TICK_DIVISOR


def test_overlay_sample_gives_the_same_screen_as_seabios(tmp_path):
    """Code read by int 13h over code that already ran: QEMU runs the new code, and so must we."""
    image = make_disk(tmp_path / "overlay.img", sample("overlay"))
    ours = boot(image)
    with qemu(image) as vm:
        vm.wait_for(lambda: any(END_MARKER in row for row in rows(vm.screen())))
        cells = vm.screen()
    theirs = rows(cells)
    start = next(i for i, row in enumerate(theirs) if row.startswith("reload:"))
    assert theirs[start : start + 3] == OVERLAY_ROWS == ours.rows[:3]
    assert cells[start * 160 : (start + 3) * 160] == ours.cells(range(0, 3))
