"""Guest physical memory as the devices and the kernel see it: a memoryview of the RAM buffer.

Reads of physical addresses outside RAM return 0xFF bytes and writes there are dropped, as on
a PC bus with nothing behind the address; nothing here can raise on a guest's bad pointer.

Every `write`/`write_u32` is a host-side write the CPU did not make (a BIOS disk read, DMA, a
program load, a debugger poke), so it is reported to `written(address, size)`: the machine drops
what the CPU translated from those bytes, and the next fetch sees the new code, as on a PC.
A write that leaves the bytes as they were changes no code and is not reported (the kernel
rewrites the same TSS, GDT and mailbox words on most task switches).
`view()` is the raw buffer for bulk data paths (heap, screen) and reports nothing: code must not
be written through it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

_U32 = struct.Struct("<I")


class GuestMemory:
    def __init__(self, ram: memoryview, written: Callable[[int, int], None] | None = None) -> None:
        self._ram = ram
        self.size = len(ram)
        self._written = written or (lambda _address, _size: None)

    def view(self) -> memoryview:
        """The whole of RAM, writable: for data paths that need speed (heap, VGA renderer).
        Writes here are not seen by the CPU's translations: write code with `write`."""
        return self._ram

    def read(self, address: int, size: int) -> bytes:
        if 0 <= address and address + size <= self.size:
            return bytes(self._ram[address : address + size])
        return bytes(
            self._ram[a] if 0 <= a < self.size else 0xFF for a in range(address, address + size)
        )

    def write(self, address: int, data: bytes) -> None:
        end = address + len(data)
        if 0 <= address and end <= self.size:
            if self._ram[address:end] == data:
                return
            self._ram[address:end] = data
        else:
            for i, byte in enumerate(data):
                if 0 <= address + i < self.size:
                    self._ram[address + i] = byte
            address, end = max(0, address), min(end, self.size)
        if end > address:
            self._written(address, end - address)

    def read_u32(self, address: int) -> int:
        return _U32.unpack_from(self._ram, address)[0]

    def write_u32(self, address: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if _U32.unpack_from(self._ram, address)[0] == value:
            return
        _U32.pack_into(self._ram, address, value)
        self._written(address, 4)
