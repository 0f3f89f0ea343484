"""A real MMU walks our tables: Unicorn's x86 CPU with CR3 pointing at an AddressSpace.

A peer check rather than a unit test: the entries the kernel writes must mean to the CPU what
paging.py says they mean (present/accessed/dirty bits, write protection with CR0.WP).
"""

from __future__ import annotations

import ctypes

import pytest

from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.paging import PTE_A, PTE_D, Paging, copy_from_user, copy_to_user

unicorn = pytest.importorskip("unicorn")
x86 = pytest.importorskip("unicorn.x86_const")

RAM = 8 << 20
CODE = 0x20000
CR0_PE, CR0_WP, CR0_PG = 1, 1 << 16, 1 << 31
TEXT, DATA, RODATA = 0x08048000, 0x08049000, 0x0804A000


class SharedRam:
    """Guest RAM in one bytearray that Unicorn maps directly (mem_map_ptr), as the machine does."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address : address + len(data)] = data

    def view(self) -> memoryview:
        return memoryview(self.data)


def test_cpu_walks_kernel_tables_sets_accessed_dirty_and_faults_on_read_only():
    ram = SharedRam(RAM)
    paging = Paging(ram, FrameAllocator(0x500000, RAM), kernel_map_end=RAM)
    space = paging.create_address_space()
    space.map_new(TEXT)
    space.map_new(DATA)
    space.map_new(RODATA, writable=False)
    copy_to_user(space, TEXT, b"\x11\x22\x33\x44")
    for vaddr in (TEXT, DATA):  # the copy set A/D on TEXT; clear both to see what the CPU sets
        slot_entry = space.entry(vaddr) & ~(PTE_A | PTE_D)
        _rewrite_pte(ram, space, vaddr, slot_entry)

    # mov eax, [TEXT]; mov [DATA], eax; mov [RODATA], eax; hlt
    code = bytes.fromhex("A100800408A300900408A300A00408F4")
    ram.write(CODE, code)
    cpu = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
    buffer = (ctypes.c_char * RAM).from_buffer(ram.data)
    cpu.mem_map_ptr(0, RAM, unicorn.UC_PROT_ALL, ctypes.addressof(buffer))
    cpu.reg_write(x86.UC_X86_REG_CR3, space.cr3)
    cpu.reg_write(x86.UC_X86_REG_CR0, cpu.reg_read(x86.UC_X86_REG_CR0) | CR0_PE | CR0_WP | CR0_PG)
    faults = []

    def on_interrupt(uc, vector, _data):
        faults.append((vector, uc.reg_read(x86.UC_X86_REG_EIP), uc.reg_read(x86.UC_X86_REG_CR2)))
        uc.emu_stop()

    cpu.hook_add(unicorn.UC_HOOK_INTR, on_interrupt)
    cpu.emu_start(CODE, CODE + len(code), count=10)

    assert cpu.reg_read(x86.UC_X86_REG_EAX) == 0x44332211
    assert copy_from_user(space, DATA, 4) == b"\x11\x22\x33\x44"
    # The CPU set Accessed on the page it read and Accessed + Dirty on the page it wrote.
    assert space.entry(TEXT) & (PTE_A | PTE_D) == PTE_A
    assert space.entry(DATA) & (PTE_A | PTE_D) == PTE_A | PTE_D
    # With CR0.WP the kernel's write to the read-only page is a #PF at that instruction.
    assert faults == [(14, CODE + 10, RODATA)]
    assert space.translate(RODATA, write=True).reason == "read-only page"


def _rewrite_pte(ram: SharedRam, space, vaddr: int, entry: int) -> None:
    pde = int.from_bytes(ram.read(space.cr3 + 4 * (vaddr >> 22), 4), "little")
    slot = (pde & 0xFFFFF000) + 4 * ((vaddr >> 12) & 0x3FF)
    ram.write(slot, entry.to_bytes(4, "little"))
