"""An NE2000 ISA Ethernet card: a DP8390D core (devices/dp8390.py), 16 KiB of buffer RAM, the
station address PROM, the data port and the reset port. Default base 0x300, IRQ 9.

Ports (32 from the base): 0x00-0x0F the DP8390 registers; 0x10-0x17 the data port (remote DMA;
the card decodes the whole range to it); 0x18-0x1F the reset port: a read pulses the card's
reset (the chip goes offline with ISR.RST set, as Linux's ne.c and other drivers expect) and
returns 0; a write is ignored. A data-port access moves as many bytes as it is wide in byte mode
(the ISA bus splits a 16- or 32-bit access into byte cycles, all decoded to the data port), and
one 16-bit word per 16 bits in word mode (DCR.WTS).

Card memory as the DP8390 sees it: 0x0000-0x001F the PROM (each of its 16 bytes doubled, as an
8-bit PROM on the NE2000's 16-bit bus reads: the MAC address in bytes 0-5 and the NE2000 'W'
signature 0x57 in bytes 14-15), 0x4000-0x7FFF the RAM (pages 0x40-0x7F); anything else reads
0xFF and ignores writes.

Host side, through named channels (v86 style): every frame the guest transmits is sent on
f"{channel}-send" (payload: bytes, padded to 60, no FCS); frames the host sends on
f"{channel}-receive" (bytes-like, no FCS) reach the receiver at once. The card says on
f"{channel}-ready" (payload: bool) whenever its receive ring turns full or gets room again for
a frame of the longest size (`Dp8390.has_room`; it starts ready): the link at the other end
(tradekernel/hostnet/) holds frames while it is not ready instead of overrunning the ring, as
QEMU's net layer does with a card's can_receive. Frames sent while it is not ready are still
received if they fit, or counted as missed (OVW), as on a wire.
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.devices.dp8390 import (
    CR_PS_SHIFT,
    CR_STA,
    CR_STP,
    CR_TXP,
    DCR_WTS,
    TCR_LB_MASK,
    Dp8390,
)
from tradekernel.emu.bus import IrqLine

NE2000_BASE = 0x300
NE2000_IRQ = 9
PORT_COUNT = 32
DATA_PORT, DATA_PORT_END = 0x10, 0x17
RESET_PORT, RESET_PORT_END = 0x18, 0x1F
RAM_START, RAM_SIZE = 0x4000, 0x4000
PROM_SIZE = 32
ADDRESS_SPACE = 0x10000
NE2000_SIGNATURE = 0x57
DEFAULT_MAC = bytes.fromhex("525400123456")  # a locally administered address (QEMU's prefix)
MAX_STRING_BYTES = 0x10000  # a `rep ins` burst larger than the card's address space repeats
# Register writes that can change whether the ring has room, by page (CR.PS): PSTART, PSTOP,
# BNRY (page 0), CURR (page 1). A command (CR) can too when it starts or stops the chip or
# sends a frame into its own receiver (loopback); the rest (remote DMA set-up, ISR
# acknowledgements, the transmit of a stream) cannot, and skip the check.
ROOM_REGISTERS = (frozenset((0x01, 0x02, 0x03)), frozenset((0x07,)), frozenset(), frozenset())


def parse_mac(text: str) -> bytes:
    """'52:54:00:12:34:56' -> 6 bytes; one clear error for anything else."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"ne2000: {text!r} is not a MAC address (like 52:54:00:12:34:56)")
    try:
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"ne2000: {text!r} is not a MAC address (hex digits)") from None
    if mac[0] & 1:
        raise ValueError(f"ne2000: {text} is a multicast address, not a station address")
    return mac


