"""Unicorn 2.1.4 behaviours the machine cannot work around, pinned so that an upgrade that
changes them is noticed (docs/UNICORN.md names each). These assert Unicorn's behaviour, not an
x86's: when one fails, read the finding again and update the document and the machine."""

from __future__ import annotations

import struct

import pytest

from tests.machine.harness import EXIT_VECTOR, GDT, KERNEL_CS, RESULTS, ProtectedGuest

CALL_GATE_286 = 0x4
GATE_SELECTOR = 0x30  # the first extra GDT entry
RING0_TARGET = 0xA000  # below 64 KiB, where a 286 gate's 16-bit offset can reach


def _call_through_a_286_gate(high_word: int) -> ProtectedGuest:
    """Ring 3 calls ring 0 through an 80286 call gate whose (unused) offset bits 31-16 are
    `high_word`, as test386.asm's switchToRing0_2 builds it with 0xFFFF."""
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    call {GATE_SELECTOR | 3:#x}:0
""",
        extra_descriptors=(bytes(8),),
    )
    target = RING0_TARGET  # mov dword [RESULTS], 1; int EXIT_VECTOR
    code = b"\xc7\x05" + struct.pack("<II", RESULTS, 1) + bytes((0xCD, EXIT_VECTOR))
    guest.ram[target : target + len(code)] = code
    access = 0x80 | (3 << 5) | CALL_GATE_286
    gate = struct.pack("<HHBBH", target & 0xFFFF, KERNEL_CS, 0, access, high_word)
    guest.ram[GDT + GATE_SELECTOR : GDT + GATE_SELECTOR + 8] = gate
    return guest


def test_a_286_call_gate_reaches_its_16_bit_offset() -> None:
    guest = _call_through_a_286_gate(0)
    assert guest.run().reason == "poweroff"
    assert guest.dword(RESULTS) == 1


@pytest.mark.parametrize("high_word", [0xFFFF])
def test_unicorn_adds_a_286_call_gates_unused_offset_bits(high_word: int) -> None:
    """An x86 ignores bits 31-16 of a 286 gate's offset; Unicorn's helper_lcall_protected
    builds the offset from both words for every gate type, so the call goes to
    0xFFFF0000 + offset (unmapped here: the machine stops with a report)."""
    guest = _call_through_a_286_gate(high_word)
    info = guest.run()
    assert info.reason == "crash"
    assert guest.dword(RESULTS) == 0
    assert f"{(high_word << 16) | RING0_TARGET:08x}" in info.report.lower()
