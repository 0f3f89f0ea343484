"""The IDE/ATA model poked through its ports, as a driver would, with IRQ14 watched; and the
kernel's ATA driver (kernel/drivers/ata.py) running the FAT filesystem on top of it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.disk.conftest import fsck, mtools
from tradekernel.devices.base import Board
from tradekernel.devices.ide import (
    ABRT,
    BSY,
    DRDY,
    DRQ,
    ERR,
    IDNF,
    DiskBacking,
    IdeChannel,
)
from tradekernel.emu.bus import Channels, MmioBus, PortBus
from tradekernel.emu.clock import Clock
from tradekernel.kernel.drivers.ata import AtaDisk, AtaError, parse_identify
from tradekernel.kernel.drivers.blockdev import open_partition
from tradekernel.kernel.fs.fat import FatFs

SECTORS = 4096  # 2 MiB


class NoMemory:
    def read(self, address: int, size: int) -> bytes:
        return bytes(size)

    def write(self, address: int, data: bytes) -> None:
        pass


class Rig:
    """A board with one IDE channel; records IRQ14 edges."""

    def __init__(self, master, slave=None, read_only: bool = False, latency_ns: int = 0) -> None:
        self.board = Board(PortBus(), MmioBus(), Clock(), Channels(), NoMemory())
        self.edges = 0
        self.board.irq(14).connect(self._sink)
        self.ide = IdeChannel(master, slave, read_only=read_only, latency_ns=latency_ns)
        self.ide.attach(self.board)
        self.ports = self.board.ports

    def _sink(self, number: int, level: bool) -> None:
        if level:
            self.edges += 1

    @property
    def irq(self) -> bool:
        return self.board.irq(14).level

    # The PortIo interface kernel/drivers/ata.py expects.
    def inb(self, port: int) -> int:
        return self.ports.read(port, 1)

    def outb(self, port: int, value: int) -> None:
        self.ports.write(port, 1, value)

    def inw(self, port: int) -> int:
        return self.ports.read(port, 2)

    def outw(self, port: int, value: int) -> None:
        self.ports.write(port, 2, value)

    def insw(self, port: int, count: int) -> bytes:
        return b"".join(self.ports.read(port, 2).to_bytes(2, "little") for _ in range(count))

    def outsw(self, port: int, data: bytes) -> None:
        for index in range(0, len(data), 2):
            self.ports.write(port, 2, int.from_bytes(data[index : index + 2], "little"))

    def command(self, command: int, lba: int = 0, count: int = 1, device: int = 0xE0) -> None:
        self.outb(0x1F6, device | ((lba >> 24) & 0x0F))
        self.outb(0x1F2, count)
        self.outb(0x1F3, lba & 0xFF)
        self.outb(0x1F4, (lba >> 8) & 0xFF)
        self.outb(0x1F5, (lba >> 16) & 0xFF)
        self.outb(0x1F7, command)


def pattern_disk(sectors: int = SECTORS) -> io.BytesIO:
    data = bytearray()
    for lba in range(sectors):
        data += lba.to_bytes(4, "little") * 128
    return io.BytesIO(bytes(data))


def test_identify_reports_model_geometry_and_capacity() -> None:
    rig = Rig(pattern_disk())
    rig.command(0xEC)
    assert rig.irq
    status = rig.inb(0x1F7)
    assert status & (DRDY | DRQ) == DRDY | DRQ and not status & (BSY | ERR)
    assert not rig.irq  # reading status acknowledged the interrupt
    data = rig.insw(0x1F0, 256)
    words = [int.from_bytes(data[i : i + 2], "little") for i in range(0, 512, 2)]
    assert data[54:56] == b"rT"  # "Tr" byte-swapped: ATA strings are big-endian words
    identity = parse_identify(data)
    assert identity.model == "TradeKernel ATA disk"
    assert identity.serial == "TK0001"
    assert identity.firmware == "1.0"
    assert identity.sectors == SECTORS
    assert words[60] | words[61] << 16 == SECTORS
    assert words[49] & 0x0200  # LBA supported
    assert (words[1], words[3], words[6]) == (4, 16, 63)  # 4096 // (16 * 63) cylinders
    assert words[83] & 0x0400 and sum(words[100 + i] << 16 * i for i in range(4)) == SECTORS
    assert sum(data) % 256 == 0 and data[510] == 0xA5  # integrity word
    assert rig.inb(0x1F7) == DRDY | 0x10  # all 256 words read: DRQ drops


def test_multi_sector_read_interrupts_per_sector_and_32_bit_reads_work() -> None:
    rig = Rig(pattern_disk())
    rig.command(0x20, lba=100, count=3)
    for lba in (100, 101, 102):
        assert rig.irq
        assert rig.inb(0x1F7) & DRQ
        words = [rig.ports.read(0x1F0, 4) for _ in range(128)]  # insd
        assert words == [lba] * 128
    assert not rig.irq and not rig.inb(0x1F7) & DRQ
    assert rig.edges == 3


def test_count_zero_means_256_sectors() -> None:
    rig = Rig(pattern_disk())
    rig.command(0x20, lba=10, count=0)
    sectors = 0
    while rig.inb(0x1F7) & DRQ:
        rig.insw(0x1F0, 256)
        sectors += 1
    assert sectors == 256


def test_write_sectors_reach_the_file_and_later_reads(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(SECTORS * 512))
    rig = Rig(str(image))
    payload = bytes(range(256)) * 4  # two sectors
    rig.command(0x30, lba=7, count=2)
    assert not rig.irq and rig.inb(0x3F6) & DRQ  # first sector asked for without an IRQ
    rig.outsw(0x1F0, payload[:512])
    assert rig.irq and rig.inb(0x1F7) & DRQ
    for index in range(0, 512, 4):  # outsd
        rig.ports.write(0x1F0, 4, int.from_bytes(payload[512 + index : 516 + index], "little"))
    assert rig.irq
    assert rig.inb(0x1F7) == DRDY | 0x10
    rig.command(0xE7)  # CACHE FLUSH
    assert rig.irq and not rig.inb(0x1F7) & ERR
    assert image.read_bytes()[7 * 512 : 9 * 512] == payload
    rig.command(0x20, lba=8, count=1)
    assert rig.insw(0x1F0, 256) == payload[512:]


def test_chs_addressing_and_initialize_device_parameters() -> None:
    rig = Rig(pattern_disk())
    # cylinder 1, head 2, sector 5 with 16 heads / 63 sectors: LBA (1*16 + 2)*63 + 4
    rig.outb(0x1F6, 0xA0 | 2)
    rig.outb(0x1F2, 1)
    rig.outb(0x1F3, 5)
    rig.outb(0x1F4, 1)
    rig.outb(0x1F5, 0)
    rig.outb(0x1F7, 0x20)
    assert rig.ports.read(0x1F0, 4) == (1 * 16 + 2) * 63 + 4
    rig.insw(0x1F0, 254)
    rig.outb(0x1F6, 0xA0 | 3)  # 4 heads
    rig.outb(0x1F2, 32)  # 32 sectors per track
    rig.outb(0x1F7, 0x91)
    assert not rig.inb(0x1F7) & ERR
    rig.outb(0x1F6, 0xA0 | 1)
    rig.outb(0x1F2, 1)
    rig.outb(0x1F3, 1)
    rig.outb(0x1F4, 2)
    rig.outb(0x1F7, 0x20)
    assert rig.ports.read(0x1F0, 4) == (2 * 4 + 1) * 32
    rig.insw(0x1F0, 254)
    rig.outb(0x1F3, 0)  # sector 0 does not exist in CHS
    rig.outb(0x1F7, 0x20)
    assert rig.inb(0x1F7) & ERR and rig.inb(0x1F1) == IDNF


def test_errors_idnf_beyond_capacity_and_abrt_for_unknown_commands() -> None:
    rig = Rig(pattern_disk())
    rig.command(0x20, lba=SECTORS - 1, count=2)
    assert rig.irq
    status = rig.inb(0x1F7)
    assert status & ERR and status & DRDY and not status & DRQ
    assert rig.inb(0x1F1) == IDNF
    rig.command(0x30, lba=SECTORS, count=1)
    assert rig.inb(0x1F7) & ERR and rig.inb(0x1F1) == IDNF
    for unknown in (0x00, 0x50, 0xA1, 0xFF):
        rig.command(unknown)
        assert rig.irq
        assert rig.inb(0x1F7) & ERR and rig.inb(0x1F1) == ABRT
    rig.command(0xC4)  # READ MULTIPLE before SET MULTIPLE MODE
    assert rig.inb(0x1F1) == ABRT
    rig.outb(0x1F1, 0x42)  # an unknown SET FEATURES subcommand
    rig.command(0xEF)
    assert rig.inb(0x1F1) == ABRT
    rig.outb(0x1F1, 0x02)  # enable write cache: accepted
    rig.command(0xEF)
    assert not rig.inb(0x1F7) & ERR and rig.inb(0x1F1) == 0


def test_read_multiple_interrupts_per_block() -> None:
    rig = Rig(pattern_disk())
    rig.command(0xC6, count=4)  # SET MULTIPLE MODE: 4 sectors per block
    assert not rig.inb(0x1F7) & ERR
    rig.command(0xC4, lba=0, count=6)
    edges = rig.edges
    rig.inb(0x1F7)
    rig.insw(0x1F0, 4 * 256)
    assert rig.edges == edges + 1  # second block (2 sectors) announced
    assert rig.inb(0x1F7) & DRQ
    rig.insw(0x1F0, 2 * 256)
    assert not rig.inb(0x1F7) & DRQ


def test_nien_masks_irq_and_alt_status_does_not_acknowledge() -> None:
    rig = Rig(pattern_disk())
    rig.outb(0x3F6, 0x02)  # nIEN
    rig.command(0xE7)
    assert not rig.irq
    rig.outb(0x3F6, 0x00)  # interrupt still pending: the line rises now
    assert rig.irq
    rig.inb(0x3F6)
    assert rig.irq  # alternate status leaves it
    rig.inb(0x1F7)
    assert not rig.irq


def test_soft_reset_busy_then_signature() -> None:
    rig = Rig(pattern_disk())
    rig.command(0x20, lba=5, count=1)
    rig.outb(0x3F6, 0x04)  # SRST
    assert rig.inb(0x3F6) & BSY
    rig.outb(0x3F6, 0x00)
    assert rig.inb(0x1F7) == DRDY | 0x10
    assert [rig.inb(p) for p in (0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5)] == [1, 1, 1, 0, 0]
    assert not rig.irq


def test_missing_slave_reads_zero_and_present_slave_answers() -> None:
    rig = Rig(pattern_disk())
    rig.outb(0x1F6, 0xB0)
    assert rig.inb(0x1F7) == 0 and rig.inb(0x3F6) == 0
    rig.outb(0x1F7, 0xEC)
    assert not rig.irq
    with pytest.raises(AtaError):
        AtaDisk(rig, lambda: None, slave=True)
    both = Rig(pattern_disk(), pattern_disk(16))
    slave = AtaDisk(both, lambda: None, slave=True)
    assert slave.block_count == 16
    assert slave.read_blocks(3, 1) == (3).to_bytes(4, "little") * 128


def test_latency_shows_busy_until_the_clock_reaches_it() -> None:
    rig = Rig(pattern_disk(), latency_ns=5000)
    rig.command(0x20, lba=1, count=1)
    assert rig.inb(0x3F6) == BSY and not rig.irq
    clock = rig.board.clock
    clock.advance_to(5000)
    clock.run_due()
    assert rig.irq and rig.inb(0x1F7) & DRQ


def test_read_only_keeps_writes_in_an_overlay(tmp_path: Path) -> None:
    image = tmp_path / "ro.img"
    image.write_bytes(bytes(SECTORS * 512))
    rig = Rig(str(image), read_only=True)
    rig.command(0x30, lba=3, count=1)
    rig.outsw(0x1F0, b"\x5a" * 512)
    assert not rig.inb(0x1F7) & ERR
    rig.command(0x20, lba=3, count=1)
    assert rig.insw(0x1F0, 256) == b"\x5a" * 512  # the guest sees its write
    rig.ide.flush()
    assert image.read_bytes() == bytes(SECTORS * 512)  # the file never changed


def test_backing_is_shared_with_the_bios_view() -> None:
    rig = Rig(pattern_disk())
    backing = rig.ide.backing(0)
    assert isinstance(backing, DiskBacking)
    assert backing.sector_count == SECTORS and backing.geometry == (4, 16, 63)
    backing.write_sectors(9, b"\x11" * 512)
    rig.command(0x20, lba=9, count=1)
    assert rig.insw(0x1F0, 256) == b"\x11" * 512


def test_snapshot_round_trip_mid_transfer() -> None:
    rig = Rig(pattern_disk())
    rig.command(0x20, lba=40, count=2)
    rig.insw(0x1F0, 100)
    saved = rig.ide.state()
    rig.insw(0x1F0, 156)
    other = Rig(pattern_disk())
    other.ide.restore(saved)
    assert other.insw(0x1F0, 156) == (40).to_bytes(4, "little") * 78
    assert other.insw(0x1F0, 256) == (41).to_bytes(4, "little") * 128
    with pytest.raises(ValueError):
        other.ide.restore({**saved, "version": 99})


def test_kernel_ata_driver_runs_fat_on_the_model(tmp_path: Path) -> None:
    from tradekernel.disktool import PARTITION_START, create_disk

    image = tmp_path / "os.img"
    create_disk(image, 8)
    rig = Rig(str(image))

    def wait_irq() -> None:
        assert rig.irq, "the drive should have raised IRQ14"

    disk = AtaDisk(rig, wait_irq)
    assert disk.block_count == 8 * 2048
    with FatFs(open_partition(disk, 1)) as fs:
        assert fs.listdir("/") == ["bin", "etc", "home", "tmp"]
        fs.write_file("/etc/motd", b"Welcome to TradeKernel\n" * 100)
        assert fs.read_file("/etc/motd") == b"Welcome to TradeKernel\n" * 100
    rig.ide.flush()
    offset = PARTITION_START * 512
    fsck(image, offset)
    assert mtools("mtype", image, "::/etc/motd", offset=offset) == b"Welcome to TradeKernel\n" * 100
    real_size, disk.block_count = disk.block_count, disk.block_count + 10
    with pytest.raises(AtaError, match="error 0x10"):  # the drive's IDNF comes through
        disk.read_blocks(real_size, 1)


def test_string_transfers_match_word_by_word_ones() -> None:
    """`rep insw`/`outsw` served in one call per DRQ block give the same bytes and status
    sequence as 256 single-word accesses."""
    from tradekernel.kernel.drivers.portio import PortIo

    rig = Rig(pattern_disk())
    strings = AtaDisk(PortIo(rig.ports), wait_irq=lambda: None)
    words = AtaDisk(rig, wait_irq=lambda: None)  # the rig's insw/outsw go a word at a time
    assert strings.read_blocks(5, 3) == pattern_disk().getvalue()[5 * 512 : 8 * 512]
    data = bytes(range(256)) * 6
    strings.write_blocks(40, data)
    assert words.read_blocks(40, 3) == data
    words.write_blocks(50, data[::-1])
    assert strings.read_blocks(50, 3) == data[::-1]
    assert rig.edges > 0
