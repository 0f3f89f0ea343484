"""Code written into RAM while the CPU has already translated the old bytes.

Unicorn translates guest code into host code and keeps it until told otherwise; it does not watch
RAM written by the host. Every host-side write through `GuestMemory` must therefore drop the
translations of the pages it touches (tradekernel.emu.memory), from any context: between
slices, inside a hypercall, inside a ring-3 trap, with paging on or off, with the page mapped
1:1 or elsewhere. Guest stores into code are Unicorn's own business (QEMU's self-modifying code
detection), checked here too. Each test calls a routine, replaces it, and calls it again.
"""

from __future__ import annotations

import pytest

from tests.machine.harness import (
    PAGE_TABLE,
    RESULTS,
    ProtectedGuest,
    RealModeGuest,
    assemble,
)
from tradekernel.hypercall import HYPERCALL_PORT_BASE

WRITE_CALL = 0x12  # the hypercall a guest makes to have the host write new code
ROUTINE = 0x8000  # physical address of the routine in real mode
USER_ROUTINE = 0x203000  # linear: a user page ...
ROUTINE_FRAME = 0x300000  # ... backed by this frame


def _routine(value: int, bits: int) -> bytes:
    """`mov eax, value; ret`, for a 16- or 32-bit caller."""
    return assemble(f"bits {bits}\nmov eax, {value:#x}\nret", 0)


@pytest.mark.parametrize("deterministic", [True, False])
def test_real_mode_host_write_between_two_calls_runs_the_new_code(deterministic: bool) -> None:
    guest = RealModeGuest(
        f"""
    call {ROUTINE:#x}
    mov [RESULTS], eax
    mov dx, {HYPERCALL_PORT_BASE + WRITE_CALL:#x}
    in eax, dx
    call {ROUTINE:#x}
    mov [RESULTS + 4], eax
    EXIT
""",
        deterministic=deterministic,
    )
    memory = guest.machine.memory
    memory.write(ROUTINE, _routine(0x1111, 16))

    def write_new_code(_registers: object) -> int:
        memory.write(ROUTINE, _routine(0x2222, 16))  # inside the `in` hook, mid-slice
        return 0

    guest.machine.register_hypercall(WRITE_CALL, write_new_code)
    assert guest.machine.run(wall_timeout_s=5).reason == "poweroff"
    assert (guest.dword(RESULTS), guest.dword(RESULTS + 4)) == (0x1111, 0x2222)


def test_real_mode_write_between_runs_is_seen_by_the_next_run() -> None:
    guest = RealModeGuest(f"call {ROUTINE:#x}\nmov [RESULTS], eax\nEXIT")
    machine = guest.machine
    machine.memory.write(ROUTINE, _routine(0x1111, 16))
    assert machine.run(wall_timeout_s=5).reason == "poweroff"
    machine.memory.write(ROUTINE, _routine(0x3333, 16))
    machine.power_on((0, 0x7C00))
    assert machine.run(wall_timeout_s=5).reason == "poweroff"
    assert guest.dword(RESULTS) == 0x3333


def _map_user_routine(guest: ProtectedGuest, frame_mapped_1to1: bool) -> None:
    """Linear USER_ROUTINE -> ROUTINE_FRAME (user); the frame's own linear address is either a
    supervisor-only 1:1 mapping (as in the kernel region) or not mapped at all."""
    entries = guest.ram.cast("I")  # the harness's one page table, by index
    base = PAGE_TABLE // 4
    entries[base + (USER_ROUTINE >> 12)] = ROUTINE_FRAME | 0x7
    entries[base + (ROUTINE_FRAME >> 12)] = (ROUTINE_FRAME | 0x3) if frame_mapped_1to1 else 0


