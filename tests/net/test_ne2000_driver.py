"""The kernel's NE2000 driver against the device model on a port bus (no CPU): probe, frames
both ways byte for byte, and the transmit path's register writes."""

from __future__ import annotations

from tradekernel.devices.base import Board
from tradekernel.devices.ne2000 import Ne2000
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock
from tradekernel.kernel.drivers.ne2000 import TBCR0, TBCR1, Ne2000Driver
from tradekernel.kernel.drivers.portio import PortIo

BASE = 0x300
MAC = bytes.fromhex("525400123456")


class _Memory:
    def read(self, address: int, size: int) -> bytes:
        return bytes(size)

    def write(self, address: int, data: bytes) -> None:
        pass


def _driver() -> tuple[Ne2000Driver, Channels, list[bytes], list[tuple[int, int]]]:
    """A probed driver, the frames the card sent, and every port write from then on."""
    board = Board(PortBus(), MmioBus(), Clock(), Channels(), _Memory())
    Ne2000(mac=MAC).attach(board)
    sent: list[bytes] = []
    board.channels.listen("net0-send", sent.append)
    writes: list[tuple[int, int]] = []
    write = board.ports.write

    def watched(port: int, size: int, value: int) -> None:
        writes.append((port - BASE, value))
        write(port, size, value)

    board.ports.write = watched  # type: ignore[method-assign]
    driver = Ne2000Driver.probe(PortIo(board.ports), BASE, 9)
    assert driver is not None and driver.mac == MAC
    writes.clear()
    return driver, board.channels, sent, writes


def test_frames_go_out_byte_for_byte_and_tbcr_is_written_only_when_the_length_changes() -> None:
    driver, _, sent, writes = _driver()
    frames = [bytes([n]) * 1514 for n in range(3)] + [b"\x07" * 42, b"\x08" * 1514]
    for frame in frames:
        driver.send(frame)
        driver.on_irq(9)  # PTX: the transmitter is free again
    assert sent == [frames[0], frames[1], frames[2], frames[3].ljust(60, b"\0"), frames[4]]
    assert [value for register, value in writes if register in (TBCR0, TBCR1)] == [
        1514 & 0xFF, 1514 >> 8, 60, 0, 1514 & 0xFF, 1514 >> 8]


def test_received_frames_reach_the_stack_whole() -> None:
    driver, channels, _, _ = _driver()
    got: list[bytes] = []
    driver.on_frame = got.append
    frames = [MAC + bytes([2] * 6) + b"\x08\x00" + bytes([n]) * (46 + 100 * n) for n in range(8)]
    for frame in frames:
        channels.send("net0-receive", frame)
    driver.on_irq(9)
    assert got == frames


def test_one_interrupt_is_one_burst_for_the_stack_however_many_ring_stretches() -> None:
    """More frames than the ring holds: the cable refills the ring as the driver frees it
    (as hostnet.Link does, inside the BNRY write); the stack sees one burst for it all, so
    TCP sends one ACK per interrupt."""
    driver, channels, _, _ = _driver()
    got: list[bytes] = []
    bursts: list[str] = []
    driver.on_frame = got.append
    driver.on_burst_start = lambda: bursts.append("start")
    driver.on_burst_end = lambda: bursts.append("end")
    frames = [MAC + bytes([2] * 6) + b"\x08\x00" + bytes([n]) * 1500 for n in range(30)]
    waiting = list(frames)

    room = [True]

    def refill() -> None:
        while room[0] and waiting:
            channels.send("net0-receive", waiting.pop(0))  # the card says when it is full

    def ready(state: object) -> None:
        room[0] = bool(state)
        refill()

    channels.listen("net0-ready", ready)
    refill()
    assert waiting  # the ring is full before the interrupt
    driver.on_irq(9)
    assert got == frames
    assert bursts == ["start", "end"]
