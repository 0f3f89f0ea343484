"""A Python error inside a device or a hypercall handler stops the machine with a report,
instead of ctypes printing it and the guest running on with a garbage register."""

from __future__ import annotations

from tests.machine.harness import assemble
from tradekernel.emu.cpu import EIP
from tradekernel.emu.machine import Machine, MachineConfig


def broken_read(port: int, size: int) -> int:
    raise RuntimeError(f"device model bug at port {port:#x}")


def test_exception_in_a_port_handler_stops_the_machine_with_a_report() -> None:
    machine = Machine(MachineConfig(deterministic=True))
    machine.ports.claim(0x300, 1, "broken", read=broken_read)
    code = assemble("bits 32\nmov dx, 0x300\nin al, dx\njmp $\n", org=0x10000)
    machine.cpu.ram[0x10000 : 0x10000 + len(code)] = code
    machine.cpu.write(EIP, 0x10000)
    stop = machine.run(wall_timeout_s=5)
    assert stop.reason == "crash"
    assert "RuntimeError: device model bug at port 0x300" in stop.report
    assert "test_hook_errors.py" in stop.report
    assert "in al, dx" in stop.report
