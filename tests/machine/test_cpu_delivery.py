"""Interrupt and exception delivery on the bare machine, checked from inside the guest.

Unicorn delivers nothing through the IVT/IDT itself; tradekernel.emu.interrupts does. Each test
runs real guest code (assembled by nasm now) and asserts what the handler saw: its vector,
stack, flags and frame, as an x86 would give them (Intel SDM vol. 3, ch. 6).
"""

from __future__ import annotations

import struct

import pytest

from tests.machine.harness import (
    ESP0,
    EXIT_VECTOR,
    GDT,
    IDT,
    KERNEL_CS,
    KERNEL_DS,
    KERNEL_START_STACK,
    NOT_PRESENT_PAGE,
    RESULTS,
    SUPERVISOR_PAGE,
    USER_CS,
    USER_DS,
    USER_READ_ONLY_PAGE,
    USER_STACK_TOP,
    ProtectedGuest,
    RealModeGuest,
    Trap,
    assemble_program,
    descriptor,
    gate,
    resume,
)
from tradekernel.devices.pic import PicPair
from tradekernel.devices.pit import Pit
from tradekernel.hypercall import CPUID_SIGNATURE, ENOSYS, HYPERCALL_PORT_BASE

FLAG_IF = 0x200
ARITHMETIC_FLAGS = 0x8D5  # CF, PF, AF, ZF, SF, OF
PIT_TICK_NS = 65536 * 1_000_000_000 / 1_193_182  # BIOS rate: 18.2 Hz


def _vectors(traps: list[Trap]) -> list[int]:
    return [trap.vector for trap in traps]


# ---- 1. real mode -------------------------------------------------------------------------


def test_real_mode_int_goes_through_the_ivt() -> None:
    guest = RealModeGuest(
        """
    mov ax, 0x9000
    mov ss, ax
    mov sp, 0x1000
    xor ax, ax
    mov ds, ax
    sti
    int 0x30
after_int:
    mov [RESULTS + 12], ax
    EXIT
handler:
    mov [RESULTS], sp
    pushf
    pop word [RESULTS + 2]
    mov bp, sp
    mov ax, [bp]
    mov [RESULTS + 4], ax           ; IP
    mov ax, [bp + 2]
    mov [RESULTS + 6], ax           ; CS
    mov ax, [bp + 4]
    mov [RESULTS + 8], ax           ; FLAGS
    mov ax, 0xBEEF
    iret
""",
        segment=0x07C0,
        offset=0,
    )
    guest.set_vector(0x30, "handler")
    assert guest.machine.run(wall_timeout_s=5).reason == "poweroff"
    assert guest.word(RESULTS) == 0x1000 - 6
    assert not guest.word(RESULTS + 2) & FLAG_IF, "IF must be clear inside the handler"
    assert guest.word(RESULTS + 4) == guest.symbols["after_int"]
    assert guest.word(RESULTS + 6) == 0x07C0
    assert guest.word(RESULTS + 8) & FLAG_IF
    assert guest.word(RESULTS + 12) == 0xBEEF


def test_real_mode_divide_errors_in_a_row_stay_themselves() -> None:
    guest = RealModeGuest(
        """
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov cx, 100
again:
    xor dx, dx
    mov ax, 1
    xor bx, bx
    div bx                          ; #DE: the handler steps over these 2 bytes
    loop again
    EXIT
divide_error:
    push bp
    mov bp, sp
    add word [bp + 2], 2
    inc word [RESULTS]
    pop bp
    iret
double_fault:
    inc word [RESULTS + 2]
    iret
"""
    )
    guest.set_vector(0, "divide_error")
    guest.set_vector(8, "double_fault")
    assert guest.machine.run(wall_timeout_s=5).reason == "poweroff"
    assert (guest.word(RESULTS), guest.word(RESULTS + 2)) == (100, 0)


IRQ0_PROGRAM = """
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    sti
idle:
    mov cx, 50                      ; some work between ticks, so time is not only idle jumps
busy:
    loop busy
    hlt
    jmp idle
irq0:
    inc dword [0x46C]
    push ax
    mov al, 0x20
    out 0x20, al                    ; non-specific EOI
    pop ax
    iret
"""


