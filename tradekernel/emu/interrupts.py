"""Interrupt and exception delivery, done the way an x86 does it, because Unicorn does not.

Real mode: push FLAGS, CS, IP and jump through the IVT (at IDTR.base, normally 0).
Protected mode: read the IDT gate; check presence, type and (for `int n`) DPL; on a privilege
change take SS0:ESP0 from the TSS and push SS, ESP before EFLAGS, CS, EIP and the error code;
clear TF/NT/RF/VM, and IF for an interrupt gate. A fault while delivering is delivered itself or
becomes #DF by the SDM's exception classes, and a fault while delivering #DF is a triple fault,
which `deliver` reports by raising TripleFault.

Switching CPL: Unicorn refuses to load a ring-0 SS while CPL is 3 (the check a real CPU makes
for `mov ss`, not for interrupt delivery), so the CPL bits of hflags are cleared in the saved
context first; the normal segment loads then run at CPL 0 and set the CPL from SS as hardware
does.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass

from tradekernel.emu.calibrate import Calibration
from tradekernel.emu.cpu import (
    CR0,
    CR0_PE,
    CR0_PG,
    CR3,
    CS,
    EFLAGS,
    EIP,
    ESP,
    FLAG_IF,
    FLAG_NT,
    FLAG_RF,
    FLAG_TF,
    FLAG_VM,
    SS,
    Cpu,
)
from tradekernel.emu.cpu import x86 as _x86

VECTOR_NAMES = {
    0: "#DE divide error",
    1: "#DB debug",
    2: "NMI",
    3: "#BP breakpoint",
    4: "#OF overflow",
    5: "#BR bound range",
    6: "#UD invalid opcode",
    7: "#NM device not available",
    8: "#DF double fault",
    10: "#TS invalid TSS",
    11: "#NP segment not present",
    12: "#SS stack fault",
    13: "#GP general protection",
    14: "#PF page fault",
    16: "#MF x87 error",
    17: "#AC alignment check",
    18: "#MC machine check",
    19: "#XM SIMD error",
}
VECTORS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17})
DOUBLE_FAULT = 8
GENERAL_PROTECTION = 13
SEGMENT_NOT_PRESENT = 11

_GATE_INTERRUPT16, _GATE_TRAP16 = 0x6, 0x7  # 80286 gates: 16-bit offset and frame
_GATE_INTERRUPT32, _GATE_TRAP32 = 0xE, 0xF
_GATES = frozenset({_GATE_INTERRUPT16, _GATE_TRAP16, _GATE_INTERRUPT32, _GATE_TRAP32})
_CONFORMING = 0x04  # code segment type bit: runs at the caller's CPL
_AC_FLAG = 0x40000


class DeliveryFault(Exception):
    """A fault raised while delivering (bad gate, bad stack): becomes the next exception."""

    def __init__(self, vector: int, error_code: int, why: str) -> None:
        super().__init__(why)
        self.vector = vector
        self.error_code = error_code


class TripleFault(Exception):
    """Delivering #DF failed: a real CPU shuts down here."""


class PageNotPresent(Exception):
    def __init__(self, linear: int, write: bool) -> None:
        super().__init__(f"linear {linear:#x} is not mapped")
        self.linear = linear
        self.write = write


@dataclass
class Event:
    """One interrupt or exception on its way in."""

    vector: int
    error_code: int | None = None  # None: an external (device) interrupt
    software: bool = False  # `int n`: DPL checked, no error code
    return_eip: int | None = None  # None: the current EIP

    @property
    def external(self) -> bool:
        return self.error_code is None and not self.software


_BENIGN, _CONTRIBUTORY, _PAGE_FAULT, _DOUBLE = "benign", "contributory", "page fault", "#DF"
_CONTRIBUTORY_VECTORS = frozenset({0, 10, 11, 12, 13})
_MAX_ESCALATIONS = 6  # benign -> contributory -> page fault -> #DF -> triple needs 4 rounds


