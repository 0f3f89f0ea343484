"""The hypercall ABI: how guest code calls the Python kernel.

Mechanism: `in eax, dx` with DX = HYPERCALL_PORT_BASE + call number (0-255), executed at
CPL 0. The machine intercepts that port range before the device bus; the value the `in`
returns is the result, so a call costs one exit and no register write. A ring-3 program cannot
make a hypercall: without I/O privilege the `in` raises #GP like any other port access.

Registers on entry: EBX, ECX, ESI, EDI = arguments 0-3 (EDX holds the port; EAX is replaced).
On return: EAX = result; a negative value -errno is an error (ENOSYS for an unknown number,
EINVAL for a bad argument, EFAULT for a bad guest pointer). A handler may change other
registers and guest memory (an interrupt handler edits the trap frame it is given).
Numbers 0x80-0xFF are the BIOS's: its ROM stubs call `0x80 + interrupt vector`.

The numbers are shared with the guest sources (images/stub.asm): change both together.
"""

from __future__ import annotations

from enum import IntEnum

HYPERCALL_PORT_BASE = 0x5A00
BIOS_CALL_BASE = 0x80

# CPUID leaf 0x40000000: EAX = highest hypervisor leaf, EBX:ECX:EDX = signature (12 bytes).
CPUID_HYPERVISOR_LEAF = 0x40000000
CPUID_SIGNATURE = b"TradeKernelM"
CPUID_MAX_LEAF = 0x40000001  # leaf 0x40000001 EAX = HYPERCALL_PORT_BASE, EBX = ABI version
ABI_VERSION = 1


class Hypercall(IntEnum):
    KERNEL_INIT = 1  # EBX = address of the stub's boot info block
    INTERRUPT = 2  # EBX = address of the trap frame on the kernel stack (see kernel.trapframe)
    IDLE = 3  # the idle loop asks the kernel for work before `sti; hlt`
    KMALLOC = 5  # EBX = size -> address, or -errno
    KFREE = 6  # EBX = address -> 0, or -errno
    BENCH_NOP = 0x7F  # returns EBX + 1; used to measure the round trip


ENOSYS = 38
ENOMEM = 12
EINVAL = 22
EFAULT = 14
