"""`syscall` and `sysenter` fault as on a CPU whose OS never enabled them.

Unicorn treats both as hooks for an emulated OS and otherwise skips them, so a program that
tries them runs on as if nothing happened. Our machine sets no MSRs (EFER.SCE stays clear,
IA32_SYSENTER_CS stays 0), and there the Intel SDM (vol. 2B, SYSCALL and SYSENTER) says:
`syscall` outside 64-bit mode is #UD (6), `sysenter` with IA32_SYSENTER_CS = 0 is #GP(0) (13),
both with the return EIP at the instruction. The kernel maps #UD to SIGILL and #GP to SIGSEGV.
"""

from __future__ import annotations

import pytest

from tests.machine.harness import (
    ESP0,
    KERNEL_CS,
    KERNEL_START_STACK,
    RESULTS,
    USER_CS,
    ProtectedGuest,
)

CASES = [("syscall", 6, False), ("sysenter", 13, True)]


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "real-time"])
@pytest.mark.parametrize(("instruction", "vector", "has_error_code"), CASES)
def test_from_ring3_it_faults_at_the_instruction(
    instruction: str, vector: int, has_error_code: bool, deterministic: bool
) -> None:
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    mov eax, 0x1234
faulting:
    {instruction}
    mov dword [RESULTS], 0xC0FFEE   ; runs after the handler steps over the instruction
    EXIT
""",
        deterministic=deterministic,
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == vector
    assert trap.esp == ESP0 - (24 if has_error_code else 20)
    words = trap.words
    if has_error_code:
        assert words[0] == 0, "sysenter's #GP carries error code 0"
    assert trap.frame(has_error_code)[:2] == (guest.label("user.faulting"), USER_CS)
    assert guest.dword(RESULTS) == 0xC0FFEE
    assert guest.exit_registers["eax"] == 0x1234


@pytest.mark.parametrize(("instruction", "vector", "has_error_code"), CASES)
def test_in_ring0_it_faults_too(instruction: str, vector: int, has_error_code: bool) -> None:
    guest = ProtectedGuest(
        f"""
faulting:
    {instruction}
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == vector
    assert trap.esp == KERNEL_START_STACK - (16 if has_error_code else 12)
    assert trap.frame(has_error_code)[:2] == (guest.label("faulting"), KERNEL_CS)


def test_a_thousand_in_a_row_each_fault_once() -> None:
    guest = ProtectedGuest(
        """
    ENTER_RING3 user, 0x202
user:
    mov ecx, 1000
.again:
    syscall
    dec ecx
    jnz .again
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert [trap.vector for trap in guest.traps] == [6] * 1000
