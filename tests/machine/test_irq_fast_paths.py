"""The shortcuts on the PIT IRQ path (issue 16 part 3) against what they stand in for.

- The 8259 pair's acknowledge takes INTR as down after a non-AEOI acknowledge instead of
  resolving priority again, and the master's input changes and EOIs update INTR inline: after
  any sequence of programming, line changes, acknowledges and EOIs through the ports, INTR must
  equal a full re-resolution of both chips (hypothesis drives the sequences).
- A planned delivery reads EFLAGS in place between runs (an IRQ from the run loop) and through
  the API inside one (`int n` in its hook, where Unicorn keeps the arithmetic flags apart): the
  frames of both must carry the interrupted code's CF and ZF.
- The bench's one-shot program (bench/images/irq.asm) delivers every IRQ in both clocks, and
  in deterministic time each one arrives the same number of nanoseconds after the last, run
  after run.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.machine.harness import ProtectedGuest, Trap
from tradekernel.devices.base import Board
from tradekernel.devices.pic import PicPair
from tradekernel.devices.pit import Pit
from tradekernel.devices.power import PowerControl
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock
from tradekernel.emu.cpu import ECX, EIP
from tradekernel.emu.machine import Machine, MachineConfig

BENCH_IMAGES = Path(__file__).resolve().parents[2] / "bench" / "images"
IRQ_PROGRAM_BASE = 0x10000  # CODE_BASE in bench/images/flat32.inc
IRQ0_VECTOR = 8  # PicPair's BIOS vector base
FLAG_CF, FLAG_ZF, FLAG_IF = 0x1, 0x40, 0x200


# ---- the 8259 pair -------------------------------------------------------------------------
class _NoMemory:
    def read(self, address: int, size: int) -> bytes:
        raise AssertionError("the 8259 does no DMA")

    def write(self, address: int, data: bytes) -> None:
        raise AssertionError("the 8259 does no DMA")


def _intr_resolved_anew(pic: PicPair) -> bool:
    """INTR as a full resolution of both chips would give it, on a copy."""
    twin = copy.deepcopy(pic)
    twin._board = None  # no listener on the copy
    twin._update()
    return twin.pending()


def _initialise(board: Board, base: int, icw1: int, vector: int, icw3: int, icw4: int) -> None:
    board.ports.write(base, 1, icw1)
    board.ports.write(base + 1, 1, vector)
    board.ports.write(base + 1, 1, icw3)
    board.ports.write(base + 1, 1, icw4)


_OPERATIONS = st.one_of(
    st.tuples(st.just("raise"), st.integers(0, 15)),
    st.tuples(st.just("lower"), st.integers(0, 15)),
    st.tuples(st.just("pulse"), st.integers(0, 15)),
    st.tuples(st.just("mask"), st.sampled_from((0x20, 0xA0)), st.integers(0, 255)),
    # OCW2: EOI, rotating EOI, specific EOIs, set priority, rotate in AEOI on/off
    st.tuples(
        st.just("ocw2"),
        st.sampled_from((0x20, 0xA0)),
        st.sampled_from((0x20, 0xA0, 0x00, 0x80))
        | st.integers(0, 7).map(lambda level: 0x60 | level)
        | st.integers(0, 7).map(lambda level: 0xE0 | level)
        | st.integers(0, 7).map(lambda level: 0xC0 | level),
    ),
    # OCW3: special mask mode on and off, read ISR/IRR
    st.tuples(st.just("ocw3"), st.sampled_from((0x20, 0xA0)), st.sampled_from((0x68, 0x48, 0x0B))),
    st.tuples(st.just("elcr"), st.integers(0, 1), st.integers(0, 255)),
    st.tuples(st.just("ack")),
    st.tuples(st.just("ack")),
)


@settings(max_examples=300, deadline=None)
@given(
    master_icw4=st.sampled_from((0x01, 0x03, 0x11, 0x13)),  # 8086, AEOI, SFNM
    slave_icw4=st.sampled_from((0x01, 0x03)),
    level_triggered=st.booleans(),
    operations=st.lists(_OPERATIONS, max_size=40),
)
def test_intr_after_every_step_equals_a_full_resolution(
    master_icw4: int, slave_icw4: int, level_triggered: bool, operations: list[tuple]
) -> None:
    board = Board(PortBus(), MmioBus(), Clock(), Channels(), _NoMemory())
    rises = []
    board.interrupt_changed = lambda: rises.append(1)
    pic = PicPair(bios_initialised=False)
    pic.attach(board)
    pic.reset()
    icw1 = 0x19 if level_triggered else 0x11
    _initialise(board, 0x20, icw1, 0x08, 0x04, master_icw4)
    _initialise(board, 0xA0, icw1, 0x70, 0x02, slave_icw4)
    for operation in operations:
        kind = operation[0]
        if kind in ("raise", "lower", "pulse"):
            line = board.irq(operation[1])
            {"raise": line.raise_, "lower": line.lower, "pulse": line.pulse}[kind]()
        elif kind == "mask":
            board.ports.write(operation[1] + 1, 1, operation[2])
        elif kind in ("ocw2", "ocw3"):
            board.ports.write(operation[1], 1, operation[2])
        elif kind == "elcr":
            board.ports.write(0x4D0 + operation[1], 1, operation[2])
        elif pic.pending():
            rises.clear()
            vector = pic.acknowledge()
            assert 0x08 <= vector < 0x10 or 0x70 <= vector < 0x78
        assert pic.pending() == _intr_resolved_anew(pic), operation
        if pic.pending() and kind != "ack":
            assert rises, f"INTR went up without telling the CPU: {operation}"


# ---- frames pushed by planned deliveries ---------------------------------------------------
def _eoi(guest: ProtectedGuest, trap: Trap) -> int:
    if trap.vector == IRQ0_VECTOR:
        guest.machine.ports.write(0x20, 1, 0x20)
    return 0


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "real-time"])
def test_irq_and_int_frames_keep_the_arithmetic_flags(deterministic: bool) -> None:
    """CF and ZF set by the interrupted code reach the frames of IRQ0 (taken from the run loop
    after a `hlt`) and of `int 0x40` (delivered in the interrupt hook), planned deliveries
    after the first of each: IRQ frames read EFLAGS in place, `int` frames through the API."""
    rounds = 12
    guest = ProtectedGuest(
        f"""
    mov al, 0x34                    ; PIT counter 0, lo/hi, rate generator at 1 kHz
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    mov ecx, {rounds}
    sti
