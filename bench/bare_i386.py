"""The ceiling for compute inside the OS: a static i386 Linux program on a bare Unicorn engine.

    python bench/bare_i386.py BUSYBOX INPUT [--nx] [--counted] [APPLET ARGS...]

Loads a static ELF (Debian's busybox-static) into a flat 32-bit engine with no hook but the
one for `int 0x80`, which answers the few calls such a program makes (read from an in-memory
input on fd 0, write/writev collected from fd 1, brk, mmap2 of fresh memory, set_thread_area
through a GDT entry, exit) and says "not implemented" or "not a tty" to the rest. What it
measures is Unicorn itself: no machine, no kernel, no slices, no interrupts.

`--nx` turns on PAE paging (identity map, 2 MiB pages) with EFER.NXE and every page outside
the program's text marked no-execute. Unicorn 2.1.4 sends every guest store to a page whose
TLB entry is executable down its slow path (`notdirty_write`: a memory-region lookup and a
translated-code check per store) and only clears that for non-executable entries; x86 without
PAE has no NX bit, so every page is executable (docs/UNICORN.md). `--counted` runs with an
instruction count, as the machine's deterministic clock does (Unicorn then calls a count hook
per instruction).

Used by bench_linux.py for its "bare engine" line; imports unicorn, which nothing in
tradekernel/ outside emu/ may do: this file is a measuring instrument, not part of the OS.
"""

from __future__ import annotations

import argparse
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_32, UC_PROT_ALL, Uc
from unicorn import x86_const as x86

RAM = 512 << 20
GDT = 0x1000
PDPT, PD = 0x2000, 0x3000  # --nx: the page-directory-pointer table and its four directories
STACK_TOP = RAM - 0x10000
MMAP_BASE = 0x1000_0000
TLS_ENTRY = 6  # the GDT slot set_thread_area hands out (as Linux's first TLS slot)
LARGE_PAGE = 2 << 20
EFER = 0xC000_0080
EFER_NXE = 1 << 11
ENOSYS, ENOTTY, EINVAL, EBADF = 38, 25, 22, 9
NOT_TTY = {54}  # ioctl
INERT = {6, 13, 20, 33, 91, 97, 122, 125, 174, 175, 191, 195, 197, 199, 200, 201, 202, 224,
         258, 265, 311, 340, 355, 386, 403}  # fmt: skip
# close, time, getpid, access, munmap, setpriority, uname, mprotect, rt_sigaction,
# rt_sigprocmask, ugetrlimit, stat64, fstat64, get{u,g,eu,eg}id32, gettid, set_tid_address,
# clock_gettime, set_robust_list, prlimit64, getrandom, rseq, clock_gettime64: answered 0
# (uname: ENOSYS, so busybox uses its defaults)


@dataclass
class Run:
    cpu_seconds: float
    wall_seconds: float
    output: bytes
    calls: dict[int, int] = field(default_factory=dict)


