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


def test_eflags_read_in_place_between_runs_agrees_with_the_api() -> None:
    """Between runs `Cpu.flags` reads EFLAGS in the live state, not through the API: Unicorn
    folds the arithmetic flags back into it as a run ends (docs/UNICORN.md). Each run leaves
    different flags (CF/SF from `cmp`, ZF/PF from `xor`, OF/SF/AF from `add`, CF from `stc`,
    DF from `std`); both kinds of run, counted and not."""
    from tradekernel.emu.cpu import EFLAGS

    cpu = Cpu(2 * 1024 * 1024)
    programs = ("b80000000083f801f4", "31c0f4", "b07f0401f4", "f9f4", "fdf4")
    seen = set()
    for index, program in enumerate(programs):
        code = bytes.fromhex(program)
        address = 0x1000 + 0x100 * index
        cpu.ram[address : address + len(code)] = code
        cpu.start(address, count=100 if index % 2 else 0)
        assert not cpu.running
        assert cpu.flags() == cpu.read(EFLAGS)
        seen.add(cpu.flags())
    assert len(seen) == len(programs)  # every run really changed the flags


def test_eflags_after_restoring_a_context_saved_inside_a_hook_agree_with_the_api() -> None:
    """A context saved inside a hook (a ring-3 I/O #GP saves one there and restores it after
    the slice) holds the arithmetic flags apart from `env->eflags`: read in place they would
    be lost from the #GP frame, so `Cpu.flags` asks the API until the next run ends."""
    from tradekernel.emu.cpu import EFLAGS, FLAG_CF

    cpu = Cpu(2 * 1024 * 1024)
    saved = []
    cpu.on_port_out(lambda _engine, _port, _size, _value, _user: saved.append(cpu.save_context()))
    code = bytes.fromhex("b80000000083f801e680f4")  # mov eax, 0; cmp eax, 1 (CF=1); out; hlt
    cpu.ram[0x1000 : 0x1000 + len(code)] = code
    cpu.start(0x1000)
    cpu.restore_context(saved[0])
    assert cpu.read(EFLAGS) & FLAG_CF
    assert cpu.flags() == cpu.read(EFLAGS)
