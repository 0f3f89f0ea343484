"""The first 8237A DMA controller of the PC/AT: four 8-bit channels at ports 0x00-0x0F, with the
page registers 0x87, 0x83, 0x81 and 0x82 giving address bits 16-23 of channels 0-3.

Programming model, as the 8237A data sheet and the AT's wiring have it:
  - 0x00-0x07: each channel's current address (even port) and count (odd port), written and
    read a byte at a time, low then high, through the byte-pointer flip-flop that 0x0C clears;
    a write sets both the base and the current register, so autoinitialise can reload them;
  - 0x08: status on read (bits 0-3 terminal count reached per channel, cleared by the read;
    bits 4-7 a request pending), command on write (bit 2 disables the controller);
  - 0x09 request, 0x0A single mask bit, 0x0B mode (transfer type: 00 verify, 01 write to
    memory, 10 read from memory; bit 4 autoinitialise, bit 5 address decrement), 0x0C clear
    flip-flop, 0x0D master clear (reads the temporary register), 0x0E clear all masks,
    0x0F write all masks (reads them back, as the AT chipsets do);
  - a transfer of count + 1 bytes ends with terminal count (TC): the status bit is set and
    the channel reloads its base values (autoinitialise) or masks itself;
  - the address counts within its 64 KiB page: the page register does not carry, so a
    buffer crossing a 64 KiB line wraps to the start of the page, as on the real board.

A peripheral (the floppy controller) holds a `DmaChannel` wire from `channel(n)`: it raises DREQ
with `hold(service)`; the controller calls `service()` once the channel is unmasked and enabled
(at once, or when the driver unmasks it), and the peripheral then moves bytes with
`to_memory`/`from_memory`, which do as many cycles as the channel's mode and count allow.
Writes into guest RAM go through the board's memory API, which drops any code translated from
those bytes. Not modelled: the second (16-bit) controller at 0xC0-0xDF, memory-to-memory
transfers and the priority rotation bits of the command register.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradekernel.devices.base import Board, Device, PhysicalMemory, check_state_version

CHANNELS = 4
PAGE_PORTS = {0x87: 0, 0x83: 1, 0x81: 2, 0x82: 3}  # page register -> channel
STATUS, REQUEST, SINGLE_MASK, MODE, CLEAR_FLIP_FLOP, MASTER_CLEAR = 8, 9, 10, 11, 12, 13
CLEAR_MASKS, ALL_MASKS = 14, 15
COMMAND_DISABLE = 0x04
MODE_VERIFY, MODE_WRITE, MODE_READ = 0, 1, 2  # bits 2-3: write = to memory, read = from it
MODE_AUTOINIT, MODE_DECREMENT = 0x10, 0x20


class DmaChannel:
    """One channel's registers and its DREQ/DACK/TC wire to a peripheral."""

    def __init__(self, controller: Dma8237, number: int) -> None:
        self._controller = controller
        self.number = number
        self.base_address = self.base_count = 0
        self.address = self.count = 0
        self.page = 0
        self.mode = 0
        self.masked = True
        self.terminal_count = False  # TC was reached by the last transfer
        self._service: Callable[[], None] | None = None  # the held DREQ

    @property
    def transfer_type(self) -> int:
        return (self.mode >> 2) & 3

    @property
    def requesting(self) -> bool:
        return self._service is not None

    # ---- the peripheral's side ----------------------------------------------------------
    def hold(self, service: Callable[[], None]) -> None:
        """Raise DREQ: `service` runs when the controller grants the channel."""
        self._service = service
        self._controller.run(self)

    def release(self) -> None:
        """Drop DREQ."""
        self._service = None

    def to_memory(self, data: bytes) -> int:
        """Device-to-memory cycles for `data` (a write transfer; a verify one counts without
        storing): the bytes taken, fewer than offered when TC ends the transfer, none when the
        channel is not set up for this direction or is masked."""
        kind = self.transfer_type
        if kind not in (MODE_WRITE, MODE_VERIFY) or not self._controller.granted(self):
            return 0
        taken = min(len(data), self.count + 1)
        if kind == MODE_WRITE:
            for address, start, length in self._runs(taken):
                self._controller.memory_write(address, data[start : start + length])
        self._advance(taken)
        return taken

    def from_memory(self, size: int) -> bytes:
        """Memory-to-device cycles (a read transfer): up to `size` bytes, fewer at TC."""
        if self.transfer_type != MODE_READ or not self._controller.granted(self):
            return b""
        taken = min(size, self.count + 1)
        data = b"".join(
            self._controller.memory_read(address, length)
            for address, _, length in self._runs(taken)
        )
        self._advance(taken)
        return data

    # ---- the counters -------------------------------------------------------------------
    def _runs(self, length: int) -> list[tuple[int, int, int]]:
        """(physical address, offset in the data, length) pieces of the next `length` bytes,
        with the address wrapping inside the 64 KiB page; counting down goes a byte at a time."""
        runs: list[tuple[int, int, int]] = []
        page = self.page << 16
        if self.mode & MODE_DECREMENT:
            return [(page | ((self.address - i) & 0xFFFF), i, 1) for i in range(length)]
        address, done = self.address, 0
        while done < length:
            piece = min(length - done, 0x10000 - address)
            runs.append((page | address, done, piece))
            done += piece
            address = (address + piece) & 0xFFFF
        return runs

    def _advance(self, length: int) -> None:
        if length == 0:
            return
        step = -length if self.mode & MODE_DECREMENT else length
        self.address = (self.address + step) & 0xFFFF
        if length <= self.count:
            self.count -= length
            return
        self.terminal_count = True
        self._controller.status |= 1 << self.number
        if self.mode & MODE_AUTOINIT:
            self.address, self.count = self.base_address, self.base_count
        else:
            self.count = 0xFFFF
            self.masked = True

    def reset(self) -> None:
        self.base_address = self.base_count = self.address = self.count = 0
        self.mode = 0
        self.masked = True
        self.terminal_count = False

    _FIELDS = ("base_address", "base_count", "address", "count", "page", "mode", "masked")

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._FIELDS}

    def restore(self, state: dict[str, Any]) -> None:
        for name in self._FIELDS:
            value = state[name]
            if not isinstance(value, int):
                raise ValueError(f"dma channel {self.number}: {name} is not an integer")
            setattr(self, name, type(getattr(self, name))(value))


