"""The direct view of Unicorn's CPU state (the hypercall fast path) must be found and agree with
Unicorn's own API; an upgrade that moves it must fail here, not slow down silently."""

from __future__ import annotations

from tradekernel.emu.cpu import CS, EAX, EBX, ECX, EDI, EDX, ESI, Cpu


def test_live_registers_are_found_and_agree_with_the_api() -> None:
    cpu = Cpu(2 * 1024 * 1024)
    assert cpu._gprs is not None and cpu._hflags is not None
    for index, reg in enumerate((EAX, ECX, EDX, EBX)):
        cpu.write(reg, 0x1000 + index)
        assert cpu.gpr(index) == 0x1000 + index
    cpu.set_gpr(6, 0xCAFEF00D)
    cpu.set_gpr(7, 0xFFFFFFFF)
    assert cpu.read(ESI) == 0xCAFEF00D and cpu.read(EDI) == 0xFFFFFFFF
    assert cpu.cpl() == cpu.read_segment(CS) & 3 == 0


def test_power_on_gives_the_reset_state_not_unicorns_flat_mode() -> None:
    """Unicorn's 32-bit engine starts in flat protected mode with IDTR limit 0; RESET# gives
    real mode, CR4 = 0 and the IVT at 0 with a 1 KiB limit (docs/UNICORN.md)."""
    from tradekernel.emu.cpu import CR0, CR4, DS, x86
    from tradekernel.emu.machine import Machine, MachineConfig

    machine = Machine(MachineConfig())
    machine.power_on((0xF000, 0xFFF0))
    assert machine.cpu.read_table_register(x86.UC_X86_REG_IDTR) == (0, 0x3FF)
    assert machine.cpu.read(CR0) == 0x60000010 and machine.cpu.read(CR4) == 0
    assert machine.cpu.read(DS) == 0
