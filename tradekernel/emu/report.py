"""The report a dead machine leaves: why, the registers, and the instruction it died on."""

from __future__ import annotations

from tradekernel.emu.cpu import CR0_PE, Cpu
from tradekernel.emu.interrupts import VECTOR_NAMES, Event, Mmu, PageNotPresent


def disassemble_at(cpu: Cpu, count: int = 1) -> list[str]:
    from capstone import CS_ARCH_X86, CS_MODE_16, CS_MODE_32, Cs  # only a dead machine pays

    regs = cpu.all_registers()
    protected = bool(regs["cr0"] & CR0_PE)
    linear = regs["eip"] if protected else ((regs["cs"] & 0xFFFF) << 4) + (regs["eip"] & 0xFFFF)
    try:
        code = Mmu(cpu).read(linear, 16 * count)
    except PageNotPresent:
        return [f"{linear:#010x}: <not mapped>"]
    engine = Cs(CS_ARCH_X86, CS_MODE_32 if protected else CS_MODE_16)
    lines = [
        f"{insn.address:#010x}: {insn.bytes.hex(' '):<24} {insn.mnemonic} {insn.op_str}".rstrip()
        for insn in engine.disasm(code, linear, count)
    ]
    return lines or [f"{linear:#010x}: {code[:8].hex(' ')} (undecodable)"]


def crash_report(cpu: Cpu, why: str, event: Event | None = None) -> str:
    regs = cpu.all_registers()
    lines = [f"MACHINE STOPPED: {why}"]
    if event is not None:
        name = VECTOR_NAMES.get(event.vector, "interrupt")
        code = "" if event.error_code is None else f", error code {event.error_code:#x}"
        lines.append(f"vector {event.vector:#x} ({name}){code}")
    order = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp")
    lines.append("  ".join(f"{name}={regs[name]:08x}" for name in order))
    lines.append(
        f"eip={regs['eip']:08x}  eflags={regs['eflags']:08x}  cs={regs['cs']:04x}  "
        f"ss={regs['ss']:04x}  ds={regs['ds']:04x}  es={regs['es']:04x}"
    )
    lines.append("  ".join(f"{name}={regs[name]:08x}" for name in ("cr0", "cr2", "cr3", "cr4")))
    lines.extend("  " + line for line in disassemble_at(cpu))
    return "\n".join(lines)
