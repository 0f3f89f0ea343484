"""Boot sectors written for any PC (images/samples), run on our BIOS with nothing else: each
prints what it asked the BIOS, and the expected screen is worked out here from the sample's
own rules and the board's facts (geometry, memory map, start time)."""

from __future__ import annotations

import functools
import itertools
import math
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.peers import peer
from tradekernel.devices.ide import default_geometry
from tradekernel.emu.pc import DETERMINISTIC_EPOCH, Pc, PcConfig
from tradekernel.ui.ansi import screen_text
from tradekernel.ui.keymap import tap, text_to_key_events, with_modifier

from .bootrun import DISK_BYTES, END_MARKER, SAMPLES, SECTOR, boot, make_disk, sample

PIT_HZ = 1193182
TICK_DIVISOR = 65536  # the BIOS runs PIT channel 0 at 18.2 Hz


# ---- int 10h --------------------------------------------------------------------------------
def test_hello_video_services(tmp_path):
    run = boot(make_disk(tmp_path / "hello.img", sample("hello")))
    assert run.reason == "until"
    rows = run.rows
    assert rows[0] == "Hello from a boot sector!"
    # AH=09h leaves the cursor where it was: five X at column 4, "colours" cell by cell at 10.
    assert rows[3] == " " * 4 + "X" * 5 + " " + "colours"
    assert run.attributes(3)[4:9] == bytes([0x1E] * 5)
    assert run.attributes(3)[10:17] == bytes(range(0x21, 0x28))
    assert run.attributes(3)[9] == 0x07 and run.attributes(3)[17] == 0x07
    # AH=06h, rows 6-8 up one: B, C, then a blank row in the fill attribute 0x07.
    assert rows[6:9] == ["line B", "line C", ""]
    assert run.attributes(8) == bytes([0x07] * 80)
    # AH=07h, rows 10-12 and columns 0-5 down one: a blank strip in 0x70, then D and E.
    assert rows[10:12] == ["", "line D"]
    assert run.attributes(10)[:6] == bytes([0x70] * 6) and run.attributes(10)[6] == 0x07
    # AH=13h: mode 1 moves the cursor past its string, mode 2 (pairs) leaves it, so the '!'
    # printed next follows "write string".
    string = "write string"
    assert rows[12] == "line E".ljust(20) + (string + "!").ljust(20) + "ok"
    assert run.attributes(12)[20 : 20 + len(string) + 1] == bytes([0x4E] * len(string) + [0x07])
    assert run.attributes(12)[40:42] == bytes([0x1F, 0x2F])
    # AH=03h after "at:" printed from row 14, column 7.
    at_col = 7 + len("at:")
    assert rows[14] == " " * 7 + f"at:{14},{at_col}"
    # AH=00h with AL = 83h kept all of the above; AH=0Fh: 80 columns, mode 3 with bit 7, page 0.
    assert rows[15] == f"0Fh AX={(80 << 8) | 0x80 | 0x03:04X} BH=00"
    assert rows[16] == END_MARKER
    screen = run.pc.vga.text_screen()
    assert (screen.cursor_row, screen.cursor_col) == (16, len(END_MARKER))


# ---- int 16h --------------------------------------------------------------------------------
SET1_ASDF_ROW = 0x1E  # set 1 make codes: a=1E s=1F d=20 f=21 g=22 h=23 ...


def test_keys_echo_reverse_peek_and_shift_flags(tmp_path):
    typed = "Hello, BIOS 42!"
    keys = text_to_key_events(typed) + [
        ("lshift", True),
        *tap("enter"),
        ("lshift", False),
    ]
    run = boot(make_disk(tmp_path / "keys.img", sample("keys")), keys=keys)
    assert run.reason == "until"
    first = ((SET1_ASDF_ROW + "asdfgh".index("h")) << 8) | ord("H")
    assert run.rows[:7] == [
        "keys: type a line, Enter ends it",
        "peek: empty",
        f"peek={first:04X} get={first:04X}",
        "> " + typed,
        "reversed: " + typed[::-1],
        "shift flags=02",  # left Shift still held when Enter was read
        END_MARKER,
    ]


