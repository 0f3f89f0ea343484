"""A booted, closed Pc is freed by reference counting alone (the machine holds its board only
weakly), and `release_memory` hands the guest RAM's pages back to the host at once, while the
machine's own cyclic graph waits for the collector."""

from __future__ import annotations

import ctypes
import gc
import mmap
import weakref
from pathlib import Path

import pytest

from tradekernel.disktool import create_os_disk
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.ui.session import make_pc

PROMPT = b"tk:/> "
LIBC = ctypes.CDLL(None, use_errno=True)


def booted(tmp_path: Path) -> Pc:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    pc = make_pc(PcConfig(disk=disk, ram_mib=16, deterministic=True))
    serial = bytearray()
    pc.machine.channels.listen("com1-tx", serial.extend)
    pc.machine.run(wall_timeout_s=120, until=lambda: PROMPT in serial)
    assert PROMPT in serial
    return pc


def resident_pages(ram: memoryview) -> tuple[int, int]:
    """(resident, total) pages wholly inside `ram`, as the kernel's mincore(2) reports them."""
    cell = ctypes.c_char.from_buffer(ram)
    start = ctypes.addressof(cell)
    del cell
    first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    pages = (start + len(ram) - first) // mmap.PAGESIZE
    vector = (ctypes.c_ubyte * pages)()
    if LIBC.mincore(ctypes.c_void_p(first), ctypes.c_size_t(pages * mmap.PAGESIZE), vector):
        raise OSError(ctypes.get_errno(), "mincore")
    return sum(byte & 1 for byte in vector), pages


@pytest.fixture
def no_collector():  # noqa: ANN201
    gc.collect()
    gc.disable()
    yield
    gc.enable()


@pytest.mark.usefixtures("no_collector")
def test_a_closed_pc_is_freed_by_reference_counting(tmp_path: Path) -> None:
    pc = booted(tmp_path)
    assert pc.kernel is not None  # KERNEL_INIT reached the board through its weak callback
    board = weakref.ref(pc)
    pc.close()
    pc.machine.close()
    del pc
    assert board() is None


def test_a_reset_still_reaches_the_board(tmp_path: Path) -> None:
    """The weak callbacks keep working while the Pc lives: a reset reloads the ROM."""
    pc = booted(tmp_path)
    try:
        rom = bytes(pc.machine.cpu.ram[0xF0000:0x100000])
        pc.machine.cpu.ram[0xF0000:0x100000] = bytes(0x10000)
        pc.machine.reset()
        assert bytes(pc.machine.cpu.ram[0xF0000:0x100000]) == rom
    finally:
        pc.close()
        pc.machine.close()


def test_release_memory_gives_the_guest_ram_back_to_the_host(tmp_path: Path) -> None:
    pc = booted(tmp_path)
    ram = pc.machine.cpu.ram
    resident, pages = resident_pages(ram)
    assert 0 < resident < pages // 2  # only the pages the machine touched are the host's
    pc.close()
    pc.machine.close()
    pc.release_memory()
    assert resident_pages(ram)[0] == 0
    assert not any(ram[0xB8000:0xB8FA0])  # the screen too: the machine's memory is gone
