"""What the machine hands the kernel: buses, guest memory, hypercall registration. Nothing else.

The kernel is a paravirtual guest written in Python: like a driver it may touch ports and
physical memory, and it answers hypercalls; it never sees a device object or the CPU engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tradekernel.emu.bus import PortBus
from tradekernel.emu.machine import Hypercall, Machine, Registers
from tradekernel.emu.memory import GuestMemory


@dataclass
class Platform:
    ports: PortBus
    memory: GuestMemory
    registers: Registers
    register_hypercall: Callable[[int, Hypercall], None]
    register_trap: Callable[[int, Callable[[Registers], bool]], None]
    code_changed: Callable[[int, int], None]  # (physical address, size) of code written
    log: Callable[[str], None]
    ram_bytes: int
    deterministic: bool

    @classmethod
    def of(cls, machine: Machine) -> Platform:
        return cls(
            ports=machine.ports,
            memory=machine.memory,
            registers=machine.registers,
            register_hypercall=machine.register_hypercall,
            register_trap=machine.register_trap,
            code_changed=machine.code_changed,
            log=lambda text: machine.channels.send("log", text),
            ram_bytes=machine.cpu.ram_bytes,
            deterministic=machine.config.deterministic,
        )
