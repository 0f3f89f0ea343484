"""The wires between the CPU and the devices: port I/O, MMIO, IRQ lines and host channels.

Contract: a device claims its own ports and MMIO ranges when it is attached; a second claim on
the same port or address is a wiring bug and raises at start-up. An unclaimed port reads as all
ones (0xFF per byte) and ignores writes, as on an ISA bus with nothing answering. Nothing in this
module imports unicorn, so devices may use it freely.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

PortRead = Callable[[int, int], int]  # (port, size in bytes) -> value
PortWrite = Callable[[int, int, int], None]  # (port, size in bytes, value)
PortReadString = Callable[[int, int, int], bytes]  # (port, unit size, count) -> bytes
PortWriteString = Callable[[int, int, bytes], None]  # (port, unit size, data)
MmioRead = Callable[[int, int], int]  # (offset in range, size) -> value
MmioWrite = Callable[[int, int, int], None]  # (offset in range, size, value)

PORT_COUNT = 0x10000


class WiringError(Exception):
    """Two devices claimed the same port or address range: a bug in how the board is built."""


@dataclass(frozen=True)
class _PortClaim:
    owner: str
    read: PortRead | None
    write: PortWrite | None
    read_string: PortReadString | None = None
    write_string: PortWriteString | None = None


def _ignore_write(port: int, size: int, value: int) -> None:
    """What an unclaimed port (or a read-only one) does with a write."""


class PortBus:
    """The 64 KiB ISA I/O space; one table slot per port, so a lookup is one list index."""

    def __init__(self) -> None:
        self._claims: list[_PortClaim | None] = [None] * PORT_COUNT
        # Per port, the write handler or one that ignores the write: the CPU's OUT hook calls
        # it straight (`writer(port, size, value)`, value already masked to `size` bytes).
        self.writers: list[PortWrite] = [_ignore_write] * PORT_COUNT

    def claim(
        self,
        first: int,
        count: int,
        owner: str,
        read: PortRead | None = None,
        write: PortWrite | None = None,
        read_string: PortReadString | None = None,
        write_string: PortWriteString | None = None,
    ) -> None:
        """`read_string`/`write_string` are optional fast paths for `rep insw`-style
        transfers (a disk's data port); without them a string access is a loop of reads."""
        if not 0 <= first and first + count <= PORT_COUNT and count > 0:
            raise WiringError(f"{owner}: ports {first:#x}+{count} outside the I/O space")
        claim = _PortClaim(owner, read, write, read_string, write_string)
        for port in range(first, first + count):
            existing = self._claims[port]
            if existing is not None:
                raise WiringError(f"{owner}: port {port:#x} already claimed by {existing.owner}")
            self._claims[port] = claim
            if write is not None:
                self.writers[port] = write

    def owner(self, port: int) -> str | None:
        claim = self._claims[port & 0xFFFF]
        return claim.owner if claim else None

    def read(self, port: int, size: int = 1) -> int:
        claim = self._claims[port & 0xFFFF]
        if claim is None or claim.read is None:
            return (1 << (8 * size)) - 1
        return claim.read(port & 0xFFFF, size) & ((1 << (8 * size)) - 1)

    def write(self, port: int, size: int, value: int) -> None:
        claim = self._claims[port & 0xFFFF]
        if claim is not None and claim.write is not None:
            claim.write(port & 0xFFFF, size, value & ((1 << (8 * size)) - 1))

    def read_string(self, port: int, size: int, count: int) -> bytes:
        """`count` reads of `size` bytes from one port, as `rep ins` does."""
        claim = self._claims[port & 0xFFFF]
        if claim is not None and claim.read_string is not None:
            return claim.read_string(port & 0xFFFF, size, count)
        read = self.read
        return b"".join(read(port, size).to_bytes(size, "little") for _ in range(count))

    def write_string(self, port: int, size: int, data: bytes) -> None:
        """`len(data) // size` writes to one port, as `rep outs` does."""
        claim = self._claims[port & 0xFFFF]
        if claim is not None and claim.write_string is not None:
            claim.write_string(port & 0xFFFF, size, data)
            return
        for offset in range(0, len(data) - size + 1, size):
            self.write(port, size, int.from_bytes(data[offset : offset + size], "little"))


@dataclass(frozen=True)
class MmioRange:
    base: int
    size: int
    owner: str
    read: MmioRead
    write: MmioWrite


class MmioBus:
    """Physical address ranges answered by devices instead of RAM (the machine maps them)."""

    def __init__(self) -> None:
        self.ranges: list[MmioRange] = []
        self._listeners: list[Callable[[MmioRange], None]] = []

    def claim(self, base: int, size: int, owner: str, read: MmioRead, write: MmioWrite) -> None:
        for r in self.ranges:
            if base < r.base + r.size and r.base < base + size:
                raise WiringError(f"{owner}: MMIO {base:#x}+{size:#x} overlaps {r.owner}")
        claimed = MmioRange(base, size, owner, read, write)
        self.ranges.append(claimed)
        for listener in self._listeners:
            listener(claimed)

    def on_claim(self, listener: Callable[[MmioRange], None]) -> None:
        """The machine listens here to map each range into the CPU's address space."""
        self._listeners.append(listener)
        for r in self.ranges:
            listener(r)


class IrqLine:
    """One wire from a device to an interrupt controller input; the device drives the level."""

    def __init__(self, number: int, sink: Callable[[int, bool], None] | None = None) -> None:
        self.number = number
        self.level = False
        self._sink = sink

    def connect(self, sink: Callable[[int, bool], None]) -> None:
        self._sink = sink
        if self.level:
            sink(self.number, True)

    def set(self, level: bool) -> None:
        if level:
            self.raise_()
        else:
            self.lower()

    # raise_ and lower straight to the sink: a PIT one-shot moves its line twice per interrupt
    def raise_(self) -> None:
        if not self.level:
            self.level = True
            sink = self._sink
            if sink is not None:
                sink(self.number, True)

    def lower(self) -> None:
        if self.level:
            self.level = False
            sink = self._sink
            if sink is not None:
                sink(self.number, False)

    def pulse(self) -> None:
        """An edge for edge-triggered inputs: up, then down."""
        self.raise_()
        self.lower()


class Channels:
    """Named host-side channels (v86 style): devices talk to the window, terminal or network
    without knowing which one is there, and stay testable without any of them."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[object], None]]] = defaultdict(list)

    def listen(self, name: str, listener: Callable[[object], None]) -> None:
        self._listeners[name].append(listener)

    def send(self, name: str, payload: object) -> None:
        for listener in self._listeners.get(name, ()):
            listener(payload)
