"""The trap frame the entry stub builds on the kernel stack for every interrupt and exception.

From the address in EBX upwards: CR2 (the faulting address of the last #PF), GS, FS, ES, DS,
then PUSHAD's EDI, ESI, EBP, (ESP), EBX, EDX,
ECX, EAX, then the vector, the error code (0 when the CPU pushes none), and the CPU's own frame:
EIP, CS, EFLAGS, and ESP, SS when the interrupt came from ring 3.
"""

from __future__ import annotations

from tradekernel.emu.memory import GuestMemory

FIELDS = (
    "cr2", "gs", "fs", "es", "ds", "edi", "esi", "ebp", "kernel_esp", "ebx", "edx", "ecx", "eax",
    "vector", "error_code", "eip", "cs", "eflags", "user_esp", "user_ss",
)  # fmt: skip
OFFSETS = {name: 4 * index for index, name in enumerate(FIELDS)}
EXCEPTION_NAMES = {
    0: "divide error", 1: "debug", 2: "NMI", 3: "breakpoint", 4: "overflow", 5: "bound range",
    6: "invalid opcode", 7: "device not available", 8: "double fault", 10: "invalid TSS",
    11: "segment not present", 12: "stack fault", 13: "general protection", 14: "page fault",
    16: "x87 error", 17: "alignment check", 18: "machine check", 19: "SIMD error",
}  # fmt: skip


class TrapFrame:
    def __init__(self, memory: GuestMemory, address: int) -> None:
        self.memory = memory
        self.address = address

    def __getattr__(self, name: str) -> int:
        offset = OFFSETS.get(name)
        if offset is None:
            raise AttributeError(name)
        return self.memory.read_u32(self.address + offset)

    def set(self, name: str, value: int) -> None:
        self.memory.write_u32(self.address + OFFSETS[name], value)

    @property
    def from_user(self) -> bool:
        return self.cs & 3 == 3

    def describe(self) -> str:
        name = EXCEPTION_NAMES.get(self.vector, f"vector {self.vector:#x}")
        return f"{name} (error code {self.error_code:#x}) at eip {self.eip:#010x}, cs {self.cs:#x}"
