"""uc_reg_read_batch / uc_reg_write_batch (Cpu.read_batch, write_batch), which the trap fast
switch uses for EIP, EFLAGS, segment and control registers in one C call each."""

from __future__ import annotations

from tradekernel.emu.cpu import CR0, CR3, DS, EFLAGS, EIP, FS, GS
from tradekernel.emu.machine import Machine, MachineConfig


def test_batches_agree_with_single_register_access() -> None:
    cpu = Machine(MachineConfig(deterministic=True)).cpu
    regs = (EIP, EFLAGS, DS, FS, GS, CR0, CR3)
    cpu.write_batch((CR3, EIP, EFLAGS, DS), [0x5000, 0x1234, 0x246, 0])  # no GDT: DS null
    assert [cpu.read(EIP), cpu.read(EFLAGS), cpu.read_segment(DS), cpu.read(CR3)] == [
        0x1234, 0x246, 0, 0x5000,
    ]  # fmt: skip
    batch = cpu.read_batch(regs)
    single = [cpu.read(reg) for reg in regs]
    assert [value & 0xFFFF for value in batch[2:5]] == [value & 0xFFFF for value in single[2:5]]
    assert batch[:2] + batch[5:] == single[:2] + single[5:]
