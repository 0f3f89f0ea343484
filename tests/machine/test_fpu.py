"""x87/SSE state on Unicorn 2.1.4, checked from guest code: what the kernel's lazy FPU switch
(images/stub.asm, kernel/proc/process.py) relies on."""

from __future__ import annotations

from tests.machine.harness import RESULTS, ProtectedGuest
from tradekernel.emu.cpu import CR4
from tradekernel.emu.machine import Machine, MachineConfig

SAVE_A, SAVE_B = 0x40000, 0x40200  # 512-byte FXSAVE areas, 16-aligned
ENABLE_SSE = """
    mov eax, cr0
    and eax, ~0x4                       ; EM clear
    or eax, 0x22                        ; MP | NE
    mov cr0, eax
    mov eax, cr4
    or eax, 0x600                       ; OSFXSR | OSXMMEXCPT
    mov cr4, eax
    fninit
"""


def test_fxsave_fxrstor_keep_xmm_x87_and_mxcsr() -> None:
    guest = ProtectedGuest(
        ENABLE_SSE
        + f"""
    ; state A: xmm0 = 1..4, x87 st0 = 3, MXCSR round-down
    mov dword [RESULTS + 0x100], 1
    mov dword [RESULTS + 0x104], 2
    mov dword [RESULTS + 0x108], 3
    mov dword [RESULTS + 0x10C], 4
    movups xmm0, [RESULTS + 0x100]
    mov dword [RESULTS + 0x110], 3
    fild dword [RESULTS + 0x110]
    mov dword [RESULTS + 0x114], 0x3F80  ; round down, all masked
    ldmxcsr [RESULTS + 0x114]
    fxsave [{SAVE_A:#x}]
    ; state B: a clean FPU, xmm0 zero
    fninit
    xorps xmm0, xmm0
    mov dword [RESULTS + 0x114], 0x1F80
    ldmxcsr [RESULTS + 0x114]
    fxsave [{SAVE_B:#x}]
    ; back to A: everything must come back
    fxrstor [{SAVE_A:#x}]
    movups [RESULTS], xmm0
    fistp dword [RESULTS + 16]
    stmxcsr [RESULTS + 20]
    ; SSE arithmetic on the restored value: xmm0 + xmm0 as integers
    paddd xmm0, xmm0
    movups [RESULTS + 24], xmm0
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert guest.dwords(RESULTS, 6) == (1, 2, 3, 4, 3, 0x3F80)
    assert guest.dwords(RESULTS + 24, 4) == (2, 4, 6, 8)
    # The clean image: FCW 0x037F, FSW 0, abridged tag 0, MXCSR 0x1F80 at byte 24.
    b = guest.ram
    assert int.from_bytes(b[SAVE_B : SAVE_B + 2], "little") == 0x037F
    assert int.from_bytes(b[SAVE_B + 24 : SAVE_B + 28], "little") == 0x1F80
    assert bytes(b[SAVE_B + 160 : SAVE_B + 176]) == bytes(16)  # xmm0
    assert int.from_bytes(b[SAVE_A + 160 : SAVE_A + 164], "little") == 1


def test_cr0_ts_raises_nm_for_x87_and_sse_and_clts_clears_it() -> None:
    guest = ProtectedGuest(
        ENABLE_SSE
        + """
    mov eax, cr0
    or eax, 0x8                         ; TS
    mov cr0, eax
    fld1                                ; #NM
    xorps xmm1, xmm1                    ; #NM
    fxsave [0x40000]                    ; #NM
    add eax, 1                          ; integer code is unaffected
    clts
    fld1                                ; runs
    fistp dword [RESULTS]
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert [trap.vector for trap in guest.traps] == [7, 7, 7]
    assert guest.dword(RESULTS) == 1


def test_sse_without_cr4_osfxsr_is_invalid_opcode() -> None:
    guest = ProtectedGuest(
        """
    xor eax, eax
    mov cr4, eax
    xorps xmm0, xmm0                    ; #UD: CR4.OSFXSR is clear
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert [trap.vector for trap in guest.traps] == [6]


def test_power_on_clears_cr4_as_reset_does() -> None:
    """Unicorn's 32-bit engine starts with CR4 = 0x50200 (OSFXSR, FSGSBASE, OSXSAVE): SSE
    would run before any OS enabled it. RESET# leaves CR4 = 0."""
    machine = Machine(MachineConfig(deterministic=True))
    assert machine.cpu.read(CR4) == 0x50200
    machine.power_on((0, 0x7C00))
    assert machine.cpu.read(CR4) == 0
