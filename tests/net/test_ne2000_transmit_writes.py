"""The NE2000 driver's transmit path against the device model: five port writes per frame in a
stream, frames byte for byte with receives interleaved, and every remote DMA set up from
registers the datasheet's counters really hold (RBCR0 and RSAR0 are 0 when only their high
halves are written, so a chip whose RSAR is the running address counter, as in QEMU's model,
starts at the same place)."""

from __future__ import annotations

import random

from tradekernel.devices.base import Board
from tradekernel.devices.ne2000 import Ne2000
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock
from tradekernel.kernel.drivers.ne2000 import (
    CR,
    CR_RREAD,
    CR_RWRITE,
    RBCR0,
    RBCR1,
    RSAR0,
    RSAR1,
    Ne2000Driver,
)
from tradekernel.kernel.drivers.portio import PortIo

BASE = 0x300
MAC = bytes.fromhex("525400123456")


class _Memory:
    def read(self, address: int, size: int) -> bytes:
        return bytes(size)

    def write(self, address: int, data: bytes) -> None:
        pass


def _driver() -> tuple[Ne2000Driver, Ne2000, Board, list[bytes], list[tuple[int, int]],
                       list[str]]:
    """A probed driver, its card, the frames sent, every port write from then on, and what
    was wrong with any remote DMA set-up."""
    board = Board(PortBus(), MmioBus(), Clock(), Channels(), _Memory())
    card = Ne2000(mac=MAC)
    card.attach(board)
    sent: list[bytes] = []
    board.channels.listen("net0-send", sent.append)
    writes: list[tuple[int, int]] = []
    wrong: list[str] = []
    written: set[int] = set()
    write = board.ports.write

    def watched(port: int, size: int, value: int) -> None:
        register = port - BASE
        writes.append((register, value))
        chip = card.chip
        if register in (RBCR0, RBCR1, RSAR0, RSAR1) and chip.cr >> 6 == 0:
            written.add(register)
        if register == CR and value & (CR_RREAD | CR_RWRITE) in (CR_RREAD, CR_RWRITE):
            # only the high halves written: the low ones must already be 0 in the counters
            # (our model keeps RSAR apart from CRDA; a counter-style chip would not)
            if RSAR0 not in written and chip.crda & 0xFF:
                wrong.append(f"CRDA {chip.crda:#x} before a DMA without RSAR0")
            if RBCR0 not in written and chip.rbcr & 0xFF:
                wrong.append(f"RBCR {chip.rbcr:#x} low byte left over")
            written.clear()
        write(port, size, value)

    board.ports.write = watched  # type: ignore[method-assign]
    driver = Ne2000Driver.probe(PortIo(board.ports), BASE, 9)
    assert driver is not None
    writes.clear()
    return driver, card, board, sent, writes, wrong


def test_a_stream_of_frames_takes_five_port_writes_each() -> None:
    driver, _, _, sent, writes, wrong = _driver()
    frames = [bytes([n]) * 1514 for n in range(10)]
    for frame in frames:
        writes_before = len(writes)
        driver.send(frame)
        per_frame = len(writes) - writes_before
    assert sent == frames and not wrong
    assert per_frame == 5


def test_frames_both_ways_interleaved_are_whole_and_dma_set_ups_are_sound() -> None:
    driver, _, board, sent, _, wrong = _driver()
    got: list[bytes] = []
    driver.on_frame = got.append
    rng = random.Random(7)
    expected_out, expected_in = [], []
    for i in range(300):
        if rng.random() < 0.4:
            frame = MAC + bytes([2] * 6) + b"\x08\x00" + bytes([i & 0xFF]) * rng.randrange(
                46, 1501)
            board.channels.send("net0-receive", frame)
            expected_in.append(frame)
        else:
            frame = bytes([i & 0xFF]) * rng.randrange(14, 1515)
            driver.send(frame)
            expected_out.append(frame.ljust(60, b"\0"))
        if rng.random() < 0.3:
            driver.on_irq(9)
    driver.on_irq(9)
    assert sent == expected_out
    assert got == expected_in
    assert not wrong


def test_after_a_reset_the_driver_programs_every_dma_register_again() -> None:
    driver, card, _, sent, writes, wrong = _driver()
    driver.send(b"\x01" * 100)
    card.chip.rbcr, card.chip.rsar, card.chip.crda = 0x1234, 0x5678, 0x5678  # stale values
    driver.start()
    writes.clear()
    driver.send(b"\x02" * 100)
    assert sent[-1] == b"\x02" * 100
    assert {RBCR0, RSAR0} <= {register for register, _ in writes}
    assert not wrong


def test_a_stream_raises_no_transmit_interrupt_and_a_waiting_frame_is_sent_on_one() -> None:
    driver, card, _, sent, _, _ = _driver()
    levels: list[bool] = []
    set_interrupt = card.chip._set_interrupt
    card.chip._set_interrupt = lambda level: (levels.append(level), set_interrupt(level))[-1]
    frames = [bytes([n]) * 1000 for n in range(5)]
    for frame in frames:
        driver.send(frame)
    assert sent == frames and True not in levels  # each send found the last one done
    # a transmit still under way when the next frame comes: that frame waits for PTX
    card.chip.isr &= ~0x02  # PTX not yet
    driver.send(b"\x09" * 100)
    assert driver.tx_queue and sent[-1] == frames[-1]
    card.chip._raise(0x02)  # the transmit ends
    assert levels[-1] is True  # ... and interrupts, since a frame waits
    driver.on_irq(9)
    assert sent[-1] == b"\x09" * 100 and not driver.tx_queue
    assert levels[-1] is False  # back to receive interrupts only
    driver.send(b"\x0a" * 100)
    assert sent[-1] == b"\x0a" * 100 and levels[-1] is False
