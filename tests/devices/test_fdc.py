"""The 82077AA floppy controller and the 8237A DMA controller, poked through their ports on a bare
board as a driver would: reset and its four interrupts, seeks, DMA reads and writes against a
diskette image, TC and end-of-track results, write protection, non-DMA mode, a register fuzz
that never raises, and snapshots."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tradekernel.devices.dma8237 import Dma8237
from tradekernel.devices.fdc import Fdc
from tradekernel.devices.ide import DiskBacking
from tradekernel.emu.pc import floppy_disk

from .conftest import make_board

DOR, MSR, FIFO, DIR = 0x3F2, 0x3F4, 0x3F5, 0x3F7
RQM, DIO, NDMA, CB = 0x80, 0x40, 0x20, 0x10
READ, WRITE = 0xE6, 0xC5  # MT|MFM|SK read, MT|MFM write
BUFFER = 0x9000  # where the tests' DMA transfers land (page 0)
SPT, HEADS = 18, 2


def image_bytes() -> bytes:
    """A 1.44 MB diskette whose every sector starts with its own LBA."""
    return b"".join(lba.to_bytes(4, "little") * 128 for lba in range(80 * HEADS * SPT))


class Rig:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        path.write_bytes(image_bytes())
        self.backing = floppy_disk(path, read_only)
        self.board = make_board()
        self.dma = Dma8237()
        self.fdc = Fdc(self.backing, self.dma.channel(2))
        self.dma.attach(self.board)
        self.fdc.attach(self.board)
        self.irq = self.board.irq(6)

    def outb(self, port: int, value: int) -> None:
        self.board.ports.write(port, 1, value)

    def inb(self, port: int) -> int:
        return self.board.ports.read(port, 1)

    def command(self, *data: int) -> None:
        for byte in data:
            assert self.inb(MSR) & (RQM | DIO) == RQM, f"not ready for {byte:#x}"
            self.outb(FIFO, byte)

    def results(self) -> list[int]:
        out = []
        while self.inb(MSR) & (RQM | DIO) == RQM | DIO:
            out.append(self.inb(FIFO))
        return out

    def sense(self) -> list[int]:
        self.command(0x08)
        return self.results()

    def dma_setup(self, mode: int, address: int, length: int) -> None:
        self.outb(0x0A, 0x06)  # mask channel 2
        self.outb(0x0C, 0)
        self.outb(0x0B, mode | 2)
        self.outb(0x04, address & 0xFF)
        self.outb(0x04, (address >> 8) & 0xFF)
        self.outb(0x81, address >> 16)
        self.outb(0x0C, 0)
        self.outb(0x05, (length - 1) & 0xFF)
        self.outb(0x05, (length - 1) >> 8)
        self.outb(0x0A, 0x02)  # unmask

    def ready(self) -> None:
        """Reset, collect the four interrupts, 500 kbit/s, DMA mode, on cylinder 0."""
        self.outb(DOR, 0x00)
        self.outb(DOR, 0x1C)
        for drive in range(4):
            assert self.sense() == [0xC0 | drive, 0]
        self.outb(DIR, 0)
        self.command(0x03, 0xDF, 0x02)
        self.command(0x07, 0)
        assert self.sense() == [0x20, 0]

    def memory(self, address: int, length: int) -> bytes:
        return self.board.memory.read(address, length)


def lba_of(sector: bytes) -> int:
    return int.from_bytes(sector[:4], "little")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path / "a.img")


def test_reset_raises_irq6_and_leaves_four_interrupts(rig: Rig) -> None:
    rig.outb(DOR, 0x00)
    assert rig.inb(MSR) == 0 and not rig.irq.level
    rig.outb(DOR, 0x0C)
    assert rig.irq.level and rig.inb(MSR) == RQM
    assert [rig.sense() for _ in range(4)] == [[0xC0, 0], [0xC1, 0], [0xC2, 0], [0xC3, 0]]
    assert not rig.irq.level
    assert rig.sense() == [0x80]  # nothing left: invalid
    rig.command(0x10)
    assert rig.results() == [0x90]  # VERSION: an enhanced controller
    rig.command(0x42)
    assert rig.results() == [0x80]  # an unknown command byte


def test_dma_gate_holds_irq6_off_the_bus(rig: Rig) -> None:
    rig.outb(DOR, 0x00)
    rig.outb(DOR, 0x04)  # out of reset with the gate closed
    assert not rig.irq.level
    rig.outb(DOR, 0x0C)
    assert rig.irq.level


def test_seek_reads_the_right_track_and_clears_the_change_line(rig: Rig) -> None:
    rig.ready()
    rig.command(0x0F, 0x04, 5)  # head 1, cylinder 5
    assert rig.irq.level
    assert rig.sense() == [0x24, 5]
    rig.dma_setup(0x46, BUFFER, 2 * 512)  # single mode, write to memory
    rig.command(READ, 0x04, 5, 1, 3, 2, SPT, 0x1B, 0xFF)
    assert rig.irq.level
    assert rig.results() == [0x04, 0, 0, 5, 1, 5, 2]  # TC after sector 4: next is 5
    assert not rig.irq.level
    first = (5 * HEADS + 1) * SPT + 2
    assert [lba_of(rig.memory(BUFFER + i * 512, 512)) for i in range(2)] == [first, first + 1]
    assert rig.inb(0x08) & 0x04  # channel 2 reached TC (cleared by the read)
    assert rig.inb(0x08) & 0x04 == 0


def test_the_change_line_is_set_until_a_step_with_a_diskette_in(rig: Rig) -> None:
    rig.outb(DOR, 0x1C)
    assert rig.inb(DIR) & 0x80
    rig.command(0x0F, 0x00, 1)
    rig.sense()
    assert rig.inb(DIR) & 0x80 == 0


def test_without_implied_seek_the_wrong_cylinder_is_not_found(rig: Rig) -> None:
    rig.ready()
    rig.dma_setup(0x46, BUFFER, 512)
    rig.command(READ & 0x7F, 0x00, 3, 0, 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results() == [0x40, 0x04, 0x10, 3, 0, 1, 2]  # ND, wrong cylinder
    rig.command(0x13, 0, 0x40 | 0x0F, 0)  # CONFIGURE: implied seek on
    rig.command(READ & 0x7F, 0x00, 3, 0, 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results() == [0x00, 0, 0, 3, 0, 2, 2]
    assert lba_of(rig.memory(BUFFER, 512)) == 3 * HEADS * SPT


def test_multitrack_continues_on_head_1_and_a_track_end_without_tc_is_en(rig: Rig) -> None:
    rig.ready()
    rig.dma_setup(0x46, BUFFER, 21 * 512)  # one more sector than is left in the cylinder
    rig.command(READ, 0x00, 0, 0, SPT - 1, 2, SPT, 0x1B, 0xFF)
    # sectors 17, 18 of head 0 and 1..18 of head 1, then the cylinder ends: EN, next C+1
    assert rig.results() == [0x40, 0x80, 0, 1, 0, 1, 2]
    lbas = [lba_of(rig.memory(BUFFER + i * 512, 512)) for i in range(20)]
    assert lbas == list(range(SPT - 2, 2 * SPT))
    rig.dma_setup(0x46, BUFFER, 20 * 512)  # exactly the rest of the cylinder: TC, no EN
    rig.command(READ, 0x00, 0, 0, SPT - 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results() == [0x00, 0, 0, 1, 0, 1, 2]
    rig.dma_setup(0x46, BUFFER, 512)
    rig.command(READ & 0x7F, 0x00, 0, 0, SPT, 2, SPT, 0x1B, 0xFF)  # no MT, TC on the last
    assert rig.results() == [0x00, 0, 0, 1, 0, 1, 2]


def test_write_then_read_back_through_dma(rig: Rig) -> None:
    rig.ready()
    payload = bytes(range(256)) * 4
    rig.board.memory.write(BUFFER, payload)
    rig.dma_setup(0x4A, BUFFER, 1024)  # read from memory
    rig.command(WRITE, 0x00, 0, 0, 7, 2, SPT, 0x1B, 0xFF)
    assert rig.results() == [0x00, 0, 0, 0, 0, 9, 2]
    assert rig.backing.read_sectors(6, 2) == payload
    rig.dma_setup(0x46, BUFFER + 0x1000, 1024)
    rig.command(READ, 0x00, 0, 0, 7, 2, SPT, 0x1B, 0xFF)
    rig.results()
    assert rig.memory(BUFFER + 0x1000, 1024) == payload


def test_a_write_protected_diskette_is_refused_and_never_written(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "ro.img", read_only=True)
    before = (tmp_path / "ro.img").read_bytes()
    rig.ready()
    rig.command(0x04, 0x00)
    assert rig.results()[0] & 0x40  # ST3 write protected
    rig.dma_setup(0x4A, BUFFER, 512)
    rig.command(WRITE, 0x00, 0, 0, 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results() == [0x40, 0x02, 0, 0, 0, 1, 2]  # NW
    assert rig.backing.read_sectors(0, 1) == before[:512]  # not even the overlay
    assert (tmp_path / "ro.img").read_bytes() == before


def test_wrong_data_rate_or_no_dma_direction_fails_cleanly(rig: Rig) -> None:
    rig.ready()
    rig.outb(DIR, 2)  # 250 kbit/s: a 1.44 MB diskette's marks are not found
    rig.dma_setup(0x46, BUFFER, 512)
    rig.command(READ, 0x00, 0, 0, 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results()[:2] == [0x40, 0x01]
    rig.outb(DIR, 0)
    rig.dma_setup(0x4A, BUFFER, 512)  # the channel reads memory: a disk read cannot use it
    rig.command(READ, 0x00, 0, 0, 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results()[:2] == [0x40, 0x10]  # overrun


def test_a_masked_channel_holds_the_command_until_unmasked(rig: Rig) -> None:
    rig.ready()
    rig.dma_setup(0x46, BUFFER, 512)
    rig.outb(0x0A, 0x06)
    rig.command(READ, 0x00, 0, 0, 2, 2, SPT, 0x1B, 0xFF)
    assert rig.inb(MSR) == CB and rig.inb(0x08) & 0x40  # busy, channel 2 requesting
    rig.outb(0x0A, 0x02)
    assert rig.results() == [0x00, 0, 0, 0, 0, 3, 2]
    assert lba_of(rig.memory(BUFFER, 512)) == 1


def test_dma_address_wraps_inside_its_64k_page(rig: Rig) -> None:
    rig.ready()
    rig.dma_setup(0x46, 0x1FF00, 512)  # page 1, 0xFF00: the second half wraps to 0x10000
    rig.command(READ & 0x7F, 0x00, 0, 0, 1, 2, SPT, 0x1B, 0xFF)
    rig.results()
    sector = rig.backing.read_sectors(0, 1)
    assert rig.memory(0x1FF00, 256) == sector[:256]
    assert rig.memory(0x10000, 256) == sector[256:]
    assert rig.memory(0x20000, 4) == bytes(4)


def test_non_dma_mode_moves_data_through_the_fifo(rig: Rig) -> None:
    rig.ready()
    rig.command(0x03, 0xDF, 0x03)  # SPECIFY with ND
    rig.command(READ & 0x7F, 0x00, 0, 0, 4, 2, 4, 0x1B, 0xFF)
    assert rig.inb(MSR) == RQM | DIO | NDMA | CB
    data = bytes(rig.inb(FIFO) for _ in range(512))
    assert lba_of(data) == 3
    assert rig.results() == [0x40, 0x80, 0, 1, 0, 1, 2]  # EOT without TC: EN
    rig.command(WRITE & 0x7F, 0x00, 0, 0, 4, 2, 4, 0x1B, 0xFF)
    assert rig.inb(MSR) == RQM | NDMA | CB
    for byte in b"\xaa" * 512:
        rig.outb(FIFO, byte)
    assert rig.results()[:2] == [0x40, 0x80]
    assert rig.backing.read_sectors(3, 1) == b"\xaa" * 512


def test_read_id_and_dumpreg(rig: Rig) -> None:
    rig.ready()
    rig.command(0x0F, 0x00, 7)
    rig.sense()
    rig.command(0x4A, 0x00)
    assert rig.results() == [0x00, 0, 0, 7, 0, 1, 2]
    rig.command(0x0E)
    assert rig.results()[:5] == [7, 0, 0, 0, 0xDF]


def test_format_fills_the_named_sectors(rig: Rig) -> None:
    rig.ready()
    ids = b"".join(bytes([0, 1, r, 2]) for r in range(1, SPT + 1))
    rig.board.memory.write(BUFFER, ids)
    rig.dma_setup(0x4A, BUFFER, len(ids))
    rig.command(0x4D, 0x04, 2, SPT, 0x54, 0xF6)
    assert rig.results()[:3] == [0x04, 0, 0]
    assert rig.backing.read_sectors(SPT, SPT) == b"\xf6" * 512 * SPT
    assert lba_of(rig.backing.read_sectors(2 * SPT, 1)) == 2 * SPT


def test_register_fuzz_never_raises_and_snapshots_round_trip(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "f.img")
    rig.ready()
    generator = random.Random(17)
    ports = [*range(0x00, 0x10), 0x81, 0x82, 0x83, 0x87, *range(0x3F0, 0x3F6), 0x3F7]
    for _ in range(20000):
        port = generator.choice(ports)
        if generator.random() < 0.5:
            rig.inb(port)
        else:
            rig.outb(port, generator.randrange(256))
    rig.outb(DOR, 0x0C)
    while rig.inb(MSR) & DIO:
        rig.inb(FIFO)
    other = Rig(tmp_path / "g.img")
    other.dma.restore(rig.dma.state())
    other.fdc.restore(rig.fdc.state())
    assert other.dma.state() == rig.dma.state()
    assert other.fdc.state() == rig.fdc.state()
    with pytest.raises(ValueError):
        other.fdc.restore({"version": 99})
    with pytest.raises(ValueError):
        other.dma.restore({**rig.dma.state(), "channels": []})


def test_no_diskette_reads_no_address_mark(tmp_path: Path) -> None:
    board = make_board()
    dma = Dma8237()
    fdc = Fdc(None, dma.channel(2))
    dma.attach(board)
    fdc.attach(board)
    board.ports.write(DIR, 1, 0)
    for byte in (READ, 0, 0, 0, 1, 2, SPT, 0x1B, 0xFF):
        board.ports.write(FIFO, 1, byte)
    assert [board.ports.read(FIFO, 1) for _ in range(2)] == [0x40, 0x01]


def test_backing_geometry_is_the_diskette_format(tmp_path: Path) -> None:
    path = tmp_path / "x.img"
    path.write_bytes(bytes(720 * 1024))
    assert floppy_disk(path, False).geometry == (80, 2, 9)
    assert isinstance(floppy_disk(path, True), DiskBacking)


def test_changing_the_diskette_raises_the_change_line(rig: Rig, tmp_path: Path) -> None:
    rig.ready()
    rig.command(0x0F, 0x00, 1)
    rig.sense()
    assert rig.inb(DIR) & 0x80 == 0
    other = tmp_path / "b.img"
    other.write_bytes(bytes(1440 * 1024))
    rig.fdc.insert(floppy_disk(other, False))
    assert rig.inb(DIR) & 0x80
    rig.dma_setup(0x46, BUFFER, 512)
    rig.command(READ, 0x00, 1, 0, 1, 2, SPT, 0x1B, 0xFF)
    assert rig.results()[0] == 0x00
    assert rig.memory(BUFFER, 512) == bytes(512)  # the new diskette's sector