.wait:
    xor eax, eax                    ; ZF
    stc                             ; CF
    hlt                             ; IRQ0 wakes it
    xor eax, eax
    stc
    int 0x40
    dec ecx
    jnz .wait
    EXIT
""",
        gates={0x40: (0, False)},
        fixup=_eoi,
        deterministic=deterministic,
    )
    guest.machine.add(PicPair())
    guest.machine.add(Pit())
    assert guest.run(wall_timeout_s=30).reason == "poweroff"
    wanted = FLAG_CF | FLAG_ZF | FLAG_IF
    for vector in (IRQ0_VECTOR, 0x40):
        frames = [trap.frame(False) for trap in guest.traps if trap.vector == vector]
        assert len(frames) >= rounds
        assert [eflags & wanted for _eip, _cs, eflags, *_ in frames] == [wanted] * len(frames)


# ---- the bench's one-shot program ----------------------------------------------------------
def _irq_program(work: Path) -> bytes:
    binary = work / "irq.bin"
    command = ["nasm", "-f", "bin", f"-I{BENCH_IMAGES}/", str(BENCH_IMAGES / "irq.asm")]
    subprocess.run([*command, "-o", str(binary)], capture_output=True, check=True)
    return binary.read_bytes()


def _run_irq_program(code: bytes, irqs: int, deterministic: bool) -> Machine:
    machine = Machine(MachineConfig(deterministic=deterministic))
    machine.add(PicPair(bios_initialised=False))
    machine.add(Pit(bios_initialised=False))
    machine.add(PowerControl())
    machine.cpu.ram[IRQ_PROGRAM_BASE : IRQ_PROGRAM_BASE + len(code)] = code
    machine.cpu.write(EIP, IRQ_PROGRAM_BASE)
    machine.cpu.write(ECX, irqs)
    try:
        info = machine.run(wall_timeout_s=60)
    finally:
        machine.close()
    assert info.reason == "poweroff", info.report  # ECX IRQs taken, no crash
    return machine


def test_one_shot_irqs_in_real_time(tmp_path: Path) -> None:
    """Every IRQ delivered, none before its one-shot's 2 ticks (1677 ns) ran out."""
    irqs = 2000
    machine = _run_irq_program(_irq_program(tmp_path), irqs, deterministic=False)
    assert machine.clock.now_ns() >= irqs * 1677


def test_one_shot_irqs_arrive_at_a_fixed_pace_in_deterministic_time(tmp_path: Path) -> None:
    """Each IRQ comes 2 PIT ticks (1677 ns) after the handler re-armed the one-shot, plus the
    handler's own instructions: the same virtual time per IRQ, and the same run twice."""
    code = _irq_program(tmp_path)
    runs = [_run_irq_program(code, irqs, deterministic=True) for irqs in (100, 300, 300)]
    ends = [(machine.instructions, machine.clock.now_ns()) for machine in runs]
    assert ends[1] == ends[2]
    # 2 ticks from the `out 0x40` that re-arms, which retires 6 instructions after delivery
    assert ends[1][1] - ends[0][1] == 200 * (1677 + 6)
