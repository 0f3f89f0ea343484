"""The boot information block the entry stub hands to KERNEL_INIT (images/stub.asm, boot_info).

Its tail is a mailbox: words the kernel writes and the stub acts on with the instructions only
the CPU can run (CR3 loads, CR0.TS, FXSAVE), on its way back to code after every kernel entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tradekernel.emu.memory import GuestMemory

MAGIC = 0x4B42544B  # "KTBK"
_LAYOUT = struct.Struct("<13I")
LOAD_CR3_OFFSET = 8 * 4
FPU_OWNER_OFFSET = 10 * 4
FPU_CURRENT_OFFSET = 11 * 4
FPU_COPY_OFFSET = 12 * 4
FXSAVE_SIZE = 512  # an FXSAVE area; it must be 16-byte aligned


class BootInfoError(Exception):
    pass


@dataclass(frozen=True)
class BootInfo:
    boot_drive: int
    gdt: int
    idt: int
    tss: int
    stack_top: int
    stub_end: int
    halt: int  # a `cli; hlt` loop: where a panicking kernel parks the CPU
    fpu_initial: int  # FXSAVE image of a clean FPU (fninit, MXCSR 0x1F80), saved by the stub
    address: int
    memory: GuestMemory

    @classmethod
    def read(cls, memory: GuestMemory, address: int) -> BootInfo:
        magic, *fields = _LAYOUT.unpack(memory.read(address, _LAYOUT.size))
        if magic != MAGIC:
            raise BootInfoError(f"no boot info at {address:#x} (magic {magic:#x})")
        *before, _load_cr3, fpu_initial, _owner, _current, _copy = fields
        return cls(*before, fpu_initial, address, memory)

    def request_cr3(self, page_directory: int) -> None:
        """Ask the stub to load CR3 (enabling paging and WP) before it next returns to code."""
        self.memory.write_u32(self.address + LOAD_CR3_OFFSET, page_directory)

    def take_cr3_request(self) -> int:
        """The page directory the stub has yet to load (0: none), withdrawn: for a switch that
        loads CR3 without the stub (the trap fast path)."""
        page_directory = self.memory.read_u32(self.address + LOAD_CR3_OFFSET)
        self.memory.write_u32(self.address + LOAD_CR3_OFFSET, 0)
        return page_directory

    @property
    def fpu_owner(self) -> int:
        """The FXSAVE area whose state the FPU registers hold (0: nobody's); the stub's #NM
        handler moves it to the current task."""
        return self.memory.read_u32(self.address + FPU_OWNER_OFFSET)

    def disown_fpu(self) -> None:
        """The registers' contents belong to nobody any more (the owner died or exec'd)."""
        self.memory.write_u32(self.address + FPU_OWNER_OFFSET, 0)

    def set_fpu_current(self, area: int) -> None:
        """The FXSAVE area of the task the CPU resumes next (0: the kernel's own context)."""
        self.memory.write_u32(self.address + FPU_CURRENT_OFFSET, area)

    def request_fpu_copy(self, area: int) -> None:
        """Ask the stub to FXSAVE the live registers into `area` on its way out."""
        self.memory.write_u32(self.address + FPU_COPY_OFFSET, area)
