"""Kernel memory: the heap, the physical frames above it, and paging, started in that order.

Layout (see memmap.py and paging.py): the heap from KERNEL_HEAP_BASE (4 MiB, or RAM/8 when
larger), then physical frames for page tables and user memory up to the end of RAM. The kernel
region (all RAM up to USER_BASE) is identity-mapped supervisor-only with page 0 left out, so
a null pointer in kernel code faults. The entry stub loads CR3 and sets CR0.PG|WP when the
kernel asks (BootInfo.request_cr3), so from then on Unicorn's MMU enforces these tables.

Also here: the page-fault policy, and the KMALLOC/KFREE hypercalls (guest code measuring the
heap through the real hypercall path). The shell's memory commands are kernel/shell/memory.py.

Imports: mm, and the machine's memory map and hypercall numbers.
"""

from __future__ import annotations

from tradekernel import memmap
from tradekernel.hypercall import EINVAL, ENOMEM
from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.heap import HeapError, KernelHeap, heap_size_for_ram
from tradekernel.kernel.mm.paging import USER_BASE, Paging

HYPERCALL_TAG = "hypercall"


class KernelMemory:
    def __init__(self, memory, ram_bytes: int, now_ns, request_cr3) -> None:  # noqa: ANN001
        heap_size = heap_size_for_ram(ram_bytes)
        self.heap = KernelHeap(memory, now_ns, base=memmap.KERNEL_HEAP_BASE, size=heap_size)
        self.frames = FrameAllocator(memmap.KERNEL_HEAP_BASE + heap_size, ram_bytes)
        self._request_cr3 = request_cr3
        self.paging = Paging(
            memory, self.frames, kernel_map_end=min(ram_bytes, USER_BASE),
            invalidate=self._invalidate,
        )  # fmt: skip
        self.kernel_space = self.paging.create_address_space()
        self.current_cr3 = self.kernel_space.cr3
        request_cr3(self.current_cr3)

    def _invalidate(self, cr3: int, _address: int | None) -> None:
        """A reload of CR3 flushes the TLB; the stub does it before it returns to code."""
        if cr3 == self.current_cr3:
            self._request_cr3(cr3)

    def page_fault(self, address: int, error_code: int) -> str | None:
        """None when the fault was resolved (copy-on-write); else what went wrong, in words."""
        info = self.kernel_space.handle_fault(address, error_code)
        if info.resolved:
            return None
        return f"page fault at {address:#010x}: {info.text} (error code {error_code:#x})"

    # ---- hypercalls ---------------------------------------------------------------------
    def hypercall_kmalloc(self, registers) -> int:  # noqa: ANN001
        try:
            return self.heap.kmalloc(registers.arg0(), HYPERCALL_TAG)
        except HeapError as error:
            return -(getattr(error, "errno", ENOMEM) or ENOMEM)

    def hypercall_kfree(self, registers) -> int:  # noqa: ANN001
        try:
            self.heap.kfree(registers.arg0())
        except HeapError as error:
            return -(getattr(error, "errno", EINVAL) or EINVAL)
        return 0
