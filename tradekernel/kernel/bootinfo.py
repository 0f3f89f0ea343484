"""The boot information block the entry stub hands to KERNEL_INIT (images/stub.asm, boot_info)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tradekernel.emu.memory import GuestMemory

MAGIC = 0x4B42544B  # "KTBK"
_LAYOUT = struct.Struct("<9I")
LOAD_CR3_OFFSET = 8 * 4


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
    address: int
    memory: GuestMemory

    @classmethod
    def read(cls, memory: GuestMemory, address: int) -> BootInfo:
        magic, *fields, _load_cr3 = _LAYOUT.unpack(memory.read(address, _LAYOUT.size))
        if magic != MAGIC:
            raise BootInfoError(f"no boot info at {address:#x} (magic {magic:#x})")
        return cls(*fields, address, memory)

    def request_cr3(self, page_directory: int) -> None:
        """Ask the stub to load CR3 (enabling paging and WP) before it next returns to code."""
        self.memory.write_u32(self.address + LOAD_CR3_OFFSET, page_directory)
