"""The kernel's `in`/`out` instructions: byte, word and string port access over the port bus.

String transfers move 32 bits per bus access (as `rep insd`/`outsd` would) when the count is
even: half the accesses of `insw`, which is what makes PIO disk I/O fast enough.
"""

from __future__ import annotations

import struct

from tradekernel.emu.bus import PortBus


class PortIo:
    def __init__(self, ports: PortBus) -> None:
        self._read = ports.read
        self._write = ports.write

    def inb(self, port: int) -> int:
        return self._read(port, 1)

    def outb(self, port: int, value: int) -> None:
        self._write(port, 1, value)

    def inw(self, port: int) -> int:
        return self._read(port, 2)

    def outw(self, port: int, value: int) -> None:
        self._write(port, 2, value)

    def inl(self, port: int) -> int:
        return self._read(port, 4)

    def outl(self, port: int, value: int) -> None:
        self._write(port, 4, value)

    def insw(self, port: int, count: int) -> bytes:
        read = self._read
        if count % 2 == 0:
            return struct.pack(f"<{count // 2}I", *[read(port, 4) for _ in range(count // 2)])
        return struct.pack(f"<{count}H", *[read(port, 2) for _ in range(count)])

    def outsw(self, port: int, data: bytes) -> None:
        write = self._write
        if len(data) % 4 == 0:
            for value in struct.unpack(f"<{len(data) // 4}I", data):
                write(port, 4, value)
            return
        for value in struct.unpack(f"<{len(data) // 2}H", data):
            write(port, 2, value)