@pytest.mark.parametrize("frame_mapped_1to1", [True, False], ids=["1to1", "elsewhere"])
@pytest.mark.parametrize("deterministic", [True, False])
def test_ring3_trap_writing_a_user_frame_runs_the_new_code(
    deterministic: bool, frame_mapped_1to1: bool
) -> None:
    """A system call that loads code into a frame the caller then runs (exec into a recycled
    frame): the write happens in a ring-3 trap, CPL 3, paging on."""
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    call {USER_ROUTINE:#x}
    mov [RESULTS], eax
    int 0x80
    call {USER_ROUTINE:#x}
    mov [RESULTS + 4], eax
    EXIT
""",
        gates={0x80: (3, False)},
        paging=True,
        deterministic=deterministic,
    )
    _map_user_routine(guest, frame_mapped_1to1)
    memory = guest.machine.memory
    memory.write(ROUTINE_FRAME, _routine(0x1111, 32))

    def exec_trap(_registers: object) -> bool:
        memory.write(ROUTINE_FRAME, _routine(0x2222, 32))
        return True

    guest.machine.register_trap(0x80, exec_trap)
    assert guest.run().reason == "poweroff"
    assert guest.dwords(RESULTS, 2) == (0x1111, 0x2222)


@pytest.mark.parametrize("deterministic", [True, False])
def test_ring0_hypercall_writing_an_unmapped_frame_runs_the_new_code(deterministic: bool) -> None:
    guest = ProtectedGuest(
        f"""
    call {USER_ROUTINE:#x}
    mov [RESULTS], eax
    mov edx, {HYPERCALL_PORT_BASE + WRITE_CALL:#x}
    in eax, dx
    call {USER_ROUTINE:#x}
    mov [RESULTS + 4], eax
    EXIT
""",
        paging=True,
        deterministic=deterministic,
    )
    _map_user_routine(guest, frame_mapped_1to1=False)
    memory = guest.machine.memory
    memory.write(ROUTINE_FRAME, _routine(0x1111, 32))

    def write_new_code(_registers: object) -> int:
        memory.write(ROUTINE_FRAME, _routine(0x2222, 32))
        return 0

    guest.machine.register_hypercall(WRITE_CALL, write_new_code)
    assert guest.run().reason == "poweroff"
    assert guest.dwords(RESULTS, 2) == (0x1111, 0x2222)


def test_many_rewrites_of_one_frame_from_ring3_each_run_once() -> None:
    """Exec into the same recycled frame many times: each load must run its own code."""
    rounds = 50
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    xor esi, esi
.again:
    int 0x80                    ; the "exec": new code in the frame
    call {USER_ROUTINE:#x}
    mov [RESULTS + 4 * esi], eax
    inc esi
    cmp esi, {rounds}
    jb .again
    EXIT
""",
        gates={0x80: (3, False)},
        paging=True,
    )
    _map_user_routine(guest, frame_mapped_1to1=True)
    loads = iter(range(rounds))

    def exec_trap(_registers: object) -> bool:
        guest.machine.memory.write(ROUTINE_FRAME, _routine(0x5000 + next(loads), 32))
        return True

    guest.machine.register_trap(0x80, exec_trap)
    assert guest.run().reason == "poweroff"
    assert guest.dwords(RESULTS, rounds) == tuple(0x5000 + i for i in range(rounds))


@pytest.mark.parametrize("deterministic", [True, False])
def test_guest_stores_into_code_are_seen(deterministic: bool) -> None:
    """Self-modifying code: a store into a routine that already ran, and a store into the
    instruction right after the store, in the same translation block."""
    guest = RealModeGuest(
        f"""
    call {ROUTINE:#x}
    mov [RESULTS], eax
    mov word [{ROUTINE + 1:#x}], 0x4444   ; the immediate of `mov ax, imm16` (B8 iw)
    call {ROUTINE:#x}
    mov [RESULTS + 4], eax
    mov byte [next_insn + 1], 0x77
next_insn:
    mov al, 0x11
    mov [RESULTS + 8], al
    EXIT
""",
        deterministic=deterministic,
    )
    guest.machine.memory.write(ROUTINE, assemble("bits 16\nmov ax, 0x1111\nret", 0))
    assert guest.machine.run(wall_timeout_s=5).reason == "poweroff"
    assert guest.dword(RESULTS) & 0xFFFF == 0x1111
    assert guest.dword(RESULTS + 4) & 0xFFFF == 0x4444
    assert guest.ram[RESULTS + 8] == 0x77
