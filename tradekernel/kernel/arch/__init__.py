"""arch: the x86 side of the kernel's boundary, what the entry stub hands over: the trap frame
it pushes on every interrupt (trapframe.py) and the boot-info block (bootinfo.py: GDT/IDT/TSS
addresses, the CR3 and FPU mailboxes).

Imports: tradekernel.emu.memory only (guest memory). Everything in the kernel may import it.
"""
