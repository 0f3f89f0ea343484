"""GuestMemory reports host writes that change RAM, and only those, to the machine (which drops
the CPU's translations of them)."""

from __future__ import annotations

from tradekernel.emu.memory import GuestMemory


def _memory() -> tuple[GuestMemory, list[tuple[int, int]]]:
    reported: list[tuple[int, int]] = []
    memory = GuestMemory(memoryview(bytearray(0x3000)), lambda a, n: reported.append((a, n)))
    return memory, reported


def test_changing_writes_are_reported_and_unchanging_ones_are_not() -> None:
    memory, reported = _memory()
    memory.write(0x100, b"\x90\x90")
    memory.write_u32(0x200, 0xDEADBEEF)
    assert reported == [(0x100, 2), (0x200, 4)]
    memory.write(0x100, b"\x90\x90")  # the same bytes again: no code can have changed
    memory.write_u32(0x200, 0xDEADBEEF)
    memory.write_u32(0x300, 0)  # RAM starts zeroed
    assert reported == [(0x100, 2), (0x200, 4)]
    memory.write(0x100, bytearray(b"\x90\xcc"))  # one byte differs: the whole write is told
    memory.write_u32(0x200, 0x1DEADBEEF)  # kept to 32 bits: 0xDEADBEEF again, unchanged
    memory.write_u32(0x200, 0xDEADBEEE)
    assert reported == [(0x100, 2), (0x200, 4), (0x100, 2), (0x200, 4)]
    assert memory.read(0x100, 2) == b"\x90\xcc" and memory.read_u32(0x200) == 0xDEADBEEE


def test_writes_past_ram_report_only_the_part_inside() -> None:
    memory, reported = _memory()
    memory.write(0x2FFE, b"abcd")
    assert reported == [(0x2FFE, 2)] and memory.read(0x2FFE, 4) == b"ab\xff\xff"