def _fault_class(event: Event) -> str:
    """The exception class that decides #DF (interrupts and `int n` are benign)."""
    if event.software or event.external:
        return _BENIGN
    if event.vector == 14:
        return _PAGE_FAULT
    if event.vector == DOUBLE_FAULT:
        return _DOUBLE
    return _CONTRIBUTORY if event.vector in _CONTRIBUTORY_VECTORS else _BENIGN


_DELIVERY_READS = (CR0, CR3, EFLAGS, CS, SS)  # EIP and ESP come from the live state
_ENTRY_WRITES_CS = (ESP, CS, EFLAGS)  # in this order, after SS on a privilege change; then EIP
_ENTRY_CLEARS = FLAG_TF | FLAG_NT | FLAG_RF | FLAG_VM  # and IF through an interrupt gate
_PAIR = struct.Struct("<II")  # a gate or a descriptor
_WORD = struct.Struct("<Q")  # a register in QEMU's CPU state (ESP)
_WORD_PAIR = struct.Struct("<QQ")  # EIP and EFLAGS, side by side there
_FRAME = struct.Struct("<III")  # EIP, CS, EFLAGS: a 32-bit frame at the same privilege
_FRAME_WITH_ERROR = struct.Struct("<IIII")  # the same under an error code


@dataclass(frozen=True)
class _LiveFields:
    """What a delivery reads, straight in the live CPU state (calibrate.StateLayout)."""

    cr0: ctypes.c_uint64
    cr3: ctypes.c_uint64
    cs: ctypes.c_uint32
    ss: ctypes.c_uint32
    ss_base: ctypes.c_uint64
    gdt_base: ctypes.c_uint64
    gdt_limit: ctypes.c_uint32
    idt_base: ctypes.c_uint64
    idt_limit: ctypes.c_uint32
    tr_base: ctypes.c_uint64

    @classmethod
    def of(cls, cpu: Cpu) -> _LiveFields | None:
        layout = cpu.layout
        if layout is None or cpu.state is None:
            return None
        u64 = cpu.state_u64

        def u32(offset: int) -> ctypes.c_uint32:
            return ctypes.c_uint32.from_address(cpu.state + offset)

        return cls(
            cr0=u64(layout.cr0),
            cr3=u64(layout.cr3),
            cs=u32(layout.cs_base - 8),
            ss=u32(layout.ss_base - 8),
            ss_base=u64(layout.ss_base),
            gdt_base=u64(layout.gdt_base),
            gdt_limit=u32(layout.gdt_base + 8),
            idt_base=u64(layout.idt_base),
            idt_limit=u32(layout.idt_base + 8),
            tr_base=u64(layout.tr_base),
        )


