"""Stops from other threads against the real-time run loop: races, widened on purpose.

A real-time slice ends when the slice-timer thread calls `emu_stop`; the UI, stdin readers and
the network post work and ask for an early stop from their own threads. Two races lived there:
a stop request (or the timer's own bookkeeping after a stop) wiped the next slice's deadline,
so a busy guest ran on forever and the run's timeout never fired; and a stop issued just as the
CPU entered a hook landed inside it, which made Unicorn resume from a stale state (a cpuid
loop ran extra iterations, the boot stub's CPUID signature check failed). Each test widens its
window the way a loaded host does, by delaying the timer thread around its `emu_stop` (the
delay is in the test, the code under test is unchanged), and is bounded in time.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
from collections.abc import Callable

import pytest

from tests.machine.harness import RESULTS, ProtectedGuest
from tradekernel.emu.machine import Machine, StopInfo

CPUID_LOOPS = 100_000
COUNTER_PORT = 0x310
STRING_WORDS = 0x20000
STRING_BUFFER = 0x400000


def _slow_foreign_stops(machine: Machine, before_s: float, after_s: float) -> None:
    """Make every `emu_stop` from a thread other than the CPU's take longer on either side, as
    when the host deschedules that thread (the GIL is free while it sleeps)."""
    real_stop = machine.cpu.stop

    def stop() -> None:
        if threading.get_ident() == machine._loop_thread:
            real_stop()
            return
        time.sleep(before_s)
        real_stop()
        time.sleep(after_s)

    machine.cpu.stop = stop  # type: ignore[method-assign]


def _post_every(machine: Machine, period_s: float, done: threading.Event) -> threading.Thread:
    def beat() -> None:
        while not done.wait(period_s):
            machine.post(lambda: None)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    return thread


def _run_bounded(run: Callable[[], StopInfo], machine: Machine, limit_s: float) -> StopInfo | None:
    """`run()` in a thread; None if it did not return within `limit_s` (then it is powered off)."""
    result: list[StopInfo] = []
    thread = threading.Thread(target=lambda: result.append(run()), daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        machine.request_power_off()
        thread.join(limit_s)
        return None
    return result[0]


def test_a_spinning_guest_still_times_out_when_the_timer_thread_is_slow() -> None:
    guest = ProtectedGuest(".spin:\n    jmp .spin\n", deterministic=False)
    _slow_foreign_stops(guest.machine, before_s=0.0, after_s=0.003)
    info = _run_bounded(lambda: guest.run(wall_timeout_s=0.5), guest.machine, 5.0)
    assert info is not None, "the slice lost its deadline: run(wall_timeout_s=0.5) never returned"
    assert info.reason == "timeout"


@pytest.mark.xfail(
    strict=False,
    reason="not fully fixed: the hook lock closes the window only once Python runs the hook; "
    "a stop between Unicorn entering the cpuid helper and the wrapper taking the lock still "
    "replays or corrupts a cpuid (about 1 run in 3 with the window widened as here)",
)
def test_foreign_stops_never_land_inside_a_cpuid_hook() -> None:
    guest = ProtectedGuest(
        f"""
    mov dword [{RESULTS}], 0
    mov dword [{RESULTS + 4}], 0
    mov esi, {CPUID_LOOPS}
.loop:
    mov eax, 0x40000000
    cpuid
    cmp ebx, 'Trad'
    jne .bad
    cmp ecx, 'eKer'
    jne .bad
    cmp edx, 'nelM'
    je .next
.bad:
    inc dword [{RESULTS}]
.next:
    inc dword [{RESULTS + 4}]
    dec esi
    jnz .loop
    EXIT
""",
        deterministic=False,
    )
    _slow_foreign_stops(guest.machine, before_s=0.0003, after_s=0.0)
    done = threading.Event()
    _post_every(guest.machine, 0.0005, done)
    try:
        info = _run_bounded(lambda: guest.run(wall_timeout_s=60), guest.machine, 90.0)
    finally:
        done.set()
    assert info is not None and info.reason == "poweroff"
    assert (guest.dword(RESULTS), guest.dword(RESULTS + 4)) == (0, CPUID_LOOPS)


def test_foreign_stops_never_make_a_string_in_read_the_device_twice() -> None:
    """`rep insw` from a port that counts, while other threads keep asking for stops. Unicorn
    drops a string IN's iteration when a stop lands between the IN hook and the store: the CPU
    runs the iteration again and reads the port again, so a device with read side effects (an
    NE2000's remote DMA, an ATA data port) loses data. Seen as a received frame two bytes short
    (tests/hostnet/test_ne2000_guest.py in real time)."""
    guest = ProtectedGuest(
        f"""
    mov dx, {COUNTER_PORT}
    mov edi, {STRING_BUFFER}
    mov ecx, {STRING_WORDS}
    cld
    rep insw
    EXIT
""",
        deterministic=False,
    )
    served = itertools.count(1)
    guest.machine.ports.claim(
        COUNTER_PORT, 2, "counter", lambda _port, _size: next(served) & 0xFFFF, None
    )
    done = threading.Event()
    _post_every(guest.machine, 0.0002, done)
    try:
        info = _run_bounded(lambda: guest.run(wall_timeout_s=60), guest.machine, 90.0)
    finally:
        done.set()
    assert info is not None and info.reason == "poweroff"
    stored = struct.unpack(
        f"<{STRING_WORDS}H", guest.ram[STRING_BUFFER : STRING_BUFFER + 2 * STRING_WORDS]
    )
    lost = [i for i, word in enumerate(stored) if word != (i + 1) & 0xFFFF]
    assert not lost, f"{len(lost)} words out of sequence, the first at word {lost[0]}"
    assert next(served) == STRING_WORDS + 1, "the device was read more often than the CPU stored"