@pytest.mark.parametrize(
    ("first_key", "word"),
    [
        (with_modifier("lalt", "1"), 0x7800),  # Alt + top-row 1: scan code 78h, no ASCII
        (with_modifier("lalt", "a"), 0x1E00),  # Alt + letter: the key's scan code, no ASCII
        (with_modifier("lshift", "tab"), 0x0F00),  # Shift-Tab (back-tab)
        (with_modifier("lctrl", "enter"), 0x1C0A),  # Ctrl-Enter: line feed
        (with_modifier("lctrl", "c"), 0x2E03),  # Ctrl-C
        (tap("capslock") + tap("a"), 0x1E41),  # Caps Lock makes a letter capital
        (tap("up"), 0x4800),  # a grey (E0-prefixed) key: scan code, no ASCII
        (tap("f1"), 0x3B00),
    ],
)
def test_keys_bios_words(tmp_path, first_key, word):
    run = boot(make_disk(tmp_path / "keys.img", sample("keys")), keys=first_key + tap("enter"))
    assert run.reason == "until"
    assert run.rows[2] == f"peek={word:04X} get={word:04X}"


# ---- int 13h --------------------------------------------------------------------------------
DISK_TEXT = {
    1: b"CHS sector one..",
    2: b"CHS sector two..",
    1100: b"CHS at LBA 1100.",
    1500: b"LBA 1500 via 42h",
}


def written_pattern(name: bytes) -> bytes:
    """What disk.asm writes: bytes 0, 1, ... 255, 0, ... with the writer's name on top."""
    pattern = bytearray(i & 0xFF for i in range(SECTOR))
    pattern[: len(name)] = name
    return bytes(pattern)