class _PlanKey:
    """What a plan depends on, read from the live CPU state in one unpack: CS, the SS base,
    GDTR, IDTR, CR0 and CR3 (a format built from the calibrated offsets); and in the same
    unpack what a delivery pushes and moves, ESP, EIP and EFLAGS, which QEMU keeps just before
    them (`read` gives those three first, then the key: one C call per delivery)."""

    MOVING = ("esp", "eip", "eflags")  # the first three of `read`, never part of the key

    def __init__(self, cpu: Cpu, registers: int) -> None:
        """`registers`: the offset of the general registers in the live state (Calibration)."""
        layout = cpu.layout
        assert layout is not None and cpu.state is not None
        fields = {
            "esp": (registers + 8 * 4, "Q"),
            "eip": (registers + 8 * 16, "Q"),  # QEMU's regs[16], then eip and eflags
            "eflags": (registers + 8 * 17, "Q"),
            "cs": (layout.cs_base - 8, "I"),
            "ss_base": (layout.ss_base, "Q"),
            "gdt_base": (layout.gdt_base, "Q"),
            "gdt_limit": (layout.gdt_base + 8, "I"),
            "idt_base": (layout.idt_base, "Q"),
            "idt_limit": (layout.idt_base + 8, "I"),
            "cr0": (layout.cr0, "Q"),
            "cr3": (layout.cr3, "Q"),
        }
        order = sorted(fields, key=lambda name: fields[name][0])
        if tuple(order[:3]) != self.MOVING:
            raise ValueError("the general registers do not come before the tables")
        start = fields[order[0]][0]
        fmt, at = "<", start
        for name in order:
            offset, code = fields[name]
            if offset < at:
                raise ValueError("overlapping CPU state fields")
            fmt += "x" * (offset - at) + code
            at = offset + struct.calcsize("<" + code)
        self.reader = struct.Struct(fmt)
        self.start = start
        self.view = memoryview((ctypes.c_char * at).from_address(cpu.state)).cast("B")
        # Where a delivery writes ESP, then EIP and EFLAGS (one word pair), in the same view:
        # only where the CPU found and checked the EIP and EFLAGS words there.
        self.esp_at, self.eip_at = fields["esp"][0], fields["eip"][0]
        self.writes = cpu.eip_word is not None and cpu.eflags_word is not None
        # positions in `key` (the tuple after the moving three)
        self.cs, self.ss_base, self.cr0, self.cr3 = (
            order.index(name) - 3 for name in ("cs", "ss_base", "cr0", "cr3")
        )

    def read(self) -> tuple[int, ...]:
        """ESP, EIP, EFLAGS (64-bit words as QEMU keeps them), then the key."""
        return self.reader.unpack_from(self.view, self.start)


@dataclass(frozen=True)
class _Plan:
    """A same-privilege delivery through a 32-bit gate to the interrupted code segment, as
    decoded and checked last time: valid while the machine state in `key` is the same and the
    gate's and the code descriptor's bytes in RAM still read `gate` and `descriptor`."""

    key: tuple[int, ...]  # the machine state it holds for (_PlanKey: CS, SS base, tables, CRs)
    software: bool  # `int n` (the gate's DPL was checked) or not
    gate_at: int  # physical addresses of the gate and of the handler's descriptor
    gate: tuple[int, int]
    descriptor_at: int
    descriptor: tuple[int, int]
    target: int
    clears: int  # EFLAGS bits the gate clears
    error_code: bool  # the vector pushes one (unless it is `int n` or external)


class Mmu:
    """The hardware page walk (4 KiB pages and 4 MiB PSE pages), for delivery's own accesses."""

    def __init__(self, cpu: Cpu) -> None:
        self.cpu = cpu
        self.ram = cpu.ram
        self._directory: int | None = None  # pinned for one delivery (see `pin`)

    def pin(self, cr0: int | None = None, cr3: int = 0) -> None:
        """Read CR0/CR3 once for a run of accesses (one delivery) instead of at every page
        (or take them from the caller, who read them in its own batch)."""
        cpu = self.cpu
        if cr0 is None:
            cr0, cr3 = cpu.read(CR0), cpu.read(CR3)
        self._directory = cr3 & 0xFFFFF000 if cr0 & CR0_PG else -1

    def unpin(self) -> None:
        self._directory = None

    def physical(self, linear: int, write: bool = False) -> int:
        directory = self._directory
        if directory is None:
            cpu = self.cpu
            directory = cpu.read(CR3) & 0xFFFFF000 if cpu.read(CR0) & CR0_PG else -1
        if directory < 0:
            return linear & 0xFFFFFFFF
        (pde,) = struct.unpack_from("<I", self.ram, directory + ((linear >> 22) << 2))
        if not pde & 1:
            raise PageNotPresent(linear, write)
        if pde & 0x80:
            return (pde & 0xFFC00000) | (linear & 0x3FFFFF)
        (pte,) = struct.unpack_from(
            "<I", self.ram, (pde & 0xFFFFF000) + (((linear >> 12) & 0x3FF) << 2)
        )
        if not pte & 1:
            raise PageNotPresent(linear, write)
        return (pte & 0xFFFFF000) | (linear & 0xFFF)

    def read_pair(self, linear: int) -> tuple[int, int]:
        """The two little-endian dwords at `linear` (a gate, a descriptor): one unpack where
        they sit in one page, as they do in any aligned table."""
        if linear & 0xFFF <= 0xFF8:
            return struct.unpack_from("<II", self.ram, self.physical(linear))
        return struct.unpack("<II", self.read(linear, 8))

    def read(self, linear: int, size: int) -> bytes:
        out = bytearray()
        while size:
            chunk = min(size, 0x1000 - (linear & 0xFFF))
            phys = self.physical(linear)
            out += self.ram[phys : phys + chunk]
            linear += chunk
            size -= chunk
        return bytes(out)

    def write(self, linear: int, data: bytes) -> None:
        if (linear & 0xFFF) + len(data) <= 0x1000:  # one page: an interrupt frame, mostly
            phys = self.physical(linear, write=True)
            self.ram[phys : phys + len(data)] = data
            return
        offset = 0
        while offset < len(data):
            chunk = min(len(data) - offset, 0x1000 - ((linear + offset) & 0xFFF))
            phys = self.physical(linear + offset, write=True)
            self.ram[phys : phys + chunk] = data[offset : offset + chunk]
            offset += chunk


