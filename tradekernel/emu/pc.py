"""The TradeKernel PC: which chips sit on the board, where the firmware lives, and power-on.

The machine core knows no device; this is the one place that lists them (the board layout),
each claiming its own ports when attached.

Lifetime: the machine calls back into the board (KERNEL_INIT, reset) through weak references,
so a Pc is never part of a reference cycle and is freed as soon as its last user lets go. The
machine below it is not so simple: its CPU hooks, devices, BIOS and kernel refer to each other
and to the guest RAM, so that graph is freed only by Python's cycle collector. `close` releases
the host's side (the network link); `release_memory` gives the RAM's pages back to the host at
once for a machine that will not be read again (a sweep booting one machine per point).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tradekernel import hostnet, memmap
from tradekernel.devices.debugcon import DebugCon
from tradekernel.devices.dma8237 import Dma8237
from tradekernel.devices.fdc import Fdc
from tradekernel.devices.i8042 import I8042
from tradekernel.devices.ide import DiskBacking, IdeChannel
from tradekernel.devices.ne2000 import DEFAULT_MAC, Ne2000
from tradekernel.devices.pic import PicPair
from tradekernel.devices.pit import Pit
from tradekernel.devices.port92 import Port92
from tradekernel.devices.postcode import PostCode
from tradekernel.devices.power import PowerControl
from tradekernel.devices.pvclock import PvClock
from tradekernel.devices.rtc import Rtc
from tradekernel.devices.uart import Uart16550
from tradekernel.devices.vga import VGA
from tradekernel.emu.bios import Bios
from tradekernel.emu.machine import NS_PER_INSTRUCTION, Machine, MachineConfig
from tradekernel.firmware import firmware
from tradekernel.hypercall import Hypercall

# Deterministic runs start the wall clock at a fixed instant, so `date` prints the same.
DETERMINISTIC_EPOCH = datetime(2026, 1, 2, 9, 30, 0, tzinfo=UTC)


@dataclass
class PcConfig:
    disk: str | os.PathLike[str] | None = None
    floppy: str | os.PathLike[str] | None = None  # drive A: (BIOS drive 0x00), booted first
    ram_mib: int = memmap.DEFAULT_RAM_MIB
    deterministic: bool = False
    ns_per_instruction: int = NS_PER_INSTRUCTION  # deterministic mode's virtual CPU speed
    read_only: bool = False
    start_time: datetime | None = None
    net: str = "none"  # hostnet's --net spec for the NE2000's cable (tests stay offline)
    hostfwd: tuple[str, ...] = ()  # --net user port forwards, as hostnet parses them
    pcap: str | None = None  # every frame on the cable, to this file
    mac: bytes = DEFAULT_MAC  # the NE2000's station address (machines sharing a hub differ)


# Standard PC diskette formats by size: (cylinders, heads, sectors per track).
FLOPPY_GEOMETRIES = {
    360 * 1024: (40, 2, 9),
    720 * 1024: (80, 2, 9),
    1200 * 1024: (80, 2, 15),
    1440 * 1024: (80, 2, 18),
    2880 * 1024: (80, 2, 36),
}


def floppy_disk(path: Path, read_only: bool) -> DiskBacking:
    """A diskette image for the BIOS's int 13h and the floppy controller; an image file with no
    write permission bits (chmod a-w) is a write-protected diskette, even for root."""
    protected = read_only or (path.is_file() and not path.stat().st_mode & 0o222)
    backing = DiskBacking(path, read_only=protected)
    geometry = FLOPPY_GEOMETRIES.get(backing.sector_count * 512)
    if geometry is None:
        sizes = ", ".join(f"{size // 1024} KiB" for size in FLOPPY_GEOMETRIES)
        raise ValueError(f"{path}: not a diskette image size ({sizes})")
    backing.geometry = geometry
    return backing


class Pc:
    """A machine with the standard board; `kernel_factory(machine)` is called on KERNEL_INIT."""

    def __init__(self, config: PcConfig, kernel_factory=None) -> None:  # noqa: ANN001
        if config.ram_mib < 2 or config.ram_mib > 3072:
            raise ValueError(f"memory must be 2-3072 MiB, not {config.ram_mib}")
        self.config = config
        self.machine = machine = Machine(
            MachineConfig(config.ram_mib, config.deterministic, config.ns_per_instruction)
        )
        start = config.start_time or (DETERMINISTIC_EPOCH if config.deterministic else None)
        self.pic = machine.add(PicPair(bios_initialised=False))
        self.pit = machine.add(Pit(bios_initialised=False))
        self.rtc = machine.add(Rtc(start_time=start, ram_bytes=machine.cpu.ram_bytes))
        self.keyboard = machine.add(I8042())
        self.vga = machine.add(VGA())
        self.pvclock = machine.add(PvClock())
        self.com1 = machine.add(Uart16550(base=0x3F8, irq=4, channel="com1"))
        # `--net none` is no card at all, as QEMU's -net none: the kernel's probe finds nothing
        self.nic = None if config.net == "none" else machine.add(Ne2000(0x300, 9, mac=config.mac))
        for device in (Port92(), DebugCon(), PostCode(), PowerControl()):
            machine.add(device)
        disks = {}
        self.ide: IdeChannel | None = None
        if config.disk is not None:
            backing = DiskBacking(Path(config.disk), read_only=config.read_only)
            self.ide = machine.add(IdeChannel(backing, read_only=config.read_only))
            disks[0x80] = backing
        if config.floppy is not None:
            disks[0x00] = floppy_disk(Path(config.floppy), config.read_only)
        self.dma = machine.add(Dma8237())
        self.fdc = machine.add(Fdc(disks.get(0x00), self.dma.channel(2)))
        self.bios = Bios(
            machine.cpu,
            machine.memory,
            machine.ports,
            disks,
            set_a20=machine.set_a20,
            a20_enabled=lambda: machine.a20,
            log=lambda text: machine.channels.send("log", text),
        )
        for number, handler in self.bios.hypercalls().items():
            machine.register_hypercall(number, handler, kernel=False)
        self.kernel = None
        self._kernel_factory = kernel_factory
        if kernel_factory is not None:
            machine.register_hypercall(
                Hypercall.KERNEL_INIT, _weakly(self._kernel_init), kernel=False
            )
        machine.on_reset(_weakly(self.power_on))
        # Last: a bad --net spec, a TAP without rights or an unwritable pcap raises ValueError
        # (one line) before anything was opened that would need closing.
        self.net: hostnet.Link | None = hostnet.attach(
            machine,
            hostnet.NetOptions(config.net, list(config.hostfwd), config.pcap),
            deterministic=config.deterministic,
        )
        self.power_on()

    def _kernel_init(self, registers) -> int:  # noqa: ANN001
        self.kernel = self._kernel_factory(self.machine)
        return self.kernel.init(registers.arg0())

    def power_on(self) -> None:
        """Load the ROM and start the CPU at the reset vector F000:FFF0, as after RESET#."""
        rom = firmware("bios.bin")
        base = memmap.BIOS_ROM_BASE
        self.machine.cpu.ram[base : base + len(rom)] = rom
        self.machine.power_on((base >> 4, memmap.RESET_VECTOR - base))

    def flush(self) -> None:
        if self.ide is not None:
            self.ide.flush()

    def close(self) -> None:
        """Close the network link (backend sockets, the waker thread, the pcap file); once."""
        if self.net is not None:
            net, self.net = self.net, None
            net.close()

    def release_memory(self) -> None:
        """Give the guest RAM's pages back to the host now; it reads as zeros afterwards. For a
        closed machine nobody reads again: its RAM buffer is freed only when the cycle
        collector frees the machine (module docstring), which a process booting machine
        after machine would otherwise pay for with a full collection or RAM_MIB per machine."""
        self.machine.cpu.release_ram()


def _weakly(method: Callable[..., object]) -> Callable[..., object]:
    """`method` of the board as a machine callback that does not keep the board alive."""
    ref = weakref.WeakMethod(method)

    def call(*args: object) -> object:
        bound = ref()
        if bound is None:
            raise RuntimeError("the Pc that owned this machine was dropped")
        return bound(*args)

    return call
