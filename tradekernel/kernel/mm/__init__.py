"""mm: memory management. The kernel heap (heap.py), physical frames (frames.py), page tables
and address spaces with copy-on-write and user-memory copies (paging.py), mmap and System V
shared memory (mmap.py), and KernelMemory (memory.py), which starts them in order and holds the
page-fault policy and the KMALLOC/KFREE hypercalls.

Imports: arch and drivers below it, and the machine's edge (memmap, hypercall). It knows no
process: the process layer passes its records in, and calls mmap's `forked`/`released`.
"""