def disk_params_cx_dx() -> tuple[int, int]:
    """int 13h AH=08h for our 1 MiB disk: the highest cylinder leaves the last one out (the
    IBM AT's diagnostic cylinder), 10 bits split over CH and CL 6-7; DH = heads - 1; DL = 1."""
    cylinders, heads, spt = default_geometry(DISK_BYTES // SECTOR)
    highest = min(cylinders, 1024) - 2
    return ((highest & 0xFF) << 8) | ((highest >> 2) & 0xC0) | spt, ((heads - 1) << 8) | 1


def disk_rows(write_status: int) -> list[str]:
    cx, dx = disk_params_cx_dx()
    text = {lba: data.decode() for lba, data in DISK_TEXT.items()}
    return [
        f"st=00 08h CX={cx:04X} DX={dx:04X}",
        f"st=00 {text[1]}",
        text[2],
        f"st=00 {text[1100]}",
        "ext 0001",  # AH=41h: the fixed-disk subset (41h-44h, 47h, 48h)
        f"st=00 {text[1500]}",
        f"st={write_status:02X} st={write_status:02X} {END_MARKER}",
    ]


def test_disk_reads_writes_and_parameters(tmp_path):
    image = make_disk(tmp_path / "disk.img", sample("disk"), DISK_TEXT)
    before = image.read_bytes()
    run = boot(image, read_only=False)
    assert run.reason == "until"
    assert run.rows[:7] == disk_rows(write_status=0)
    after = image.read_bytes()
    assert after[3 * SECTOR : 4 * SECTOR] == written_pattern(b"by AH=03")
    assert after[2000 * SECTOR : 2001 * SECTOR] == written_pattern(b"by AH=43")
    untouched = bytearray(after)
    for lba in (3, 2000):
        untouched[lba * SECTOR : (lba + 1) * SECTOR] = before[lba * SECTOR : (lba + 1) * SECTOR]
    assert bytes(untouched) == before


def test_disk_writes_refused_on_a_read_only_disk(tmp_path):
    image = make_disk(tmp_path / "disk.img", sample("disk"), DISK_TEXT)
    before = image.read_bytes()
    run = boot(image, read_only=True)
    assert run.rows[:7] == disk_rows(write_status=0x03)  # 03h: write protected
    assert image.read_bytes() == before


# ---- int 1Ah and the tick count -------------------------------------------------------------
WAIT_TICKS = 27  # ticks.asm


def test_ticks_timer_and_rtc(tmp_path):
    run = boot(make_disk(tmp_path / "ticks.img", sample("ticks")))
    assert run.reason == "until"
    start = DETERMINISTIC_EPOCH
    since_midnight = start.hour * 3600 + start.minute * 60 + start.second
    first = since_midnight * PIT_HZ // TICK_DIVISOR  # POST sets the count from the RTC
    last = first + WAIT_TICKS
    waited_s = WAIT_TICKS * TICK_DIVISOR / PIT_HZ
    assert 0.1 < waited_s % 1 < 0.9, "the expected RTC second must not sit on a boundary"
    now = start + timedelta(seconds=math.floor(waited_s))
    assert run.rows[:5] == [
        f"ticks {first:08X} -> {last:08X}",
        f"int 1Ah/00 {last:08X} same, midnight=00",
        f"time {now:%H:%M:%S}",  # BCD bytes printed in hex read as decimal
        f"date {now:%Y-%m-%d}",
        END_MARKER,
    ]


# ---- int 11h, 12h, 15h ----------------------------------------------------------------------
# What memory.asm prints on a 32 MiB PC, written out as literals (never from tradekernel.memmap,
# so a wrong constant there fails here): 636 KiB below a 4 KiB EBDA at 9F000h, everything above
# 1 MiB as extended memory, the BIOS ROM F0000h-FFFFFh reserved. test_qemu.py checks the rules
# these rows follow against SeaBIOS's answers on QEMU.
MEMORY_MIB = 32
MEMORY_ROWS = [
    "int12=636K int15/88=31744K int11=0222",  # int11: 80x25 colour, x87, one serial port
    "E820 0000000000000000 000000000009F000 01",
    "E820 000000000009F000 0000000000001000 02",
    "E820 00000000000F0000 0000000000010000 02",
    "E820 0000000000100000 0000000001F00000 01",
]


def parse_memory_rows(rows: list[str]) -> tuple[int, int, int, list[tuple[int, int, int]]]:
    """(int 12h bytes, int 15h/88h bytes, int 11h word, E820 entries) from memory.asm's rows."""
    sizes = dict(field.split("=") for field in rows[0].split())
    e820 = [
        (int(base, 16), int(length, 16), int(kind, 16))
        for _, base, length, kind in (row.split() for row in rows[1:] if row.startswith("E820"))
    ]
    return (int(sizes["int12"][:-1]) * 1024, int(sizes["int15/88"][:-1]) * 1024,
            int(sizes["int11"], 16), e820)  # fmt: skip


def check_pc_memory_rules(rows: list[str], ram_bytes: int) -> None:
    """What a PC program may rely on, whatever the BIOS: int 12h ends the first usable E820
    range at 0, the rest below A0000h is reserved (the EBDA), the ROM F0000h-FFFFFh is
    reserved, int 15h/88h is the size of the usable range at 1 MiB, nothing usable lies past
    the RAM, and the ranges are sorted and do not overlap."""
    conventional, extended, _, e820 = parse_memory_rows(rows)
    assert e820[0] == (0, conventional, 1)
    assert 512 * 1024 <= conventional <= 0xA0000
    below = [(base, length, kind) for base, length, kind in e820 if base < 0xA0000]
    assert sum(length for _, length, _ in below) == 0xA0000
    assert all(kind == 2 for _, _, kind in below[1:])
    assert any(base <= 0xF0000 and base + length >= 0x100000 and kind == 2
               for base, length, kind in e820)  # fmt: skip
    assert (0x100000, extended, 1) in e820
    assert all(base + length <= ram_bytes for base, length, kind in e820 if kind == 1)
    assert all(a + size <= b for (a, size, _), (b, _, _) in itertools.pairwise(e820))


# memory.asm after the E820 walk: A20 on, how it can be switched, off, its state, on again.
A20_ON_ROWS = [
    "2401: CF0 wraps=0",
    "2403 BX=0003",  # A20 through the 8042 and port 92h
]
A20_OFF_ROWS = [
    "2400: CF0 wraps=1",  # the 8086 wrap: FFFF:0510 is 0000:0500
    "2402 AL=00",
    "2401: CF0 wraps=0",
    END_MARKER,
]


def test_memory_size_map_and_a20_on(tmp_path):
    run = boot(make_disk(tmp_path / "memory.img", sample("memory")), until_text="2400:")
    assert run.reason == "until"
    assert run.pc.machine.cpu.ram_bytes == MEMORY_MIB << 20
    expected = MEMORY_ROWS + A20_ON_ROWS
    assert run.rows[: len(expected)] == expected
    check_pc_memory_rules(run.rows[: len(MEMORY_ROWS)], MEMORY_MIB << 20)


def test_memory_a20_off_wraps(tmp_path):
    run = boot(make_disk(tmp_path / "memory.img", sample("memory")))
    base = len(MEMORY_ROWS + A20_ON_ROWS)
    assert run.rows[base : base + len(A20_OFF_ROWS)] == A20_OFF_ROWS


# ---- bootstrap and determinism --------------------------------------------------------------
def test_disk_without_boot_signature(tmp_path):
    image = make_disk(tmp_path / "blank.img", b"\xeb\xfe" + bytes(SECTOR - 2))
    run = boot(image, until_text="No bootable device")
    assert run.rows[0] == "Drive 0x80: no boot signature (0x55AA) in sector 0"
    assert run.rows[1] == "No bootable device."


@pytest.mark.parametrize("name", ["ticks", "keys"])
def test_deterministic_runs_are_identical(tmp_path, name):
    keys = text_to_key_events("same\r") if name == "keys" else []
    runs = [boot(make_disk(tmp_path / f"{name}{i}.img", sample(name)), keys=keys) for i in range(2)]
    assert all(run.reason == "until" for run in runs)
    first, second = (run.pc for run in runs)
    assert first.vga.text_screen() == second.vga.text_screen()
    assert first.machine.instructions == second.machine.instructions
    assert first.machine.clock.now_ns() == second.machine.clock.now_ns()


def test_lock_keys_toggle_shift_flags(tmp_path):
    keys = tap("insert") + tap("numlock") + tap("scrolllock") + tap("x") + tap("enter")
    run = boot(make_disk(tmp_path / "keys.img", sample("keys")), keys=keys)
    insert = 0x52 << 8  # Insert goes into the buffer too, with no ASCII
    assert run.rows[2] == f"peek={insert:04X} get={insert:04X}"
    assert run.rows[5] == f"shift flags={0x80 | 0x20 | 0x10:02X}"  # Insert, Num, Scroll Lock


@pytest.mark.parametrize(
    ("first_key", "word"),
    [
        (tap("numlock") + tap("kp7"), 0x4737),  # Num Lock on: the keypad types digits
        (tap("kp7"), 0x4700),  # Num Lock off: Home
        (tap("numlock") + with_modifier("lshift", "kp8"), 0x4800),  # Shift inverts Num Lock
        (tap("numlock") + tap("up"), 0x4800),  # a grey key ignores Num Lock
        (tap("numlock") + tap("kp0"), 0x5230),  # keypad 0 types, without toggling Insert
        (tap("kpstar"), 0x372A),
        (tap("pause") + tap("a"), 0x1E61),  # Pause (E1 1D 45 ...) moves no key or flag
    ],
)
def test_keypad_words(tmp_path, first_key, word):
    run = boot(make_disk(tmp_path / "keys.img", sample("keys")), keys=first_key + tap("enter"))
    assert run.rows[2] == f"peek={word:04X} get={word:04X}"
    flags = int(run.rows[5].removeprefix("shift flags="), 16)
    assert flags & 0x80 == 0  # Insert never toggled


def test_committed_samples_match_a_rebuild():
    peer("nasm")
    build = SAMPLES / "build.py"
    result = subprocess.run(
        [sys.executable, str(build), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- code read over code ---------------------------------------------------------------------
OVERLAY_ROWS = ["reload: AB", "self: CD", END_MARKER]


def test_overlay_runs_the_code_int13_read_over_code_it_had_run(tmp_path):
    """int 13h writes RAM from the host: the CPU must drop what it translated from the old
    bytes (a CPU running stale code prints "reload: AA" and "self: CC")."""
    run = boot(make_disk(tmp_path / "overlay.img", sample("overlay")))
    assert run.reason == "until"
    assert run.rows[:3] == OVERLAY_ROWS


# ---- polling the BIOS ---------------------------------------------------------------------------
POLL_TICKS = 5  # images/samples/poll.asm
POLL_KEYS_AT_NS = (400_000_000, 450_000_000, 500_000_000)
POLL_WALL_LIMIT_S = 60.0  # real time on a shared host: generous
# Deterministic runs of poll.bin on a 1-MIPS virtual CPU: the guest never idles, so virtual time
# moves only with instructions, and at the default 1 ns each five ticks would be 275 million.
POLL_NS_PER_INSTRUCTION = 1000
POLL_LOOP_SLACK_NS = 1_000_000  # from the fifth tick to the loop's exit: a few BIOS calls


def _poll_run(tmp_path, deterministic: bool):  # noqa: ANN202
    """Boot poll.bin; the keys a, b, c are pressed at fixed virtual times (the guest never
    idles, so they cannot wait for it). Deterministic runs also note the virtual time of the
    first `int 1Ah` and of the tick loop's exit (code hooks on those two instructions; real
    time goes without, as a code hook changes how its slices stop). Returns (Pc, the two
    times, stop reason)."""
    pc = Pc(PcConfig(disk=make_disk(tmp_path / "poll.img", sample("poll")), read_only=True,
                     deterministic=deterministic,
                     ns_per_instruction=POLL_NS_PER_INSTRUCTION))  # fmt: skip
    machine = pc.machine
    for at, char in zip(POLL_KEYS_AT_NS, "abc", strict=True):
        for event in text_to_key_events(char):
            press = functools.partial(machine.channels.send, "keyboard-key", event)
            machine.clock.call_at(at, press)
    times: dict[str, int] = {}
    if deterministic:
        code = sample("poll")
        first_poll = 0x7C00 + code.index(b"\xcd\x1a")  # int 0x1A (the sector runs at 0:7C00)
        loop_exit = 0x7C00 + code.index(b"\x83\xff" + bytes([POLL_TICKS]) + b"\x72") + 5
        for name, address in (("first poll", first_poll), ("loop exit", loop_exit)):
            machine.watch(address, functools.partial(_note_time, times, name, machine.clock))
    try:
        stop = machine.run(POLL_WALL_LIMIT_S, until=lambda: _row_with(pc, END_MARKER))
    finally:
        machine.close()
    return pc, times, stop.reason


def _note_time(times: dict[str, int], name: str, clock) -> None:  # noqa: ANN001
    times.setdefault(name, clock.now_ns())


def _row_with(pc: Pc, text: str) -> bool:
    return any(text in row for row in screen_text(pc.vga.text_screen()))


@pytest.mark.parametrize("deterministic", [False, True], ids=["real-time", "deterministic"])
def test_polling_int1a_and_int16_sees_ticks_and_keys(tmp_path, deterministic):
    """int 1Ah and int 16h run with IF=0: IRQ0 and IRQ1 must be taken at the boundary before
    each `int` (they starved before, the tick count frozen), in both clocks. The rate, 18.2 Hz
    of virtual time, is checked on the deterministic clock, where virtual time is exact
    whatever the host's load: from the first poll to the loop's exit at least four ticks
    (the first change may come right after the first poll) and at most five. In real time
    virtual time is the host's, so a loaded host stretched the boot into the bound it had."""
    pc, times, reason = _poll_run(tmp_path, deterministic)
    assert reason == "until"
    rows = [row.rstrip() for row in screen_text(pc.vga.text_screen())]
    assert rows[:3] == [f"int 1Ah ticks seen: {POLL_TICKS:04X}", "int 16h keys: abc", END_MARKER]
    if deterministic:
        tick_ns = TICK_DIVISOR * 1e9 / PIT_HZ
        polled_ns = times["loop exit"] - times["first poll"]
        assert (POLL_TICKS - 1) * tick_ns <= polled_ns <= POLL_TICKS * tick_ns + POLL_LOOP_SLACK_NS
