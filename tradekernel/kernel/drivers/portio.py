"""The kernel's `in`/`out` instructions: byte, word and string port access over the port bus.

String transfers (`rep insw`/`outsw`) go to the bus as one string access, which a device with a
data FIFO (the ATA data port) serves in one call: that is what makes PIO disk I/O fast.
"""

from __future__ import annotations

from tradekernel.emu.bus import PortBus


class PortIo:
    def __init__(self, ports: PortBus) -> None:
        self._read = ports.read
        self._write = ports.write
        self._read_string = ports.read_string
        self._write_string = ports.write_string

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
        return self._read_string(port, 2, count)

    def outsw(self, port: int, data: bytes) -> None:
        self._write_string(port, 2, data)
