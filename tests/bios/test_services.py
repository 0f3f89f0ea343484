"""BIOS services called the way the ROM stub calls them (hypercall with the caller's DX and
FLAGS on the stack), on a booted board: the corners the samples do not reach."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from tradekernel.devices.ide import default_geometry
from tradekernel.emu.cpu import DS, EAX, EBX, ECX, EDI, EDX, ES, ESI, ESP, SS
from tradekernel.hypercall import BIOS_CALL_BASE

from .bootrun import DISK_BYTES, SECTOR, boot, make_disk

CF, ZF = 0x0001, 0x0040
FRAME = 0x6000  # a scratch stack frame: saved DX, IP, CS, FLAGS
PACKET = 0x6100  # an int 13h extensions packet or a buffer
IDLE_SECTOR = b"\xfb\xf4\xeb\xfd" + bytes(506) + b"\x55\xaa"  # sti; hlt; jmp back


@dataclass
class Answer:
    eax: int
    ebx: int
    ecx: int
    edx: int
    flags: int

    @property
    def ah(self) -> int:
        return (self.eax >> 8) & 0xFF

    @property
    def cf(self) -> bool:
        return bool(self.flags & CF)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    image = make_disk(tmp_path_factory.mktemp("services") / "idle.img", IDLE_SECTOR)
    run = boot(image, until=lambda pc: pc.machine.linear_eip() in range(0x7C00, 0x7E00))
    assert run.reason == "until"
    return run.pc


def call(pc, vector: int, eax=0, ebx=0, ecx=0, edx=0, esi=0, edi=0, flags=0x0202) -> Answer:
    cpu = pc.machine.cpu
    for register, value in ((EBX, ebx), (ECX, ecx), (EDX, 0), (ESI, esi), (EDI, edi)):
        cpu.write(register, value)
    cpu.write(EAX, eax)
    for segment in (SS, DS, ES):
        cpu.write(segment, 0)
    cpu.write(ESP, FRAME)
    struct.pack_into("<HHHH", cpu.ram, FRAME, edx & 0xFFFF, 0, 0, flags)
    cpu.write(EDX, edx & 0xFFFF0000)  # the stub saved DX; the high half is the caller's
    result = pc.bios.hypercalls()[BIOS_CALL_BASE + vector](None)
    dx, _, _, flags = struct.unpack_from("<HHHH", cpu.ram, FRAME)
    return Answer(result, cpu.read(EBX), cpu.read(ECX), dx, flags)


# ---- int 10h --------------------------------------------------------------------------------
def test_cursor_parked_below_the_screen_is_hidden(board):
    call(board, 0x10, eax=0x0200, edx=0x1900)  # row 25
    assert not board.vga.text_screen().cursor_visible
    assert call(board, 0x10, eax=0x0300).edx == 0x1900
    call(board, 0x10, eax=0x0200, edx=0x0000)
    assert board.vga.text_screen().cursor_visible


# ---- int 13h --------------------------------------------------------------------------------
def lba_packet(pc, lba: int, count: int = 1) -> None:
    struct.pack_into("<BBHHHQ", pc.machine.cpu.ram, PACKET, 0x10, 0, count, 0, 0x0700, lba)


def test_status_of_last_operation_is_in_ah(board):
    bad = call(board, 0x13, eax=0x0200, ecx=0x0001, edx=0x0080)  # AH=02h with no sectors
    assert bad.cf and bad.ah == 0x01
    status = call(board, 0x13, eax=0x0100, edx=0x0080)
    assert status.cf and status.ah == 0x01  # and it stays recorded
    assert call(board, 0x13, eax=0x0100, edx=0x0080).ah == 0x01
    assert not call(board, 0x13, eax=0x0000, edx=0x0080).cf  # reset succeeds
    status = call(board, 0x13, eax=0x0100, edx=0x0080)
    assert not status.cf and status.ah == 0x00


def test_verify_and_seek(board):
    verify = call(board, 0x13, eax=0x0403, ecx=0x0001, edx=0x0080)
    assert not verify.cf and verify.eax & 0xFFFF == 0x0003  # AH=0, AL = sectors verified
    last = DISK_BYTES // SECTOR - 1
    for function in (0x44, 0x47):
        lba_packet(board, last)
        assert not call(board, 0x13, eax=function << 8, edx=0x0080, esi=PACKET).cf
        lba_packet(board, last + 1)
        beyond = call(board, 0x13, eax=function << 8, edx=0x0080, esi=PACKET)
        assert beyond.cf and beyond.ah == 0x04


def test_disk_size_leaves_out_the_diagnostic_cylinder(board):
    cylinders, heads, spt = default_geometry(DISK_BYTES // SECTOR)
    answer = call(board, 0x13, eax=0x1500, edx=0x0080)
    assert answer.ah == 0x03 and not answer.cf  # a fixed disk
    assert (answer.ecx & 0xFFFF) << 16 | answer.edx == (cylinders - 1) * heads * spt


def test_lba_packet_for_no_blocks_is_a_no_op(board):
    lba_packet(board, 5, count=0)
    assert not call(board, 0x13, eax=0x4200, edx=0x0080, esi=PACKET).cf


# ---- int 15h --------------------------------------------------------------------------------
def test_e801_splits_memory_at_16_mib(board):
    ram = board.machine.cpu.ram_bytes
    answer = call(board, 0x15, eax=0xE801)
    low_kib, high_blocks = 15 * 1024, (ram - 16 * 1024 * 1024) // 65536
    assert not answer.cf
    assert (answer.eax & 0xFFFF, answer.ecx & 0xFFFF) == (low_kib, low_kib)
    assert (answer.ebx & 0xFFFF, answer.edx) == (high_blocks, high_blocks)


def test_e820_refuses_a_buffer_under_20_bytes(board):
    smap = 0x534D4150
    assert call(board, 0x15, eax=0xE820, ecx=10, edx=smap, edi=PACKET).cf
    assert not call(board, 0x15, eax=0xE820, ecx=20, edx=smap, edi=PACKET).cf


def test_unknown_int15_function_is_refused(board):
    answer = call(board, 0x15, eax=0x5300)  # APM: not on this board
    assert answer.cf and answer.ah == 0x86