class Ne2000(Device):
    """The card. `channel` names the host channels (e.g. "net0")."""

    name = "ne2000"
    STATE_VERSION = 1

    def __init__(
        self,
        base: int = NE2000_BASE,
        irq: int = NE2000_IRQ,
        mac: bytes = DEFAULT_MAC,
        channel: str = "net0",
    ) -> None:
        if not 0 <= base <= 0x10000 - PORT_COUNT:
            raise ValueError(f"ne2000: base port {base:#x} outside the I/O space")
        if not 0 <= irq <= 15:
            raise ValueError(f"ne2000: IRQ {irq} is not an ISA IRQ")
        if len(mac) != 6 or mac[0] & 1:
            raise ValueError("ne2000: the MAC address must be 6 bytes, unicast")
        if not channel:
            raise ValueError("ne2000: channel name must not be empty")
        self.base = base
        self.irq_number = irq
        self.mac = bytes(mac)
        self.channel = channel
        self.send_channel = f"{channel}-send"
        self.receive_channel = f"{channel}-receive"
        self.ready_channel = f"{channel}-ready"
        self._ready = True  # what the link was last told (it assumes ready at first)
        self._irq: IrqLine | None = None
        self._board: Board | None = None
        # The card's 64 KiB address space as the chip sees it: PROM, RAM, and 0xFF elsewhere.
        self.space = bytearray(b"\xff" * ADDRESS_SPACE)
        self._view = memoryview(self.space)  # the space is never resized
        self._load_prom()
        self.chip = Dp8390(self._read_memory, self._write_memory, self._send, self._set_irq)
        self.frames_sent = 0
        self.frames_received = 0
        self.frames_dropped = 0

    def _load_prom(self) -> None:
        station = bytearray(PROM_SIZE // 2)
        station[0:6] = self.mac
        station[14] = station[15] = NE2000_SIGNATURE
        self.space[0:PROM_SIZE] = bytes(b for byte in station for b in (byte, byte))

    @property
    def ram(self) -> memoryview:
        return memoryview(self.space)[RAM_START : RAM_START + RAM_SIZE]

    def attach(self, board: Board) -> None:
        self._board = board
        self._irq = board.irq(self.irq_number)
        board.ports.claim(
            self.base,
            PORT_COUNT,
            f"{self.name}:{self.channel}",
            self._port_read,
            self._port_write,
            self._port_read_string,
            self._port_write_string,
        )
        board.channels.listen(self.receive_channel, self._host_frame)
        self.reset()

    def reset(self) -> None:
        """Power-on: RAM cleared, the chip offline with ISR.RST."""
        self.space[RAM_START : RAM_START + RAM_SIZE] = bytes(RAM_SIZE)
        self.chip.power_on()
        self._update_ready()

    def _update_ready(self) -> None:
        """Tell the link when the ring fills up or has room again (only on a change)."""
        ready = self.chip.has_room()
        if ready != self._ready:
            self._ready = ready
            if self._board is not None:
                self._board.channels.send(self.ready_channel, ready)

    # -- the card's memory bus ---------------------------------------------------------------

    def _read_memory(self, address: int, length: int) -> bytes:
        return self._view[address : address + length].tobytes()  # one copy, not two

    def _write_memory(self, address: int, data: bytes) -> None:
        if RAM_START <= address and address + len(data) <= RAM_START + RAM_SIZE:
            self.space[address : address + len(data)] = data  # all in RAM, as ring writes are
            return
        first = max(address, RAM_START)
        last = min(address + len(data), RAM_START + RAM_SIZE)
        if first < last:
            self.space[first:last] = data[first - address : last - address]

    # -- wires -------------------------------------------------------------------------------

    def _set_irq(self, level: bool) -> None:
        if self._irq is not None:
            self._irq.set(level)

    def _send(self, frame: bytes) -> None:
        self.frames_sent += 1
        if self._board is not None:
            self._board.channels.send(self.send_channel, frame)

    def _host_frame(self, payload: object) -> None:
        if payload.__class__ is not bytes:
            if not isinstance(payload, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"{self.receive_channel}: payload must be bytes, not {type(payload)}")
            payload = bytes(payload)
        if self.chip.receive(payload):  # type: ignore[arg-type]
            self.frames_received += 1
        else:
            self.frames_dropped += 1
        if self.chip.has_room() != self._ready:
            self._update_ready()

    # -- ports -------------------------------------------------------------------------------

    def _port_read(self, port: int, size: int) -> int:
        offset = port - self.base
        if offset < DATA_PORT:
            return self.chip.read_register(offset)
        if offset <= DATA_PORT_END:
            return int.from_bytes(self._port_read_string(port, size, 1), "little")
        self.chip.reset()
        self._update_ready()
        return 0

    def _port_write(self, port: int, size: int, value: int) -> None:
        offset = port - self.base
        if offset < DATA_PORT:
            chip = self.chip
            if offset:
                chip.write_register(offset, value)
                if offset in ROOM_REGISTERS[chip.cr >> CR_PS_SHIFT]:
                    self._update_ready()
                return
            run_state = chip.cr & (CR_STA | CR_STP)
            chip.write_register(0, value)
            if chip.cr & (CR_STA | CR_STP) != run_state or (
                    value & CR_TXP and chip.tcr & TCR_LB_MASK):
                self._update_ready()
        elif offset <= DATA_PORT_END:
            self._port_write_string(port, size, value.to_bytes(size, "little"))
        # writes to the reset port do nothing

    def _access_bytes(self, size: int, count: int) -> int:
        """Bytes `count` data-port accesses of `size` move: in word mode each access moves at
        least one 16-bit word (a byte access in word mode drives the whole bus)."""
        if self.chip.dcr & DCR_WTS:
            return max(2, size) * count
        return size * count

    def _port_read_string(self, port: int, size: int, count: int) -> bytes:
        """`rep insb/insw/insd` at the data port: all `count` accesses as one DMA burst."""
        offset = port - self.base
        if not DATA_PORT <= offset <= DATA_PORT_END:
            return b"".join(
                self._port_read(port, size).to_bytes(size, "little") for _ in range(count)
            )
        count = max(0, min(count, MAX_STRING_BYTES // size))  # bounded before allocating
        data = self.chip.data_read(self._access_bytes(size, count))
        if not self._ready:  # a "send packet" read that finished moved BNRY: room again?
            self._update_ready()
        if size == 1 and self.chip.dcr & DCR_WTS:
            data = data[0::2]  # each byte access returned the low half of its word
        return data

    def _port_write_string(self, port: int, size: int, data: bytes) -> None:
        offset = port - self.base
        if not DATA_PORT <= offset <= DATA_PORT_END:
            for i in range(0, len(data) - size + 1, size):
                self._port_write(port, size, int.from_bytes(data[i : i + size], "little"))
            return
        if len(data) % size:
            data = data[: len(data) - len(data) % size]
        if size == 1 and self.chip.dcr & DCR_WTS:
            data = b"".join(bytes((b, 0)) for b in data)
        self.chip.data_write(data)

    # -- snapshots ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": self.STATE_VERSION,
            "mac": self.mac,
            "ram": bytes(self.ram),
            "chip": self.chip.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        missing = [name for name in ("mac", "ram", "chip") if name not in state]
        if missing:
            raise ValueError(f"{self.name}: snapshot lacks {', '.join(missing)}")
        ram = bytes(state["ram"])
        if len(ram) != RAM_SIZE or len(bytes(state["mac"])) != 6:
            raise ValueError(f"{self.name}: snapshot RAM or MAC has the wrong size")
        self.mac = bytes(state["mac"])
        self._load_prom()
        self.space[RAM_START : RAM_START + RAM_SIZE] = ram
        self.chip.restore(state["chip"])
        self._update_ready()
