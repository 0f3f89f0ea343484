"""The boot information block the entry stub hands to KERNEL_INIT (images/stub.asm, boot_info)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tradekernel.emu.memory import GuestMemory

MAGIC = 0x4B42544B  # "KTBK"
_LAYOUT = struct.Struct("<7I")


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

    @classmethod
    def read(cls, memory: GuestMemory, address: int) -> BootInfo:
        magic, *fields = _LAYOUT.unpack(memory.read(address, _LAYOUT.size))
        if magic != MAGIC:
            raise BootInfoError(f"no boot info at {address:#x} (magic {magic:#x})")
        return cls(*fields)
