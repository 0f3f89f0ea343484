"""Guest physical memory as the devices and the kernel see it: a memoryview of the RAM buffer.

Reads of physical addresses outside RAM return 0xFF bytes and writes there are dropped, as on
a PC bus with nothing behind the address; nothing here can raise on a guest's bad pointer.
"""

from __future__ import annotations

import struct


class GuestMemory:
    def __init__(self, ram: memoryview) -> None:
        self._ram = ram
        self.size = len(ram)

    def view(self) -> memoryview:
        """The whole of RAM, writable: for code that needs speed (heap, VGA renderer)."""
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
            self._ram[address:end] = data
            return
        for i, byte in enumerate(data):
            if 0 <= address + i < self.size:
                self._ram[address + i] = byte

    def read_u32(self, address: int) -> int:
        return struct.unpack_from("<I", self._ram, address)[0]

    def write_u32(self, address: int, value: int) -> None:
        struct.pack_into("<I", self._ram, address, value & 0xFFFFFFFF)