class InterruptUnit:
    def __init__(self, cpu: Cpu, calibration: Calibration) -> None:
        self.cpu = cpu
        self.cal = calibration
        self.mmu = Mmu(cpu)
        # The three words read or written on every exception, straight in the live CPU state.
        self._live = None
        if cpu.state is not None:
            self._live = (
                cpu.state_i32(calibration.error_code),
                cpu.state_i32(calibration.is_software_int),
                cpu.state_i32(calibration.old_exception),
            )
        self._fields = _LiveFields.of(cpu)  # None: CR0, CR3, segments and tables by the API
        # For the run loop, which reads them inline between slices (None: the API path).
        self.cr0_word = self._fields.cr0 if self._fields is not None else None
        self.previous_exception_word = self._live[2] if self._live is not None else None
        # vector -> _Plan of its last same-privilege delivery (see `deliver_planned`)
        self._plans: dict[int, _Plan] = {}
        self._plan_key = _PlanKey(cpu, calibration.gprs) if self._fields is not None else None

    def control_registers(self) -> tuple[int, int]:
        """CR0 and CR3, from the live state where it was found."""
        fields = self._fields
        if fields is not None:
            return fields.cr0.value, fields.cr3.value
        return self.cpu.read(CR0), self.cpu.read(CR3)

    # ---- what Unicorn hides -------------------------------------------------------------
    def forget_previous_exception(self) -> None:
        """Clear the previous-exception word before the CPU runs again. Unicorn also sets it
        for faults it raises and handles internally (a #PF at 0xfffffffe was seen once paging
        is on), and a stale value turns the guest's next real fault into #DF."""
        if self._live is not None:
            self._live[2].value = -1
        else:
            self.take_exception_state()

    def was_software_int(self) -> bool:
        """The exception Unicorn just reported came from `int n` (read without side effects)."""
        if self._live is not None:
            return self._live[1].value == 1
        ctx = self.cpu.save_context()
        (software,) = struct.unpack_from("<i", self.cpu.context_view(ctx), self.cal.is_software_int)
        return software == 1

    def take_exception_state(self) -> tuple[int, bool]:
        """(error code, was `int n`) of the exception Unicorn just reported, and clear its
        previous-exception word so the next fault is reported as itself (unicorn#1883)."""
        live = self._live
        if live is not None:
            error_code, software, old_exception = live
            old_exception.value = -1
            return error_code.value & 0xFFFFFFFF, software.value == 1
        ctx = self.cpu.save_context()
        view = self.cpu.context_view(ctx)
        (error_code,) = struct.unpack_from("<i", view, self.cal.error_code)
        (software,) = struct.unpack_from("<i", view, self.cal.is_software_int)
        struct.pack_into("<i", view, self.cal.old_exception, -1)
        self.cpu.restore_context(ctx)
        return error_code & 0xFFFFFFFF, software == 1

    # ---- delivery -----------------------------------------------------------------------
    def deliver_planned(
        self, vector: int, software: bool, error_code: int | None = None, return_eip: int = -1
    ) -> bool:
        """The common case at a fraction of the cost (issue 16 part 3): an interrupt, `int n`
        or exception through the same gate to the same code segment as last time, at the
        same privilege. Everything a full delivery decodes and checks is kept in a plan, and
        the plan is used only while the CPU's tables and modes are the same and the gate and
        descriptor bytes unchanged in RAM. False (nothing done): deliver as usual. Needs the
        live state; a stack that faults also goes the usual way, which raises the fault."""
        plan = self._plans.get(vector)
        if plan is None or plan.software != software:
            return False
        reader = self._plan_key
        assert reader is not None  # plans are made only with the live state
        state = reader.read()
        key = state[3:]
        ram = self.mmu.ram
        if (
            key != plan.key
            or _PAIR.unpack_from(ram, plan.gate_at) != plan.gate
            or _PAIR.unpack_from(ram, plan.descriptor_at) != plan.descriptor
        ):
            return False
        cpu = self.cpu
        # EFLAGS: in place between runs (an IRQ from the run loop), through the API inside
        # one (`int n` delivered in its hook), as `Cpu.flags` explains
        flags = state[2] & 0xFFFFFFFF if cpu.flags_in_place else cpu.flags()
        if flags & FLAG_VM:
            return False
        eip = state[1] & 0xFFFFFFFF if return_eip < 0 else return_eip
        cs = key[reader.cs]
        if plan.error_code and error_code is not None:
            frame, words = _FRAME_WITH_ERROR, (error_code, eip, cs, flags)
        else:
            frame, words = _FRAME, (eip, cs, flags)
        esp = (state[0] - frame.size) & 0xFFFFFFFF
        linear = (key[reader.ss_base] + esp) & 0xFFFFFFFF
        cr0 = key[reader.cr0]
        if not cr0 & CR0_PG and linear + frame.size <= cpu.ram_bytes:
            frame.pack_into(ram, linear, *words)
        else:
            mmu = self.mmu
            mmu.pin(cr0, key[reader.cr3])
            try:
                mmu.write(linear, frame.pack(*words))
            except PageNotPresent:
                return False
            finally:
                mmu.unpin()
        if reader.writes:  # the handler's entry: two C calls, no ctypes attribute per word
            _WORD.pack_into(reader.view, reader.esp_at, (state[0] & ~0xFFFFFFFF) | esp)
            _WORD_PAIR.pack_into(reader.view, reader.eip_at, plan.target, state[2] & ~plan.clears)
        else:
            cpu.set_gpr(4, esp)
            cpu.clear_flags(plan.clears)
            cpu.set_eip(plan.target)
        return True

    def _keep_plan(
        self, event: Event, cs: int, gate: tuple[int, int, int], gdt: tuple[int, int], clears: int
    ) -> None:
        """After a full same-privilege delivery through a 32-bit gate: what it decoded, for
        `deliver_planned` (live state only)."""
        reader = self._plan_key
        if reader is None:
            return
        vector, target, selector = gate
        idt = self._table(_x86.UC_X86_REG_IDTR)
        try:
            gate_at = self.mmu.physical(idt[0] + vector * 8)
            descriptor_at = self.mmu.physical(gdt[0] + (selector & 0xFFF8))
        except PageNotPresent:
            return
        ram = self.mmu.ram
        key = reader.read()[3:]
        if key[reader.cs] != cs:
            return
        self._plans[vector] = _Plan(
            key=key,
            software=event.software,
            gate_at=gate_at,
            gate=struct.unpack_from("<II", ram, gate_at),
            descriptor_at=descriptor_at,
            descriptor=struct.unpack_from("<II", ram, descriptor_at),
            target=target,
            clears=clears,
            error_code=vector in VECTORS_WITH_ERROR_CODE,
        )

    def deliver(self, event: Event) -> None:
        """Deliver, escalating as a CPU does (Intel SDM vol. 3, table 6-5): a fault raised while
        delivering a benign event is delivered on its own; a contributory fault while
        delivering a contributory exception, or any fault but a benign one while delivering a
        page fault, becomes #DF; a fault while delivering #DF is a triple fault."""
        current = event
        for _ in range(_MAX_ESCALATIONS):
            try:
                self._deliver_once(current)
                return
            except DeliveryFault as fault:
                if current.software:
                    # The `int` faulted, so it never completed: the fault (and a crash report)
                    # must point at it, not past it where Unicorn left EIP.
                    self.rewind_software_interrupt(current)
                first, second = _fault_class(current), _fault_class(Event(fault.vector, 0))
                if first == _DOUBLE:
                    raise TripleFault(f"delivering #DF failed: {fault}") from fault
                if second != _BENIGN and (
                    (first == _CONTRIBUTORY and second == _CONTRIBUTORY) or first == _PAGE_FAULT
                ):
                    current = Event(DOUBLE_FAULT, 0, return_eip=current.return_eip)
                else:
                    current = Event(fault.vector, fault.error_code, return_eip=current.return_eip)
        raise TripleFault(f"delivery of vector {event.vector:#x} kept faulting")

    def rewind_software_interrupt(self, event: Event) -> bool:
        """Move EIP back from after `int n` (CD ib) or `int3`/`into`/`int1` to its first byte;
        False (EIP untouched) if the bytes before EIP are none of those. A redundant prefix
        before the opcode is not looked for."""
        cpu = self.cpu
        eip = cpu.read(EIP) if event.return_eip is None else event.return_eip
        if cpu.read(CR0) & CR0_PE:
            code_base = self._descriptor_base_or_zero(cpu.read(CS) & 0xFFFF)
        else:
            code_base = (cpu.read(CS) & 0xFFFF) << 4
        try:
            before = self.mmu.read((code_base + eip - 2) & 0xFFFFFFFF, 2)
        except PageNotPresent:
            return False
        if before[0] == 0xCD and before[1] == event.vector:
            length = 2
        elif before[1] in (0xCC, 0xCE, 0xF1):
            length = 1
        else:
            return False
        event.return_eip = None
        cpu.set_eip(eip - length)
        return True

    def _descriptor_base_or_zero(self, selector: int, gdt: tuple[int, int] | None = None) -> int:
        try:
            return self._descriptor(selector, gdt)[0]
        except DeliveryFault:
            return 0

    def _deliver_once(self, event: Event) -> None:
        cpu = self.cpu
        fields = self._fields
        if fields is not None:  # one API call per delivery (issue 16 part 3)
            cr0, cr3, flags = fields.cr0.value, fields.cr3.value, cpu.flags()
            cs, ss = fields.cs.value, fields.ss.value
        else:
            cr0, cr3, flags, cs, ss = cpu.read_batch(_DELIVERY_READS)
        eip = cpu.eip() if event.return_eip is None else event.return_eip
        if not cr0 & CR0_PE:
            self._deliver_real(event.vector, eip, flags, cs & 0xFFFF, ss & 0xFFFF)
            return
        self.mmu.pin(cr0, cr3)
        try:
            self._deliver_protected(event, eip, flags, cs & 0xFFFF, ss & 0xFFFF)
        finally:
            self.mmu.unpin()

    def _table(self, reg: int) -> tuple[int, int]:
        """GDTR, IDTR or TR as (base, limit): from the live state where it was found."""
        fields = self._fields
        if fields is None:
            return self.cpu.read_table_register(reg)
        if reg == _x86.UC_X86_REG_IDTR:
            return fields.idt_base.value, fields.idt_limit.value
        if reg == _x86.UC_X86_REG_GDTR:
            return fields.gdt_base.value, fields.gdt_limit.value
        return fields.tr_base.value, 0  # TR: only the base is used

    def _deliver_real(self, vector: int, ip: int, flags: int, cs: int, ss: int) -> None:
        cpu = self.cpu
        ivt_base, ivt_limit = self._table(_x86.UC_X86_REG_IDTR)
        if vector * 4 + 3 > ivt_limit:
            raise DeliveryFault(GENERAL_PROTECTION, 0, f"vector {vector:#x} beyond the IVT limit")
        offset, segment = struct.unpack_from("<HH", cpu.ram, ivt_base + vector * 4)
        esp = cpu.gpr(4)
        sp = (esp - 6) & 0xFFFF
        frame = struct.pack("<HHH", ip & 0xFFFF, cs, flags & 0xFFFF)
        base = ss << 4
        if sp <= 0xFFFA:
            cpu.ram[base + sp : base + sp + 6] = frame
        else:
            for i, byte in enumerate(frame):  # the stack wraps inside its 64 KiB segment
                cpu.ram[base + ((sp + i) & 0xFFFF)] = byte
        cpu.set_gpr(4, (esp & 0xFFFF0000) | sp)
        cpu.clear_flags(FLAG_IF | FLAG_TF | _AC_FLAG)
        cpu.write(CS, segment)  # the base too, even where the selector is the same
        cpu.set_eip(offset)

    def _descriptor(
        self, selector: int, gdt: tuple[int, int] | None = None
    ) -> tuple[int, int, int]:
        """(base, limit, access | flags << 8) of a GDT descriptor; LDT selectors are refused.
        `gdt`: GDTR as (base, limit), when the caller has read it already."""
        if selector & 4:
            raise DeliveryFault(GENERAL_PROTECTION, selector & 0xFFFC, "LDT selectors unsupported")
        gdt_base, gdt_limit = gdt or self._table(_x86.UC_X86_REG_GDTR)
        index = selector & 0xFFF8
        if index == 0 or index + 7 > gdt_limit:
            raise DeliveryFault(
                GENERAL_PROTECTION, selector & 0xFFFC, f"bad selector {selector:#x}"
            )
        low, high = self._linear_pair(gdt_base + index)
        base = (low >> 16) | ((high & 0xFF) << 16) | (high & 0xFF000000)
        limit = (low & 0xFFFF) | (high & 0xF0000)
        if high & 0x800000:
            limit = (limit << 12) | 0xFFF
        return base, limit, (high >> 8) & 0xF0FF

    def _linear_pair(self, linear: int) -> tuple[int, int]:
        try:
            return self.mmu.read_pair(linear)
        except PageNotPresent as missing:
            raise DeliveryFault(14, 0, str(missing)) from missing

    def _linear_read(self, linear: int, size: int) -> bytes:
        try:
            return self.mmu.read(linear, size)
        except PageNotPresent as missing:
            raise DeliveryFault(14, 0, str(missing)) from missing

    def _deliver_protected(
        self, event: Event, eip: int, flags: int, old_cs: int, old_ss: int
    ) -> None:
        """`flags`, `old_cs`, `old_ss`: the interrupted EFLAGS and selectors."""
        cpu = self.cpu
        vector = event.vector
        gate_error = vector * 8 + 2 + (0 if event.software else 1)
        idt_base, idt_limit = self._table(_x86.UC_X86_REG_IDTR)
        if vector * 8 + 7 > idt_limit:
            raise DeliveryFault(
                GENERAL_PROTECTION, gate_error, f"vector {vector:#x} beyond the IDT"
            )
        low, high = self._linear_pair(idt_base + vector * 8)
        gate_type = (high >> 8) & 0x1F
        gate_dpl = (high >> 13) & 3
        if gate_type not in _GATES:
            raise DeliveryFault(
                GENERAL_PROTECTION, gate_error, f"vector {vector:#x}: gate type {gate_type:#x}"
            )
        cpl = old_cs & 3
        if event.software and gate_dpl < cpl:
            raise DeliveryFault(
                GENERAL_PROTECTION, gate_error, f"int {vector:#x}: gate DPL {gate_dpl} < CPL {cpl}"
            )
        if not high & 0x8000:
            raise DeliveryFault(SEGMENT_NOT_PRESENT, gate_error, f"vector {vector:#x} not present")
        selector = low >> 16
        target = (low & 0xFFFF) | (high & 0xFFFF0000 if gate_type & 0x8 else 0)
        gdt = self._table(_x86.UC_X86_REG_GDTR)
        _, _, code_access = self._descriptor(selector, gdt)
        target_dpl = (code_access >> 5) & 3
        if code_access & _CONFORMING and target_dpl <= cpl:
            target_dpl = cpl  # a conforming handler runs at the interrupted CPL
        selector_error = (selector & 0xFFFC) | (0 if event.software else 1)  # | EXT
        if code_access & 0x18 != 0x18 or target_dpl > cpl:
            raise DeliveryFault(
                GENERAL_PROTECTION,
                selector_error,
                f"vector {vector:#x}: {selector:#x} is not a code segment of DPL <= CPL {cpl}",
            )
        if not code_access & 0x80:
            raise DeliveryFault(SEGMENT_NOT_PRESENT, selector_error, "handler CS not present")
        error = event.error_code if event.vector in VECTORS_WITH_ERROR_CODE else None
        if event.software:
            error = None
        if target_dpl < cpl:
            tss_base, _ = self._table(_x86.UC_X86_REG_TR)
            esp0, ss0 = struct.unpack("<IH", self._linear_read(tss_base + 4 + 8 * target_dpl, 6))
            stack_base, _, stack_access = self._descriptor(ss0, gdt)
            if (ss0 & 3) != target_dpl or ((stack_access >> 5) & 3) != target_dpl:
                raise DeliveryFault(10, ss0 & 0xFFFC, f"TSS SS0 {ss0:#x} is not a ring-0 stack")
            words = [old_ss, cpu.gpr(4), flags, old_cs, eip]
            new_ss, new_esp = ss0, esp0
        else:
            words = [flags, old_cs, eip]
            new_ss, new_esp = None, cpu.gpr(4)
            # The frame goes to SS:ESP, and SS need not be flat (test386's ring-3 stack is not):
            # the base is SS's descriptor cache, as the CPU uses it.
            fields = self._fields
            if fields is not None:
                stack_base = fields.ss_base.value
            else:
                stack_base = self._descriptor_base_or_zero(old_ss, gdt)
        if error is not None:
            words.append(error)
        # Pushed in order: the first word ends up highest on the stack.
        word = "I" if gate_type & 0x8 else "H"  # a 286 gate pushes 16-bit words
        frame = struct.pack(
            f"<{len(words)}{word}", *(w & 0xFFFF if word == "H" else w for w in reversed(words))
        )
        new_esp = (new_esp - len(frame)) & 0xFFFFFFFF
        try:
            self.mmu.write(stack_base + new_esp, frame)
        except PageNotPresent as missing:
            raise DeliveryFault(12 if new_ss is None else 10, 0, str(missing)) from missing
        if new_ss is not None:
            cpu.clear_cpl()
            cpu.write(SS, new_ss)
        # The handler runs at the code segment's DPL, and CS.RPL says so whatever RPL the
        # gate's selector has (test386 builds DPL-3 handlers with an RPL-0 selector).
        new_cs = (selector & 0xFFFC) | target_dpl
        clears = _ENTRY_CLEARS
        if gate_type in (_GATE_INTERRUPT32, _GATE_INTERRUPT16):
            clears |= FLAG_IF
        if new_cs != old_cs:
            cpu.write_batch(_ENTRY_WRITES_CS, [new_esp, new_cs, flags & ~clears])
        else:
            cpu.set_gpr(4, new_esp)
            cpu.clear_flags(clears)
            if gate_type == _GATE_INTERRUPT32 or gate_type == _GATE_TRAP32:
                self._keep_plan(event, old_cs, (vector, target, selector), gdt, clears)
        cpu.set_eip(target)
