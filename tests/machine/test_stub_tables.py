"""The entry stub's descriptor tables (images/stub.asm), read from guest memory once the kernel
has started: the system-call gate and the TLS entries are laid out as i386 Linux lays them,
because glibc and other Linux programs assume that layout."""

from __future__ import annotations

from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu.cpu import x86
from tradekernel.emu.pc import PcConfig
from tradekernel.kernel.arch.gdt import TLS_ENTRIES, selector
from tradekernel.ui.session import make_pc

SYSCALL_VECTOR = 0x80
INTERRUPT_GATE_DPL3 = 0xEE  # present, DPL 3, 32-bit interrupt gate: IF cleared on entry
LINUX_TLS_ENTRIES = (6, 7, 8)  # GDT_ENTRY_TLS_MIN..MAX on i386 Linux
TSS_ENTRY = 5


def _booted_tables(tmp_path: Path) -> tuple[bytes, bytes]:
    """(GDT, IDT) as the stub left them, read where its boot info says they are; the GDT as
    far as GDTR's limit."""
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    pc = make_pc(PcConfig(disk=disk, deterministic=True))
    try:
        info = pc.machine.run(wall_timeout_s=30, until=lambda: pc.kernel is not None)
        assert info.reason == "until", info.report
        boot = pc.kernel.boot
        memory = pc.machine.memory
        gdt_base, gdt_limit = pc.machine.cpu.read_table_register(x86.UC_X86_REG_GDTR)
        assert gdt_base == boot.gdt
        return memory.read(boot.gdt, gdt_limit + 1), memory.read(boot.idt, 8 * 256)
    finally:
        pc.machine.close()


def test_int_0x80_is_a_dpl3_interrupt_gate_and_tls_has_linuxs_three_entries(
    tmp_path: Path,
) -> None:
    gdt, idt = _booted_tables(tmp_path)
    assert len(gdt) == 8 * 9, "null, kernel and user code and data, TSS, three TLS entries"
    assert idt[8 * SYSCALL_VECTOR + 5] == INTERRUPT_GATE_DPL3
    assert TLS_ENTRIES == LINUX_TLS_ENTRIES
    assert [selector(entry) for entry in TLS_ENTRIES] == [0x33, 0x3B, 0x43]
    for entry in TLS_ENTRIES:
        assert gdt[8 * entry : 8 * entry + 8] == bytes(8), f"entry {entry} empty at boot"
    assert gdt[8 * TSS_ENTRY + 5] & 0x1D == 0x09, "the TSS keeps its own slot"
