"""A bare Machine with guest code assembled by nasm at test time, for CPU delivery tests.

`ProtectedGuest` lays out a flat protected-mode world in guest memory (GDT, IDT, TSS with an I/O
bitmap, optional page tables), and its guest prologue loads it with the real instructions
(`lgdt`, far jump, `lidt`, `ltr`, CR3/CR0), so what is tested is the machine's own delivery and
not state poked in from Python. Every IDT vector leads to a stub that reports to the test through
a hypercall made at handler entry, before the handler touches the stack, so the recorded ESP,
EFLAGS and frame are what the CPU delivered. The test's fix-up policy then decides how the
handler returns (skip the faulting instruction, drop the error code), and the stub `iretd`s.

Guest memory layout (physical = linear; paging, when on, identity-maps the first 4 MiB):
    0x0500  stub scratch (saved EAX/EBX/EDX, current vector)
    0x0600  RESULTS: where guest code stores what it saw
    0x1000  GDT     0x2000  IDT     0x3000  TSS (+ I/O bitmap at TSS+0x68)
    0x6000-0x7000   ring-3 stack          0x8000-0x8800 ring-0 stack before any interrupt
    0x8800-0x9000   ring-0 stack from TSS.ESP0
    0x10000 code: vector v's stub at 0x10000 + 16 v, then the exit stub, the report path, the
            prologue and the test's body
    0x20000 page directory, 0x21000 page table
    0x200000 user read-only page, 0x201000 supervisor page, 0x202000 not-present page
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from capstone import CS_ARCH_X86, CS_MODE_32, Cs

from tradekernel.emu.cpu import CR2, CS, EFLAGS, EIP, ESP, SS
from tradekernel.emu.machine import Machine, MachineConfig, Registers, StopInfo
from tradekernel.hypercall import HYPERCALL_PORT_BASE

SCRATCH = 0x500
RESULTS = 0x600
GDT = 0x1000
IDT = 0x2000
TSS = 0x3000
TSS_IO_BITMAP = 0x68
USER_STACK_TOP = 0x7000
KERNEL_START_STACK = 0x8800
ESP0 = 0x9000
CODE = 0x10000
STUB_SIZE = 16  # bytes per IDT stub; vector v's stub is at CODE + STUB_SIZE * v
PAGE_DIRECTORY = 0x20000
PAGE_TABLE = 0x21000
USER_READ_ONLY_PAGE = 0x200000
SUPERVISOR_PAGE = 0x201000
NOT_PRESENT_PAGE = 0x202000

KERNEL_CS, KERNEL_DS, USER_CS, USER_DS, TSS_SELECTOR = 0x08, 0x10, 0x1B, 0x23, 0x28
REPORT_CALL = 0x10  # hypercall made by every IDT stub
EXIT_CALL = 0x11  # hypercall that ends the run
EXIT_VECTOR = 0x8F  # a DPL-3 gate to the exit hypercall, usable from both rings
VECTORS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17})
FAULTS = frozenset({0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19})  # return EIP = the instruction


class AssemblyError(Exception):
    """nasm refused a test snippet."""


@dataclass(frozen=True)
class Program:
    code: bytes
    symbols: dict[str, int]  # label -> address (local labels as "parent.local")


@cache
def assemble_program(source: str, org: int) -> Program:
    """Assemble `source` with nasm into a flat binary loaded at `org`, with its labels."""
    with tempfile.TemporaryDirectory() as work:
        source_path = Path(work) / "snippet.asm"
        binary_path = Path(work) / "snippet.bin"
        map_path = Path(work) / "snippet.map"
        source_path.write_text(f"org {org:#x}\n[map symbols {map_path}]\n{source}\n")
        result = subprocess.run(
            ["nasm", "-f", "bin", "-o", str(binary_path), str(source_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssemblyError("\n".join(result.stderr.splitlines()[:20]))
        symbols = {}
        for line in map_path.read_text().splitlines():
            fields = line.split()
            if len(fields) == 3 and all(c in "0123456789abcdefABCDEF" for c in fields[0]):
                symbols[fields[2]] = int(fields[1], 16)
        return Program(binary_path.read_bytes(), symbols)


def assemble(source: str, org: int) -> bytes:
    """Assemble `source` with nasm into a flat binary loaded at `org`."""
    return assemble_program(source, org).code


def descriptor(base: int, limit: int, access: int, flags: int) -> bytes:
    """An 8-byte GDT segment descriptor (`flags` is the high nibble: G, D/B, L, AVL)."""
    return struct.pack(
        "<HHBBBB",
        limit & 0xFFFF,
        base & 0xFFFF,
        (base >> 16) & 0xFF,
        access,
        ((limit >> 16) & 0xF) | (flags << 4),
        (base >> 24) & 0xFF,
    )


def gate(
    offset: int, selector: int, dpl: int = 0, trap: bool = False, present: bool = True
) -> bytes:
    """An 8-byte 32-bit interrupt (or trap) gate."""
    access = (0x80 if present else 0) | (dpl << 5) | (0xF if trap else 0xE)
    return struct.pack("<HHBBH", offset & 0xFFFF, selector, 0, access, offset >> 16)


@dataclass(frozen=True)
class Trap:
    """What a handler saw at entry: the vector, its own state, and the six dwords at ESP."""

    vector: int
    eflags: int
    cs: int
    ss: int
    esp: int
    cr2: int
    words: tuple[int, ...]

    def frame(self, has_error_code: bool) -> tuple[int, ...]:
        """(EIP, CS, EFLAGS[, ESP, SS]) of the interrupted code, past the error code if any."""
        return self.words[1:] if has_error_code else self.words


Fixup = Callable[["ProtectedGuest", Trap], int]  # returns bytes the stub drops before iretd


def resume(guest: ProtectedGuest, trap: Trap) -> int:
    """The default policy: drop the error code, step over a faulting instruction, return."""
    has_error = trap.vector in VECTORS_WITH_ERROR_CODE
    if trap.vector in FAULTS:
        guest.skip_instruction(trap, has_error)
    return 4 if has_error else 0


@dataclass
class ProtectedGuest:
    """One machine, one flat 32-bit program. Build, then `run()`; inspect `traps` and memory."""

    body: str
    gates: dict[int, tuple[int, bool]] = field(default_factory=dict)  # vector -> (dpl, trap)
    missing_gates: frozenset[int] = frozenset()  # vectors whose gate is not present
    extra_descriptors: tuple[bytes, ...] = ()  # GDT entries from selector 0x30 on
    gate_selectors: dict[int, int] = field(default_factory=dict)  # vector -> handler CS
    paging: bool = False
    io_bitmap_ports: frozenset[int] | None = None  # ports the TSS bitmap grants ring 3
    deterministic: bool = True
    fixup: Fixup = resume
    traps: list[Trap] = field(default_factory=list)
    exit_registers: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.machine = Machine(MachineConfig(deterministic=self.deterministic))
        self.ram = self.machine.cpu.ram
        self.machine.register_hypercall(REPORT_CALL, self._report)
        self.machine.register_hypercall(EXIT_CALL, self._exit)
        program = assemble_program(self._program(), CODE)
        self.code, self.symbols = program.code, program.symbols
        if self.symbols["exit_stub"] != CODE + 256 * STUB_SIZE:
            raise AssemblyError("an IDT stub outgrew its slot")
        self.ram[CODE : CODE + len(self.code)] = self.code
        self._write_tables()

    # ---- the guest ------------------------------------------------------------------------
    def _program(self) -> str:
        paging = ""
        if self.paging:
            paging = f"""
    mov eax, {PAGE_DIRECTORY:#x}
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000          ; PG | WP
    mov cr0, eax"""
        return f"""
bits 32
%define RESULTS {RESULTS:#x}
%define USER_CS {USER_CS:#x}
%define USER_DS {USER_DS:#x}
%define USER_STACK_TOP {USER_STACK_TOP:#x}
%macro EXIT 0
    int {EXIT_VECTOR:#x}
%endmacro
%macro ENTER_RING3 2            ; target, eflags
    mov ax, USER_DS
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    push dword USER_DS
    push dword USER_STACK_TOP
    push dword %2
    push dword USER_CS
    push dword %1
    iretd
%endmacro

; Vector v's stub sits at CODE + {STUB_SIZE} * v: note the vector, report with ESP untouched.
%assign v 0
%rep 256
    mov dword [{SCRATCH + 12:#x}], v   ; 10 bytes
    jmp near report                     ; 5 bytes
    align {STUB_SIZE}, db 0x90
%assign v v+1
%endrep
exit_stub:
    mov edx, {HYPERCALL_PORT_BASE + EXIT_CALL:#x}
    in eax, dx
    jmp $
report:
    mov [{SCRATCH:#x}], eax
    mov [{SCRATCH + 4:#x}], ebx
    mov [{SCRATCH + 8:#x}], edx
    mov ebx, [{SCRATCH + 12:#x}]
    mov edx, {HYPERCALL_PORT_BASE + REPORT_CALL:#x}
    in eax, dx                  ; returns how many bytes to drop (the error code)
    add esp, eax
    mov eax, [{SCRATCH:#x}]
    mov ebx, [{SCRATCH + 4:#x}]
    mov edx, [{SCRATCH + 8:#x}]
    iretd
gdtr:
    dw {(6 + len(self.extra_descriptors)) * 8 - 1}
    dd {GDT:#x}
idtr:
    dw 256 * 8 - 1
    dd {IDT:#x}

start:
    lgdt [gdtr]
    jmp {KERNEL_CS:#x}:.flat
.flat:
    mov ax, {KERNEL_DS:#x}
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, {KERNEL_START_STACK:#x}
    lidt [idtr]
    mov ax, {TSS_SELECTOR:#x}
    ltr ax{paging}
body:
{self.body}
"""

    def _write_tables(self) -> None:
        ram = self.ram
        tss_limit = TSS_IO_BITMAP - 1
        if self.io_bitmap_ports is not None:
            tss_limit = TSS_IO_BITMAP + 0x2000  # the bitmap plus its trailing 0xFF byte
        gdt = b"".join(
            (
                bytes(8),
                descriptor(0, 0xFFFFF, 0x9A, 0xC),
                descriptor(0, 0xFFFFF, 0x92, 0xC),
                descriptor(0, 0xFFFFF, 0xFA, 0xC),
                descriptor(0, 0xFFFFF, 0xF2, 0xC),
                descriptor(TSS, tss_limit, 0x89, 0),
                *self.extra_descriptors,
            )
        )
        ram[GDT : GDT + len(gdt)] = gdt
        tss = bytearray(TSS_IO_BITMAP)
        struct.pack_into("<II", tss, 4, ESP0, KERNEL_DS)
        struct.pack_into("<H", tss, 0x66, TSS_IO_BITMAP if self.io_bitmap_ports else 0xFFFF)
        if self.io_bitmap_ports is not None:
            bitmap = bytearray(b"\xff" * 0x2001)
            for port in self.io_bitmap_ports:
                bitmap[port // 8] &= ~(1 << (port % 8))
            tss += bitmap
        ram[TSS : TSS + len(tss)] = tss
        for vector in range(256):
            dpl, trap = self.gates.get(vector, (0, False))
            handler = CODE + STUB_SIZE * vector
            if vector == EXIT_VECTOR:
                dpl, trap, handler = 3, False, self.symbols["exit_stub"]
            ram[IDT + 8 * vector : IDT + 8 * vector + 8] = gate(
                handler,
                self.gate_selectors.get(vector, KERNEL_CS),
                dpl,
                trap,
                present=vector not in self.missing_gates,
            )
        if self.paging:
            ram[PAGE_DIRECTORY : PAGE_DIRECTORY + 4] = struct.pack("<I", PAGE_TABLE | 0x7)
            entries = [(page << 12) | 0x7 for page in range(1024)]
            entries[USER_READ_ONLY_PAGE >> 12] = USER_READ_ONLY_PAGE | 0x5
            entries[SUPERVISOR_PAGE >> 12] = SUPERVISOR_PAGE | 0x3
            entries[NOT_PRESENT_PAGE >> 12] = 0
            ram[PAGE_TABLE : PAGE_TABLE + 4096] = struct.pack("<1024I", *entries)

    # ---- hypercalls -----------------------------------------------------------------------
    def _report(self, registers: Registers) -> int:
        cpu = self.machine.cpu
        esp = cpu.read(ESP)
        trap = Trap(
            vector=registers.arg0(),
            eflags=cpu.read(EFLAGS),
            cs=cpu.read(CS) & 0xFFFF,
            ss=cpu.read(SS) & 0xFFFF,
            esp=esp,
            cr2=cpu.read(CR2),
            words=struct.unpack_from("<6I", self.ram, esp),
        )
        self.traps.append(trap)
        return self.fixup(self, trap)

    def _exit(self, registers: Registers) -> int:
        self.exit_registers = self.machine.cpu.all_registers()
        self.machine.request_power_off()
        return 0

    # ---- for fix-up policies and tests ----------------------------------------------------
    def skip_instruction(self, trap: Trap, has_error_code: bool) -> None:
        """Advance the frame's EIP past the instruction it points at."""
        slot = trap.esp + (4 if has_error_code else 0)
        (eip,) = struct.unpack_from("<I", self.ram, slot)
        insn = next(Cs(CS_ARCH_X86, CS_MODE_32).disasm(bytes(self.ram[eip : eip + 16]), eip, 1))
        struct.pack_into("<I", self.ram, slot, eip + insn.size)

    def label(self, name: str) -> int:
        """The address of a label in the program (local labels as "parent.local")."""
        return self.symbols[name]

    def dword(self, address: int) -> int:
        return struct.unpack_from("<I", self.ram, address)[0]

    def dwords(self, address: int, count: int) -> tuple[int, ...]:
        return struct.unpack_from(f"<{count}I", self.ram, address)

    def run(self, wall_timeout_s: float = 5.0) -> StopInfo:
        self.machine.cpu.write(EIP, self.symbols["start"])
        return self.machine.run(wall_timeout_s=wall_timeout_s)


@dataclass
class RealModeGuest:
    """16-bit code at `segment:offset` after `Machine.power_on`, ended by the exit hypercall."""

    body: str
    segment: int = 0
    offset: int = 0x7C00
    deterministic: bool = True
    exits: int = 0

    def __post_init__(self) -> None:
        self.machine = Machine(MachineConfig(deterministic=self.deterministic))
        self.ram = self.machine.cpu.ram
        self.machine.register_hypercall(EXIT_CALL, self._exit)
        source = f"""
bits 16
%define RESULTS {RESULTS:#x}
%macro EXIT 0
    mov dx, {HYPERCALL_PORT_BASE + EXIT_CALL:#x}
    in eax, dx
    jmp $
%endmacro
{self.body}
"""
        program = assemble_program(source, self.offset)
        self.symbols = program.symbols
        load = (self.segment << 4) + self.offset
        self.ram[load : load + len(program.code)] = program.code
        self.machine.power_on((self.segment, self.offset))

    def _exit(self, registers: Registers) -> int:
        self.exits += 1
        self.machine.request_power_off()
        return 0

    def set_vector(self, vector: int, label: str) -> None:
        """Point IVT entry `vector` at `segment:label`."""
        struct.pack_into("<HH", self.ram, 4 * vector, self.symbols[label], self.segment)

    def word(self, address: int) -> int:
        return struct.unpack_from("<H", self.ram, address)[0]

    def dword(self, address: int) -> int:
        return struct.unpack_from("<I", self.ram, address)[0]