def run(elf: bytes, argv: list[str], data: bytes, nx: bool = False, counted: bool = False) -> Run:
    """Run the static ELF `elf` with `argv`, `data` on its standard input."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, RAM, UC_PROT_ALL)
    (entry,) = struct.unpack_from("<I", elf, 0x18)
    (phoff,) = struct.unpack_from("<I", elf, 0x1C)
    (phnum,) = struct.unpack_from("<H", elf, 0x2C)
    brk, phdr, text = 0, 0, (0, 0)
    for index in range(phnum):
        kind, offset, vaddr, _, filesz, memsz, flags, _ = struct.unpack_from(
            "<8I", elf, phoff + 32 * index
        )
        if kind != 1:  # PT_LOAD
            continue
        uc.mem_write(vaddr, elf[offset : offset + filesz])
        brk = max(brk, (vaddr + memsz + 0xFFF) & ~0xFFF)
        phdr = phdr or (vaddr + phoff if offset == 0 else 0)
        if flags & 1:  # PF_X
            text = (vaddr, vaddr + memsz)
    # Flat code and data segments: set_thread_area adds the TLS entry beside them.
    uc.reg_write(x86.UC_X86_REG_GDTR, (0, GDT, 0x100, 0))
    uc.mem_write(GDT + 8, struct.pack("<II", 0x0000FFFF, 0x00CF9A00))
    uc.mem_write(GDT + 16, struct.pack("<II", 0x0000FFFF, 0x00CF9200))
    uc.reg_write(x86.UC_X86_REG_CS, 0x08)
    for register in (x86.UC_X86_REG_DS, x86.UC_X86_REG_ES, x86.UC_X86_REG_SS, x86.UC_X86_REG_FS):
        uc.reg_write(register, 0x10)
    uc.reg_write(x86.UC_X86_REG_ESP, _stack(uc, argv, entry, phdr, phnum))
    if nx:
        _nx_paging(uc, text)
    state = {"input": 0, "brk": brk, "mmap": MMAP_BASE}
    output = bytearray()
    calls: dict[int, int] = {}

    def on_interrupt(uc: Uc, vector: int, _user: object) -> None:
        if vector != 0x80:
            eip = uc.reg_read(x86.UC_X86_REG_EIP)
            raise SystemExit(f"bare_i386: interrupt {vector} at {eip:#x}")
        number = uc.reg_read(x86.UC_X86_REG_EAX)
        ebx, ecx, edx = (uc.reg_read(r) for r in (x86.UC_X86_REG_EBX, x86.UC_X86_REG_ECX,
                                                   x86.UC_X86_REG_EDX))  # fmt: skip
        calls[number] = calls.get(number, 0) + 1
        result = -ENOSYS
        if number == 3:  # read
            chunk = data[state["input"] : state["input"] + edx] if ebx == 0 else b""
            state["input"] += len(chunk)
            uc.mem_write(ecx, chunk)
            result = len(chunk) if ebx == 0 else -EBADF
        elif number == 4:  # write
            if ebx == 1:
                output.extend(uc.mem_read(ecx, edx))
            result = edx
        elif number == 146:  # writev
            result = 0
            for index in range(edx):
                base, length = struct.unpack("<II", uc.mem_read(ecx + 8 * index, 8))
                if ebx == 1:
                    output.extend(uc.mem_read(base, length))
                result += length
        elif number == 45:  # brk
            state["brk"] = max(state["brk"], ebx)
            result = state["brk"]
        elif number == 192:  # mmap2: fresh zeroed memory
            result = state["mmap"]
            state["mmap"] += (ecx + 0xFFF) & ~0xFFF
        elif number in (1, 252):  # exit, exit_group
            uc.emu_stop()
            result = 0
        elif number == 243:  # set_thread_area
            _entry, base, limit, _flags = struct.unpack("<4I", uc.mem_read(ebx, 16))
            uc.mem_write(ebx, struct.pack("<I", TLS_ENTRY))
            low = (limit & 0xFFFF) | (base & 0xFFFF) << 16
            high = (base >> 16 & 0xFF) | 0xF2 << 8 | (limit >> 16 & 0xF) << 16 | 0xC0 << 16
            uc.mem_write(GDT + 8 * TLS_ENTRY, struct.pack("<II", low, high | base & 0xFF000000))
            result = 0
        elif number in NOT_TTY:
            result = -ENOTTY
        elif number == 85:  # readlink
            result = -EINVAL
        elif number in INERT:
            result = -ENOSYS if number == 122 else 0
        uc.reg_write(x86.UC_X86_REG_EAX, result & 0xFFFFFFFF)

    uc.hook_add(UC_HOOK_INTR, on_interrupt)
    wall, cpu = time.perf_counter(), time.process_time()
    uc.emu_start(entry, 0xFFFF_FFFF, count=1 << 62 if counted else 0)
    return Run(time.process_time() - cpu, time.perf_counter() - wall, bytes(output), calls)


def _stack(uc: Uc, argv: list[str], entry: int, phdr: int, phnum: int) -> int:
    """argc, argv, an empty environment and the auxiliary vector, as Linux lays them out."""
    top = STACK_TOP
    pointers = []
    for arg in argv:
        raw = arg.encode() + b"\0"
        top -= len(raw)
        uc.mem_write(top, raw)
        pointers.append(top)
    top -= 16
    random = top
    uc.mem_write(random, bytes(range(16)))
    # AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_ENTRY, AT_RANDOM, AT_HWCAP, AT_SECURE, AT_NULL
    auxv = [3, phdr, 4, 32, 5, phnum, 6, 4096, 9, entry, 25, random, 16, 0, 23, 0, 0, 0]
    words = [len(argv), *pointers, 0, 0, *auxv]
    top = (top - 4 * len(words)) & ~15
    uc.mem_write(top, struct.pack(f"<{len(words)}I", *words))
    return top


def _nx_paging(uc: Uc, text: tuple[int, int]) -> None:
    """Identity-map RAM with PAE 2 MiB pages; only those holding the text may execute."""
    uc.mem_write(PDPT, struct.pack("<4Q", *[(PD + 0x1000 * i) | 1 for i in range(4)]))
    entries = []
    for page in range(0, RAM, LARGE_PAGE):
        executable = page < text[1] and text[0] < page + LARGE_PAGE
        entries.append(page | 0x87 | (0 if executable else 1 << 63))  # P, RW, US, PS
    uc.mem_write(PD, struct.pack(f"<{len(entries)}Q", *entries))
    uc.msr_write(EFER, EFER_NXE)
    uc.reg_write(x86.UC_X86_REG_CR4, uc.reg_read(x86.UC_X86_REG_CR4) | 0x20)  # PAE
    uc.reg_write(x86.UC_X86_REG_CR3, PDPT)
    uc.reg_write(x86.UC_X86_REG_CR0, uc.reg_read(x86.UC_X86_REG_CR0) | 0x8000_0000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("busybox", type=Path)
    parser.add_argument("input", type=Path)
    parser.add_argument("--nx", action="store_true")
    parser.add_argument("--counted", action="store_true")
    parser.add_argument("argv", nargs="*", default=["gzip", "-c"])
    args = parser.parse_args()
    data = args.input.read_bytes()
    done = run(args.busybox.read_bytes(), ["busybox", *args.argv], data, args.nx, args.counted)
    mib = len(data) / (1 << 20)
    rate = mib / done.cpu_seconds
    print(f"{' '.join(args.argv)} of {mib:.1f} MiB: {len(done.output)} bytes out, "
          f"{rate:.2f} MiB per CPU second ({done.wall_seconds:.2f} s wall)")  # fmt: skip


if __name__ == "__main__":
    main()
