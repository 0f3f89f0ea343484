"""The one small interface every device model implements, and the board it plugs into.

A device is given a `Board` in `attach()` and from it claims its own ports and MMIO ranges, takes
its IRQ line, schedules its timers on the clock, and talks to the host through named channels.
It never imports the kernel or unicorn, and never holds another device: IRQs are wires, and the
interrupt controller is found only through the board.

State for snapshots is plain named data: `state()` returns a dict of ints, bools, strings, lists
and bytes, tagged with the device's `STATE_VERSION`; `restore()` takes the same dict back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from tradekernel.emu.bus import Channels, IrqLine, MmioBus, PortBus
from tradekernel.emu.clock import Clock


class PhysicalMemory(Protocol):
    """Guest physical memory as a device sees it (DMA, the VGA renderer)."""

    def read(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes) -> None: ...


class InterruptController(Protocol):
    """What the CPU asks of the interrupt controller (the 8259 pair) at an instruction boundary."""

    def pending(self) -> bool:
        """INTR is asserted: an unmasked request outranks everything in service."""
        ...

    def acknowledge(self) -> int:
        """The INTA cycle: the vector to deliver (a spurious vector if the request went away)."""
        ...


@dataclass
class SystemSignals:
    """Board-level signals that chips drive (8042 reset line, port 0x92, power control)."""

    reset: Callable[[], None] = lambda: None
    power_off: Callable[[], None] = lambda: None
    set_a20: Callable[[bool], None] = lambda enabled: None
    a20_enabled: Callable[[], bool] = lambda: True


@dataclass
class Board:
    ports: PortBus
    mmio: MmioBus
    clock: Clock
    channels: Channels
    memory: PhysicalMemory
    signals: SystemSignals = field(default_factory=SystemSignals)
    # Called when INTR may have changed, so the machine can deliver without waiting a slice.
    interrupt_changed: Callable[[], None] = lambda: None
    _irqs: dict[int, IrqLine] = field(default_factory=dict)
    interrupt_controller: InterruptController | None = None

    def irq(self, number: int) -> IrqLine:
        """The wire for ISA IRQ `number` (0-15); the interrupt controller connects the far end."""
        line = self._irqs.get(number)
        if line is None:
            line = self._irqs[number] = IrqLine(number)
        return line


class Device(ABC):
    """A chip model. Subclasses set `name` and `STATE_VERSION` and implement the four methods."""

    name: ClassVar[str]
    STATE_VERSION: ClassVar[int] = 1

    @abstractmethod
    def attach(self, board: Board) -> None:
        """Claim ports/MMIO, take IRQ lines and listen on channels; called once at build time."""

    @abstractmethod
    def reset(self) -> None:
        """Power-on / hardware reset state."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Plain named data for snapshots (must round-trip through `restore`)."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Load what `state()` returned; raise ValueError on a version or field mismatch."""


def check_state_version(device: Device, state: dict[str, Any]) -> None:
    """Shared guard for `restore`: a snapshot from another version is refused, not guessed at."""
    version = state.get("version")
    if version != device.STATE_VERSION:
        raise ValueError(
            f"{device.name}: snapshot version {version!r}, expected {device.STATE_VERSION}"
        )
