"""The machine: CPU, RAM, buses, clock, interrupt delivery, hypercalls and the run loop.

The run loop runs the CPU in slices. Between slices it fires due timers, delivers an interrupt
the PIC asserts (if IF is set), and, when the CPU has executed `hlt`, jumps to the next timer
deadline instead of spinning (tickless). Two clocks:
- real time: virtual ns follow the wall clock; a timer thread ends each slice with `emu_stop`
  at the next deadline (at most SLICE_WALL_NS later), so guest code runs at full speed;
- deterministic: virtual ns = instructions retired x ns_per_instruction (MachineConfig; by
  default NS_PER_INSTRUCTION) plus idle jumps, slices
  are counted, and host input is taken only when the guest is idle, so the same inputs give the
  same run bit for bit.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import get_ident

from unicorn import UC_HOOK_CODE, UC_HOOK_INSN_INVALID, UC_HOOK_MEM_UNMAPPED, UcError

from tradekernel import memmap
from tradekernel.devices.base import Board, Device, SystemSignals
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.calibrate import calibrate
from tradekernel.emu.clock import Clock
from tradekernel.emu.cpu import (
    A20_WINDOW,
    A20_WINDOW_SIZE,
    CR0,
    CR0_PE,
    CR0_PG,
    CR3,
    CR4,
    CS,
    DS,
    EAX,
    EBP,
    EBX,
    ECX,
    EDI,
    EDX,
    EFLAGS,
    EIP,
    ES,
    ESI,
    ESP,
    FLAG_IF,
    FLAG_IOPL,
    FS,
    GS,
    HF_INHIBIT_IRQ,
    SS,
    Cpu,
    CpuError,
)
from tradekernel.emu.cpu import x86 as _x86
from tradekernel.emu.interrupts import Event, InterruptUnit, PageNotPresent, TripleFault
from tradekernel.emu.memory import GuestMemory
from tradekernel.emu.report import crash_report
from tradekernel.hypercall import (
    ABI_VERSION,
    CPUID_HYPERVISOR_LEAF,
    CPUID_MAX_LEAF,
    CPUID_SIGNATURE,
    ENOSYS,
    HYPERCALL_PORT_BASE,
)

NS_PER_INSTRUCTION = 1  # deterministic mode: a 1000-MIPS virtual CPU
SLICE_WALL_NS = 10_000_000  # real time: the longest a slice runs before the loop looks around
MAX_SLICE_INSTRUCTIONS = 10_000_000
# `ins`: up to four prefixes (rep, operand and address size, segment), then 6C or 6D
STRING_IN_PREFIXES = bytes((0xF2, 0xF3, 0x66, 0x67, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65))
MAX_STRING_IN_LENGTH = 5
STOP_RETRY_S = 0.0002  # the timer's next stop while a due slice has not ended (in a hook, missed)
NEAR_DEADLINE_S = 0.00005  # a timer this close is left to the CPU thread (see _SliceTimer)
# While an interrupt is requested but IF=0, slices end after this much so IF is looked at again:
# an IF=1 stretch longer than this (after `sti`, `popf`, `iret`) is sure to be noticed.
IRQ_WAIT_INSTRUCTIONS = 200
IRQ_WAIT_WALL_NS = 100_000
# Exceptions whose EIP is the faulting instruction: an interrupt may come first, then it reruns.
RESTARTABLE_FAULTS = frozenset({0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19})
PAGE_SIZE = 0x1000
PAGE_MASK = PAGE_SIZE - 1
SIZE_MASKS = (0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF)  # an I/O access's value by its size in bytes
INVALID_OPCODE = 6
# What `syscall` / `sysenter` raise on a CPU whose OS set no MSRs (EFER.SCE clear,
# IA32_SYSENTER_CS = 0; Intel SDM vol. 2B): #UD, and #GP(0). The machine sets no MSRs.
SYSTEM_INSTRUCTION_FAULTS = {"syscall": 6, "sysenter": 13}
PAGE_FAULT = 14
GENERAL_PROTECTION = 13
# `syscall`/`sysenter` by their bytes, and how far past an I/O instruction the block that
# holds both may end (Unicorn's blocks hold at most 512 instructions in 4 KiB).
SKIPPED_SYSTEM_INSTRUCTIONS = {b"\x0f\x05": "syscall", b"\x0f\x34": "sysenter"}
MAX_SKIPPED_BLOCK = 0x1000
# Besides branches, instructions after which Unicorn (QEMU) ends a translation block, so a stop
# may land right after them: the skipped-instruction check stops decoding there.
BLOCK_ENDING_MNEMONICS = frozenset({"hlt", "sti", "popf", "popfd", "popfw", "lidt", "lgdt"})
IMMEDIATE_PORT_OPCODES = (b"\xe4", b"\xe5", b"\xe6", b"\xe7")  # in/out with an imm8 port

REGISTER_IDS = {
    "eax": EAX,
    "ebx": EBX,
    "ecx": ECX,
    "edx": EDX,
    "esi": ESI,
    "edi": EDI,
    "ebp": EBP,
    "esp": ESP,
    "eip": EIP,
    "eflags": EFLAGS,
    "ds": DS,
    "es": ES,
    "fs": FS,
    "gs": GS,
    "cr0": CR0,
    "cr3": CR3,
}


SEGMENT_NAMES = frozenset({"ds", "es", "fs", "gs"})
GPR_INDEX = {"eax": 0, "ecx": 1, "edx": 2, "ebx": 3, "esp": 4, "ebp": 5, "esi": 6, "edi": 7}


def _skipped_system_instruction(
    code: bytes, start: int, eip: int, bits: int
) -> tuple[int, str] | None:
    """(address, name) of the `syscall`/`sysenter` Unicorn skipped in the straight-line code
    `code` that starts at the I/O instruction `start`, given where the slice stopped (`eip`),
    or None. A skipped `syscall` leaves EIP just past itself; a skipped `sysenter` leaves the
    last EIP Unicorn synchronised (the I/O instruction's, for its hook) plus 2, since its
    translation does not write EIP before the helper runs. A `sysenter` right at `eip` has not
    run yet (it runs, and faults, in the next slice). Capstone is loaded only here."""
    from capstone import (
        CS_ARCH_X86,
        CS_GRP_CALL,
        CS_GRP_INT,
        CS_GRP_IRET,
        CS_GRP_JUMP,
        CS_GRP_RET,
        CS_MODE_16,
        CS_MODE_32,
        Cs,
    )

    decoder = Cs(CS_ARCH_X86, CS_MODE_32 if bits == 32 else CS_MODE_16)
    decoder.detail = True
    branches = (CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT, CS_GRP_IRET)
    for instruction in decoder.disasm(code, start):
        address = instruction.address
        name = SKIPPED_SYSTEM_INSTRUCTIONS.get(bytes(instruction.bytes))
        if name == "syscall":
            return (address, name) if address + 2 == eip else None
        if name == "sysenter":
            return (address, name) if eip == start + 2 and address != eip else None
        if (
            (eip != start + 2 and address >= eip)
            or instruction.mnemonic in BLOCK_ENDING_MNEMONICS
            or any(instruction.group(g) for g in branches)
        ):
            return None
    return None


class Registers:
    """Named register access for hypercall handlers (the kernel never sees unicorn ids).

    In a trap handler (`Machine.register_trap`) general registers are written at once, but EIP,
    EFLAGS, segment and control registers are held until the trap's slice has ended (see
    `Machine._run_trap`): that is how a trap hands the CPU to another task, CR3 included,
    without an IDT round trip."""

    def __init__(self, cpu: Cpu) -> None:
        self._cpu = cpu
        self._gpr = cpu.gpr
        self.held: list[tuple[int, int]] | None = None  # a trap's writes for after the slice
        self._plans: dict[tuple[str, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def read(self, name: str) -> int:
        index = GPR_INDEX.get(name)
        return self._gpr(index) if index is not None else self._cpu.read(REGISTER_IDS[name])

    def write(self, name: str, value: int) -> None:
        index = GPR_INDEX.get(name)
        if index is not None:
            self._cpu.set_gpr(index, value)
        elif self.held is not None:
            self.held.append((REGISTER_IDS[name], value))
        else:
            self._cpu.write(REGISTER_IDS[name], value)

    def read_many(self, names: tuple[str, ...]) -> list[int]:
        """Non-general registers by name, in one C call (segment selectors: 16 bits)."""
        plan = self._plans.get(names)
        if plan is None:
            ids = tuple(REGISTER_IDS[name] for name in names)
            masks = tuple(0xFFFF if name in SEGMENT_NAMES else 0xFFFFFFFF for name in names)
            plan = self._plans[names] = (ids, masks)
        ids, masks = plan
        return [value & mask for value, mask in zip(self._cpu.read_batch(ids), masks, strict=True)]

    def gprs(self) -> list[int]:
        """EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI (x86 order)."""
        return self._cpu.gprs32()

    def set_gprs(self, values: list[int]) -> None:
        """All eight general registers, x86 order (at once, in a trap too)."""
        for index, value in enumerate(values):
            self._cpu.set_gpr(index, value)

    def syscall_args(self) -> tuple[int, int, int, int, int, int]:
        """EBX, ECX, EDX, ESI, EDI, EBP: the Linux i386 system-call arguments."""
        g = self._cpu.gprs32()
        return g[3], g[1], g[2], g[6], g[7], g[5]

    def arg0(self) -> int:
        return self._gpr(3)  # EBX

    def arg1(self) -> int:
        return self._gpr(1)  # ECX

    def arg2(self) -> int:
        return self._gpr(6)  # ESI

    def arg3(self) -> int:
        return self._gpr(7)  # EDI


Hypercall = Callable[[Registers], int]


@dataclass
class MachineConfig:
    ram_mib: int = memmap.DEFAULT_RAM_MIB
    deterministic: bool = False
    # Deterministic mode's virtual CPU speed: a slower one makes a guest that polls for a
    # timer (never idling, so time moves only with instructions) reach it in fewer exits.
    ns_per_instruction: int = NS_PER_INSTRUCTION


@dataclass
class StopInfo:
    reason: str  # "poweroff", "reset", "crash", "timeout", "until"
    report: str = ""


class _SliceTimer:
    """The real-time slicer: one thread that ends a slice with emu_stop at its wall deadline.

    The slice's deadline belongs to the CPU thread alone (`arm` at slice start, `move_up` from a
    hook, `armed = None` at slice end), each slice under a new generation; other threads only
    count stop requests (`stop_soon`), which make the armed slice due now. The thread never
    writes the deadline: once a slice is due it calls `stop` every STOP_RETRY_S until that slice
    is disarmed, so a stop that found the CPU in a hook, or that landed just before `emu_start`
    (where Unicorn forgets it), is tried again, and a stop request can never wipe the deadline
    of the slice after it. Arming is lock-free: the thread re-reads the state whenever it wakes;
    only a deadline earlier than its current sleep target sets the event, and between slices the
    thread keeps sleeping towards its last target, so a run of short slices (an IRQ per `hlt`)
    wakes it about once per SLICE_WALL_NS, not once per slice (issue 16 part 3).

    A deadline moved up to less than NEAR_DEADLINE_S ahead does not wake the thread either:
    the CPU thread looks at it in its own I/O hooks (`near`), and a `hlt` ends the slice
    anyway; a guest that spins with no hook at all sees it when the thread next wakes, at
    most SLICE_WALL_NS later."""

    def __init__(self, stop: Callable[[], bool]) -> None:
        self.stop = stop  # False: the CPU is inside a hook (the retry comes anyway)
        self.armed: tuple[int, float] | None = None  # (generation, deadline) of the slice
        self.near: float | None = None  # a near deadline of the armed slice (see move_up)
        self.closed = False
        self._generation = 0
        self._requests = 0  # stop requests from other threads (a count: never reset)
        self._served = 0  # the request count already turned into a due slice
        self._sleeping_until = float("inf")
        self._wake = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="slice-timer", daemon=True).start()

    def arm(self, deadline: float) -> None:
        self._generation += 1
        self.near = None
        self.armed = (self._generation, deadline)
        if deadline < self._sleeping_until or self._requests != self._served:
            self._wake.set()

    def move_up(self, deadline: float, now: float) -> None:
        """The running slice must end by `deadline` (CPU thread only; `now`: time.monotonic()).
        A near deadline is left in `near` for the CPU thread's hooks, which compare it with
        time.monotonic() themselves (one call less on every OUT of a handler)."""
        armed = self.armed
        if armed is not None and deadline < armed[1]:
            self.armed = (armed[0], deadline)
            if deadline - now < NEAR_DEADLINE_S:
                self.near = deadline
            elif deadline < self._sleeping_until:
                self._wake.set()

    def stop_soon(self) -> None:
        """End the running slice, or the next one, as soon as possible (any thread)."""
        self._requests += 1
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def _run(self) -> None:
        due = 0  # the generation that must end now
        while not self.closed:
            armed = self.armed
            if armed is None:
                # Between slices: requests wait for the next arm, which wakes the thread only
                # if its deadline comes before the target slept towards.
                until = self._sleeping_until
                self._sleep(until if time.monotonic() < until < float("inf") else None)
                continue
            generation, deadline = armed
            requests = self._requests
            if requests != self._served:
                self._served, due = requests, generation
            now = time.monotonic()
            if due != generation and deadline > now:
                self._sleep(deadline)
                continue
            due = generation
            self.stop()
            self._sleep(time.monotonic() + STOP_RETRY_S)

    def _sleep(self, until: float | None) -> None:
        if until is None:
            self._sleeping_until = float("inf")
            self._wake.wait()
        else:
            self._sleeping_until = until
            self._wake.wait(max(0.0, until - time.monotonic()))
        self._wake.clear()


class Machine:
    def __init__(self, config: MachineConfig | None = None) -> None:
        self.config = config or MachineConfig()
        self._deterministic = self.config.deterministic  # fixed at construction (the sampler)
        self.cal = calibrate()
        self.cpu = Cpu(self.config.ram_mib * 1024 * 1024)
        self._live_state = self.cpu.state is not None  # registers read and written in place
        # Words of the live CPU state the loop reads inline (None: through the API)
        self._eflags_word = self.cpu.eflags_word
        self._hflags_word = self.cpu.hflags_word
        self._eip_word = self.cpu.eip_word
        self._ns_per_instruction = self.config.ns_per_instruction
        self._power_on_context = self.cpu.save_context()
        self.interrupts = InterruptUnit(self.cpu, self.cal)
        self._cr0_word = self.interrupts.cr0_word
        self._previous_exception_word = self.interrupts.previous_exception_word
        self.memory = GuestMemory(self.cpu.ram, self._code_written)
        self.registers = Registers(self.cpu)
        self.ports = PortBus()
        self._port_writers = self.ports.writers
        self.mmio = MmioBus()
        self.clock = Clock()
        self.channels = Channels()
        self.a20 = True
        self.board = Board(
            ports=self.ports,
            mmio=self.mmio,
            clock=self.clock,
            channels=self.channels,
            memory=self.memory,
            signals=SystemSignals(
                reset=self.request_reset,
                power_off=self.request_power_off,
                set_a20=self.set_a20,
                a20_enabled=lambda: self.a20,
            ),
            interrupt_changed=self._interrupt_changed,
        )
        self.devices: list[Device] = []
        self.hypercalls: dict[int, Hypercall] = {}
        self._traps: dict[int, Callable[[Registers], bool]] = {}
        self._kernel_hypercalls: set[int] = set()
        self.stop_info: StopInfo | None = None
        self.halted = False
        self._stop_requested = False
        self._stopped_from_outside = False  # real time: the slice timer (or a post) ended the slice
        self._posted: deque[Callable[[], None]] = deque()
        self._idle_feeders: list[Callable[[], bool]] = []
        self._wake = threading.Event()
        self._reset_listeners: list[Callable[[], None]] = []
        self.instructions = 0
        self.idle_count = 0  # times the loop found the CPU halted (tests wait on it)
        self._slice_base_ns = 0
        self._wall_origin = time.monotonic_ns()
        self._wall_last = 0  # the latest real time handed out (see _wall_now)
        self._in_slice = False
        self._in_hook = 0
        self._hook_lock = threading.Lock()  # a hook's entry against the timer's check-and-stop
        self._io_fault = None  # a saved CPU state waiting for its #GP (see _fault_from_io)
        # The last device IN of the slice, ((port, EIP, EDI), value), and an IN that Unicorn
        # dropped and will run again (see _keep_dropped_string_in).
        self._last_in: tuple[tuple[int, int, int], int] | None = None
        self._dropped_in: tuple[tuple[int, int, int], int] | None = None
        self._pending_event: Event | None = None  # an exception waiting for the slice to end
        self._irq_raised = True  # the PIC's output may be up (see _irq_ready)
        self._pending_eip: int | None = None  # where the pending event's instruction is
        self._io_eip: int | None = None  # the slice's last IN/OUT whose hook ended the slice
        self._trap_writes: list[tuple[int, int]] = []  # a trap's register writes (Registers)
        self._shadow_step = False  # deterministic: run one instruction, then the interrupt
        self._slice_budget = 0  # deterministic: the instruction count the slice may run
        self._count_limit = None  # the budget as Unicorn's count hook sees it
        if self.cal.count_limit_word is not None:
            engine = ctypes.cast(self.cpu.uc._uch, ctypes.c_void_p).value
            self._count_limit = ctypes.c_uint64.from_address(engine + 8 * self.cal.count_limit_word)
        self._stale_pages: list[int] = []  # written physical pages to drop after the slice
        self._slicer: _SliceTimer | None = None
        self.debug_turn: Callable[[], str] | None = None  # an attached debugger (emu/gdbstub.py)
        self._loop_thread = threading.get_ident()  # the thread that runs the CPU (see run)
        if self._deterministic:
            self.clock.set_sampler(self._deterministic_now)
        else:
            self.clock.set_sampler(self._wall_now)
        self.clock.on_earlier(self._deadline_moved_up)
        self.mmio.on_claim(
            lambda r: self.cpu.map_mmio(
                r.base, r.size, self._guard(self._mmio_read(r)), self._guard(self._mmio_write(r))
            )
        )
        self._install_hooks()
        # Hooks added through the binding (the machine's own are counted here): a code hook
        # may stop at its instruction, which block stops cannot do (see run).
        self._own_binding_hooks = len(self.cpu.uc._callbacks)

    # ---- building ---------------------------------------------------------------------
    def add(self, device: Device) -> Device:
        device.attach(self.board)
        device.reset()
        self.devices.append(device)
        return device

    def register_hypercall(self, number: int, handler: Hypercall, *, kernel: bool = True) -> None:
        """Kernel hypercalls are dropped at reset (the next KERNEL_INIT registers them anew)."""
        if not 0 <= number <= 0xFF:
            raise ValueError(f"hypercall number {number} outside 0-255")
        self.hypercalls[number] = handler
        if kernel:
            self._kernel_hypercalls.add(number)

    def watch(self, address: int, callback: Callable[[], None]) -> None:
        """Call `callback` each time the CPU is about to execute the instruction at linear
        `address` (a code hook on that one address: free everywhere else). For traces and
        breakpoints; set before the code at `address` first runs."""
        self.cpu.uc.hook_add(
            UC_HOOK_CODE, self._guard(lambda *_: callback()), None, address, address
        )

    def register_trap(self, vector: int, handler: Callable[[Registers], bool]) -> None:
        """A paravirtual fast path for `int vector` from ring 3 (a system call): `handler`
        runs in the trap itself, with the caller's registers, and returns True when it has
        completed the call (execution goes on after the `int`, or wherever the EIP it wrote
        points: see Registers), or False to have the interrupt delivered through the IDT as
        usual. Dropped at reset like hypercalls."""
        self._traps[vector] = handler

    def code_changed(self, address: int, size: int) -> None:
        """Physical [address, address + size) was written behind the CPU's back. Writes through
        `memory` report themselves; this is for bytes written some other way (`memory.view()`)."""
        self._code_written(address, size)

    def _code_written(self, address: int, size: int) -> None:
        """Host-side bytes landed in RAM: drop what Unicorn translated from those pages, or the
        CPU would go on running the old code (Unicorn translates from RAM it does not watch for
        host writes). Unicorn names code by linear address, so the pages are named where
        linear = physical: directly without paging or where paging maps them 1:1 (the kernel
        region, any BIOS); any other page waits for the end of the slice, which is asked for
        now, and is dropped there with paging switched off (`Cpu.drop_physical_translations`).
        Cheap where nothing was translated: Unicorn finds no code on the page and returns.
        CR0 and CR3 are read once, and each run of pages mapped 1:1 (physically contiguous)
        is dropped in one call: a program load reports hundreds of pages at a time."""
        if size <= 0:
            return
        first, end = address & ~PAGE_MASK, (address + size + PAGE_MASK) & ~PAGE_MASK
        cpu = self.cpu
        cr0, cr3 = self.interrupts.control_registers()
        if not cr0 & CR0_PG:
            cpu.drop_translations(first, end)
            return
        mmu = self.interrupts.mmu
        stale = self._stale_pages
        in_place = cpu.ring0_lookups_in_place or cpu.cpl() == 0
        run = first  # the start of the current run of in-place pages
        mmu.pin(cr0, cr3)
        try:
            for page in range(first, end, PAGE_SIZE):
                try:
                    mapped_1to1 = mmu.physical(page) == page
                except PageNotPresent:
                    mapped_1to1 = False
                if not (mapped_1to1 and in_place):
                    if run < page:
                        cpu.drop_translations(run, page, as_ring0=True)
                    run = page + PAGE_SIZE
                    stale.append(page)
        finally:
            mmu.unpin()
        if run < end:
            cpu.drop_translations(run, end, as_ring0=True)
        if stale:
            if self._in_slice:
                self._stop_requested = True
                cpu.stop()
            else:
                self._drop_stale_pages()

    def _drop_stale_pages(self) -> None:
        pages, self._stale_pages = self._stale_pages, []
        self.cpu.drop_physical_translations(pages)

    def on_reset(self, listener: Callable[[], None]) -> None:
        self._reset_listeners.append(listener)

    # ---- time ---------------------------------------------------------------------------
    def _wall_now(self) -> int:
        """Real time's clock (its sampler): never backwards, even when a debugger's stop has
        moved the origin while something read the time (see _debugger_turn)."""
        now = time.monotonic_ns() - self._wall_origin
        if now > self._wall_last:
            self._wall_last = now
            return now
        return self._wall_last

    def _deterministic_now(self) -> int:
        if self._in_slice:
            return self._slice_base_ns + self.cpu.retired.value * self._ns_per_instruction
        return self._slice_base_ns

    # ---- signals from devices and the host ----------------------------------------------
    def request_reset(self) -> None:
        self._finish_slice_with(StopInfo("reset"))

    def request_power_off(self) -> None:
        self._finish_slice_with(StopInfo("poweroff"))

    def _finish_slice_with(self, info: StopInfo) -> None:
        if self.stop_info is None or self.stop_info.reason not in ("crash",):
            self.stop_info = info
        self._stop_requested = True
        self.cpu.stop()
        self._wake.set()

    def set_a20(self, enabled: bool) -> None:
        """A20 off makes 0x100000-0x10FFFF alias 0x0-0xFFFF, as the 8086 wrap-around needs."""
        if enabled == self.a20:
            return
        self.a20 = enabled
        self.cpu.unmap(A20_WINDOW, A20_WINDOW_SIZE)
        self.cpu.map_ram(A20_WINDOW, A20_WINDOW_SIZE, A20_WINDOW if enabled else 0)

    def _stop_soon(self) -> None:
        """Ask for the slice to end as soon as the CPU is outside every hook (real time only).

        A stop that lands while a hook runs can make Unicorn resume from a stale EIP (the start
        of the translation block), so the hooked I/O instruction would run twice; the timer
        thread therefore retries until it finds the CPU between hooks. Deterministic runs never
        cut a slice short: their slices end on instruction counts and `hlt` alone."""
        if self._slicer is not None:
            self._slicer.stop_soon()

    def _deadline_moved_up(self, deadline: int) -> None:
        """A timer earlier than the running slice's end was set (a device programmed from guest
        code, in an I/O hook): end the slice in time for it."""
        if not self._in_slice:
            return
        if self._deterministic:
            base = self._slice_base_ns
            if deadline < base + self._slice_budget * self._ns_per_instruction:
                # The slice is made to end at the deadline, going on until then (a stop here
                # would cost a slice more: a one-shot timer armed in a handler that `hlt`s
                # soon after). Where the count cannot be lowered, it stops now.
                budget = (deadline - base) // self._ns_per_instruction
                if budget < 1:
                    budget = 1
                limit = self._count_limit
                if limit is not None and budget > self.cpu.retired.value:
                    self._slice_budget = budget
                    limit.value = budget
                else:
                    self._stop_requested = True
                    self.cpu.stop()
        elif self._slicer is not None:
            now = time.monotonic()
            ahead = deadline - self._wall_now()
            self._slicer.move_up(now + ahead / 1e9 if ahead > 0 else now, now)

    def _timer_stop(self) -> bool:
        """The timer thread's stop; False means "inside a hook" (the timer tries again). The
        check and the stop hold the hook lock, which every hook takes to count itself in, so
        the CPU cannot enter a hook between them (a stop pending as a cpuid or string IN hook
        runs was seen to cost a wrong answer or a lost word: tests/machine/test_stop_races.py;
        the causes and the fixes are in docs/UNICORN.md)."""
        with self._hook_lock:
            if not self._in_slice:
                return True
            if self._in_hook:
                return False
            self._stopped_from_outside = True  # before the stop: the CPU thread may look at
            self.cpu.stop()  # it as soon as emu_start returns, while this thread is still here
            return True

    def _guard(self, handler: Callable[..., object]) -> Callable[..., object]:
        """Wrap a CPU hook so the timer thread can tell when the CPU is inside one, and so that
        a Python exception in a device or the kernel stops the machine with a report. A
        deterministic machine has no timer thread (nothing stops it from outside), so its
        hooks skip the count and its lock: every interrupt crosses three or four hooks. (The
        OUT hook has this folded in: `_port_out_hook`.)"""
        crash = self._hook_crashed
        if self._deterministic:

            def unlocked(*args: object) -> object:
                try:
                    return handler(*args)
                except Exception as error:  # noqa: BLE001 - ctypes would print and carry on
                    return crash(error)

            return unlocked

        # acquire/release rather than `with`: half the cost, on every hook of a real-time run
        acquire, release = self._hook_lock.acquire, self._hook_lock.release

        def guarded(*args: object) -> object:
            acquire()  # never while the timer thread is between its check and its stop
            self._in_hook += 1
            release()
            try:
                return handler(*args)
            except Exception as error:  # noqa: BLE001 - ctypes would print and carry on
                return crash(error)
            finally:
                self._in_hook -= 1

        return guarded

    def _hook_crashed(self, error: Exception) -> int:
        """A Python exception escaped a hook's handler: the machine stops with a report."""
        where = traceback.extract_tb(error.__traceback__)[-1]
        self._crash(
            f"internal error: {type(error).__name__}: {error} "
            f"({Path(where.filename).name}:{where.lineno} in {where.name})"
        )
        return 0

    def _interrupt_changed(self) -> None:
        """The PIC's output went up. From the run loop itself (a timer firing between slices)
        the loop looks at it next anyway: no thread is woken. From a hook (a device written by
        guest code) a real-time slice is ended right there: a stop inside an I/O hook lets the
        block finish and stops at the next one, EIP exact (docs/UNICORN.md). From any other
        thread (UI, network), the slice timer stops the CPU and the idle wait is woken."""
        self._irq_raised = True
        if get_ident() == self._loop_thread:
            if self._in_slice and not self._deterministic:
                self._stop_requested = True
                self.cpu.stop()
            return
        self._stop_soon()
        self._wake.set()

    def post(self, action: Callable[[], None]) -> None:
        """Run `action` in the machine loop soon (thread-safe: the UI and stdin readers use it)."""
        self._posted.append(action)
        self._stop_soon()
        self._wake.set()

    def feed_when_idle(self, feeder: Callable[[], bool]) -> None:
        """`feeder()` is called whenever the guest idles and returns whether it gave the guest
        something (then the guest runs on before time moves). This is how scripted input stays
        deterministic: it arrives only at idle points."""
        self._idle_feeders.append(feeder)

    # ---- hooks --------------------------------------------------------------------------
    def _install_hooks(self) -> None:
        cpu, guard = self.cpu, self._guard
        cpu.on_cpuid(guard(self._on_cpuid))  # first: see Cpu.on_port_in
        cpu.on_port_in(guard(self._port_in))
        cpu.on_port_out(self._port_out_hook())
        cpu.on_interrupt(guard(self._on_interrupt))
        cpu.on_system_instruction(guard(self._on_system_instruction))
        cpu.uc.hook_add(UC_HOOK_INSN_INVALID, guard(self._on_invalid_opcode))
        cpu.uc.hook_add(UC_HOOK_MEM_UNMAPPED, guard(self._on_unmapped))

    def _io_allowed(self, port: int, size: int) -> bool:
        """Protected mode: CPL <= IOPL, or the TSS I/O bitmap clears every byte of the access."""
        cpu = self.cpu
        cpl = cpu.cpl()
        if cpl == 0:
            return True
        if cpl <= (cpu.read(EFLAGS) & FLAG_IOPL) >> 12:
            return True
        tss_base, tss_limit = cpu.read_table_register(_x86.UC_X86_REG_TR)
        if tss_limit < 0x67:
            return False
        try:
            (bitmap,) = struct.unpack("<H", self.interrupts.mmu.read(tss_base + 0x66, 2))
            if bitmap + (port + size - 1) // 8 > tss_limit:
                return False
            bits = int.from_bytes(
                self.interrupts.mmu.read(tss_base + bitmap + port // 8, 2), "little"
            )
        except Exception:  # noqa: BLE001 - an unmapped TSS means no permission
            return False
        mask = ((1 << size) - 1) << (port % 8)
        return not bits & mask

    def _near_deadline_passed(self, slicer: _SliceTimer) -> None:
        """Real time: the near timer of the running slice is due (see _SliceTimer; the I/O
        hooks compare `slicer.near` with the time): end the slice from the hook, where a stop
        lets the block finish and stops at the next (EIP exact). With IF=0 (a handler re-arming
        its one-shot) the interrupt could not be taken before IF is set again, which nothing
        reports: the slice's deadline, moved up to the near one and now past, ends it when the
        slice timer next wakes (at most SLICE_WALL_NS later), and mostly the `hlt` after the
        handler's `iret` ends it sooner."""
        slicer.near = None
        eflags = self._eflags_word
        if (eflags.value if eflags is not None else self.cpu.flags()) & FLAG_IF:
            self._stop_requested = True
            self.cpu.stop()

    def _port_in(self, _engine: object, port: int, size: int, _user: object) -> int:
        if self._io_fault is not None:
            return self.cpu.read(EAX)
        slicer = self._slicer
        if slicer is not None and slicer.near is not None and time.monotonic() >= slicer.near:
            self._near_deadline_passed(slicer)
        if port & 0xFF00 == HYPERCALL_PORT_BASE and self.cpu.cpl() == 0:
            handler = self.hypercalls.get(port & 0xFF)
            if handler is None:
                return -ENOSYS & 0xFFFFFFFF
            result = handler(self.registers) & 0xFFFFFFFF
            if self._stop_requested:
                self._io_eip = self.cpu.eip()  # see _fault_skipped_system_instruction
            return result
        if self.cpu.cpl() and not self._io_allowed(port, size):
            self._fault_from_io()
            return self.cpu.read(EAX)
        cpu = self.cpu
        where = (port, cpu.eip(), cpu.gpr(7))
        dropped = self._dropped_in
        if dropped is not None and dropped[0][1] == where[1]:
            self._dropped_in = None
            if dropped[0] == where:  # the same iteration again: the device was read already
                self._last_in = dropped  # (and it may be dropped again)
                return dropped[1]
        value = self.ports.read(port, size)
        self._last_in = (where, value)
        if self._stop_requested:
            self._io_eip = where[1]  # see _fault_skipped_system_instruction
        return value

    def _port_out_hook(self) -> Callable[[object, int, int, int, object], None]:
        """The OUT hook, with `_guard` folded in and the CPL read in place: a PIT IRQ's handler
        makes three OUTs (issue 16 part 3), and each call less here is one less per OUT.
        A privileged OUT goes straight to the port's writer (`PortBus.writers`)."""
        cpu = self.cpu
        writers, masks = self._port_writers, SIZE_MASKS
        hflags = cpu.hflags_word
        locked = not self._deterministic  # see _guard: only real time has the slicer
        acquire, release = self._hook_lock.acquire, self._hook_lock.release
        crash = self._hook_crashed
        monotonic = time.monotonic

        def port_out(_engine: object, port: int, size: int, value: int, _user: object) -> None:
            if locked:
                acquire()  # never while the timer thread is between its check and its stop
                self._in_hook += 1
                release()
            try:
                if self._io_fault is not None:
                    return
                slicer = self._slicer
                if slicer is not None:
                    near = slicer.near
                    if near is not None and monotonic() >= near:
                        self._near_deadline_passed(slicer)
                cpl = hflags.value & 3 if hflags is not None else cpu.cpl()
                if cpl and not self._io_allowed(port, size):
                    self._fault_from_io()
                    return
                writers[port](port, size, value & masks[size])
                if self._stop_requested:
                    self._io_eip = cpu.eip()  # see _fault_skipped_system_instruction
            except Exception as error:  # noqa: BLE001 - ctypes would print and carry on
                crash(error)
            finally:
                if locked:
                    self._in_hook -= 1

        return port_out

    def _fault_from_io(self) -> None:
        """#GP for I/O without privilege. Unicorn runs the rest of the translation block after
        an I/O hook whatever the hook does to CS:EIP, so the fault cannot be delivered here:
        the CPU state at the instruction is saved, the slice ends, and `_after_slice` restores
        that state and delivers #GP. Until then every hooked event is ignored."""
        self._io_fault = self.cpu.save_context()
        self._stop_requested = True
        self.cpu.stop()

    def _deliver_io_fault(self) -> None:
        assert self._io_fault is not None
        self.cpu.restore_context(self._io_fault)
        self._io_fault = None
        self.halted = False
        self._deliver_or_crash(Event(GENERAL_PROTECTION, 0), "I/O without privilege")

    def _on_interrupt(self, _engine: object, vector: int, _user: object) -> None:
        """An `int n` or a fault: delivered once the slice has ended, never inside the hook.
        Writing CS:EIP in the hook and then stopping (a timer, a UI event) let Unicorn resume
        from the start of a translation block it had partly run, repeating `int 0x80` with a
        clobbered EAX; with no EIP written here, the stop leaves EIP exact (at the fault, or
        past the `int`)."""
        trap = self._traps.get(vector) if self._traps else None
        if (
            trap is not None
            and self._io_fault is None
            and self._pending_event is None
            and self.interrupts.was_software_int()
            and self.cpu.cpl() == 3
            and not (self._irq_raised and self._irq_ready())  # the IRQ first; the `int` reruns
            and self._run_trap(trap)
        ):
            return
        error_code, software = self.interrupts.take_exception_state()
        if self._io_fault is not None or self._pending_event is not None:
            return
        if (
            self._hook_delivery()
            and not self._trap_writes
            and not (self._irq_raised and self._irq_ready())
        ):
            # Delivered here, the slice going on: see run's block stops.
            if not self.interrupts.deliver_planned(vector, software, error_code):
                self._deliver_or_crash(Event(vector, error_code, software=software), "")
            return
        event = Event(vector, error_code, software=software)
        self._pending_event = event
        self._stop_requested = True
        self.cpu.stop()

    def _hook_delivery(self) -> bool:
        """Whether an `int n` or fault may be delivered in the interrupt hook itself, the slice
        going on (issue 16 part 3). EIP must be written in the live state (`Cpu.set_eip`: an
        API write there left EIP stale at the next stop), and no stop may land inside a block:
        a real-time slice with block stops, or a counted run, whose only stops come from this
        thread's hooks and its own count."""
        return self._live_state and (self._deterministic or self.cpu.block_stops)

    def _run_trap(self, trap: Callable[[Registers], bool]) -> bool:
        """A trap handler; the EIP/EFLAGS/segment/CR writes it made are applied once the slice
        has ended (stopped here, as for an exception), never inside the hook."""
        registers = self.registers
        registers.held = held = self._trap_writes
        try:
            handled = trap(registers)
        finally:
            registers.held = None
        if held:
            if not handled:
                held.clear()
                return False
            self._stop_requested = True
            self.cpu.stop()
        return handled

    def _on_invalid_opcode(self, _uc: object, _user: object = None) -> bool:
        """#UD, delivered after the slice: False makes emu_start give up at the opcode."""
        self.interrupts.take_exception_state()
        if self._io_fault is None and self._pending_event is None:
            self._pending_event = Event(INVALID_OPCODE, 0)
        return False

    def _on_system_instruction(self, name: str) -> None:
        """`syscall` / `sysenter`: Unicorn would skip them. They fault instead, delivered after
        the slice with EIP put back at the instruction (Unicorn steps past it after the hook;
        writing EIP in a hook is what `_on_interrupt` explains we never do)."""
        if self._io_fault is None and self._pending_event is None:
            self._pending_event = Event(SYSTEM_INSTRUCTION_FAULTS[name], 0)
            self._pending_eip = self.cpu.read(EIP)
        self._stop_requested = True
        self.cpu.stop()

    def _on_unmapped(
        self, _uc: object, access: int, address: int, size: int, value: int, _u: object
    ) -> bool:
        self._crash(f"access to unmapped physical address {address:#x} (size {size})")
        return False

    def _on_cpuid(self) -> bool:
        cpu = self.cpu
        leaf = cpu.read(EAX)
        if leaf == CPUID_HYPERVISOR_LEAF:
            ebx, ecx, edx = struct.unpack("<III", CPUID_SIGNATURE)
            values = (CPUID_MAX_LEAF, ebx, ecx, edx)
        elif leaf == CPUID_MAX_LEAF:
            values = (HYPERCALL_PORT_BASE, ABI_VERSION, 0, 0)
        else:
            return False
        for reg, value in zip((EAX, EBX, ECX, EDX), values, strict=True):
            cpu.write(reg, value)
        return True

    def _mmio_read(self, claimed):  # noqa: ANN001, ANN202
        return lambda _uc, offset, size, _user: claimed.read(offset, size)

    def _mmio_write(self, claimed):  # noqa: ANN001, ANN202
        return lambda _uc, offset, size, value, _user: claimed.write(offset, size, value)

    def _deliver_or_crash(self, event: Event, context: str) -> None:
        try:
            self.interrupts.deliver(event)
        except TripleFault as fault:
            self._crash(f"triple fault: {fault}" + (f" ({context})" if context else ""), event)
        except CpuError as error:
            # Unicorn refused a register the delivery loads (a descriptor it will not take that
            # our checks let through): the machine stops with a report, never a traceback.
            self._crash(f"interrupt delivery: Unicorn refused it: {error}", event)

    def _crash(self, why: str, event: Event | None = None) -> None:
        report = crash_report(self.cpu, why, event)
        self.channels.send("log", report)
        self.stop_info = StopInfo("crash", report)
        self._stop_requested = True
        self.cpu.stop()

    # ---- the run loop -------------------------------------------------------------------
    def power_on(self, entry: tuple[int, int]) -> None:
        """Put the CPU at real-mode `segment:offset` (the BIOS does this for the boot sector)."""
        self.cpu.restore_context(self._power_on_context)
        # RESET#: real mode (CR0 = 0x60000010), CR4 = 0, the IVT at 0 with a 1 KiB limit,
        # data segments 0. Unicorn's 32-bit engine starts in flat protected mode instead, with
        # CR4.OSFXSR (SSE usable before any OS enabled it), FSGSBASE and OSXSAVE set.
        self.cpu.write(CR0, 0x60000010)
        self.cpu.write(CR4, 0)
        self.cpu.write_table_register(_x86.UC_X86_REG_IDTR, 0, 0x3FF)
        for segment_register in (SS, DS, ES, FS, GS):
            self.cpu.write(segment_register, 0)
        segment, offset = entry
        self.cpu.write(CS, segment)
        self.cpu.write(EIP, offset)
        self.halted = False
        self.stop_info = None

    def linear_eip(self) -> int:
        cpu = self.cpu
        cr0 = self._cr0_word
        if (cr0.value if cr0 is not None else self.interrupts.control_registers()[0]) & CR0_PE:
            return cpu.eip()  # flat code segments (the only kind our stub builds)
        return ((cpu.read(CS) & 0xFFFF) << 4) + (cpu.eip() & 0xFFFF)

    def run(
        self, wall_timeout_s: float | None = None, until: Callable[[], bool] | None = None
    ) -> StopInfo:
        """Run until power-off, reset, crash, the wall timeout, or `until()` turns true.

        One turn: posted work, due timers, the stop checks, an interrupt the PIC asserts (IF
        set), then either the idle CPU waits for the next event (or, deterministic, jumps to
        it) or a slice runs. The idle wait and the slice are written out here with the
        machine's words bound once, not in helpers: a PIT IRQ per `hlt` takes two turns, and
        each call and attribute lookup less is one less per interrupt (issue 16 part 3)."""
        wall_end = None if wall_timeout_s is None else time.monotonic() + wall_timeout_s
        self._loop_thread = get_ident()
        deterministic = self._deterministic
        if not deterministic and self._slicer is None:
            self._slicer = _SliceTimer(self._timer_stop)
            self._slicer.start()
        self.stop_info = None
        clock, cpu, board = self.clock, self.cpu, self.board
        posted, feeders, wake = self._posted, self._idle_feeders, self._wake
        eip_word, eflags_word = self._eip_word, self._eflags_word
        previous_exception = self._previous_exception_word
        ns_per_instruction = self._ns_per_instruction
        monotonic = time.monotonic
        while True:
            while posted:
                posted.popleft()()
            clock.run_due()  # at the CPU's time (the clock's sampler)
            stop_info = self.stop_info
            if stop_info is not None:
                if stop_info.reason != "reset":
                    return stop_info
                self.reset()
                continue
            if until is not None and until():
                return StopInfo("until")
            if wall_end is not None and monotonic() >= wall_end:
                return StopInfo("timeout")
            if self.debug_turn is not None and self._debugger_turn():
                continue
            if self._irq_raised and self._irq_ready():
                self._deliver_irq()
            flags = eflags_word.value if eflags_word is not None else cpu.flags()
            if self.halted:
                # Idle. With nothing scheduled (a tickless guest with no timer armed) only
                # host input can wake the CPU: deterministic time then stands still while the
                # loop waits for some, as real time waits.
                self.idle_count += 1
                if not flags & FLAG_IF:
                    self._crash("the CPU halted with interrupts disabled")
                    assert self.stop_info is not None  # the crash that says why
                    return self.stop_info
                deadline = clock.next_deadline()
                if feeders and any([feeder() for feeder in feeders]):
                    continue
                if deterministic and deadline is not None:
                    if deadline > self._slice_base_ns:
                        self._slice_base_ns = deadline
                    clock.advance_to(deadline)
                    continue
                wait_s = 0.05 if deadline is None else max(0.0, (deadline - self._wall_now()) / 1e9)
                if wall_end is not None:
                    wait_s = min(wait_s, max(0.0, wall_end - monotonic()))
                if wait_s < NEAR_DEADLINE_S:
                    # A thread wait sleeps at least the kernel's timer slack (50 us), far longer
                    # than a near timer (a one-shot armed just before the `hlt`): wait here.
                    end = monotonic() + wait_s
                    while monotonic() < end and not wake.is_set():
                        pass
                else:
                    wake.wait(min(wait_s, 0.05))
                wake.clear()
                continue
            # A slice.
            start = eip_word.value & 0xFFFFFFFF if eip_word is not None else cpu.eip()
            self._stop_requested = False
            if previous_exception is not None:
                previous_exception.value = -1  # interrupts.forget_previous_exception, in place
            else:
                self.interrupts.forget_previous_exception()
            deadline = clock.next_deadline()
            # An interrupt waiting for IF (after `cli`, in a handler) must be looked at again
            # soon: nothing tells the loop when `sti`, `popf` or `iret` sets IF inside a slice.
            controller = board.interrupt_controller
            irq_waits = (
                (self._shadow_step or not flags & FLAG_IF)
                and self._irq_raised
                and controller is not None
                and controller.pending()
            )
            if deterministic:
                now = self._slice_base_ns
                budget = MAX_SLICE_INSTRUCTIONS
                if deadline is not None:
                    left = (deadline - now) // ns_per_instruction
                    budget = 1 if left < 1 else left if left < budget else budget
                if irq_waits and budget > IRQ_WAIT_INSTRUCTIONS:
                    budget = IRQ_WAIT_INSTRUCTIONS
                if self._shadow_step:
                    self._shadow_step = False
                    budget = 1
                self._slice_budget = budget
                self._in_slice = True
                try:
                    cpu.start(start, count=budget)
                except UcError as error:
                    self._cpu_error(error)
                finally:
                    executed = cpu.retired.value
                    self._in_slice = False
                self.instructions += executed
                self._slice_base_ns = now = now + executed * ns_per_instruction
                clock.advance_to(now)
                self._after_slice()
                continue
            slicer = self._slicer
            assert slicer is not None
            started = monotonic()
            slice_end = started + SLICE_WALL_NS / 1e9
            if deadline is not None:
                slice_end = min(slice_end, started + max(0, deadline - self._wall_now()) / 1e9)
            if wall_end is not None and wall_end < slice_end:
                slice_end = wall_end
            if irq_waits:
                slice_end = min(slice_end, started + IRQ_WAIT_WALL_NS / 1e9)
            slicer.arm(slice_end)
            self._stopped_from_outside = False
            self._in_slice = True
            # Stops from other threads (the slice timer, posts) end the slice between blocks,
            # not inside a read-modify-write that Unicorn would run again (Cpu.start), unless a
            # code hook (`watch`, a debugger's breakpoint) needs its stop to land at its
            # instruction.
            block_stops = len(cpu.uc._callbacks) == self._own_binding_hooks
            try:
                cpu.start(start, block_stops=block_stops)
            except UcError as error:
                self._cpu_error(error)
            finally:
                self._in_slice = False
                slicer.armed = None  # disarmed
            self._after_slice()

    # ---- an attached debugger (emu/gdbstub.py); without one none of this runs ---------------
    def _debugger_turn(self) -> bool:
        """The debugger's turn between slices: "run" lets the loop go on as usual; "stopped"
        (the CPU held where it is; asked again once the loop has taken posted work, power-off
        and the timeout) and "stepped" (it ran `debug_step`) make the loop come round. While
        stopped, virtual time stands still in both clocks, as QEMU stops its virtual clock."""
        assert self.debug_turn is not None
        started = time.monotonic_ns()
        verdict = self.debug_turn()
        if verdict == "stopped" and not self._deterministic:
            self._wall_origin += time.monotonic_ns() - started
        return verdict != "run"

    def debug_step(self) -> bool:
        """One instruction as a counted slice of 1, no interrupt taken before it (QEMU's gdbstub
        steps the same way), then the usual delivery of the exception or `int n` it raised.
        A halted CPU has nothing to run: the interrupt that wakes it is delivered instead and
        the step ends on the handler's first instruction; False while none is ready."""
        if self.halted:
            if not self._irq_ready():
                return False
            self._deliver_irq()
            return True
        cpu = self.cpu
        if not self._deterministic:
            # Unicorn adds no count check to code translated uncounted: a loop already
            # translated would run on past the count, for ever (seen stepping `spin`)
            cpu.uc.ctl_flush_tb()
        self._stop_requested = False
        self.interrupts.forget_previous_exception()
        self._slice_budget = 1
        self._in_slice = True
        try:
            cpu.start(cpu.read(EIP), count=1)
        except UcError as error:
            self._cpu_error(error)
        finally:
            executed = cpu.retired.value
            self._in_slice = False
        self.instructions += executed
        if self._deterministic:
            self._slice_base_ns += executed * self._ns_per_instruction
            self.clock.advance_to(self._slice_base_ns)
        self._after_slice()
        return True

    def debug_hook(self, kind: int, callback: Callable[..., object], begin: int, end: int) -> int:
        """A Unicorn hook of `kind` on linear [begin, end] (a breakpoint, a watched range),
        guarded like the machine's own; remove it with `cpu.uc.hook_del(handle)`."""
        return self.cpu.uc.hook_add(kind, self._guard(callback), None, begin, end)

    def debug_stop(self) -> None:
        """End the running slice from a debugger's hook (no `hlt` is looked for after it)."""
        self._stop_requested = True
        self.cpu.stop()

    def _irq_ready(self) -> bool:
        """An unmasked interrupt is requested and IF is set: the CPU takes it at the next
        instruction boundary (valid inside hooks). Asked on every `int n` and system call
        with IF=1, so the PIC is asked only after its output last went up (`_irq_raised`, set
        by every rise), not each time: that cost a ring-3 getpid a fifth of its speed. The
        flag is cleared before the PIC is asked, so a rise from another thread is never lost."""
        eflags = self._eflags_word
        if (
            not self._irq_raised
            or not (eflags.value if eflags is not None else self.cpu.flags()) & FLAG_IF
        ):
            return False
        self._irq_raised = False
        controller = self.board.interrupt_controller
        if controller is None or not controller.pending():
            return False
        self._irq_raised = True
        return True

    def _deliver_event(self, event: Event) -> None:
        """The exception or `int n` that ended the slice, delivered at once (timers and posted
        work see the CPU at a clean boundary). An interrupt requested while IF=1 is taken at
        the boundary *before* an `int n` or a fault, as on a PC: the instruction runs again
        after the handler's `iret` (otherwise a loop polling the BIOS, whose handlers run with
        IF=0, never lets IRQ0 in)."""
        self.halted = False
        if (
            (event.software or event.vector in RESTARTABLE_FAULTS)
            and self._irq_ready()
            and (not event.software or self.interrupts.rewind_software_interrupt(event))
        ):
            self._deliver_irq()
            return
        self._deliver_or_crash(event, "")

    def _deliver_irq(self) -> None:
        cpu = self.cpu
        eip = -1  # where the CPU is (deliver_planned reads it)
        hflags = self._hflags_word
        if hflags is not None and hflags.value & HF_INHIBIT_IRQ:
            linear = self.linear_eip()
            if 0 <= linear < cpu.ram_bytes and cpu.ram[linear] == 0xF4:
                # `sti; hlt` with the interrupt arriving in STI's shadow: on hardware the hlt
                # runs first and the interrupt wakes it, so the handler returns past the hlt.
                eip = cpu.eip() + 1
            elif self._deterministic:
                self._shadow_step = True  # one instruction first (see run)
                return
        controller = self.board.interrupt_controller
        assert controller is not None
        vector = controller.acknowledge()
        self._irq_raised = controller.pending()  # mostly down now: the loop asks no more
        self.halted = False
        if not self.interrupts.deliver_planned(vector, False, None, eip):
            event = Event(vector, return_eip=cpu.eip() if eip < 0 else eip)
            self._deliver_or_crash(event, f"IRQ vector {vector:#x}")

    def _keep_dropped_string_in(self) -> None:
        """After a slice: did Unicorn drop the last string IN's iteration? A stop that lands
        between an `ins` IN hook and its store makes the CPU run that iteration again, and
        the hook with it (docs/UNICORN.md), so a device with read side effects (remote DMA,
        an ATA data port) would lose the value already read. Dropped means: the CPU is back at
        that `ins` with EDI unchanged (a completed iteration always moves EDI). The value is
        then kept for the repeated hook instead of reading the device twice."""
        last, self._last_in = self._last_in, None
        if last is None:
            return
        (_port, eip, edi), _value = last
        cpu = self.cpu
        if cpu.eip() != eip or cpu.gpr(7) != edi:
            return
        try:
            code = self.interrupts.mmu.read(self.linear_eip(), MAX_STRING_IN_LENGTH)
        except PageNotPresent:
            return
        opcode = code.lstrip(STRING_IN_PREFIXES)[:1]
        if opcode in (b"\x6c", b"\x6d"):
            self._dropped_in = last

    def _cpu_error(self, error: UcError) -> None:
        if self._pending_event is None:  # an invalid opcode ends the run this way
            self._crash(f"CPU error: {error}")

    def _after_slice(self) -> None:
        """What the slice's hooks left to do, then whether a `hlt` ended it. Every request of
        a hook stops the slice, so a slice with none (the common end: `hlt`, the budget, or a
        stop from outside) goes straight to the halt check."""
        if (
            self._stop_requested or self._last_in is not None or self._pending_event is not None
        ) and self._serve_slice_requests():
            return
        if not self._stop_requested and not self._stopped_from_outside:
            # emu_start came back on its own: a `hlt` just ran (EIP is past it). Not after a
            # stop from another thread: a slice can end at any block start, and one right after
            # a hlt byte (the instruction an IRQ returns to from `hlt`) is no halt. A `hlt`
            # that ran just as such a stop came is then a spurious wake-up, which x86 code must
            # allow for anyway.
            cpu = self.cpu
            linear = self.linear_eip() - 1
            if 0 <= linear < cpu.ram_bytes and cpu.ram[linear] == 0xF4:
                self.halted = True

    def _serve_slice_requests(self) -> bool:
        """The requests of the slice's hooks; True if one delivered an event (no halt then)."""
        if self._last_in is not None:
            self._keep_dropped_string_in()
        if self._stale_pages:
            self._drop_stale_pages()
        writes = self._trap_writes
        if writes:
            self.cpu.write_batch(tuple(r for r, _ in writes), [value for _, value in writes])
            writes.clear()
        if self._pending_eip is not None:
            if self._io_fault is None:
                self.cpu.write(EIP, self._pending_eip)
            self._pending_eip = None
        delivered = True
        if self._io_fault is not None:
            self._pending_event = None
            self._deliver_io_fault()
        elif self._pending_event is not None:
            event, self._pending_event = self._pending_event, None
            self._deliver_event(event)
        elif not (self._io_eip is not None and self._fault_skipped_system_instruction()):
            delivered = False
        self._io_eip = None
        return delivered

    def _fault_skipped_system_instruction(self) -> bool:
        """A `syscall`/`sysenter` that Unicorn skipped: with a stop pending (an I/O hook earlier
        in the same block asked for one), its helper gives up at the first hook in range,
        ours for cpuid, and steps over the instruction, `sysenter` to a wrong EIP at that
        (docs/UNICORN.md). Seen here from where the slice stopped, against the block that ran
        straight on from the I/O instruction whose hook ended the slice (a device raising an
        interrupt, a timer moved up, a hypercall's stop: `_io_eip`, via `_stop_requested`;
        `_skipped_system_instruction`); then it faults as it would have, EIP at it. True if
        so. Stops from other threads, which the slice timer makes outside hooks, can still
        land before such an instruction and are not caught here."""
        start = self._io_eip
        assert start is not None
        cpu = self.cpu
        eip = cpu.eip()
        if not start < eip <= start + MAX_SKIPPED_BLOCK:
            return False
        units = self.interrupts
        cr0, cr3 = units.control_registers()
        protected = cr0 & CR0_PE
        base = 0 if protected else (cpu.read(CS) & 0xFFFF) << 4  # flat code, as linear_eip
        mmu = units.mmu
        mmu.pin(cr0, cr3)
        try:
            if eip == start + 2:  # a sysenter's mark, unless the I/O instruction is 2 bytes
                head = mmu.read(base + start, MAX_STRING_IN_LENGTH)
                opcode = head.lstrip(STRING_IN_PREFIXES)[:1]
                if (
                    len(head)
                    - len(head.lstrip(STRING_IN_PREFIXES))
                    + 1
                    + (opcode in IMMEDIATE_PORT_OPCODES)
                    == 2
                ):
                    return False
            elif SKIPPED_SYSTEM_INSTRUCTIONS.get(mmu.read(base + eip - 2, 2)) != "syscall":
                return False
            code = b""
            for page in range(start & ~PAGE_MASK, start + MAX_SKIPPED_BLOCK, PAGE_SIZE):
                first = max(page, start)
                try:
                    code += mmu.read(base + first, page + PAGE_SIZE - first)
                except PageNotPresent:
                    break
        except PageNotPresent:
            return False
        finally:
            mmu.unpin()
        found = _skipped_system_instruction(code, start, eip, 32 if protected else 16)
        if found is None:
            return False
        address, name = found
        cpu.set_eip(address)
        self._deliver_event(Event(SYSTEM_INSTRUCTION_FAULTS[name], 0))
        return True

    def close(self) -> None:
        if self._slicer is not None:
            self._slicer.close()
            self._slicer = None

    def reset(self) -> None:
        """Hardware reset: devices reset, kernel hypercalls dropped, then the reset listeners
        (the board restarts the CPU at its reset vector)."""
        self.stop_info = None
        self.halted = False
        self._pending_event = None
        self._pending_eip = None
        self._shadow_step = False
        self._last_in = self._dropped_in = None
        for number in self._kernel_hypercalls:
            self.hypercalls.pop(number, None)
        self._kernel_hypercalls.clear()
        self._traps.clear()
        self.set_a20(True)
        for device in self.devices:
            device.reset()
        for listener in self._reset_listeners:
            listener()

    # ---- snapshots (emu/snapshot.py): the loop's own state, between slices only -----------
    def run_state(self) -> dict[str, int | bool]:
        """What the run loop keeps besides the CPU, RAM and devices (saved apart)."""
        return {
            "now_ns": self.clock.now_ns(),
            "instructions": self.instructions,
            "idle_count": self.idle_count,
            "halted": self.halted,
            "shadow_step": self._shadow_step,
            "a20": self.a20,
        }

    def load_run_state(self, state: dict[str, int | bool]) -> None:
        """Put a machine that has not run yet at a snapshot's instant: first, so that devices
        restored after it set their timers on this clock."""
        now = int(state["now_ns"])
        self.clock.advance_to(now)
        self._slice_base_ns = now
        self._wall_origin = time.monotonic_ns() - now
        self.instructions = int(state["instructions"])
        self.idle_count = int(state["idle_count"])
        self.halted = bool(state["halted"])
        self._shadow_step = bool(state["shadow_step"])
        self.set_a20(bool(state["a20"]))

    def kernel_entry_points(self) -> tuple[dict[int, Hypercall], dict[int, Callable]]:
        """The kernel's hypercalls and traps (registered at KERNEL_INIT), for a snapshot."""
        hypercalls = {number: self.hypercalls[number] for number in self._kernel_hypercalls}
        return hypercalls, dict(self._traps)
