"""The guest physical memory map: the one place every layer takes its addresses from.

0x00000000-0x000003FF  real-mode IVT (256 far pointers)
0x00000400-0x000004FF  BIOS data area (BDA): equipment, memory size, tick count at 0x46C
0x00000500-0x00007BFF  free low memory; the boot sector's stack grows down from 0x7C00
0x00007C00-0x00007DFF  the boot sector (MBR), loaded by the BIOS
0x00008000-0x0000FFFF  the 32-bit entry stub's stack (grows down from 0x10000)
0x00010000-0x0001FFFF  the 32-bit entry stub (GDT, TSS, IDT, interrupt entry points)
0x00020000-0x0009EFFF  free conventional memory
0x0009F000-0x0009FFFF  extended BIOS data area (reserved in E820)
0x000A0000-0x000BFFFF  VGA memory (text mode buffer at 0xB8000)
0x000C0000-0x000EFFFF  option ROM space (empty)
0x000F0000-0x000FFFFF  BIOS ROM: one stub per interrupt vector, the reset vector at 0xFFFF0
0x00100000-...         kernel heap (KERNEL_HEAP_SIZE), then page tables and user frames
"""

IVT_BASE = 0x0000
BDA_BASE = 0x0400
BDA_TICKS = 0x046C  # dword: IRQ0 ticks since midnight, advanced by int 08h
BDA_MIDNIGHT = 0x0470  # byte: set when the tick count wraps past 24 h
BOOT_SECTOR = 0x7C00
STUB_STACK_TOP = 0x10000
STUB_BASE = 0x10000
STUB_MAX_SIZE = 0x10000
EBDA_BASE = 0x9F000
CONVENTIONAL_TOP = 0xA0000  # int 12h reports 636 KiB (below the EBDA)
VGA_BASE = 0xA0000
VGA_SIZE = 0x20000
VGA_TEXT_BASE = 0xB8000
VGA_TEXT_COLUMNS = 80
VGA_TEXT_ROWS = 25
BIOS_ROM_BASE = 0xF0000
BIOS_ROM_SIZE = 0x10000
RESET_VECTOR = 0xFFFF0
EXTENDED_BASE = 0x100000
KERNEL_HEAP_BASE = 0x100000
KERNEL_HEAP_SIZE = 4 * 1024 * 1024  # default; grows with RAM (see kernel.memory)

DEFAULT_RAM_MIB = 32
