"""Where a requested hardware interrupt is taken: at the next instruction boundary with IF=1.

Unicorn does not know about the 8259; the machine takes IRQs between slices. Slices end at every
`int n` (delivered by the machine) and at hypercalls that need it, so a guest that keeps making
software interrupts whose handlers run with IF=0 would never be found at a boundary with IF=1,
and IRQs would starve. A PC takes the interrupt at the boundary before the `int` (which then
runs after the handler's `iret`), after the one instruction `sti` shadows, and wherever
`iret`/`popf` sets IF. These tests run such guests and count the ticks that got in.
"""

from __future__ import annotations

import pytest

from tests.machine.harness import RESULTS, ProtectedGuest, RealModeGuest, Trap
from tradekernel.devices.pic import PicPair
from tradekernel.devices.pit import Pit
from tradekernel.hypercall import HYPERCALL_PORT_BASE

PIT_HZ = 1_193_182
DIVISOR = 12  # ~99.4 kHz: a tick every ~10 us, ~10,000 instructions of deterministic time
TICK_NS = DIVISOR * 1_000_000_000 / PIT_HZ
IRQ0_VECTOR = 8  # PicPair's power-on (BIOS) vector base
CALLS = 4000

REAL_TIME_DIVISOR = 11932  # 100 Hz: real time delivers far fewer IRQs per second than 99 kHz


def program_pit(divisor: int) -> str:
    return f"""
    mov al, 0x34                    ; PIT counter 0, lo/hi, rate generator
    out 0x43, al
    mov ax, {divisor}
    out 0x40, al
    mov al, ah
    out 0x40, al
"""


def _eoi(guest: ProtectedGuest, trap: Trap) -> int:
    if trap.vector == IRQ0_VECTOR:
        guest.machine.ports.write(0x20, 1, 0x20)
    return 0


def _ring3_int_loop(deterministic: bool, trap_fast_path: bool) -> ProtectedGuest:
    """Ring 3 makes CALLS `int 0x80`s in a row (a getpid loop) with a little work between,
    through the IDT to a handler that runs with IF=0, or answered by a trap in the hook (the
    kernel's fast path)."""
    divisor = DIVISOR if deterministic else REAL_TIME_DIVISOR
    guest = ProtectedGuest(
        f"""{program_pit(divisor)}
    ENTER_RING3 user, 0x202
user:
    mov ecx, {CALLS}
.call:
    int 0x80
    mov ebx, 20
.work:
    dec ebx
    jnz .work
    dec ecx
    jnz .call
    EXIT
""",
        gates={0x80: (3, False)},
        fixup=_eoi,
        deterministic=deterministic,
    )
    guest.machine.add(PicPair())
    guest.machine.add(Pit())
    if trap_fast_path:
        guest.machine.register_trap(0x80, lambda registers: True)
    return guest


def _ticks(guest: ProtectedGuest) -> int:
    return sum(1 for trap in guest.traps if trap.vector == IRQ0_VECTOR)


@pytest.mark.parametrize("trap_fast_path", [False, True], ids=["idt", "trap"])
def test_ring3_int_loop_is_preempted_at_the_timer_rate(trap_fast_path: bool) -> None:
    guest = _ring3_int_loop(deterministic=True, trap_fast_path=trap_fast_path)
    assert guest.run(wall_timeout_s=30).reason == "poweroff"
    elapsed = guest.machine.clock.now_ns()
    expected = elapsed / TICK_NS
    assert expected > 5, "the loop must last several ticks for the test to mean anything"
    assert abs(_ticks(guest) - expected) <= 1.5
    calls = [trap for trap in guest.traps if trap.vector == 0x80]
    assert len(calls) == (0 if trap_fast_path else CALLS), "every `int` ran exactly once"


def test_ring3_int_loop_is_preempted_in_real_time() -> None:
    guest = _ring3_int_loop(deterministic=False, trap_fast_path=False)
    assert guest.run(wall_timeout_s=30).reason == "poweroff"
    assert _ticks(guest) >= 3
    assert sum(1 for trap in guest.traps if trap.vector == 0x80) == CALLS


def test_deterministic_run_gives_the_same_trace_twice() -> None:
    runs = []
    for _ in range(2):
        guest = _ring3_int_loop(deterministic=True, trap_fast_path=False)
        assert guest.run(wall_timeout_s=30).reason == "poweroff"
        trace = [(trap.vector, trap.words[0]) for trap in guest.traps]
        runs.append((trace, guest.machine.instructions, guest.machine.clock.now_ns()))
    assert runs[0] == runs[1]
    assert any(vector == IRQ0_VECTOR for vector, _ in runs[0][0])


def test_interrupt_waiting_for_if_is_taken_after_sti_in_a_busy_loop() -> None:
    """IRQ0 (18.2 Hz) requested during a `cli` stretch is taken in the next `sti` window, in a
    loop that never halts and never makes an `int`: nothing else ends its slice before the next
    timer deadline (ticks were taken milliseconds late before the fix). Without a hook per
    instruction the machine notices IF=1 within IRQ_WAIT_INSTRUCTIONS: the window here is
    longer; a window of a few instructions can be missed (docs/UNICORN.md)."""
    ticks = 6
    guest = RealModeGuest(
        f"""
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
again:
    cli
    mov cx, 30000
.busy:
    loop .busy                      ; ~30 us with IF=0: a tick arrives in here, now and then
    sti
    mov cx, 300
.open:
    loop .open                      ; ~300 instructions with IF=1
    cmp dword [0x46C], {ticks}
    jb again
    EXIT
irq0:
    inc dword [0x46C]
    push ax
    mov al, 0x20
    out 0x20, al
    pop ax
    iret
"""
    )
    guest.machine.add(PicPair())
    guest.machine.add(Pit())  # BIOS rate: 65536 / PIT_HZ per tick
    guest.set_vector(IRQ0_VECTOR, "irq0")
    assert guest.machine.run(wall_timeout_s=60).reason == "poweroff"
    assert guest.dword(0x46C) == ticks
    tick_ns = 65536 * 1_000_000_000 / PIT_HZ
    assert ticks * tick_ns < guest.machine.clock.now_ns() < ticks * tick_ns + 100_000  # 100 us


def test_irq_is_taken_after_a_hypercall_made_with_if_set() -> None:
    """A guest calling the hypervisor in a loop with IF=1 (no `int` anywhere) while ticks
    arrive: each tick taken, no call lost or made twice."""
    call = 0x13
    guest = RealModeGuest(
        f"""
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
{program_pit(DIVISOR)}
    sti
    mov dx, {HYPERCALL_PORT_BASE + call:#x}
again:
    in eax, dx
    cmp dword [0x46C], 20
    jb again
    mov [RESULTS], eax
    EXIT
irq0:
    inc dword [0x46C]
    push ax
    mov al, 0x20
    out 0x20, al
    pop ax
    iret
"""
    )
    calls = []
    guest.machine.register_hypercall(call, lambda registers: calls.append(1) or len(calls))
    guest.machine.add(PicPair())
    guest.machine.add(Pit())
    guest.set_vector(IRQ0_VECTOR, "irq0")
    assert guest.machine.run(wall_timeout_s=20).reason == "poweroff"
    assert guest.dword(0x46C) == 20
    assert guest.dword(RESULTS) == len(calls)  # no call lost or repeated
