"""Planned deliveries (emu/interrupts.py `deliver_planned`): after one full delivery through a
gate, the next ones through it reuse what was decoded, as long as the tables are the same. The
guest changes its IDT behind the plan's back here, in every way a kernel can (rewrite a gate,
`lidt` another table, mark a gate not present), and each change must be seen at once."""

from __future__ import annotations

import pytest

from tests.machine.harness import IDT, RESULTS, ProtectedGuest

VECTOR = 0x40
SECOND_IDT = 0x30000
REPEATS = 3  # deliveries through the first handler, so a plan is in use before the change


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "real-time"])
def test_a_gate_rewritten_by_the_guest_leads_to_the_new_handler(deterministic: bool) -> None:
    guest = ProtectedGuest(
        f"""
    mov ecx, {REPEATS}
.again:
    int {VECTOR:#x}
    loop .again
    mov eax, second_handler
    mov [{IDT + 8 * VECTOR:#x}], ax
    shr eax, 16
    mov [{IDT + 8 * VECTOR + 6:#x}], ax
    int {VECTOR:#x}
    EXIT
second_handler:
    inc dword [RESULTS]
    iretd
""",
        deterministic=deterministic,
    )
    assert guest.run().reason == "poweroff"
    assert [trap.vector for trap in guest.traps] == [VECTOR] * REPEATS
    assert guest.dword(RESULTS) == 1


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "real-time"])
def test_lidt_of_another_table_is_seen_by_the_next_interrupt(deterministic: bool) -> None:
    guest = ProtectedGuest(
        f"""
    mov ecx, {REPEATS}
.again:
    int {VECTOR:#x}
    loop .again
    mov esi, {IDT:#x}               ; the same table at another address ...
    mov edi, {SECOND_IDT:#x}
    mov ecx, 512
    rep movsd
    mov eax, second_handler         ; ... with another handler for VECTOR
    mov [{SECOND_IDT + 8 * VECTOR:#x}], ax
    shr eax, 16
    mov [{SECOND_IDT + 8 * VECTOR + 6:#x}], ax
    lidt [second_idtr]
    int {VECTOR:#x}
    EXIT
second_handler:
    inc dword [RESULTS]
    iretd
second_idtr:
    dw 256 * 8 - 1
    dd {SECOND_IDT:#x}
""",
        deterministic=deterministic,
    )
    assert guest.run().reason == "poweroff"
    assert [trap.vector for trap in guest.traps] == [VECTOR] * REPEATS
    assert guest.dword(RESULTS) == 1


def test_a_gate_marked_not_present_faults_with_its_selector_error_code() -> None:
    guest = ProtectedGuest(
        f"""
    mov ecx, {REPEATS}
.again:
    int {VECTOR:#x}
    loop .again
    and byte [{IDT + 8 * VECTOR + 5:#x}], 0x7F
    int {VECTOR:#x}
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    *ints, fault = guest.traps
    assert [trap.vector for trap in ints] == [VECTOR] * REPEATS
    assert fault.vector == 11  # #NP, error code: IDT index, IDT bit
    assert fault.words[0] == VECTOR * 8 + 2