class Dma8237(Device):
    name = "dma8237"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self.channels = [DmaChannel(self, number) for number in range(CHANNELS)]
        self._memory: PhysicalMemory | None = None
        self.reset()

    def channel(self, number: int) -> DmaChannel:
        """The wire a peripheral holds for its DREQ/DACK/TC lines (the board wires it)."""
        return self.channels[number]

    def attach(self, board: Board) -> None:
        self._memory = board.memory
        board.ports.claim(0x00, 16, self.name, self._read, self._write)
        for port in PAGE_PORTS:
            board.ports.claim(port, 1, self.name, self._read_page, self._write_page)

    def reset(self) -> None:
        self.command = 0
        self.status = 0
        self.flip_flop = False  # False: the next byte is the low one
        self.temporary = 0
        for channel in self.channels:
            channel.reset()

    # ---- transfers ----------------------------------------------------------------------
    def granted(self, channel: DmaChannel) -> bool:
        return not channel.masked and not self.command & COMMAND_DISABLE

    def run(self, channel: DmaChannel) -> None:
        """Serve a held request if the channel may run now (DACK)."""
        service = channel._service
        if service is not None and self.granted(channel):
            channel.terminal_count = False
            service()

    def memory_write(self, address: int, data: bytes) -> None:
        if self._memory is not None:
            self._memory.write(address, data)  # drops translations of code it overwrites

    def memory_read(self, address: int, length: int) -> bytes:
        return self._memory.read(address, length) if self._memory is not None else bytes(length)

    # ---- ports --------------------------------------------------------------------------
    def _byte_of(self, value: int) -> int:
        high = self.flip_flop
        self.flip_flop = not self.flip_flop
        return (value >> 8) & 0xFF if high else value & 0xFF

    def _read(self, port: int, size: int) -> int:
        if port < STATUS:
            channel = self.channels[port >> 1]
            return self._byte_of(channel.count if port & 1 else channel.address)
        if port == STATUS:
            requests = sum(1 << (4 + c.number) for c in self.channels if c.requesting)
            value = self.status | requests
            self.status = 0
            return value
        if port == MASTER_CLEAR:
            return self.temporary
        if port == ALL_MASKS:
            return 0xF0 | sum(1 << c.number for c in self.channels if c.masked)
        return 0xFF

    def _write(self, port: int, size: int, value: int) -> None:
        value &= 0xFF
        if port < STATUS:
            self._write_counter(self.channels[port >> 1], bool(port & 1), value)
        elif port == STATUS:
            self.command = value
            self._run_all()
        elif port == REQUEST:
            pass  # software requests serve memory-to-memory transfers, which are not modelled
        elif port == SINGLE_MASK:
            self.channels[value & 3].masked = bool(value & 4)
            self._run_all()
        elif port == MODE:
            self.channels[value & 3].mode = value & 0xFC
        elif port == CLEAR_FLIP_FLOP:
            self.flip_flop = False
        elif port == MASTER_CLEAR:
            self.command = self.status = self.temporary = 0
            self.flip_flop = False
            for channel in self.channels:
                channel.masked = True
        elif port == CLEAR_MASKS:
            for channel in self.channels:
                channel.masked = False
            self._run_all()
        elif port == ALL_MASKS:
            for channel in self.channels:
                channel.masked = bool(value & (1 << channel.number))
            self._run_all()

    def _write_counter(self, channel: DmaChannel, is_count: bool, value: int) -> None:
        high = self.flip_flop
        self.flip_flop = not self.flip_flop
        name = "count" if is_count else "address"
        current = getattr(channel, name)
        current = (current & 0x00FF) | (value << 8) if high else (current & 0xFF00) | value
        setattr(channel, name, current)
        setattr(channel, "base_" + name, current)

    def _run_all(self) -> None:
        for channel in self.channels:
            self.run(channel)

    def _read_page(self, port: int, size: int) -> int:
        return self.channels[PAGE_PORTS[port]].page

    def _write_page(self, port: int, size: int, value: int) -> None:
        self.channels[PAGE_PORTS[port]].page = value & 0xFF

    # ---- snapshots ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "version": self.STATE_VERSION,
            "command": self.command,
            "status": self.status,
            "flip_flop": self.flip_flop,
            "temporary": self.temporary,
            "channels": [channel.state() for channel in self.channels],
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            channels = state["channels"]
            if len(channels) != CHANNELS:
                raise ValueError(f"{self.name}: snapshot has {len(channels)} channels")
            self.command = int(state["command"]) & 0xFF
            self.status = int(state["status"]) & 0x0F
            self.flip_flop = bool(state["flip_flop"])
            self.temporary = int(state["temporary"]) & 0xFF
            for channel, channel_state in zip(self.channels, channels, strict=True):
                channel.restore(channel_state)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{self.name}: malformed snapshot ({error})") from error