def _irq0_guest() -> RealModeGuest:
    guest = RealModeGuest(IRQ0_PROGRAM)
    guest.machine.add(PicPair())
    guest.machine.add(Pit())
    guest.set_vector(8, "irq0")
    return guest


def test_real_mode_irq0_ticks_at_18_2_hz_in_virtual_time() -> None:
    guest = _irq0_guest()
    clock = guest.machine.clock
    info = guest.machine.run(wall_timeout_s=10, until=lambda: guest.dword(0x46C) >= 18)
    assert info.reason == "until"
    assert abs(clock.now_ns() - 18 * PIT_TICK_NS) < 1_000_000
    guest.machine.run(wall_timeout_s=10, until=lambda: clock.now_ns() >= 2_000_000_000)
    assert abs(guest.dword(0x46C) - 2_000_000_000 / PIT_TICK_NS) <= 1


def test_real_mode_hypercall_from_any_segment() -> None:
    guest = RealModeGuest("EXIT", segment=0x07C1, offset=0)
    guest.machine.run(wall_timeout_s=0.5)
    assert guest.exits == 1


# ---- 2. protected mode IDT ---------------------------------------------------------------


def test_int_through_an_interrupt_gate_clears_if() -> None:
    guest = ProtectedGuest(
        """
    sti
    int 0x40
after_int:
    pushfd
    pop dword [RESULTS]
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == 0x40
    assert not trap.eflags & FLAG_IF
    assert (trap.cs, trap.ss, trap.esp) == (KERNEL_CS, KERNEL_DS, KERNEL_START_STACK - 12)
    eip, cs, eflags = trap.frame(has_error_code=False)[:3]
    assert (eip, cs) == (guest.label("after_int"), KERNEL_CS)
    assert eflags & FLAG_IF
    assert guest.dword(RESULTS) & FLAG_IF, "iret restores IF"


def test_int_through_a_trap_gate_keeps_if() -> None:
    guest = ProtectedGuest("    sti\n    int 0x42\n    EXIT", gates={0x42: (0, True)})
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == 0x42
    assert trap.eflags & FLAG_IF


def test_general_protection_pushes_the_selector_as_error_code() -> None:
    guest = ProtectedGuest(
        """
    mov ax, 0x57                    ; GDT index 10, beyond the limit, RPL 3
faulting:
    mov ds, ax
    mov [RESULTS], ds
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == 13
    assert trap.esp == KERNEL_START_STACK - 16
    assert trap.words[:3] == (0x54, guest.label("faulting"), KERNEL_CS)
    assert guest.dword(RESULTS) & 0xFFFF == KERNEL_DS, "DS unchanged by the failed load"


def test_divide_error_has_no_error_code() -> None:
    guest = ProtectedGuest(
        """
    sti
    xor ecx, ecx
    mov eax, 1
    xor edx, edx
faulting:
    div ecx
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == 0
    assert trap.esp == KERNEL_START_STACK - 12
    eip, cs, eflags = trap.frame(has_error_code=False)[:3]
    assert (eip, cs) == (guest.label("faulting"), KERNEL_CS)
    assert eflags & FLAG_IF
    assert not trap.eflags & FLAG_IF


@pytest.mark.parametrize(
    ("ring", "access", "address", "error_code"),
    [
        (0, "mov eax, [{}]", NOT_PRESENT_PAGE, 0),
        (0, "mov dword [{}], 1", NOT_PRESENT_PAGE, 2),
        (0, "mov dword [{}], 1", USER_READ_ONLY_PAGE, 3),
        (3, "mov dword [{}], 1", USER_READ_ONLY_PAGE, 7),
        (3, "mov eax, [{}]", SUPERVISOR_PAGE, 5),
    ],
)
def test_page_fault_error_code_and_cr2(
    ring: int, access: str, address: int, error_code: int
) -> None:
    body = f"""
faulting:
    {access.format(address + 0x10)}
    mov dword [RESULTS], 0x600D
    EXIT
"""
    if ring == 3:
        body = f"    ENTER_RING3 faulting, 0x202\n{body}"
    guest = ProtectedGuest(body, paging=True)
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == 14
    assert trap.cr2 == address + 0x10
    assert trap.words[0] == error_code
    if ring == 3:
        assert trap.esp == ESP0 - 24
        assert trap.words[1:] == (guest.label("faulting"), USER_CS, 0x202, USER_STACK_TOP, USER_DS)
    else:
        assert trap.esp == KERNEL_START_STACK - 16
        assert trap.words[1:3] == (guest.label("faulting"), KERNEL_CS)
    assert guest.dword(RESULTS) == 0x600D, "execution resumed after the fault"


def _resume_after_double_fault(guest: ProtectedGuest, trap: Trap) -> int:
    """#DF is an abort; these tests know its frame still points at the faulting instruction."""
    if trap.vector == 8:
        guest.skip_instruction(trap, has_error_code=True)
        return 4
    return resume(guest, trap)


@pytest.mark.parametrize(
    ("instruction", "missing", "vector", "error_code"),
    [
        # A fault while delivering a software interrupt is delivered on its own...
        ("int 0x40", {0x40}, 11, 0x40 * 8 + 2),
        # ...but a contributory fault while delivering a contributory one is a double fault,
        ("mov ds, ax", {13}, 8, 0),
        ("int 0x40", {0x40, 11}, 8, 0),
        # and so is a contributory fault while delivering a page fault.
        (f"mov dword [{NOT_PRESENT_PAGE:#x}], 1", {14}, 8, 0),
    ],
)
def test_faults_while_delivering_escalate_by_exception_class(
    instruction: str, missing: set[int], vector: int, error_code: int
) -> None:
    guest = ProtectedGuest(
        f"""
    mov ax, 0x55                    ; a selector beyond the GDT
faulting:
    {instruction}
    mov dword [RESULTS], 0x600D
    EXIT
""",
        paging=True,
        missing_gates=frozenset(missing),
        fixup=_resume_after_double_fault,
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == vector
    assert trap.words[:3] == (error_code, guest.label("faulting"), KERNEL_CS)
    assert guest.dword(RESULTS) == 0x600D


@pytest.mark.parametrize(
    ("selector", "error_code"),
    [(USER_CS, USER_CS & 0xFFFC), (KERNEL_DS, KERNEL_DS)],
    ids=["ring-3 code", "data segment"],
)
def test_gate_to_a_segment_the_cpu_cannot_enter_is_a_general_protection_fault(
    selector: int, error_code: int
) -> None:
    guest = ProtectedGuest(
        """
faulting:
    int 0x43
    mov dword [RESULTS], 0x600D
    EXIT
""",
        gate_selectors={0x43: selector},
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == 13
    assert trap.words[:3] == (error_code, guest.label("faulting"), KERNEL_CS)
    assert guest.dword(RESULTS) == 0x600D


# ---- 3. ring 3 -> ring 0 -----------------------------------------------------------------


def test_int_0x80_from_ring3_switches_to_the_tss_stack_and_back() -> None:
    guest = ProtectedGuest(
        """
    ENTER_RING3 user, 0x202
user:
    int 0x80
back:
    mov [RESULTS], esp
    mov [RESULTS + 4], cs
    mov [RESULTS + 8], ss
    mov dword [RESULTS + 12], 0xC0FFEE
    EXIT
""",
        gates={0x80: (3, False)},
    )
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [0x80]
    (trap,) = guest.traps
    assert (trap.cs, trap.ss, trap.esp) == (KERNEL_CS, KERNEL_DS, ESP0 - 20)
    assert not trap.eflags & FLAG_IF
    assert trap.words[:5] == (guest.label("back"), USER_CS, 0x202, USER_STACK_TOP, USER_DS)
    assert guest.dwords(RESULTS, 4)[0] == USER_STACK_TOP
    assert guest.dword(RESULTS + 4) & 0xFFFF == USER_CS
    assert guest.dword(RESULTS + 8) & 0xFFFF == USER_DS
    assert guest.dword(RESULTS + 12) == 0xC0FFEE
    assert guest.exit_registers["cs"] & 0xFFFF == KERNEL_CS


def test_irq_preempting_ring3_switches_stacks_and_pushes_no_error_code() -> None:
    """IRQ0 on the PIC's BIOS vector 8, which is also #DF's: an external interrupt pushes no
    error code whatever its vector, and from ring 3 it arrives on the TSS stack."""

    def eoi_then_stop_after_three(guest: ProtectedGuest, trap: Trap) -> int:
        guest.machine.ports.write(0x20, 1, 0x20)
        if len(guest.traps) == 3:
            guest.machine.request_power_off()
        return 0

    guest = ProtectedGuest(
        """
    mov al, 0x34                    ; PIT counter 0, lo/hi, rate generator
    out 0x43, al
    mov ax, 1193                    ; ~1 kHz, so ring 3 runs ~1M instructions per tick
    out 0x40, al
    mov al, ah
    out 0x40, al
    ENTER_RING3 user, 0x202
user:
    inc dword [RESULTS]
    jmp user
""",
        fixup=eoi_then_stop_after_three,
    )
    guest.machine.add(PicPair())
    guest.machine.add(Pit())
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [8, 8, 8]
    user, loop = guest.label("user"), guest.label("user") + 6
    for trap in guest.traps:
        assert (trap.cs, trap.ss, trap.esp) == (KERNEL_CS, KERNEL_DS, ESP0 - 20)
        assert not trap.eflags & FLAG_IF
        assert trap.words[0] in (user, loop)
        # The arithmetic flags are whatever `inc` left (PF follows the count where it stopped).
        cs, eflags, esp, ss = trap.words[1:5]
        assert (cs, eflags & ~ARITHMETIC_FLAGS, esp, ss) == (
            USER_CS,
            0x202,
            USER_STACK_TOP,
            USER_DS,
        )
    assert guest.machine.clock.now_ns() >= 2 * 1193 * 1_000_000_000 // 1_193_182
    assert guest.dword(RESULTS) > 1000, "ring 3 ran between the ticks"


def test_int_to_a_dpl0_gate_from_ring3_is_a_general_protection_fault() -> None:
    guest = ProtectedGuest(
        """
    ENTER_RING3 user, 0x202
user:
    int 0x41
    mov dword [RESULTS], 0x5AFE
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [13]
    (trap,) = guest.traps
    assert trap.esp == ESP0 - 24
    assert trap.words == (
        0x41 * 8 + 2,
        guest.label("user"),
        USER_CS,
        0x202,
        USER_STACK_TOP,
        USER_DS,
    )
    assert guest.dword(RESULTS) == 0x5AFE


# ---- 4. faults in a row ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "vector"),
    [
        (f"mov dword [{NOT_PRESENT_PAGE:#x}], 1", 14),
        ("mov ax, 0x55\n    mov ds, ax", 13),
        ("xor edx, edx\n    mov eax, 7\n    div esi", 0),
        ("ud2", 6),
    ],
)
def test_a_hundred_faults_in_a_row_stay_themselves(instruction: str, vector: int) -> None:
    guest = ProtectedGuest(
        f"""
    xor esi, esi
    mov ecx, 100
again:
    {instruction}
    inc dword [RESULTS]
    dec ecx
    jnz again
    EXIT
""",
        paging=True,
    )
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [vector] * 100
    assert guest.dword(RESULTS) == 100


def test_mixed_faults_in_a_row_stay_themselves() -> None:
    guest = ProtectedGuest(
        f"""
    xor esi, esi
    mov ecx, 25
again:
    mov dword [{NOT_PRESENT_PAGE:#x}], 1
    mov ax, 0x55
    mov ds, ax
    div esi
    ud2
    dec ecx
    jnz again
    EXIT
""",
        paging=True,
    )
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [14, 13, 0, 6] * 25


# ---- 5. ring-3 port I/O ------------------------------------------------------------------

PROBE_PORT = 0x300


class PortProbe:
    """Two ports on the bus that remember what was written and answer reads with 0xA5."""

    def __init__(self, guest: ProtectedGuest) -> None:
        self.writes: list[tuple[int, int]] = []
        guest.machine.ports.claim(PROBE_PORT, 2, "probe", self._read, self._write)

    def _read(self, port: int, size: int) -> int:
        return 0xA5

    def _write(self, port: int, size: int, value: int) -> None:
        self.writes.append((port, value))


IO_PROGRAM = """
    ENTER_RING3 user, {eflags:#x}
user:
    mov edx, {port:#x}
    mov al, 0x42
out_insn:
    out dx, al
    inc dword [RESULTS]
    xor eax, eax
in_insn:
    in al, dx
    mov [RESULTS + 4], eax
    EXIT
"""


def _io_guest(
    eflags: int, port: int, bitmap: frozenset[int] | None
) -> tuple[ProtectedGuest, PortProbe]:
    guest = ProtectedGuest(IO_PROGRAM.format(eflags=eflags, port=port), io_bitmap_ports=bitmap)
    return guest, PortProbe(guest)


def test_ring3_io_without_permission_is_a_general_protection_fault() -> None:
    guest, probe = _io_guest(0x202, PROBE_PORT, None)
    assert guest.run().reason == "poweroff"
    assert probe.writes == []
    assert _vectors(guest.traps) == [13, 13]
    out_trap, in_trap = guest.traps
    assert out_trap.words[:3] == (0, guest.label("out_insn"), USER_CS)
    assert in_trap.words[:3] == (0, guest.label("in_insn"), USER_CS)
    assert guest.dword(RESULTS) == 1, "the instruction after a faulting `out` ran once"
    assert guest.dword(RESULTS + 4) == 0, "a faulting `in` leaves EAX alone"


def test_ring3_io_with_iopl3_reaches_the_device() -> None:
    guest, probe = _io_guest(0x3202, PROBE_PORT, None)
    assert guest.run().reason == "poweroff"
    assert guest.traps == []
    assert probe.writes == [(PROBE_PORT, 0x42)]
    assert guest.dword(RESULTS + 4) == 0xA5


def test_ring3_io_granted_by_the_tss_bitmap() -> None:
    guest, probe = _io_guest(0x202, PROBE_PORT, frozenset({PROBE_PORT}))
    assert guest.run().reason == "poweroff"
    assert guest.traps == []
    assert probe.writes == [(PROBE_PORT, 0x42)]
    assert guest.dword(RESULTS + 4) == 0xA5


def test_ring3_io_to_a_port_the_bitmap_denies() -> None:
    guest, probe = _io_guest(0x202, PROBE_PORT + 1, frozenset({PROBE_PORT}))
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [13, 13]
    assert probe.writes == []


def test_code_after_a_denied_out_does_not_run_at_ring0() -> None:
    """The block after a denied `out` must not run on; under the bug it runs at CPL 0 and
    makes a hypercall, which ring-3 code must never be able to do."""
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    mov edx, {PROBE_PORT:#x}
    out dx, al
    mov edx, {HYPERCALL_PORT_BASE + 0x12:#x}
    in eax, dx
    EXIT
"""
    )
    calls_from_ring3: list[int] = []
    guest.machine.register_hypercall(0x12, lambda registers: calls_from_ring3.append(1) or 0)
    assert guest.run().reason == "poweroff"
    assert calls_from_ring3 == []
    assert _vectors(guest.traps) == [13, 13]


# ---- 6. triple fault ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "vector", "disassembly"),
    [("mov ax, 0x55\n    mov ds, ax", 13, "mov ds, eax"), ("int3", 3, "int3")],
)
def test_triple_fault_stops_the_machine_with_a_report(
    instruction: str, vector: int, disassembly: str
) -> None:
    guest = ProtectedGuest(
        f"""
    lidt [empty_idt]
    mov ebx, 0x1234ABCD
    {instruction}
    EXIT
empty_idt:
    dw 0
    dd 0
"""
    )
    info = guest.run()
    assert info.reason == "crash"
    assert "triple fault" in info.report
    assert f"vector {vector:#x}" in info.report
    assert "ebx=1234abcd" in info.report
    assert disassembly in info.report
    assert guest.traps == []


# ---- 7. hypervisor interface -------------------------------------------------------------


def test_cpuid_hypervisor_leaves_and_unknown_hypercall() -> None:
    guest = ProtectedGuest(
        f"""
    mov eax, 0x40000000
    cpuid
    mov [RESULTS], eax
    mov [RESULTS + 4], ebx
    mov [RESULTS + 8], ecx
    mov [RESULTS + 12], edx
    mov eax, 0x40000001
    cpuid
    mov [RESULTS + 16], eax
    mov edx, {HYPERCALL_PORT_BASE + 0x77:#x}
    in eax, dx
    mov [RESULTS + 20], eax
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    values = guest.dwords(RESULTS, 6)
    assert values[0] >= 0x40000001
    assert b"".join(v.to_bytes(4, "little") for v in values[1:4]) == CPUID_SIGNATURE
    assert values[4] == HYPERCALL_PORT_BASE
    assert values[5] == -ENOSYS & 0xFFFFFFFF == 0xFFFFFFDA


def test_hypercall_from_ring3_is_a_general_protection_fault() -> None:
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    mov edx, {HYPERCALL_PORT_BASE + 0x11:#x}   ; the exit hypercall
    in eax, dx
    mov dword [RESULTS], 0x5AFE
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert _vectors(guest.traps) == [13]
    assert guest.traps[0].words[1:3] == (guest.label("user") + 5, USER_CS)
    assert guest.dword(RESULTS) == 0x5AFE


# ---- 8. determinism ----------------------------------------------------------------------


def test_deterministic_runs_repeat_exactly() -> None:
    def run_once() -> tuple[int, int, int]:
        guest = _irq0_guest()
        guest.machine.run(wall_timeout_s=10, until=lambda: guest.dword(0x46C) >= 10)
        return guest.machine.instructions, guest.machine.clock.now_ns(), guest.dword(0x46C)

    first = run_once()
    assert first[0] > 10 * 50
    assert run_once() == first


def test_deterministic_fault_program_repeats_exactly() -> None:
    def run_once() -> tuple[int, int]:
        guest = ProtectedGuest(
            f"""
    mov ecx, 20
again:
    mov dword [{NOT_PRESENT_PAGE:#x}], 1
    ud2
    dec ecx
    jnz again
    EXIT
""",
            paging=True,
        )
        assert guest.run().reason == "poweroff"
        return guest.machine.instructions, guest.machine.clock.now_ns()

    first = run_once()
    assert first[0] > 0
    assert run_once() == first


# ---- register access ---------------------------------------------------------------------


def test_segment_registers_read_as_selectors() -> None:
    """Selectors loaded by guest code read back exactly (with EFLAGS.ID set, as CPUID-probing
    code leaves it: it once leaked into what the crash report showed)."""
    guest = ProtectedGuest(
        """
    pushfd
    or dword [esp], 0x200000
    popfd
    mov ax, 0x23
    mov fs, ax
    xor ax, ax
    mov gs, ax
    mov ax, 0x10
    mov es, ax
    EXIT
"""
    )
    guest.run()
    registers = guest.exit_registers
    assert {name: registers[name] for name in ("cs", "ss", "ds", "es", "fs", "gs")} == {
        "cs": 0x08, "ss": 0x10, "ds": 0x10, "es": 0x10, "fs": 0x23, "gs": 0x00,
    }  # fmt: skip
    assert registers["eflags"] & 0x200000


def test_same_privilege_gate_with_rpl0_selector_and_a_stack_segment_with_a_base() -> None:
    """Found by test386.asm: a ring-3 `int` to a DPL-3 handler whose gate names its code
    segment with RPL 0, on a ring-3 stack segment whose base is not 0. The handler must run
    with CS.RPL = 3 (the CPL), and the frame must be pushed at SS.base + ESP."""
    base = 0x40000
    guest = ProtectedGuest(
        """
    ENTER_RING3 user, 0x202
user:
    int 0x41
after:
    EXIT
ring3_handler:
    mov eax, [esp]                  ; SS-relative: the pushed EIP
    mov [RESULTS], eax              ; DS has the same base as SS
    mov eax, [esp + 4]
    mov [RESULTS + 4], eax          ; the pushed CS
    mov [RESULTS + 8], cs
    iretd
"""
    )
    # USER_DS (selector 0x23), used for DS and SS in ring 3, gets a base.
    guest.ram[GDT + 0x20 : GDT + 0x28] = descriptor(base, 0xFFFFF - (base >> 12), 0xF2, 0xC)
    guest.ram[IDT + 8 * 0x41 : IDT + 8 * 0x41 + 8] = gate(
        guest.label("ring3_handler"), USER_CS & ~3, dpl=3
    )
    assert guest.run().reason == "poweroff"
    eip, cs, handler_cs = struct.unpack_from("<IIH", guest.ram, base + RESULTS)
    assert eip == guest.label("after")
    assert cs & 0xFFFF == USER_CS
    assert handler_cs == USER_CS


def test_interrupt_to_a_conforming_segment_keeps_the_cpl() -> None:
    """Found by test386.asm: a ring-3 `int` whose gate leads to a conforming ring-0 code
    segment runs the handler at CPL 3, on the ring-3 stack (no TSS switch)."""
    conforming = 0x30
    guest = ProtectedGuest(
        """
    ENTER_RING3 user, 0x202
user:
    int 0x42
after:
    EXIT
conforming_handler:
    mov [RESULTS], cs
    mov [RESULTS + 4], esp
    iretd
""",
        extra_descriptors=(descriptor(0, 0xFFFFF, 0x9E, 0xC),),  # DPL 0, conforming code
    )
    guest.ram[IDT + 8 * 0x42 : IDT + 8 * 0x42 + 8] = gate(
        guest.label("conforming_handler"), conforming, dpl=3
    )
    assert guest.run().reason == "poweroff"
    assert guest.dword(RESULTS) & 0xFFFF == conforming | 3
    assert guest.dword(RESULTS + 4) == USER_STACK_TOP - 12  # EIP, CS, EFLAGS on the user stack


def test_interrupt_through_a_286_gate_pushes_a_16_bit_frame() -> None:
    """Found by test386.asm: an 80286 interrupt gate (type 6) has a 16-bit offset and pushes
    IP, CS and FLAGS as words; `iretw` returns. The code runs below 64 KiB for that."""
    low = 0xA000
    program = assemble_program(
        f"""bits 32
low_start:
    int 0x44
low_after:
    mov [{RESULTS + 8:#x}], esp
    int {EXIT_VECTOR:#x}
handler16:
    mov eax, [esp]                  ; IP, then CS
    mov [{RESULTS:#x}], eax
    movzx eax, word [esp + 4]       ; FLAGS
    mov [{RESULTS + 4:#x}], eax
    iretw
""",
        low,
    )
    guest = ProtectedGuest(f"    mov esp, {KERNEL_START_STACK:#x}\n    jmp {KERNEL_CS:#x}:{low:#x}")
    guest.ram[low : low + len(program.code)] = program.code
    handler = program.symbols["handler16"]
    guest.ram[IDT + 8 * 0x44 : IDT + 8 * 0x44 + 8] = struct.pack(
        "<HHBBH",
        handler,
        KERNEL_CS,
        0,
        0x86,
        0,  # present, DPL 0, 16-bit interrupt gate
    )
    assert guest.run().reason == "poweroff"
    assert guest.traps == []  # no fault on the way
    ip_cs, flags, esp = guest.dwords(RESULTS, 3)
    assert ip_cs == program.symbols["low_after"] | (KERNEL_CS << 16)
    assert flags & 0x2  # the always-one bit of a real FLAGS image
    assert esp == KERNEL_START_STACK  # three words pushed, three popped
